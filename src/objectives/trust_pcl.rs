//! Trust-PCL path consistency (Nachum et al. 2018) on a window `s_i → … → s_j`:
//! `C = −V(s_i) + γ^{j−i} V(s_j) + Σ_t γ^{t−i} [r_t − (τ_H + λ) log q + λ log p]`.
use super::Scalar;
use crate::exact::Rational;
use num_traits::{One, Zero};

/// The regularisation parameters of Trust-PCL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Params {
    /// Discount γ.
    pub gamma: Rational,
    /// Entropy weight τ_H.
    pub entropy: Rational,
    /// Relative-entropy (KL) weight λ.
    pub relative_entropy: Rational,
    /// Sign of the regularisation penalty `(τ_H + λ) log q − λ log p` subtracted from the
    /// reward: `+1` in Trust-PCL, `−1` for the `flipped-sign` mutant (a KL bonus instead of a
    /// penalty).
    pub penalty_sign: Rational,
}

impl Params {
    /// The equivalence regime: `γ = 1`, `τ_H = 0`, `λ = α`.
    pub fn equivalence(alpha: &Rational) -> Self {
        Self {
            gamma: Rational::one(),
            entropy: <Rational as Zero>::zero(),
            relative_entropy: alpha.clone(),
            penalty_sign: Rational::one(),
        }
    }
}

/// The RL term of one step: `r_t − (τ_H + λ) log q + λ log p` (reward `r_t` is the log-reward
/// on the step into the terminal and 0 elsewhere).
pub fn step_term<S: Scalar>(reward: &S, log_q: &S, log_p: &S, params: &Params) -> S {
    let q_weight = (&params.entropy + &params.relative_entropy) * &params.penalty_sign;
    let p_weight = &params.relative_entropy * &params.penalty_sign;
    reward
        .sub(&log_q.scale(&q_weight))
        .add(&log_p.scale(&p_weight))
}

/// The consistency error of a window from its per-step RL terms (already computed with
/// [`step_term`]), the start value and the end value (`V = 0` at a terminal).
pub fn consistency<S: Scalar>(v_start: &S, v_end: &S, step_terms: &[S], params: &Params) -> S {
    let mut discount = Rational::one();
    let mut total = S::zero().sub(v_start);
    for term in step_terms {
        total = total.add(&term.scale(&discount));
        discount *= &params.gamma;
    }
    total.add(&v_end.scale(&discount))
}

/// The Trust-PCL policy surrogate of the reference code, `−sg(C) · Σ_t log q_t`: its gradient
/// with respect to `log q_t` is `−C` (C is held constant).
pub fn surrogate_gradient<S: Scalar>(consistency: &S) -> S {
    S::zero().sub(consistency)
}

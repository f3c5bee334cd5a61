//! Each objective defined once, as a value that states its parts: the residual's family, ½ or
//! not, where β sits, the Trust-PCL regularisation (γ, τ_H, λ and the sign of the KL
//! penalty), and the reduction over the batch. The factors the identities predict (α², α) are
//! stated beside them.
//!
//! Every path reads these values: the exact claims (`claims::context`), the evaluator
//! ([`super::eval`], the reference for every float check), the fused kernels, their rounding
//! bounds, `gradcheck`, Monte Carlo and `classify`. A mutant ([`crate::mutant::Mutant`]) is a
//! transformation of a [`Definitions`] value ([`Definitions::mutated`]), applied in this one
//! place, so every path sees the same wrong objective.
use num_traits::{One, Zero};
use serde::Serialize;

use super::rtb::BetaPlacement;
use super::trust_pcl::Params;
use crate::exact::Rational;
use crate::mutant::Mutant;

/// The residual (or advantage) an objective is built from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Family {
    /// RTB: `δ = log Z + Σ log q − Σ log p − β log r`.
    Rtb,
    /// Trust-PCL: `C = −V(s_i) + γ^{j−i} V(s_j) + Σ γ^{t−i} [r_t − (τ_H + λ) log q + λ log p]`,
    /// from its per-step RL terms.
    TrustPcl,
    /// The reference Trust-PCL code's policy surrogate `−sg(C) · Σ log q`.
    TrustPclSurrogate,
    /// Relative SubTB on a window: `δ = log F(s_i) + Σ log q − Σ log p − log F(s_j)`,
    /// `log F(x) = β log r(x)`.
    SubTb,
    /// REINFORCE with the KL-regularised reward: `−sg(A) · log q(τ)`,
    /// `A = log r − λ (log q(τ) − log p(τ)) − mean`.
    ReinforceKl,
    /// The flawed baseline (negative control): `−sg(r − mean r) · log q(τ) + κ (log q − log p)²`.
    Flawed,
    /// VarGrad: the RTB residual with `log Z := −mean` of the rest over the batch.
    VarGrad,
    /// The `+mean` centring seen in one diffusion-LM script: the rest plus its (detached) batch
    /// mean. Not VarGrad: a different objective, kept so that `classify` can name it.
    PlusMean,
}

/// How per-trajectory losses become the batch loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reduction {
    /// The mean over the (non-empty) trajectories.
    Mean,
    /// The sum.
    Sum,
}

/// One objective, stated by its parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Objective {
    /// The residual family.
    pub family: Family,
    /// On one window per trajectory (learned values at its boundaries) or the whole trajectory.
    pub windowed: bool,
    /// `½ x²` (true) or `x²` (false), for the squared-residual families.
    pub half: bool,
    /// Where β sits (RTB, SubTB, VarGrad).
    pub beta: BetaPlacement,
    /// γ, τ_H, λ and the sign of the KL penalty (Trust-PCL families); λ is the KL weight of
    /// REINFORCE-KL too.
    pub regularisation: Params,
    /// κ, the flawed baseline's penalty weight.
    pub kappa: Rational,
    /// The reduction over the batch.
    pub reduction: Reduction,
}

impl Objective {
    /// A squared-residual objective over the whole trajectory with the equivalence-regime
    /// regularisation for `alpha`.
    fn new(family: Family, alpha: &Rational) -> Self {
        Self {
            family,
            windowed: matches!(family, Family::SubTb),
            half: true,
            beta: BetaPlacement::OnLogReward,
            regularisation: Params::equivalence(alpha),
            kappa: Rational::new(1.into(), 100.into()),
            reduction: Reduction::Mean,
        }
    }

    /// The loss of one residual: `½ x²` or `x²`.
    pub fn square_factor(&self) -> Rational {
        if self.half {
            Rational::new(1.into(), 2.into())
        } else {
            Rational::one()
        }
    }

    /// True in the regime of the equivalence (γ = 1, τ_H = 0): the fused kernels support
    /// only this regime.
    pub fn undiscounted_without_entropy(&self) -> bool {
        self.regularisation.gamma.is_one() && self.regularisation.entropy.is_zero()
    }
}

/// A power of α that an identity predicts between two objectives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct AlphaPower(pub u32);

impl AlphaPower {
    /// `α^k`.
    pub fn of(self, alpha: &Rational) -> Rational {
        (0..self.0).fold(Rational::one(), |acc, _| acc * alpha)
    }
    /// `α`, `α²`, … for derivations and reports.
    pub fn label(self) -> &'static str {
        match self.0 {
            0 => "1",
            1 => "α",
            2 => "α²",
            _ => "α^k",
        }
    }
}

/// The factors C2–C3 predict between Trust-PCL and RTB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Factors {
    /// Losses and gradients with the scalar shared (`V(s0) = α log Z`): α².
    pub shared_scalar: AlphaPower,
    /// `∂L_TPCL/∂V(s0) = α · ∂L_RTB/∂log Z` with `V(s0)` its own parameter.
    pub own_value: AlphaPower,
    /// The surrogate's θ-gradient: α times RTB's.
    pub surrogate: AlphaPower,
}

/// Every objective of the suite for one β, and the factors between them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Definitions {
    /// β.
    pub beta: Rational,
    /// `α = 1/β`.
    pub alpha: Rational,
    /// RTB, `½ δ²`.
    pub rtb: Objective,
    /// Trust-PCL on the full trajectory, `½ C²`.
    pub tpcl: Objective,
    /// Trust-PCL on one window per trajectory, learned `V` at its ends.
    pub tpcl_windowed: Objective,
    /// The Trust-PCL policy surrogate.
    pub tpcl_surrogate: Objective,
    /// Relative SubTB on one window per trajectory, learned `log F` at its ends.
    pub subtb: Objective,
    /// REINFORCE-KL with the batch-mean baseline.
    pub reinforce_kl: Objective,
    /// The flawed baseline, κ = 1/100.
    pub flawed: Objective,
    /// VarGrad.
    pub vargrad: Objective,
    /// The factors the identities predict.
    pub factors: Factors,
}

impl Definitions {
    /// The suite's objectives at inverse temperature `beta > 0`.
    pub fn new(beta: Rational) -> Self {
        let alpha = beta.recip();
        let mut tpcl_windowed = Objective::new(Family::TrustPcl, &alpha);
        tpcl_windowed.windowed = true;
        Self {
            rtb: Objective::new(Family::Rtb, &alpha),
            tpcl: Objective::new(Family::TrustPcl, &alpha),
            tpcl_windowed,
            tpcl_surrogate: Objective::new(Family::TrustPclSurrogate, &alpha),
            subtb: Objective::new(Family::SubTb, &alpha),
            reinforce_kl: Objective::new(Family::ReinforceKl, &alpha),
            flawed: Objective::new(Family::Flawed, &alpha),
            vargrad: Objective::new(Family::VarGrad, &alpha),
            factors: Factors {
                shared_scalar: AlphaPower(2),
                own_value: AlphaPower(1),
                surrogate: AlphaPower(1),
            },
            beta,
            alpha,
        }
    }

    /// The definitions at a float β (read exactly: every finite float is a rational).
    pub fn from_f64(beta: f64) -> Option<Self> {
        (beta.is_finite() && beta > 0.0)
            .then(|| Rational::from_float(beta))
            .flatten()
            .map(Self::new)
    }

    /// The definitions with a deliberately wrong variant swapped in (`None`: unchanged). This
    /// is the only place a mutant changes an objective.
    pub fn mutated(mut self, mutant: Option<Mutant>) -> Self {
        match mutant {
            None => {}
            Some(Mutant::MissingHalf) => {
                // Trust-PCL's loss C² instead of ½C², wherever it is squared.
                self.tpcl.half = false;
                self.tpcl_windowed.half = false;
            }
            Some(Mutant::FlippedSign) => {
                // The KL penalty becomes a bonus in every Trust-PCL consistency.
                for o in [
                    &mut self.tpcl,
                    &mut self.tpcl_windowed,
                    &mut self.tpcl_surrogate,
                ] {
                    o.regularisation.penalty_sign = -o.regularisation.penalty_sign.clone();
                }
            }
            Some(Mutant::BetaOnRatio) => {
                // β on the log-ratio wherever the GFlowNet side places it on the log-reward.
                for o in [&mut self.rtb, &mut self.subtb, &mut self.vargrad] {
                    o.beta = BetaPlacement::OnLogRatio;
                }
            }
            Some(Mutant::AlphaNotSquared) => {
                self.factors.shared_scalar = AlphaPower(1);
            }
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_mutant_changes_the_definitions_at_beta_not_one() {
        let beta = Rational::new(3.into(), 2.into());
        let right = Definitions::new(beta);
        for m in Mutant::ALL {
            assert_ne!(right.clone().mutated(Some(m)), right, "{m} changes nothing");
        }
        assert_eq!(right.clone().mutated(None), right);
    }

    #[test]
    fn alpha_powers() {
        let alpha = Rational::new(2.into(), 3.into());
        assert_eq!(AlphaPower(2).of(&alpha), Rational::new(4.into(), 9.into()));
        assert_eq!(AlphaPower(0).of(&alpha), Rational::one());
    }
}

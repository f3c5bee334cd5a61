//! The one evaluator: an [`Objective`] run over any [`Scalar`] on a batch of trajectories.
//!
//! Exactly (rationals or the polynomial ring), in `f64` and `f32`, and with gradients through
//! forward-mode [`Dual`] numbers over any of those (sparse tangents, so a trajectory's terms
//! carry only its own inputs' derivatives until the batch reduction). It is the reference the
//! fused kernels are checked against, and the source of the expected values of
//! `gradcheck --spec` and of `classify`'s candidates. Per-term pieces come from the objective
//! modules ([`super::rtb`], [`super::trust_pcl`], [`super::subtb`], [`super::reinforce`]),
//! which the exact claims use directly for their term-by-term derivations.
use num_traits::One;
use thiserror::Error;

use super::definition::{Family, Objective, Reduction};
use super::rtb::BetaPlacement;
use super::{reinforce, rtb, subtb, trust_pcl, Scalar};
use crate::exact::Rational;

/// One trajectory's inputs (a prefix of the padded row: `log_q.len()` is its length).
#[derive(Debug, Clone, PartialEq)]
pub struct Trajectory<S> {
    /// `log q` per step.
    pub log_q: Vec<S>,
    /// `log p` per step.
    pub log_p: Vec<S>,
    /// `log r(x)` of its terminal.
    pub log_r: S,
    /// `r(x)` itself, for the flawed baseline (exact where rational, `exp(log r)` in floats).
    pub reward: S,
    /// The window of windowed objectives.
    pub window: Option<Window<S>>,
}

/// A window `start..end` of steps with learned values at its boundaries.
#[derive(Debug, Clone, PartialEq)]
pub struct Window<S> {
    /// First step.
    pub start: usize,
    /// One past the last step.
    pub end: usize,
    /// `V(s_start)` or `log F(s_start)`.
    pub value_start: S,
    /// `V(s_end)` or `log F(s_end)`; not read when the window ends at the terminal.
    pub value_end: S,
}

/// Why an objective could not be evaluated.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum EvalError {
    /// No trajectory.
    #[error("the batch has no trajectory")]
    Empty,
    /// A trajectory of length 0.
    #[error("trajectory {0} has no step")]
    NoStep(usize),
    /// `log q` and `log p` lengths differ.
    #[error("trajectory {index}: {log_q} log q values but {log_p} log p values")]
    Lengths {
        /// Which trajectory.
        index: usize,
        /// `log q` values.
        log_q: usize,
        /// `log p` values.
        log_p: usize,
    },
    /// A windowed objective without a window, or a window outside the trajectory.
    #[error("trajectory {index}: {what}")]
    Window {
        /// Which trajectory.
        index: usize,
        /// What is wrong.
        what: String,
    },
}

/// Residuals, per-trajectory losses and the batch loss.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation<S> {
    /// δ, C, δ_{i:j}, or the advantage A, per trajectory.
    pub residuals: Vec<S>,
    /// The loss of each trajectory (before the reduction).
    pub losses: Vec<S>,
    /// The reduced batch loss.
    pub loss: S,
}

fn validate<S>(objective: &Objective, batch: &[Trajectory<S>]) -> Result<(), EvalError> {
    if batch.is_empty() {
        return Err(EvalError::Empty);
    }
    for (index, t) in batch.iter().enumerate() {
        if t.log_q.len() != t.log_p.len() {
            return Err(EvalError::Lengths {
                index,
                log_q: t.log_q.len(),
                log_p: t.log_p.len(),
            });
        }
        if t.log_q.is_empty() {
            return Err(EvalError::NoStep(index));
        }
        if objective.windowed {
            let w = t.window.as_ref().ok_or_else(|| EvalError::Window {
                index,
                what: "a windowed objective needs a window".into(),
            })?;
            if !(w.start < w.end && w.end <= t.log_q.len()) {
                return Err(EvalError::Window {
                    index,
                    what: format!("window {}..{} outside 0..{}", w.start, w.end, t.log_q.len()),
                });
            }
        }
    }
    Ok(())
}

/// The steps an objective reads and whether they end at the terminal.
fn span<S>(objective: &Objective, t: &Trajectory<S>) -> (usize, usize) {
    match (&t.window, objective.windowed) {
        (Some(w), true) => (w.start, w.end),
        _ => (0, t.log_q.len()),
    }
}

/// Trust-PCL's consistency from its per-step RL terms on the span read (`V = 0` at the
/// terminal, whose entering step pays `log r`).
fn consistency<S: Scalar>(objective: &Objective, t: &Trajectory<S>, v0: &S) -> S {
    let (start, end) = span(objective, t);
    let terminal = end == t.log_q.len();
    let zero = S::zero();
    let terms: Vec<S> = (start..end)
        .map(|k| {
            let reward = if terminal && k + 1 == end {
                &t.log_r
            } else {
                &zero
            };
            trust_pcl::step_term(reward, &t.log_q[k], &t.log_p[k], &objective.regularisation)
        })
        .collect();
    let (v_start, v_end) = match (&t.window, objective.windowed) {
        (Some(w), true) => (
            w.value_start.clone(),
            if terminal {
                S::zero()
            } else {
                w.value_end.clone()
            },
        ),
        _ => (v0.clone(), S::zero()),
    };
    trust_pcl::consistency(&v_start, &v_end, &terms, &objective.regularisation)
}

/// The RTB residual of a whole trajectory with `log_z`.
fn rtb_residual<S: Scalar>(
    placement: BetaPlacement,
    beta: &Rational,
    t: &Trajectory<S>,
    log_z: &S,
) -> S {
    let last = t.log_q.len() - 1;
    let steps: Vec<S> = (0..t.log_q.len())
        .map(|k| {
            let reward = (k == last).then_some(&t.log_r);
            rtb::step(&t.log_q[k], &t.log_p[k], reward, beta, placement)
        })
        .collect();
    rtb::residual(log_z, &steps)
}

fn subtb_residual<S: Scalar>(objective: &Objective, beta: &Rational, t: &Trajectory<S>) -> S {
    let w = t
        .window
        .as_ref()
        .expect("validated: windowed objectives have windows");
    let terminal = w.end == t.log_q.len();
    let (end_flow, weight) = match objective.beta {
        BetaPlacement::OnLogReward => (t.log_r.scale(beta), Rational::one()),
        BetaPlacement::OnLogRatio => (t.log_r.clone(), beta.clone()),
    };
    let end = if terminal {
        end_flow
    } else {
        w.value_end.clone()
    };
    subtb::residual(
        &w.value_start,
        &t.log_q[w.start..w.end],
        &t.log_p[w.start..w.end],
        &end,
        &weight,
    )
}

fn mean<S: Scalar>(items: &[S]) -> S {
    S::sum(items).scale(&Rational::new(1.into(), items.len().into()))
}

/// Evaluates `objective` at inverse temperature `beta` on a batch; `scalar` is `log Z` (RTB),
/// `V(s0)` (Trust-PCL full and surrogate), unused otherwise.
pub fn evaluate<S: Scalar>(
    objective: &Objective,
    beta: &Rational,
    batch: &[Trajectory<S>],
    scalar: &S,
) -> Result<Evaluation<S>, EvalError> {
    validate(objective, batch)?;
    let sum_q = |t: &Trajectory<S>| S::sum(&t.log_q);
    let sum_p = |t: &Trajectory<S>| S::sum(&t.log_p);
    let square = |x: &S| x.mul(x).scale(&objective.square_factor());
    let (residuals, losses): (Vec<S>, Vec<S>) = match objective.family {
        Family::Rtb => {
            let r: Vec<S> = batch
                .iter()
                .map(|t| rtb_residual(objective.beta, beta, t, scalar))
                .collect();
            let l = r.iter().map(square).collect();
            (r, l)
        }
        Family::VarGrad | Family::PlusMean => {
            let rest: Vec<S> = batch
                .iter()
                .map(|t| rtb_residual(objective.beta, beta, t, &S::zero()))
                .collect();
            let m = mean(&rest);
            // VarGrad's gradient is the same with the mean detached or not (Σ(s − s̄) = 0);
            // the `+mean` variant is defined with the mean detached (its gradient then differs
            // from VarGrad's by the sign of the centring only; `classify` detects it so).
            let r: Vec<S> = if objective.family == Family::VarGrad {
                rest.iter().map(|x| x.sub(&m)).collect()
            } else {
                let m = m.detach();
                rest.iter().map(|x| x.add(&m)).collect()
            };
            let l = r.iter().map(square).collect();
            (r, l)
        }
        Family::TrustPcl => {
            let r: Vec<S> = batch
                .iter()
                .map(|t| consistency(objective, t, scalar))
                .collect();
            let l = r.iter().map(square).collect();
            (r, l)
        }
        Family::TrustPclSurrogate => {
            let r: Vec<S> = batch
                .iter()
                .map(|t| consistency(objective, t, scalar))
                .collect();
            let l = batch
                .iter()
                .zip(&r)
                .map(|(t, c)| S::zero().sub(&c.detach().mul(&sum_q(t))))
                .collect();
            (r, l)
        }
        Family::SubTb => {
            let r: Vec<S> = batch
                .iter()
                .map(|t| subtb_residual(objective, beta, t))
                .collect();
            let l = r.iter().map(square).collect();
            (r, l)
        }
        Family::ReinforceKl => {
            let lambda = &objective.regularisation.relative_entropy;
            let zero = S::zero();
            let rewards: Vec<S> = batch
                .iter()
                .map(|t| reinforce::kl_advantage(&t.log_r, &sum_q(t), &sum_p(t), lambda, &zero))
                .collect();
            let b = mean(&rewards).detach();
            let a: Vec<S> = rewards.iter().map(|x| x.sub(&b).detach()).collect();
            let l = batch
                .iter()
                .zip(&a)
                .map(|(t, a)| S::zero().sub(&a.mul(&sum_q(t))))
                .collect();
            (a, l)
        }
        Family::Flawed => {
            let rewards: Vec<S> = batch.iter().map(|t| t.reward.detach()).collect();
            let b = mean(&rewards);
            let a: Vec<S> = rewards.iter().map(|r| r.sub(&b)).collect();
            let l = batch
                .iter()
                .map(|t| {
                    reinforce::flawed_loss(
                        &t.reward.detach(),
                        &b,
                        &sum_q(t),
                        &sum_p(t),
                        &objective.kappa,
                    )
                })
                .collect();
            (a, l)
        }
    };
    let loss = match objective.reduction {
        Reduction::Mean => mean(&losses),
        Reduction::Sum => S::sum(&losses),
    };
    Ok(Evaluation {
        residuals,
        losses,
        loss,
    })
}

/// A forward-mode dual number: a value and its sparse tangent (sorted `(input, derivative)`
/// pairs; absent inputs have derivative 0).
#[derive(Debug, Clone, PartialEq)]
pub struct Dual<S> {
    /// The value.
    pub value: S,
    /// The non-zero partial derivatives, sorted by input.
    pub tangent: Vec<(usize, S)>,
}

impl<S: Scalar> Dual<S> {
    /// The input number `index` with value `value` (derivative 1 with respect to itself).
    pub fn input(value: S, index: usize) -> Self {
        Self {
            value,
            tangent: vec![(index, S::from_rational(&Rational::one()))],
        }
    }
    /// A constant (no derivative).
    pub fn constant(value: S) -> Self {
        Self {
            value,
            tangent: Vec::new(),
        }
    }
    /// `∂self/∂input[index]`.
    pub fn derivative(&self, index: usize) -> S {
        self.tangent
            .binary_search_by_key(&index, |(k, _)| *k)
            .map(|k| self.tangent[k].1.clone())
            .unwrap_or_else(|_| S::zero())
    }
    fn combine(
        a: &[(usize, S)],
        ca: Option<&S>,
        b: &[(usize, S)],
        cb: Option<&S>,
    ) -> Vec<(usize, S)> {
        // ca·a + cb·b with sparse sorted tangents (None: coefficient 1).
        let scale = |x: &S, c: Option<&S>| match c {
            Some(c) => c.mul(x),
            None => x.clone(),
        };
        let mut out = Vec::with_capacity(a.len() + b.len());
        let (mut i, mut j) = (0, 0);
        while i < a.len() || j < b.len() {
            if j == b.len() || (i < a.len() && a[i].0 < b[j].0) {
                out.push((a[i].0, scale(&a[i].1, ca)));
                i += 1;
            } else if i == a.len() || b[j].0 < a[i].0 {
                out.push((b[j].0, scale(&b[j].1, cb)));
                j += 1;
            } else {
                out.push((a[i].0, scale(&a[i].1, ca).add(&scale(&b[j].1, cb))));
                i += 1;
                j += 1;
            }
        }
        out
    }
}

impl<S: Scalar> Scalar for Dual<S> {
    fn from_rational(c: &Rational) -> Self {
        Self::constant(S::from_rational(c))
    }
    fn add(&self, other: &Self) -> Self {
        Self {
            value: self.value.add(&other.value),
            tangent: Self::combine(&self.tangent, None, &other.tangent, None),
        }
    }
    fn sub(&self, other: &Self) -> Self {
        let minus_one = S::from_rational(&-Rational::one());
        Self {
            value: self.value.sub(&other.value),
            tangent: Self::combine(&self.tangent, None, &other.tangent, Some(&minus_one)),
        }
    }
    fn mul(&self, other: &Self) -> Self {
        Self {
            value: self.value.mul(&other.value),
            tangent: Self::combine(
                &self.tangent,
                Some(&other.value),
                &other.tangent,
                Some(&self.value),
            ),
        }
    }
    fn scale(&self, c: &Rational) -> Self {
        Self {
            value: self.value.scale(c),
            tangent: self.tangent.iter().map(|(k, x)| (*k, x.scale(c))).collect(),
        }
    }
    fn sum(items: &[Self]) -> Self {
        // Pairwise, so that merging sparse tangents stays O(n log n).
        match items.len() {
            0 => Self::zero(),
            1 => items[0].clone(),
            n => Self::sum(&items[..n / 2]).add(&Self::sum(&items[n / 2..])),
        }
    }
    fn detach(&self) -> Self {
        Self::constant(self.value.clone())
    }
}

/// An evaluation with the gradient of the batch loss with respect to every input.
#[derive(Debug, Clone, PartialEq)]
pub struct Gradients<S> {
    /// The values.
    pub evaluation: Evaluation<S>,
    /// `∂L/∂log q[i][t]`, shaped like the inputs.
    pub log_q: Vec<Vec<S>>,
    /// `∂L/∂scalar` (`log Z` or `V(s0)`).
    pub scalar: S,
    /// `∂L/∂value_start[i]` (windowed objectives; 0 otherwise).
    pub value_start: Vec<S>,
    /// `∂L/∂value_end[i]` (windowed objectives; 0 otherwise).
    pub value_end: Vec<S>,
}

/// [`evaluate`] with the gradient of the batch loss by forward-mode differentiation. `log p`,
/// `log r` and `r` are data (no derivative).
pub fn evaluate_with_gradients<S: Scalar>(
    objective: &Objective,
    beta: &Rational,
    batch: &[Trajectory<S>],
    scalar: &S,
) -> Result<Gradients<S>, EvalError> {
    // Inputs numbered: every log q (row by row), the scalar, then each window's two values.
    let mut next = 0usize;
    let mut index_q = Vec::with_capacity(batch.len());
    let duals: Vec<Trajectory<Dual<S>>> = batch
        .iter()
        .map(|t| {
            let first = next;
            next += t.log_q.len();
            index_q.push(first);
            Trajectory {
                log_q: t
                    .log_q
                    .iter()
                    .enumerate()
                    .map(|(k, x)| Dual::input(x.clone(), first + k))
                    .collect(),
                log_p: t.log_p.iter().cloned().map(Dual::constant).collect(),
                log_r: Dual::constant(t.log_r.clone()),
                reward: Dual::constant(t.reward.clone()),
                window: None,
            }
        })
        .collect();
    let scalar_index = next;
    let n = batch.len();
    let duals: Vec<Trajectory<Dual<S>>> = duals
        .into_iter()
        .zip(batch)
        .enumerate()
        .map(|(i, (mut d, t))| {
            d.window = t.window.as_ref().map(|w| Window {
                start: w.start,
                end: w.end,
                value_start: Dual::input(w.value_start.clone(), scalar_index + 1 + i),
                value_end: Dual::input(w.value_end.clone(), scalar_index + 1 + n + i),
            });
            d
        })
        .collect();
    let result = evaluate(
        objective,
        beta,
        &duals,
        &Dual::input(scalar.clone(), scalar_index),
    )?;
    let loss = &result.loss;
    Ok(Gradients {
        log_q: batch
            .iter()
            .zip(&index_q)
            .map(|(t, &first)| {
                (0..t.log_q.len())
                    .map(|k| loss.derivative(first + k))
                    .collect()
            })
            .collect(),
        scalar: loss.derivative(scalar_index),
        value_start: (0..n)
            .map(|i| loss.derivative(scalar_index + 1 + i))
            .collect(),
        value_end: (0..n)
            .map(|i| loss.derivative(scalar_index + 1 + n + i))
            .collect(),
        evaluation: Evaluation {
            residuals: result.residuals.into_iter().map(|d| d.value).collect(),
            losses: result.losses.into_iter().map(|d| d.value).collect(),
            loss: result.loss.value,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::super::definition::Definitions;
    use super::*;

    fn r(n: i64, d: i64) -> Rational {
        Rational::new(n.into(), d.into())
    }

    fn traj(q: &[Rational], p: &[Rational], log_r: Rational) -> Trajectory<Rational> {
        Trajectory {
            log_q: q.to_vec(),
            log_p: p.to_vec(),
            log_r: log_r.clone(),
            reward: log_r,
            window: None,
        }
    }

    #[test]
    fn rtb_by_hand_and_its_derivatives() {
        let defs = Definitions::new(r(2, 1));
        let t = traj(&[r(-1, 2), r(-1, 4)], &[r(-1, 1), r(-1, 2)], r(1, 2));
        let g = evaluate_with_gradients(&defs.rtb, &defs.beta, &[t], &r(1, 1)).unwrap();
        // δ = 1 − 3/4 + 3/2 − 1 = 3/4; L = ½ δ² = 9/32; ∂L/∂ℓ_t = δ; ∂L/∂log Z = δ.
        assert_eq!(g.evaluation.residuals, vec![r(3, 4)]);
        assert_eq!(g.evaluation.loss, r(9, 32));
        assert_eq!(g.log_q, vec![vec![r(3, 4), r(3, 4)]]);
        assert_eq!(g.scalar, r(3, 4));
    }

    #[test]
    fn surrogate_and_reinforce_stop_their_gradients() {
        let defs = Definitions::new(r(1, 1));
        let batch = vec![
            traj(&[r(-1, 2)], &[r(-1, 1)], r(1, 1)),
            traj(&[r(-1, 3)], &[r(-1, 1)], r(2, 1)),
        ];
        let s =
            evaluate_with_gradients(&defs.tpcl_surrogate, &defs.beta, &batch, &r(0, 1)).unwrap();
        // ∂(−sg(C)·ℓ)/∂ℓ = −C / B, and nothing reaches V(s0) through sg.
        let c = &s.evaluation.residuals;
        assert_eq!(s.log_q[0][0], -c[0].clone() / r(2, 1));
        assert_eq!(s.scalar, r(0, 1));
    }
}

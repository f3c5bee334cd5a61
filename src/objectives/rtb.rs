//! Relative Trajectory Balance: `δ(τ) = log Z + Σ_t log q − Σ_t log p − β log r(x)`.
use super::Scalar;
use crate::exact::Rational;

/// Where the inverse temperature sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BetaPlacement {
    /// `− β log r` (the RTB definition).
    OnLogReward,
    /// `β (Σ log q − Σ log p) − log r` (the `beta-on-ratio` mutant).
    OnLogRatio,
}

/// The RTB contribution of one step: `log q − log p`, minus `β log r(x)` on the step into the
/// terminal (`log_reward` is `Some` exactly there).
pub fn step<S: Scalar>(
    log_q: &S,
    log_p: &S,
    log_reward: Option<&S>,
    beta: &Rational,
    placement: BetaPlacement,
) -> S {
    let ratio = log_q.sub(log_p);
    match placement {
        BetaPlacement::OnLogReward => match log_reward {
            Some(r) => ratio.sub(&r.scale(beta)),
            None => ratio,
        },
        BetaPlacement::OnLogRatio => {
            let ratio = ratio.scale(beta);
            match log_reward {
                Some(r) => ratio.sub(r),
                None => ratio,
            }
        }
    }
}

/// The RTB residual `δ = log Z + Σ_t step_t`.
pub fn residual<S: Scalar>(log_z: &S, steps: &[S]) -> S {
    log_z.add(&S::sum(steps))
}

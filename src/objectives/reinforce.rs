//! REINFORCE with the KL-regularised reward, and the flawed raw-reward baseline.
use super::Scalar;
use crate::exact::Rational;

/// The KL-regularised advantage `A = log r − α (log q(τ) − log p(τ)) − b`.
pub fn kl_advantage<S: Scalar>(
    log_reward: &S,
    log_q_sum: &S,
    log_p_sum: &S,
    alpha: &Rational,
    baseline: &S,
) -> S {
    log_reward
        .sub(&log_q_sum.sub(log_p_sum).scale(alpha))
        .sub(baseline)
}

/// The flawed baseline's loss on one trajectory: `−sg(r − b) · log q(τ) + κ (log q − log p)²`,
/// with the raw reward `r` where the log-reward belongs (kept as a negative control).
pub fn flawed_loss<S: Scalar>(
    reward: &S,
    baseline: &S,
    log_q_sum: &S,
    log_p_sum: &S,
    kappa: &Rational,
) -> S {
    let advantage = reward.sub(baseline);
    let ratio = log_q_sum.sub(log_p_sum);
    S::zero()
        .sub(&advantage.mul(log_q_sum))
        .add(&ratio.mul(&ratio).scale(kappa))
}

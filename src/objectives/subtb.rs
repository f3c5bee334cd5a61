//! Relative sub-trajectory balance on a window:
//! `δ_{i:j} = log F(s_i) + Σ log q − Σ log p − log F(s_j)`, with `log F(x) = β log r(x)`.
use super::Scalar;
use crate::exact::Rational;

/// The residual from the start and end log-flows and the per-step log-ratio weight (1, or β
/// for the `beta-on-ratio` mutant).
pub fn residual<S: Scalar>(
    log_f_start: &S,
    log_q: &[S],
    log_p: &[S],
    log_f_end: &S,
    ratio_weight: &Rational,
) -> S {
    let ratio = S::sum(log_q).sub(&S::sum(log_p)).scale(ratio_weight);
    log_f_start.add(&ratio).sub(log_f_end)
}

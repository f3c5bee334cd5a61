//! The exact expected gradient of a method's loss under a behaviour policy, by dynamic
//! programming over the DAG (no sampling): what the objective does, separated from what a
//! stochastic estimator of it does.
//!
//! Every method the exact mode covers has a per-trajectory gradient with respect to the
//! per-step `log q` of the form `a · X(τ)`, with `X(τ) = k + Σ_{e∈τ} c_e` additive over the
//! trajectory's edges (the per-edge terms come from the objective definitions in
//! [`crate::objectives`]):
//!
//! | method | `c_e` | `k` | `a` | `∂X/∂scalar` |
//! | --- | --- | --- | --- | --- |
//! | RTB (½δ²) | `rtb::step`: `log q − log p` (`− β log r(x)` into the terminal) | `log Z` | 1 | 1 |
//! | Trust-PCL full (½C²) | `trust_pcl::step_term`: `r_t − α log q + α log p` | `−V(s0)` | `−α` | −1 |
//! | REINFORCE-KL | `reinforce::kl_advantage` per edge: `log r·[terminal] − α(log q − log p)` | `−E_q[R]` | −1 | – |
//! | flawed baseline | `2κ(log q − log p) − r(x)·[terminal]` (`reinforce::flawed_loss`'s derivative) | `E_q[r]` | 1 | – |
//!
//! Under a behaviour `π` (held fixed: it is not differentiated) and the softmax chain rule
//! `∂ log q(e)/∂θ_b = 1[e = b] − q(b)` for `b` leaving the same state,
//! `∂/∂θ_b E_π[L] = a · (M(b) − q(b) Σ_{e from s(b)} M(e))`, `M(e) = E_π[X(τ) 1[e ∈ τ]]`, and
//! `M(e) = π(e) P(s) + μ(s) π(e) (c_e + B(s'))` with the three passes of the crate's one DAG
//! programme ([`crate::dag::flow`], over the DAG's [`Dag`](crate::dag::flow::Dag) view):
//! - `μ(s)`: the forward occupancy of `π` ([`forward_flows`]);
//! - `P(s) = E_π[(k + Σ_{prefix} c) 1[s ∈ τ]]` forward ([`prefix_sums`]): `P(s0) = k`,
//!   `P(s') += π(e) P(s) + μ(s) π(e) c_e`;
//! - `B(s) = E_π[Σ_{suffix} c | s]` backward ([`backward`]): `B(x) = 0`,
//!   `B(s) = Σ_e π(e)(c_e + B(s'))`, with the action value `A(e) = c_e + B(s')`.
//!
//! Since `Σ_e π(e) = 1` at each state, `Σ_{e from s} M(e) = P(s) + μ(s) B(s)`, and the gradient
//! is the on-policy form of [`policy_gradient`] under `π`, `μ(s) π(b) (A(b) − B(s))`, plus the
//! behaviour's correction `(π(b) − q(b)) (P(s) + μ(s) B(s))`, which vanishes when `π = q`.
//!
//! The scalar's gradient is `(∂X/∂scalar) · E_π[X] = (∂X/∂scalar)(k + B(s0))`.
//!
//! REINFORCE-KL and the flawed baseline are score-function estimators of on-policy gradients;
//! their exact expectation is taken under `q` (off-policy REINFORCE-KL with exact importance
//! weights has the same expectation; self-normalisation only matters at finite batch size).
//! Windowed Trust-PCL (a random window and a learned `V` per state) is not covered.
//!
//! `tests/study.rs` checks the DP against enumeration of every trajectory of a small grid,
//! where the per-trajectory gradients come from the fused kernels (an independent route).
//!
use super::diffusion::DiffusionDag;
use super::metrics::BETA;
use super::train::Method;
use super::StudyError;
use crate::dag::flow::{backward, forward_flows, policy_gradient, prefix_sums, Dag};
use crate::exact::Rational;
use crate::objectives::{reinforce, rtb, trust_pcl};

/// `X(τ) = k + Σ_{e∈τ} c_e` and the per-trajectory gradient `a · X` (see the module).
#[derive(Debug, Clone)]
pub struct Functional {
    /// `c_e` per edge.
    pub per_edge: Vec<f64>,
    /// `k`.
    pub constant: f64,
    /// `a = ∂L/∂log q ÷ X`.
    pub slope: f64,
    /// `∂X/∂scalar` (0 where the method has no learned scalar).
    pub scalar_slope: f64,
}

/// The exact expected gradient.
#[derive(Debug, Clone)]
pub struct ExpectedGradient {
    /// `∂E_π[L]/∂θ` per logit.
    pub logits: Vec<f64>,
    /// `∂E_π[L]/∂scalar`.
    pub scalar: f64,
    /// `E_π[X]`.
    pub mean_residual: f64,
}

fn rational(x: f64) -> Rational {
    Rational::from_float(x).unwrap_or_else(|| Rational::from_integer(0.into()))
}

/// `log q(e)` per edge from logits (`logit − logsumexp` of its state).
pub fn log_policy(dag: &DiffusionDag, logits: &[f64]) -> Vec<f64> {
    let offsets = dag.offsets();
    let mut out = vec![0.0; dag.edges()];
    for s in 0..dag.states() {
        let (lo, hi) = (offsets[s], offsets[s + 1]);
        let m = logits[lo..hi]
            .iter()
            .copied()
            .fold(f64::NEG_INFINITY, f64::max);
        let lse = m + logits[lo..hi]
            .iter()
            .map(|x| (x - m).exp())
            .sum::<f64>()
            .ln();
        for e in lo..hi {
            out[e] = (logits[e] - lse).min(0.0);
        }
    }
    out
}

/// The reward paid on each edge: `log r(x)` into terminal `x`, `None` elsewhere.
fn edge_log_reward(dag: &DiffusionDag, e: usize, state: usize) -> Option<f64> {
    let cell = dag.child_cells()[e] as usize;
    dag.state(dag.layer_of(state) + 1, cell)
        .is_none()
        .then(|| dag.log_r()[cell])
}

/// The functional of a method at the policy `q` (probabilities, `log q`) and scalar
/// (`log Z` or `V(s0)`); `kappa` is the flawed baseline's κ.
pub fn functional(
    dag: &DiffusionDag,
    method: Method,
    q: &[f64],
    log_q: &[f64],
    scalar: f64,
    kappa: f64,
) -> Result<Functional, StudyError> {
    let beta = rational(BETA);
    let alpha_r = rational(1.0 / BETA);
    let offsets = dag.offsets();
    // Every per-edge term is affine in (reward on the edge, log q, log p): its coefficients
    // are read off the definition once (evaluating it over f64 with exact rational constants
    // converted once per call instead of once per edge).
    let affine = |f: &dyn Fn(f64, f64, f64) -> f64| -> [f64; 4] {
        let c0 = f(0.0, 0.0, 0.0);
        [
            c0,
            f(1.0, 0.0, 0.0) - c0,
            f(0.0, 1.0, 0.0) - c0,
            f(0.0, 0.0, 1.0) - c0,
        ]
    };
    let per_edge_of = |coef: [f64; 4], reward: &dyn Fn(usize, usize) -> f64| -> Vec<f64> {
        let mut out = vec![0.0; dag.edges()];
        for s in 0..dag.states() {
            for e in offsets[s]..offsets[s + 1] {
                out[e] = coef[0]
                    + coef[1] * reward(e, s)
                    + coef[2] * log_q[e]
                    + coef[3] * dag.log_p()[e];
            }
        }
        out
    };
    let log_reward = |e: usize, s: usize| edge_log_reward(dag, e, s).unwrap_or(0.0);
    let (per_edge, constant, slope, scalar_slope) = match method {
        Method::Rtb | Method::RtbOffPolicy => {
            let coef = affine(&|r, lq, lp| {
                rtb::step(&lq, &lp, Some(&r), &beta, rtb::BetaPlacement::OnLogReward)
            });
            (per_edge_of(coef, &log_reward), scalar, 1.0, 1.0)
        }
        Method::Tpcl | Method::TpclReplay => {
            let params = trust_pcl::Params::equivalence(&alpha_r);
            let coef = affine(&|r, lq, lp| trust_pcl::step_term(&r, &lq, &lp, &params));
            (per_edge_of(coef, &log_reward), -scalar, -1.0 / BETA, -1.0)
        }
        Method::ReinforceKl | Method::ReinforceKlOffPolicy => {
            let coef = affine(&|r, lq, lp| reinforce::kl_advantage(&r, &lq, &lp, &alpha_r, &0.0));
            let per_edge = per_edge_of(coef, &log_reward);
            // The baseline: E_q[R] (any constant has the same expected gradient).
            let mean = expected_sum(dag, q, &per_edge);
            (per_edge, -mean, -1.0, 0.0)
        }
        Method::FlawedBaseline => {
            let reward = |e: usize, s: usize| edge_log_reward(dag, e, s).map_or(0.0, f64::exp);
            let mut per_edge = vec![0.0; dag.edges()];
            let mut paid = vec![0.0; dag.edges()];
            for s in 0..dag.states() {
                for e in offsets[s]..offsets[s + 1] {
                    paid[e] = reward(e, s);
                    per_edge[e] = 2.0 * kappa * (log_q[e] - dag.log_p()[e]) - paid[e];
                }
            }
            let mean_r = expected_sum(dag, q, &paid);
            (per_edge, mean_r, 1.0, 0.0)
        }
        Method::TpclWindowed | Method::TpclReplayWindowed => {
            return Err(StudyError::Config(format!(
                "the exact expected-gradient mode does not cover {} (a random window and a \
                 learned V per state)",
                method.name()
            )))
        }
    };
    Ok(Functional {
        per_edge,
        constant,
        slope,
        scalar_slope,
    })
}

/// `E_π[Σ_{e∈τ} c_e]`: the backward pass's value at the source.
fn expected_sum(dag: &DiffusionDag, pi: &[f64], c: &[f64]) -> f64 {
    backward(dag, pi, c, |_| 0.0).value[0]
}

/// The exact expected gradient of `f` under the behaviour `pi` at the policy `q`.
pub fn expected_gradient(
    dag: &DiffusionDag,
    f: &Functional,
    q: &[f64],
    pi: &[f64],
) -> Result<ExpectedGradient, StudyError> {
    for (what, v) in [
        ("policy", q),
        ("behaviour", pi),
        ("per-edge terms", &f.per_edge),
    ] {
        if v.len() != dag.edges() {
            return Err(StudyError::Config(format!(
                "{} {what} values for {} edges",
                v.len(),
                dag.edges()
            )));
        }
    }
    let flows = forward_flows(dag, pi);
    let values = backward(dag, pi, &f.per_edge, |_| 0.0);
    let prefix = prefix_sums(dag, pi, &flows, f.constant, &f.per_edge);
    let mut grad = policy_gradient(dag, pi, &flows, &values, None);
    for (e, g) in grad.iter_mut().enumerate() {
        let s = dag.tail(e);
        let correction = (pi[e] - q[e]) * (prefix[s] + flows.state[s] * values.value[s]);
        *g = f.slope * (*g + correction);
    }
    let mean_residual = f.constant + values.value[0];
    if let Some(bad) = grad.iter().find(|x| !x.is_finite()) {
        return Err(StudyError::Diverged(format!(
            "exact expected gradient is {bad}"
        )));
    }
    Ok(ExpectedGradient {
        logits: grad,
        scalar: f.scalar_slope * mean_residual,
        mean_residual,
    })
}

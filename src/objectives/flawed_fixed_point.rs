//! The flawed baseline's stationary point, numerically (`f64`): how far its fixed point is
//! from the target `q*`.
//!
//! The flawed baseline's expected gradient at a tabular softmax policy `q_θ` is computed
//! exactly in expectation (no sampling) by the crate's one forward/backward programme
//! ([`crate::dag::flow`], in `f64`), the same as C6's:
//! `∂/∂θ_b = occ(s)·q(b)·(Q(b) − V(s))` with `X(τ) = −(r(x) − b) + 2κ(log q(τ) − log p(τ))`,
//! `Q(b) = c_b + V(s')`, `c_e = 2κ(log q(e) − log p(e)) − [e enters x]·r(x)`,
//! `V(s) = Σ_e q(e)·Q(e)` (the baseline `b` drops out). Gradient descent on θ, preconditioned
//! by `1/(occ(s)·q(b))` (which does not move the stationary point: both are positive), with
//! step `1/(4κ)` (half the local Newton step), finds its zero.
//!
//! A second route, in closed form: the field vanishes iff `Q(b)` is equal across the children
//! of every state, i.e. `log q(b) = log p(b) − R(b)/(2κ) + const` with `R(b) = −[b enters x]·r(x)
//! + V(s')`; by backward induction the stationary policy is
//! `q_flawed(τ) ∝ p(τ)·exp(r(x)/(2κ))`, against the target `q*(τ) ∝ p(τ)·r(x)^β`. With
//! `κ = α/2` the flawed fixed point tilts the prior by `exp(β r)` where the target tilts it by
//! `exp(β log r)`.
//!
//! Floating point lives here, never in `claims`: the claims decide exactly; this module only
//! measures, for the report.
use crate::dag::flow::{backward, forward_flows, policy_gradient};
use crate::dag::Environment;
use num_traits::ToPrimitive;
use serde::Serialize;

/// The result of the search.
#[derive(Debug, Clone, Serialize)]
pub struct FlawedFixedPoint {
    /// κ as a float.
    pub kappa: f64,
    /// Descent iterations run.
    pub iterations: usize,
    /// `max_b |∂/∂θ_b|` of the flawed field at the end.
    pub max_abs_gradient: f64,
    /// True when `max_abs_gradient` fell below the tolerance.
    pub converged: bool,
    /// `KL(q* ‖ q_flawed)` over trajectories, at the descent's end point.
    pub kl_qstar_to_flawed: f64,
    /// The same at the closed-form stationary point `q ∝ p·exp(r/(2κ))`.
    pub kl_qstar_to_closed_form: f64,
    /// `max_e |q_descent(e) − q_closed_form(e)|`.
    pub max_policy_difference: f64,
    /// The stationary policy per edge (descent's end point).
    pub policy: Vec<f64>,
}

struct Floats {
    prior: Vec<f64>,
    reward: Vec<f64>,
    beta: f64,
}

fn floats(env: &Environment) -> Result<Floats, String> {
    let f = |r: &crate::exact::Rational, what: &str| {
        r.to_f64()
            .filter(|x| x.is_finite())
            .ok_or_else(|| format!("{what} is not a finite float"))
    };
    let prior = env
        .edges
        .iter()
        .map(|e| f(&e.prior, "a prior"))
        .collect::<Result<_, _>>()?;
    let reward = (0..env.states.len())
        .map(|s| match &env.rewards[s] {
            Some(r) => f(r, "a reward"),
            None => Ok(0.0),
        })
        .collect::<Result<_, _>>()?;
    Ok(Floats {
        prior,
        reward,
        beta: f(&env.beta, "β")?,
    })
}

/// A softmax policy from per-edge logits.
fn softmax(env: &Environment, logits: &[f64]) -> Vec<f64> {
    let mut q = vec![0.0; env.edges.len()];
    for out in &env.out_edges {
        if out.is_empty() {
            continue;
        }
        let top = out.iter().map(|&e| logits[e]).fold(f64::MIN, f64::max);
        let total: f64 = out.iter().map(|&e| (logits[e] - top).exp()).sum();
        for &e in out {
            q[e] = (logits[e] - top).exp() / total;
        }
    }
    q
}

/// The policy `q(e) ∝ p(e)·exp(G(s'))` with `G(x) = tilt(x)`, `G(s) = log Σ p·exp(G(s'))`, in
/// log space: the trajectory distribution `∝ p(τ)·exp(tilt(x))`.
fn tilted(env: &Environment, prior: &[f64], tilt: &dyn Fn(usize) -> f64) -> Vec<f64> {
    let mut g = vec![0.0; env.states.len()];
    for &s in env.topo.iter().rev() {
        if env.is_terminal(s) {
            g[s] = tilt(s);
            continue;
        }
        let terms: Vec<f64> = env.out_edges[s]
            .iter()
            .map(|&e| prior[e].ln() + g[env.edges[e].to])
            .collect();
        let top = terms.iter().copied().fold(f64::MIN, f64::max);
        g[s] = top + terms.iter().map(|t| (t - top).exp()).sum::<f64>().ln();
    }
    env.edges
        .iter()
        .enumerate()
        .map(|(e, edge)| (prior[e].ln() + g[edge.to] - g[edge.from]).exp())
        .collect()
}

/// `KL(a ‖ b)` between the trajectory distributions of two policies, by the chain rule.
pub fn trajectory_kl(env: &Environment, a: &[f64], b: &[f64]) -> f64 {
    let occ = forward_flows(env, a).state;
    env.edges
        .iter()
        .enumerate()
        .filter(|(e, _)| a[*e] > 0.0)
        .map(|(e, edge)| occ[edge.from] * a[e] * (a[e].ln() - b[e].ln()))
        .sum()
}

/// The flawed field `∂/∂θ_b = occ(s)·q(b)·(Q(b) − V(s))` at `q`, and the advantages
/// `Q(b) − V(s)`.
fn field(env: &Environment, fl: &Floats, kappa: f64, q: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let cost: Vec<f64> = env
        .edges
        .iter()
        .enumerate()
        .map(|(e, edge)| {
            let mut c = 2.0 * kappa * (q[e].ln() - fl.prior[e].ln());
            if env.is_terminal(edge.to) {
                c -= fl.reward[edge.to];
            }
            c
        })
        .collect();
    let values = backward(env, q, &cost, |_| 0.0);
    let advantage: Vec<f64> = env
        .edges
        .iter()
        .enumerate()
        .map(|(e, edge)| values.action[e] - values.value[edge.from])
        .collect();
    let flows = forward_flows(env, q);
    let gradient = policy_gradient(env, q, &flows, &values, None);
    (gradient, advantage)
}

/// Searches the flawed baseline's stationary point by preconditioned gradient descent from the
/// target `q*` (computed in floats), and compares it with the closed form.
pub fn search(
    env: &Environment,
    kappa: f64,
    max_iterations: usize,
    tolerance: f64,
) -> Result<FlawedFixedPoint, String> {
    if !(kappa.is_finite() && kappa > 0.0) {
        return Err(format!("κ = {kappa} must be a positive float"));
    }
    let fl = floats(env)?;
    let q_star = tilted(env, &fl.prior, &|x| fl.beta * fl.reward[x].ln());
    let closed = tilted(env, &fl.prior, &|x| fl.reward[x] / (2.0 * kappa));
    if !q_star
        .iter()
        .chain(&closed)
        .all(|x| x.is_finite() && *x > 0.0)
    {
        return Err("the target or the flawed fixed point under- or overflows f64".into());
    }
    let mut logits: Vec<f64> = q_star.iter().map(|x| x.ln()).collect();
    // The advantage's slope in its own logit is 2κ(1 − q(b)): 1/(4κ) is half a Newton step.
    let step = 0.25 / kappa;
    let mut q = softmax(env, &logits);
    let mut iterations = 0;
    let mut max_abs = f64::INFINITY;
    while iterations < max_iterations {
        let (g, advantage) = field(env, &fl, kappa, &q);
        max_abs = g.iter().fold(0.0f64, |m, x| m.max(x.abs()));
        if !max_abs.is_finite() {
            return Err("the flawed field diverged in f64".into());
        }
        if max_abs < tolerance {
            break;
        }
        for (l, a) in logits.iter_mut().zip(&advantage) {
            *l -= step * a;
        }
        q = softmax(env, &logits);
        iterations += 1;
    }
    let max_policy_difference = q
        .iter()
        .zip(&closed)
        .fold(0.0f64, |m, (a, b)| m.max((a - b).abs()));
    Ok(FlawedFixedPoint {
        kappa,
        iterations,
        max_abs_gradient: max_abs,
        converged: max_abs < tolerance,
        kl_qstar_to_flawed: trajectory_kl(env, &q_star, &q),
        kl_qstar_to_closed_form: trajectory_kl(env, &q_star, &closed),
        max_policy_difference,
        policy: q,
    })
}

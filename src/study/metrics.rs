//! Exact metrics by dynamic programming over the layered DAG (f64, no sampling).
//!
//! - Forward occupancy of a policy (edge probabilities): `μ(s0) = 1`,
//!   `μ(s') += μ(s) q(s'|s)` in id (topological) order; the terminal layer's occupancy is the
//!   policy's terminal marginal.
//! - Backward induction for the target: `log F*(x) = β log r(x)`,
//!   `log F*(s) = logsumexp_e (log p(e) + log F*(child))`, `q*(e) = p(e) F*(child) / F*(s)`,
//!   `log Z* = log F*(s0)`.
//! - `J(q) = E_q[log r(x)] − α KL(q(τ) ‖ p(τ))`, the trajectory KL as
//!   `Σ_s μ(s) Σ_e q(e) (log q(e) − log p(e))`; `J(q*) = α log Z*` and
//!   `α log Z* − J(q) = α KL(q(τ) ‖ q*(τ)) ≥ 0` (C5).
//!
//! [`enumerate`] recomputes the same quantities by listing every trajectory (guarded by a
//! limit), the cross-check of the DP on small instances.
use serde::Serialize;

use super::diffusion::DiffusionDag;
use super::grid::{log_sum_exp, TARGET_WEIGHTS};
use super::StudyError;
use crate::dag::flow::forward_flows;

/// Inverse temperature of the study (the issue fixes β = 1, so α = 1).
pub const BETA: f64 = 1.0;

/// Floor on a model probability inside a KL (a terminal probability that underflowed to 0
/// would make the KL infinite, which JSON cannot carry): `1e-300`.
pub const PROBABILITY_FLOOR: f64 = 1e-300;

/// Forward occupancies of a policy.
#[derive(Debug, Clone)]
pub struct Occupancy {
    /// Occupancy of each non-terminal state.
    pub states: Vec<f64>,
    /// Terminal marginal (occupancy of each terminal cell).
    pub terminal: Vec<f64>,
}

/// Forward DP: occupancies under the edge probabilities `probs` (one per edge), by the
/// crate's one forward pass ([`forward_flows`] over the DAG's [`Dag`](crate::dag::flow::Dag)
/// view, whose terminal nodes follow the non-terminal states).
pub fn occupancy(dag: &DiffusionDag, probs: &[f64]) -> Result<Occupancy, StudyError> {
    check_len(dag, probs.len(), "edge probabilities")?;
    let mut states = forward_flows(dag, probs).state;
    let terminal = states.split_off(dag.states());
    Ok(Occupancy { states, terminal })
}

fn check_len(dag: &DiffusionDag, len: usize, what: &str) -> Result<(), StudyError> {
    if len != dag.edges() {
        return Err(StudyError::Config(format!(
            "{len} {what} for {} edges",
            dag.edges()
        )));
    }
    Ok(())
}

/// The known target: `q*`, `log Z*` and everything the metrics compare against.
#[derive(Debug, Clone)]
pub struct Reference {
    /// `log F*(s)` of each non-terminal state.
    pub log_flow: Vec<f64>,
    /// `q*(e)` of each edge.
    pub q_star: Vec<f64>,
    /// `log Z* = log F*(s0)`.
    pub log_z_star: f64,
    /// The target's terminal marginal used by the metrics: the discretized 9-mode mixture.
    pub target: Vec<f64>,
    /// Basin (target mode index) of each cell, `None` outside the 9 target lattice squares.
    pub basins: Vec<Option<usize>>,
    /// Target mode weights, normalized (`w_m / 61`).
    pub mode_weights: Vec<f64>,
}

impl Reference {
    /// Backward induction from `r^β` at the terminals.
    pub fn new(dag: &DiffusionDag) -> Self {
        let (offsets, child, log_p) = (dag.offsets(), dag.child_cells(), dag.log_p());
        let log_r = dag.log_r();
        let mut log_flow = vec![0.0; dag.states()];
        let mut q_star = vec![0.0; dag.edges()];
        for s in (0..dag.states()).rev() {
            let next_layer = dag.layer_of(s) + 1;
            let child_flow = |e: usize| {
                let c = child[e] as usize;
                match dag.state(next_layer, c) {
                    Some(t) => log_flow[t],
                    None => BETA * log_r[c],
                }
            };
            let range = offsets[s]..offsets[s + 1];
            let lf = log_sum_exp(range.clone().map(|e| log_p[e] + child_flow(e)));
            for e in range {
                q_star[e] = (log_p[e] + child_flow(e) - lf).exp();
            }
            log_flow[s] = lf;
        }
        let total: f64 = TARGET_WEIGHTS.iter().sum();
        Self {
            log_z_star: log_flow[0],
            log_flow,
            q_star,
            target: dag.target_pmf().to_vec(),
            basins: dag.grid().basins(),
            mode_weights: TARGET_WEIGHTS.iter().map(|w| w / total).collect(),
        }
    }

    /// Every metric of a policy given by its edge probabilities.
    pub fn metrics(&self, dag: &DiffusionDag, probs: &[f64]) -> Result<Metrics, StudyError> {
        let occ = occupancy(dag, probs)?;
        let (offsets, log_p) = (dag.offsets(), dag.log_p());
        let mut kl_traj = 0.0;
        for s in 0..dag.states() {
            let mu = occ.states[s];
            if mu == 0.0 {
                continue;
            }
            let mut k = 0.0;
            for e in offsets[s]..offsets[s + 1] {
                let q = probs[e];
                if q > 0.0 {
                    k += q * (q.ln() - log_p[e]);
                }
            }
            kl_traj += mu * k;
        }
        let expected_log_r: f64 = occ
            .terminal
            .iter()
            .zip(dag.log_r())
            .map(|(q, l)| q * l)
            .sum();
        Ok(self.from_parts(&occ.terminal, expected_log_r, kl_traj))
    }

    /// The metrics from a terminal marginal, `E_q[log r]` and `KL(q(τ) ‖ p(τ))`.
    pub fn from_parts(&self, terminal: &[f64], expected_log_r: f64, kl_traj: f64) -> Metrics {
        let alpha = 1.0 / BETA;
        let mut kl_tm = 0.0;
        let mut kl_mt = 0.0;
        let mut tv = 0.0;
        for (&t, &q) in self.target.iter().zip(terminal) {
            let qf = q.max(PROBABILITY_FLOOR);
            if t > 0.0 {
                kl_tm += t * (t / qf).ln();
            }
            if q > 0.0 {
                kl_mt += q * (q / t.max(PROBABILITY_FLOOR)).ln();
            }
            tv += (t - q).abs();
        }
        let mut mode_mass = vec![0.0; self.mode_weights.len()];
        for (b, &q) in self.basins.iter().zip(terminal) {
            if let Some(m) = b {
                mode_mass[*m] += q;
            }
        }
        let mode_mass_error = mode_mass
            .iter()
            .zip(&self.mode_weights)
            .map(|(q, w)| (q - w).abs())
            .sum();
        let j = expected_log_r - alpha * kl_traj;
        Metrics {
            kl_target_to_model: kl_tm,
            kl_model_to_target: kl_mt,
            tv: 0.5 * tv,
            mode_mass_error,
            j,
            j_gap: alpha * self.log_z_star - j,
            kl_trajectory: kl_traj,
            mode_mass,
        }
    }
}

/// The exact metrics of one policy.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Metrics {
    /// `KL(target ‖ q)` on the terminal marginal.
    pub kl_target_to_model: f64,
    /// `KL(q ‖ target)` on the terminal marginal.
    pub kl_model_to_target: f64,
    /// Total variation `½ Σ_x |q(x) − target(x)|`.
    pub tv: f64,
    /// `Σ_m |q(basin m) − w_m|` over the 9 target modes (basin: the mode's lattice square).
    pub mode_mass_error: f64,
    /// `J(q) = E_q[log r] − α KL(q(τ) ‖ p(τ))`.
    pub j: f64,
    /// `α log Z* − J(q)` (≥ 0, zero exactly at `q*`).
    pub j_gap: f64,
    /// `KL(q(τ) ‖ p(τ))` over trajectories.
    pub kl_trajectory: f64,
    /// `q(basin m)` for each target mode.
    pub mode_mass: Vec<f64>,
}

/// The names of the scalar metrics, in the order of [`Metrics::scalars`].
pub const METRIC_NAMES: [&str; 5] = [
    "kl_target_to_model",
    "kl_model_to_target",
    "tv",
    "mode_mass_error",
    "j_gap",
];

impl Metrics {
    /// The reported scalars, in [`METRIC_NAMES`] order.
    pub fn scalars(&self) -> [f64; 5] {
        [
            self.kl_target_to_model,
            self.kl_model_to_target,
            self.tv,
            self.mode_mass_error,
            self.j_gap,
        ]
    }
}

/// What [`enumerate`] computes by listing trajectories.
#[derive(Debug, Clone)]
pub struct Enumerated {
    /// Number of trajectories listed.
    pub trajectories: u64,
    /// Terminal marginal of the policy, `Σ_τ q(τ) 1[x(τ) = x]`.
    pub terminal: Vec<f64>,
    /// `E_q[log r]`.
    pub expected_log_r: f64,
    /// `KL(q(τ) ‖ p(τ)) = Σ_τ q(τ) (log q(τ) − log p(τ))`.
    pub kl_trajectory: f64,
    /// `Σ_τ p(τ) r(x)^β` (equals `Z*`).
    pub z: f64,
    /// Terminal marginal of `q*(τ) = p(τ) r(x)^β / Z` (computed from `p` and `r` only).
    pub target_terminal: Vec<f64>,
}

/// Lists every trajectory (refused above `limit`) and sums over them.
pub fn enumerate(dag: &DiffusionDag, probs: &[f64], limit: u64) -> Result<Enumerated, StudyError> {
    check_len(dag, probs.len(), "edge probabilities")?;
    // Number of trajectories by a forward count.
    let mut count = vec![0u128; dag.states()];
    count[0] = 1;
    let mut total: u128 = 0;
    for s in 0..dag.states() {
        let next_layer = dag.layer_of(s) + 1;
        for e in dag.offsets()[s]..dag.offsets()[s + 1] {
            match dag.state(next_layer, dag.child_cells()[e] as usize) {
                Some(t) => count[t] = count[t].saturating_add(count[s]),
                None => total = total.saturating_add(count[s]),
            }
        }
    }
    if total > limit as u128 {
        return Err(StudyError::Config(format!(
            "{total} trajectories exceed the enumeration limit {limit}"
        )));
    }
    let mut out = Enumerated {
        trajectories: 0,
        terminal: vec![0.0; dag.cells()],
        expected_log_r: 0.0,
        kl_trajectory: 0.0,
        z: 0.0,
        target_terminal: vec![0.0; dag.cells()],
    };
    walk(dag, probs, 0, 0.0, 0.0, &mut out);
    let z = out.z;
    for t in &mut out.target_terminal {
        *t /= z;
    }
    Ok(out)
}

fn walk(dag: &DiffusionDag, probs: &[f64], s: usize, lq: f64, lp: f64, out: &mut Enumerated) {
    let next_layer = dag.layer_of(s) + 1;
    for e in dag.offsets()[s]..dag.offsets()[s + 1] {
        let c = dag.child_cells()[e] as usize;
        let (lq, lp) = (lq + probs[e].ln(), lp + dag.log_p()[e]);
        match dag.state(next_layer, c) {
            Some(t) => walk(dag, probs, t, lq, lp, out),
            None => {
                let (q, p) = (lq.exp(), lp.exp());
                let log_r = dag.log_r()[c];
                out.trajectories += 1;
                out.terminal[c] += q;
                out.expected_log_r += q * log_r;
                if q > 0.0 {
                    out.kl_trajectory += q * (lq - lp);
                }
                let w = p * (BETA * log_r).exp();
                out.z += w;
                out.target_terminal[c] += w;
            }
        }
    }
}

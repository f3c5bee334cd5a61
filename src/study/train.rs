//! Training a tabular softmax policy on the diffusion DAG with each method.
//!
//! One iteration, for every method:
//! 1. the policy `q_θ` ([`TabularSoftmax`], one logit per edge, started at `θ = log p` so that
//!    `q = p`);
//! 2. a batch of `B` trajectories from the behaviour policy: `q` itself on-policy, or the
//!    exploration policy `π(·|s) = (1 − ε) q(·|s) + ε · uniform(children of s)` off-policy;
//! 3. the per-step `log q`, `log p` and `log r(x)` as a [`TrajectoryBatch`], the method's fused
//!    kernel ([`evaluate`], per-trajectory gradient `g`), and the softmax chain rule to the
//!    logits over the visited states ([`SparseChainRule`], tested equal to
//!    [`TabularSoftmax::logit_gradient_rows`], which costs `O(|E|)` per call);
//! 4. one Adam step per parameter group (logits; `log Z` or `V(s0)`; the windowed `V(s)`).
//!
//! Every metric is computed exactly ([`Reference::metrics`]) every `eval_every` iterations and
//! after the last one.
use nalgebra::DVector;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use super::adam::Adam;
use super::diffusion::DiffusionDag;
use super::metrics::{Metrics, Reference, BETA};
use super::StudyError;
use crate::kernels::{evaluate, GradForm, Kernel, TabularSoftmax, TrajectoryBatch, Windows};

/// The methods compared by the study.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Method {
    /// RTB with a learned `log Z`, on-policy.
    Rtb,
    /// RTB with a learned `log Z`, trajectories from the exploration policy, no weights.
    RtbOffPolicy,
    /// Trust-PCL on the full trajectory with a learned `V(s0)`, on-policy.
    Tpcl,
    /// Trust-PCL on one random window per trajectory with a learned `V` per state, on-policy.
    TpclWindowed,
    /// REINFORCE with the KL-regularized reward and a batch-mean baseline, on-policy.
    ReinforceKl,
    /// REINFORCE-KL from the exploration policy with self-normalized importance weights.
    ReinforceKlOffPolicy,
    /// The flawed baseline (raw reward advantage, squared log-ratio penalty): the control.
    FlawedBaseline,
}

impl Method {
    /// Every method, in report order.
    pub const ALL: [Method; 7] = [
        Method::Rtb,
        Method::RtbOffPolicy,
        Method::Tpcl,
        Method::TpclWindowed,
        Method::ReinforceKl,
        Method::ReinforceKlOffPolicy,
        Method::FlawedBaseline,
    ];

    /// The method's name in the CLI, the JSON and the docs.
    pub fn name(self) -> &'static str {
        match self {
            Method::Rtb => "rtb",
            Method::RtbOffPolicy => "rtb-offpolicy",
            Method::Tpcl => "tpcl",
            Method::TpclWindowed => "tpcl-windowed",
            Method::ReinforceKl => "reinforce-kl",
            Method::ReinforceKlOffPolicy => "reinforce-kl-offpolicy",
            Method::FlawedBaseline => "flawed-baseline",
        }
    }

    /// The method of a name (see [`Method::name`]).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.name() == name)
    }

    /// Whether its trajectories come from the exploration policy.
    pub fn off_policy(self) -> bool {
        matches!(self, Method::RtbOffPolicy | Method::ReinforceKlOffPolicy)
    }

    /// The per-method choices, in one line.
    pub fn description(self) -> &'static str {
        match self {
            Method::Rtb => "½δ², learned log Z (init 0), on-policy",
            Method::RtbOffPolicy => {
                "½δ², learned log Z (init 0), exploration policy, no importance weights"
            }
            Method::Tpcl => "½C² on the full trajectory, learned V(s0) (init 0), on-policy",
            Method::TpclWindowed => {
                "½C² on one uniform random window per trajectory, learned V(s) per state \
                 (init 0), on-policy"
            }
            Method::ReinforceKl => {
                "−sg(A)·log q(τ), A = log r − α log(q/p) − batch mean, on-policy"
            }
            Method::ReinforceKlOffPolicy => {
                "−Σ w̃ sg(A)·log q(τ), self-normalized weights q/π, weighted-mean baseline"
            }
            Method::FlawedBaseline => {
                "−sg(r − mean r)·log q(τ) + κ (log q(τ) − log p(τ))², on-policy"
            }
        }
    }
}

/// Hyper-parameters shared by every method (same budget, same optimizer).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct TrainConfig {
    /// Optimizer steps.
    pub iterations: usize,
    /// Trajectories per step (budget = `iterations · batch` trajectories).
    pub batch: usize,
    /// Adam learning rate of the logits.
    pub lr: f64,
    /// Adam learning rate of the scalar `log Z` / `V(s0)`.
    pub lr_scalar: f64,
    /// Adam learning rate of the windowed method's `V(s)`.
    pub lr_values: f64,
    /// ε of the exploration policy `(1 − ε) q + ε · uniform` (off-policy methods).
    pub exploration: f64,
    /// κ of the flawed baseline's squared log-ratio penalty.
    pub kappa: f64,
    /// Exact metrics every this many iterations (and after the last).
    pub eval_every: usize,
}

impl TrainConfig {
    /// Refuses values that cannot train.
    pub fn validate(&self) -> Result<(), StudyError> {
        let bad = |m: String| Err(StudyError::Config(m));
        if self.iterations == 0 || self.batch == 0 || self.eval_every == 0 {
            return bad("iterations, batch and eval_every must be at least 1".into());
        }
        if self.batch > 1 << 20 {
            return bad(format!("batch {} above 2^20", self.batch));
        }
        for (what, v) in [
            ("lr", self.lr),
            ("lr_scalar", self.lr_scalar),
            ("lr_values", self.lr_values),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return bad(format!("{what} = {v} must be > 0"));
            }
        }
        if !(self.exploration > 0.0 && self.exploration < 1.0) {
            return bad(format!(
                "exploration ε = {} must be in (0, 1)",
                self.exploration
            ));
        }
        if !(self.kappa.is_finite() && self.kappa >= 0.0) {
            return bad(format!("κ = {} must be ≥ 0", self.kappa));
        }
        Ok(())
    }
}

/// Metrics at one point of training.
#[derive(Debug, Clone, Serialize)]
pub struct CurvePoint {
    /// Optimizer steps taken.
    pub iteration: usize,
    /// Trajectories consumed (`iteration · batch`).
    pub trajectories: usize,
    /// The exact metrics of the policy at that point.
    pub metrics: Metrics,
}

/// One training run.
#[derive(Debug, Clone, Serialize)]
pub struct RunResult {
    /// The method.
    pub method: Method,
    /// The seed.
    pub seed: u64,
    /// Metrics over training (the last point is the final policy).
    pub curve: Vec<CurvePoint>,
    /// Final `log Z` (RTB) or `V(s0)` (Trust-PCL); `None` for the other methods.
    pub scalar: Option<f64>,
    /// Final terminal marginal of the policy.
    #[serde(skip)]
    pub terminal: Vec<f64>,
}

/// A sampled batch: per step (row-major `[B, T]`) the edge, `log q`, `log p`, the state left;
/// per trajectory `log r`, and `log q(τ) − log π(τ)`.
struct Sampled {
    edges: Vec<u32>,
    states: Vec<u32>,
    log_q: Vec<f64>,
    log_p: Vec<f64>,
    log_r: Vec<f64>,
    log_w: Vec<f64>,
}

/// The softmax of one state's logits into `q` (cleared first); returns the `logsumexp`.
fn local_softmax(logits: &[f64], q: &mut Vec<f64>) -> f64 {
    let m = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    q.clear();
    q.extend(logits.iter().map(|x| (x - m).exp()));
    let z: f64 = q.iter().sum();
    for v in q.iter_mut() {
        *v /= z;
    }
    m + z.ln()
}

/// Samples `batch` trajectories from `(1 − eps) q + eps · uniform`; `q`'s softmax is computed
/// only at the states visited (the source's once per batch).
fn sample(
    dag: &DiffusionDag,
    logits: &[f64],
    eps: f64,
    batch: usize,
    rng: &mut ChaCha8Rng,
) -> Sampled {
    let t = dag.trajectory_len();
    let (offsets, child, log_p) = (dag.offsets(), dag.child_cells(), dag.log_p());
    let mut out = Sampled {
        edges: Vec::with_capacity(batch * t),
        states: Vec::with_capacity(batch * t),
        log_q: Vec::with_capacity(batch * t),
        log_p: Vec::with_capacity(batch * t),
        log_r: Vec::with_capacity(batch),
        log_w: Vec::with_capacity(batch),
    };
    // The source has N children: its behaviour CDF once per batch, then binary search.
    let (s_lo, s_hi) = (offsets[0], offsets[1]);
    let mut q0 = Vec::new();
    let lse0 = local_softmax(&logits[s_lo..s_hi], &mut q0);
    let n0 = q0.len() as f64;
    let mut cdf = Vec::with_capacity(q0.len());
    let mut acc = 0.0;
    for &qe in &q0 {
        acc += (1.0 - eps) * qe + eps / n0;
        cdf.push(acc);
    }
    let mut ql = Vec::new();
    for _ in 0..batch {
        let mut log_w = 0.0;
        let mut state = 0usize;
        let mut cell = 0usize;
        for step in 0..t {
            let (lo, hi) = (offsets[state], offsets[state + 1]);
            let (k, lse, qk) = if step == 0 {
                let u = rng.gen::<f64>() * acc;
                let k = cdf.partition_point(|&c| c <= u).min(hi - lo - 1);
                (k, lse0, q0[k])
            } else {
                let lse = local_softmax(&logits[lo..hi], &mut ql);
                let n = ql.len() as f64;
                let u = rng.gen::<f64>();
                let mut c = 0.0;
                let mut k = ql.len() - 1;
                for (j, &qj) in ql.iter().enumerate() {
                    c += (1.0 - eps) * qj + eps / n;
                    if u < c {
                        k = j;
                        break;
                    }
                }
                (k, lse, ql[k])
            };
            let e = lo + k;
            let lq = (logits[e] - lse).min(0.0);
            if eps > 0.0 {
                let n = (hi - lo) as f64;
                log_w += lq - ((1.0 - eps) * qk + eps / n).ln();
            }
            out.edges.push(e as u32);
            out.states.push(state as u32);
            out.log_q.push(lq);
            out.log_p.push(log_p[e]);
            cell = child[e] as usize;
            state = dag.state(step + 1, cell).unwrap_or(0);
        }
        out.log_r.push(dag.log_r()[cell]);
        out.log_w.push(log_w);
    }
    out
}

/// The softmax chain rule restricted to the visited states (every other logit's gradient is
/// zero): `∂L/∂θ_b = A_b − q(b) Σ_{c ∈ children(s)} A_c` with `A_e` the sum of `g_i` over the
/// steps (in `start_i..end_i`) that took edge `e`. Same result as
/// [`TabularSoftmax::logit_gradient_rows`] in `O(B·T·children)` instead of `O(|E|)`.
#[derive(Debug, Clone)]
pub struct SparseChainRule {
    grad: Vec<f64>,
    seen: Vec<bool>,
    touched: Vec<usize>,
    q: Vec<f64>,
}

impl SparseChainRule {
    /// For a DAG with `edges` edges and `states` non-terminal states.
    pub fn new(edges: usize, states: usize) -> Self {
        Self {
            grad: vec![0.0; edges],
            seen: vec![false; states],
            touched: Vec::new(),
            q: Vec::new(),
        }
    }

    /// The dense gradient (zero outside the last call's visited states).
    pub fn gradient(&self) -> &[f64] {
        &self.grad
    }

    /// Computes `∂L/∂θ` from per-trajectory gradients `g` over steps `start_i..end_i`;
    /// `edges` and `states` are row-major `[B, T]` (the edge taken and the state left).
    #[allow(clippy::too_many_arguments)]
    pub fn compute(
        &mut self,
        offsets: &[usize],
        logits: &[f64],
        t: usize,
        edges: &[u32],
        states: &[u32],
        start: &[usize],
        end: &[usize],
        g: &[f64],
    ) -> Result<(), StudyError> {
        let b = g.len();
        if edges.len() != b * t || states.len() != b * t || start.len() != b || end.len() != b {
            return Err(StudyError::Config(
                "sparse chain rule: inconsistent batch shapes".into(),
            ));
        }
        for &s in &self.touched {
            self.grad[offsets[s]..offsets[s + 1]].fill(0.0);
            self.seen[s] = false;
        }
        self.touched.clear();
        for i in 0..b {
            if start[i] > end[i] || end[i] > t {
                return Err(StudyError::Config(format!(
                    "sparse chain rule: trajectory {i} steps {}..{} outside 0..={t}",
                    start[i], end[i]
                )));
            }
            for k in i * t + start[i]..i * t + end[i] {
                let (e, s) = (edges[k] as usize, states[k] as usize);
                if s + 1 >= offsets.len() || e < offsets[s] || e >= offsets[s + 1] {
                    return Err(StudyError::Config(format!(
                        "sparse chain rule: edge {e} does not leave state {s}"
                    )));
                }
                self.grad[e] += g[i];
                if !self.seen[s] {
                    self.seen[s] = true;
                    self.touched.push(s);
                }
            }
        }
        for &s in &self.touched {
            let (lo, hi) = (offsets[s], offsets[s + 1]);
            local_softmax(&logits[lo..hi], &mut self.q);
            let total: f64 = self.grad[lo..hi].iter().sum();
            for (a, q) in self.grad[lo..hi].iter_mut().zip(&self.q) {
                *a -= q * total;
            }
        }
        Ok(())
    }
}

/// Trains one method from one seed; `tick` is called once per iteration.
pub fn train(
    dag: &DiffusionDag,
    reference: &Reference,
    method: Method,
    cfg: &TrainConfig,
    seed: u64,
    tick: &(dyn Fn() + Sync),
) -> Result<RunResult, StudyError> {
    cfg.validate()?;
    let t = dag.trajectory_len();
    let b = cfg.batch;
    let mut logits = dag.log_p().to_vec();
    let mut scalar = 0.0;
    let mut values = vec![0.0; dag.states()];
    let mut opt_logits = Adam::new(dag.edges(), cfg.lr)?;
    let mut opt_scalar = Adam::new(1, cfg.lr_scalar)?;
    let mut opt_values = Adam::new(dag.states(), cfg.lr_values)?;
    let mut chain = SparseChainRule::new(dag.edges(), dag.states());
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let eps = if method.off_policy() {
        cfg.exploration
    } else {
        0.0
    };
    let mut curve = Vec::new();
    let full_start = vec![0usize; b];
    let full_end = vec![t; b];
    let mut grad_v = vec![0.0; dag.states()];
    for it in 0..=cfg.iterations {
        if it % cfg.eval_every == 0 || it == cfg.iterations {
            let policy = TabularSoftmax::from_logits(dag.offsets().to_vec(), &logits)?;
            curve.push(CurvePoint {
                iteration: it,
                trajectories: it * b,
                metrics: reference.metrics(dag, policy.probabilities())?,
            });
            if it == cfg.iterations {
                let terminal = super::metrics::occupancy(dag, policy.probabilities())?.terminal;
                let scalar = match method {
                    Method::Rtb | Method::RtbOffPolicy | Method::Tpcl => Some(scalar),
                    Method::TpclWindowed => Some(values[0]),
                    _ => None,
                };
                return Ok(RunResult {
                    method,
                    seed,
                    curve,
                    scalar,
                    terminal,
                });
            }
        }
        let s = sample(dag, &logits, eps, b, &mut rng);
        let batch =
            TrajectoryBatch::from_row_major(b, t, s.log_q, s.log_p, vec![t; b], s.log_r, BETA)?;
        let (g, start, end, grad_scalar) = match method {
            Method::Rtb | Method::RtbOffPolicy => {
                let k = Kernel::Rtb { log_z: scalar };
                let out = evaluate(&batch, &k, GradForm::PerTrajectory)?;
                (out.g, None, None, out.grad_scalar)
            }
            Method::Tpcl => {
                let k = Kernel::Tpcl { v0: scalar };
                let out = evaluate(&batch, &k, GradForm::PerTrajectory)?;
                (out.g, None, None, out.grad_scalar)
            }
            Method::ReinforceKl => {
                let out = evaluate(&batch, &Kernel::ReinforceKl, GradForm::PerTrajectory)?;
                (out.g, None, None, 0.0)
            }
            Method::ReinforceKlOffPolicy => {
                let out = evaluate(&batch, &Kernel::ReinforceKl, GradForm::PerTrajectory)?;
                (weighted_reinforce(&out.residual, &s.log_w), None, None, 0.0)
            }
            Method::FlawedBaseline => {
                let k = Kernel::Flawed { kappa: cfg.kappa };
                let out = evaluate(&batch, &k, GradForm::PerTrajectory)?;
                (out.g, None, None, 0.0)
            }
            Method::TpclWindowed => {
                let mut start = Vec::with_capacity(b);
                let mut end = Vec::with_capacity(b);
                for _ in 0..b {
                    let i = rng.gen_range(0..t);
                    start.push(i);
                    end.push(rng.gen_range(i + 1..=t));
                }
                let state_at = |k: usize, step: usize| s.states[k * t + step] as usize;
                let vs = DVector::from_iterator(b, (0..b).map(|k| values[state_at(k, start[k])]));
                let ve = DVector::from_iterator(
                    b,
                    (0..b).map(|k| {
                        if end[k] < t {
                            values[state_at(k, end[k])]
                        } else {
                            0.0
                        }
                    }),
                );
                let windows = Windows::new(&batch, start.clone(), end.clone(), vs, ve)?;
                let k = Kernel::TpclWindowed { windows: &windows };
                let out = evaluate(&batch, &k, GradForm::PerTrajectory)?;
                let (Some(gs), Some(ge)) = (&out.grad_start, &out.grad_end) else {
                    return Err(StudyError::Diverged(
                        "windowed kernel returned no boundary gradients".into(),
                    ));
                };
                grad_v.fill(0.0);
                for k in 0..b {
                    grad_v[state_at(k, start[k])] += gs[k];
                    if end[k] < t {
                        grad_v[state_at(k, end[k])] += ge[k];
                    }
                }
                opt_values.step(&mut values, &grad_v)?;
                (out.g, Some(start), Some(end), 0.0)
            }
        };
        chain.compute(
            dag.offsets(),
            &logits,
            t,
            &s.edges,
            &s.states,
            start.as_deref().unwrap_or(&full_start),
            end.as_deref().unwrap_or(&full_end),
            g.as_slice(),
        )?;
        opt_logits.step(&mut logits, chain.gradient())?;
        if matches!(method, Method::Rtb | Method::RtbOffPolicy | Method::Tpcl) {
            let mut sc = [scalar];
            opt_scalar.step(&mut sc, &[grad_scalar])?;
            scalar = sc[0];
        }
        tick();
    }
    unreachable!("the loop returns at it == iterations")
}

/// Off-policy REINFORCE-KL from the on-policy kernel's advantages `A_i = R_i − mean R`:
/// with self-normalized weights `w̃_i ∝ q(τ_i)/π(τ_i)` the weighted-baseline advantage is
/// `R_i − Σ_j w̃_j R_j = A_i − Σ_j w̃_j A_j`, and the surrogate `−Σ_i w̃_i sg(A^w_i) log q(τ_i)`
/// has per-trajectory gradient `g_i = −w̃_i A^w_i`.
pub fn weighted_reinforce(advantage: &DVector<f64>, log_w: &[f64]) -> DVector<f64> {
    let m = log_w.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let w: Vec<f64> = log_w.iter().map(|l| (l - m).exp()).collect();
    let total: f64 = w.iter().sum();
    let wn: Vec<f64> = w.iter().map(|x| x / total).collect();
    let shift: f64 = wn.iter().zip(advantage.iter()).map(|(w, a)| w * a).sum();
    DVector::from_iterator(
        advantage.len(),
        wn.iter()
            .zip(advantage.iter())
            .map(|(w, a)| -w * (a - shift)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for m in Method::ALL {
            assert_eq!(Method::from_name(m.name()), Some(m));
        }
        assert_eq!(Method::from_name("nope"), None);
    }

    #[test]
    fn sparse_chain_rule_matches_tabular_softmax() {
        use crate::study::diffusion::{DiffusionDag, DiffusionSpec};
        use nalgebra::DMatrix;
        let dag = DiffusionDag::new(DiffusionSpec {
            half_width: 10.0,
            cell: 2.5,
            steps: 3,
            radius: 1,
        })
        .unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let logits: Vec<f64> = dag
            .log_p()
            .iter()
            .map(|l| l + rng.gen_range(-1.0..1.0))
            .collect();
        let (b, t) = (40, dag.trajectory_len());
        let s = sample(&dag, &logits, 0.3, b, &mut rng);
        let g: Vec<f64> = (0..b).map(|_| rng.gen_range(-2.0..2.0)).collect();
        let start: Vec<usize> = (0..b).map(|i| i % t).collect();
        let end: Vec<usize> = (0..b)
            .map(|i| t - (i % 2) * (t - 1 - i % t).min(1))
            .collect();
        let mut chain = SparseChainRule::new(dag.edges(), dag.states());
        // Twice, to check that the scratch is reset between calls.
        for _ in 0..2 {
            chain
                .compute(
                    dag.offsets(),
                    &logits,
                    t,
                    &s.edges,
                    &s.states,
                    &start,
                    &end,
                    &g,
                )
                .unwrap();
        }
        let policy = TabularSoftmax::from_logits(dag.offsets().to_vec(), &logits).unwrap();
        let edges = DMatrix::from_vec(t, b, s.edges.clone());
        let want = policy
            .logit_gradient_rows(&edges, &start, &end, &g)
            .unwrap();
        let err = want
            .iter()
            .zip(chain.gradient())
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        assert!(err < 1e-12, "max difference {err}");
        assert!(chain
            .compute(
                dag.offsets(),
                &logits,
                t,
                &s.edges,
                &s.states,
                &start,
                &end,
                &g[1..]
            )
            .is_err());
    }

    #[test]
    fn equal_weights_give_the_on_policy_gradient() {
        let a = DVector::from_vec(vec![1.0, -0.5, -0.5]);
        let g = weighted_reinforce(&a, &[0.3, 0.3, 0.3]);
        for (gi, ai) in g.iter().zip(a.iter()) {
            assert!((gi + ai / 3.0).abs() < 1e-15);
        }
    }
}

//! Training a tabular softmax policy on the diffusion DAG with each method.
//!
//! One iteration of the sampled mode, for every method:
//! 1. the policy `q_θ` (one logit per edge, started at `θ = log p` so that `q = p`);
//! 2. a batch of `B` trajectories from the run's behaviour ([`Sampler`]: `q` itself for the
//!    on-policy methods; any [`Behaviour`] for the off-policy ones), scored under `q`;
//! 3. the per-step `log q`, `log p` and `log r(x)` as a [`TrajectoryBatch`], the method's fused
//!    kernel ([`evaluate`], per-trajectory residual `X` and gradient `g`), a robust loss
//!    applied to the residual ([`Robust`]: `g_i ← g_i ψ(X_i)/X_i`, since every squared-residual
//!    kernel's `g_i` is `X_i · ∂X/∂log q`), and the kernels' softmax chain rule to the logits
//!    over the visited states ([`logit_gradient_visited`], equal to
//!    [`TabularSoftmax::logit_gradient_rows`]);
//! 4. one Adam step per parameter group (logits; `log Z` or `V(s0)`; the windowed `V(s)`).
//!
//! The exact mode replaces 2–3 by the exact expected gradient under the behaviour
//! ([`super::expected`]). Every metric is computed exactly ([`Reference::metrics`]) every
//! `eval_every` iterations and after the last one.
use nalgebra::{DMatrix, DVector};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use super::adam::Adam;
use super::behaviour::{uniform_window, Behaviour, Sampled, Sampler};
use super::diffusion::DiffusionDag;
use super::expected::{expected_gradient, functional, log_policy};
use super::metrics::{Metrics, Reference, BETA};
use super::StudyError;
use crate::kernels::{
    evaluate, logit_gradient_visited, GradForm, Kernel, KernelOutput, TabularSoftmax,
    TrajectoryBatch, Windows,
};
use crate::objectives::robust::Robust;

/// The methods compared by the study.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Method {
    /// RTB with a learned `log Z`, on-policy.
    Rtb,
    /// RTB with a learned `log Z`, trajectories from a behaviour policy, no weights.
    RtbOffPolicy,
    /// Trust-PCL on the full trajectory with a learned `V(s0)`, on-policy.
    Tpcl,
    /// Trust-PCL on one random window per trajectory with a learned `V` per state, on-policy.
    TpclWindowed,
    /// Trust-PCL on the full trajectory with a learned `V(s0)`, from a behaviour (default:
    /// the replay buffer, Trust-PCL's own off-policy recipe).
    TpclReplay,
    /// Windowed Trust-PCL with a learned `V` per state, from a behaviour (default: replay).
    TpclReplayWindowed,
    /// REINFORCE with the KL-regularized reward and a batch-mean baseline, on-policy.
    ReinforceKl,
    /// REINFORCE-KL from a behaviour with self-normalized importance weights.
    ReinforceKlOffPolicy,
    /// The flawed baseline (raw reward advantage, squared log-ratio penalty): the control.
    FlawedBaseline,
}

impl Method {
    /// Every method, in report order.
    pub const ALL: [Method; 9] = [
        Method::Rtb,
        Method::RtbOffPolicy,
        Method::Tpcl,
        Method::TpclWindowed,
        Method::TpclReplay,
        Method::TpclReplayWindowed,
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
            Method::TpclReplay => "tpcl-replay",
            Method::TpclReplayWindowed => "tpcl-replay-windowed",
            Method::ReinforceKl => "reinforce-kl",
            Method::ReinforceKlOffPolicy => "reinforce-kl-offpolicy",
            Method::FlawedBaseline => "flawed-baseline",
        }
    }

    /// The method of a name (see [`Method::name`]).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.name() == name)
    }

    /// Whether it takes a behaviour policy (the others always sample from `q`).
    pub fn off_policy(self) -> bool {
        matches!(
            self,
            Method::RtbOffPolicy
                | Method::ReinforceKlOffPolicy
                | Method::TpclReplay
                | Method::TpclReplayWindowed
        )
    }

    /// Whether its loss is a squared residual (so a robust loss applies).
    pub fn squared_residual(self) -> bool {
        !matches!(
            self,
            Method::ReinforceKl | Method::ReinforceKlOffPolicy | Method::FlawedBaseline
        )
    }

    /// Whether it learns one `V` per state on random windows.
    pub fn windowed(self) -> bool {
        matches!(self, Method::TpclWindowed | Method::TpclReplayWindowed)
    }

    /// Whether it learns one scalar (`log Z` or `V(s0)`).
    pub fn has_scalar(self) -> bool {
        matches!(
            self,
            Method::Rtb | Method::RtbOffPolicy | Method::Tpcl | Method::TpclReplay
        )
    }

    /// The default behaviour's name: `mix` for RTB and REINFORCE-KL off-policy, `replay` for
    /// the Trust-PCL replay methods, `on-policy` for the rest.
    pub fn default_behaviour(self) -> &'static str {
        match self {
            Method::RtbOffPolicy | Method::ReinforceKlOffPolicy => "mix",
            Method::TpclReplay | Method::TpclReplayWindowed => "replay",
            _ => "on-policy",
        }
    }

    /// The per-method choices, in one line.
    pub fn description(self) -> &'static str {
        match self {
            Method::Rtb => "½δ², learned log Z (init 0), on-policy",
            Method::RtbOffPolicy => {
                "½δ², learned log Z (init 0), behaviour policy, no importance weights"
            }
            Method::Tpcl => "½C² on the full trajectory, learned V(s0) (init 0), on-policy",
            Method::TpclWindowed => {
                "½C² on one window per trajectory (uniform over all windows), learned V(s) per \
                 state (init 0), on-policy"
            }
            Method::TpclReplay => {
                "½C² on the full trajectory, learned V(s0) (init 0), behaviour policy (replay)"
            }
            Method::TpclReplayWindowed => {
                "½C² on one window per trajectory (uniform over all windows), learned V(s), \
                 behaviour policy (replay)"
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
    /// Steps of the exact expected-gradient runs (no trajectories: a budget of their own).
    pub exact_iterations: usize,
    /// Trajectories per step (budget = `iterations · batch` trajectories).
    pub batch: usize,
    /// Adam learning rate of the logits.
    pub lr: f64,
    /// Adam learning rate of the scalar `log Z` / `V(s0)` (a run may override it).
    pub lr_scalar: f64,
    /// Adam learning rate of the windowed methods' `V(s)`.
    pub lr_values: f64,
    /// ε of the `mix` and `mix-source` behaviours.
    pub exploration: f64,
    /// T of the `tempered` behaviour.
    pub temperature: f64,
    /// Fresh fraction of each batch under the `replay` behaviour.
    pub replay_fresh: f64,
    /// Replay buffer capacity, in trajectories.
    pub replay_capacity: usize,
    /// κ of the flawed baseline's squared log-ratio penalty.
    pub kappa: f64,
    /// Exact metrics every this many iterations (and after the last).
    pub eval_every: usize,
}

impl TrainConfig {
    /// Refuses values that cannot train.
    pub fn validate(&self) -> Result<(), StudyError> {
        let bad = |m: String| Err(StudyError::Config(m));
        if self.iterations == 0
            || self.exact_iterations == 0
            || self.batch == 0
            || self.eval_every == 0
        {
            return bad("iterations, batch and eval_every must be at least 1".into());
        }
        if self.batch > 1 << 20 {
            return bad(format!("batch {} above 2^20", self.batch));
        }
        for (what, v) in [
            ("lr", self.lr),
            ("lr_scalar", self.lr_scalar),
            ("lr_values", self.lr_values),
            ("temperature", self.temperature),
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
        if !(self.replay_fresh > 0.0 && self.replay_fresh <= 1.0) || self.replay_capacity == 0 {
            return bad(format!(
                "replay: fresh fraction {} must be in (0, 1], capacity {} ≥ 1",
                self.replay_fresh, self.replay_capacity
            ));
        }
        if !(self.kappa.is_finite() && self.kappa >= 0.0) {
            return bad(format!("κ = {} must be ≥ 0", self.kappa));
        }
        Ok(())
    }

    /// The behaviour parameters.
    pub fn behaviour_params(&self) -> super::behaviour::BehaviourParams {
        super::behaviour::BehaviourParams {
            eps: self.exploration,
            temperature: self.temperature,
            replay_fresh: self.replay_fresh,
            replay_capacity: self.replay_capacity,
        }
    }
}

/// What one run trains: a method, its behaviour, its loss, its scalar learning rate, and
/// whether it follows sampled or exact expected gradients.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunSpec {
    /// The method.
    pub method: Method,
    /// Where its trajectories come from (`on-policy` for the on-policy methods).
    pub behaviour: Behaviour,
    /// The per-trajectory loss of the residual (`square` unless the method is squared).
    #[serde(serialize_with = "robust_name")]
    pub loss: Robust,
    /// Adam learning rate of `log Z` / `V(s0)`.
    pub lr_scalar: f64,
    /// Adam learning rate of the windowed methods' `V(s)`.
    pub lr_values: f64,
    /// Exact expected gradients (DP) instead of sampled batches.
    pub exact: bool,
}

fn robust_name<S: serde::Serializer>(r: &Robust, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&r.name())
}

impl RunSpec {
    /// The method with its default behaviour, the square loss and the configured rate.
    pub fn default_for(method: Method, cfg: &TrainConfig) -> Result<Self, StudyError> {
        Ok(Self {
            method,
            behaviour: Behaviour::from_name(method.default_behaviour(), &cfg.behaviour_params())?,
            loss: Robust::Square,
            lr_scalar: cfg.lr_scalar,
            lr_values: cfg.lr_values,
            exact: false,
        })
    }

    /// A label: the method, then what differs from its defaults, e.g.
    /// `rtb-offpolicy[mix-source,huber:5]`.
    pub fn label(&self) -> String {
        let mut parts = Vec::new();
        if self.behaviour.name() != self.method.default_behaviour() {
            parts.push(self.behaviour.name().to_string());
        }
        if self.loss != Robust::Square {
            parts.push(self.loss.name());
        }
        if self.exact {
            parts.push("exact".into());
        }
        if parts.is_empty() {
            self.method.name().to_string()
        } else {
            format!("{}[{}]", self.method.name(), parts.join(","))
        }
    }

    /// Refuses combinations that do not exist.
    pub fn validate(&self) -> Result<(), StudyError> {
        self.behaviour.validate()?;
        if !self.method.off_policy() && self.behaviour != Behaviour::OnPolicy {
            return Err(StudyError::Config(format!(
                "{} is on-policy; behaviours apply to rtb-offpolicy, tpcl-replay, \
                 tpcl-replay-windowed and reinforce-kl-offpolicy",
                self.method.name()
            )));
        }
        if !self.method.squared_residual() && self.loss != Robust::Square {
            return Err(StudyError::Config(format!(
                "the loss {} applies to squared-residual methods, not {}",
                self.loss.name(),
                self.method.name()
            )));
        }
        if self.exact && self.loss != Robust::Square {
            return Err(StudyError::Config(
                "the exact expected-gradient mode takes the square loss only (a robust loss of \
                 the residual is not additive over edges)"
                    .into(),
            ));
        }
        for (what, lr) in [("lr_scalar", self.lr_scalar), ("lr_values", self.lr_values)] {
            if !(lr.is_finite() && lr > 0.0) {
                return Err(StudyError::Config(format!("{what} = {lr} must be > 0")));
            }
        }
        Ok(())
    }
}

/// Metrics at one point of training.
#[derive(Debug, Clone, Serialize)]
pub struct CurvePoint {
    /// Optimizer steps taken.
    pub iteration: usize,
    /// Trajectories consumed (`iteration · batch`; 0 in the exact mode).
    pub trajectories: usize,
    /// The exact metrics of the policy at that point.
    pub metrics: Metrics,
}

/// One training run.
#[derive(Debug, Clone, Serialize)]
pub struct RunResult {
    /// What was trained.
    pub spec: RunSpec,
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

/// `∂X/∂scalar` of a kernel, read off the kernel itself: its residual on one empty-valued
/// step (`log q = log p = log r = 0`) at scalar 1.
fn kernel_scalar_slope(method: Method) -> Result<f64, StudyError> {
    let batch =
        TrajectoryBatch::from_row_major(1, 1, vec![0.0], vec![0.0], vec![1], vec![0.0], BETA)?;
    let out = run_kernel(method, &batch, 1.0, None, 0.0)?;
    Ok(out.residual[0])
}

fn run_kernel(
    method: Method,
    batch: &TrajectoryBatch<f64>,
    scalar: f64,
    windows: Option<&Windows<f64>>,
    kappa: f64,
) -> Result<KernelOutput<f64>, StudyError> {
    let form = GradForm::PerTrajectory;
    let out = match (method, windows) {
        (Method::Rtb | Method::RtbOffPolicy, _) => {
            evaluate(batch, &Kernel::Rtb { log_z: scalar }, form)?
        }
        (Method::Tpcl | Method::TpclReplay, _) => {
            evaluate(batch, &Kernel::Tpcl { v0: scalar }, form)?
        }
        (Method::TpclWindowed | Method::TpclReplayWindowed, Some(w)) => {
            evaluate(batch, &Kernel::TpclWindowed { windows: w }, form)?
        }
        (Method::TpclWindowed | Method::TpclReplayWindowed, None) => {
            return Err(StudyError::Config("windowed kernel without windows".into()))
        }
        (Method::ReinforceKl | Method::ReinforceKlOffPolicy, _) => {
            evaluate(batch, &Kernel::ReinforceKl, form)?
        }
        (Method::FlawedBaseline, _) => evaluate(batch, &Kernel::Flawed { kappa }, form)?,
    };
    Ok(out)
}

/// Applies a robust loss to a squared-residual kernel's output: per trajectory the gradients
/// `g_i`, `∂L/∂V(s_start)`, `∂L/∂V(s_end)` are `X_i · (∂X/∂·)/B`, so they are multiplied by
/// `ψ(X_i)/X_i` (0 where `X_i = 0`, since `ψ(0) = 0`). Returns the scalar's gradient
/// `Σ_i ψ(X_i) · slope / B`.
pub fn apply_robust(out: &mut KernelOutput<f64>, loss: &Robust, scalar_slope: f64) -> f64 {
    let b = out.residual.len().max(1) as f64;
    let mut grad_scalar = 0.0;
    for i in 0..out.residual.len() {
        let x = out.residual[i];
        let psi: f64 = loss.derivative(&x);
        grad_scalar += psi * scalar_slope / b;
        let factor = if x == 0.0 { 0.0 } else { psi / x };
        out.g[i] *= factor;
        if let Some(gs) = out.grad_start.as_mut() {
            gs[i] *= factor;
        }
        if let Some(ge) = out.grad_end.as_mut() {
            ge[i] *= factor;
        }
    }
    grad_scalar
}

/// Trains one run from one seed; `tick` is called once per iteration.
pub fn train(
    dag: &DiffusionDag,
    reference: &Reference,
    spec: &RunSpec,
    cfg: &TrainConfig,
    seed: u64,
    tick: &(dyn Fn() + Sync),
) -> Result<RunResult, StudyError> {
    cfg.validate()?;
    spec.validate()?;
    let method = spec.method;
    let b = cfg.batch;
    let mut logits = dag.log_p().to_vec();
    let mut scalar = 0.0;
    let mut values = vec![0.0; dag.states()];
    let mut opt_logits = Adam::new(dag.edges(), cfg.lr)?;
    let mut opt_scalar = Adam::new(1, spec.lr_scalar)?;
    let mut opt_values = Adam::new(dag.states(), spec.lr_values)?;
    let mut sampler = Sampler::new(spec.behaviour)?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let scalar_slope = if method.has_scalar() {
        kernel_scalar_slope(method)?
    } else {
        0.0
    };
    let mut curve = Vec::new();
    let mut grad_v = vec![0.0; dag.states()];
    let mut grad_logits = vec![0.0; dag.edges()];
    let iterations = if spec.exact {
        cfg.exact_iterations
    } else {
        cfg.iterations
    };
    for it in 0..=iterations {
        if it % cfg.eval_every == 0 || it == iterations {
            let policy = TabularSoftmax::from_logits(dag.offsets().to_vec(), &logits)?;
            curve.push(CurvePoint {
                iteration: it,
                trajectories: if spec.exact { 0 } else { it * b },
                metrics: reference.metrics(dag, policy.probabilities())?,
            });
            if it == iterations {
                let terminal = super::metrics::occupancy(dag, policy.probabilities())?.terminal;
                let scalar = if method.has_scalar() {
                    Some(scalar)
                } else if method.windowed() {
                    Some(values[0])
                } else {
                    None
                };
                return Ok(RunResult {
                    spec: spec.clone(),
                    seed,
                    curve,
                    scalar,
                    terminal,
                });
            }
        }
        let grad_scalar = if spec.exact {
            let policy = TabularSoftmax::from_logits(dag.offsets().to_vec(), &logits)?;
            let q = policy.probabilities();
            let log_q = log_policy(dag, &logits);
            let pi = match method {
                // Score-function estimators: the expectation is the on-policy one.
                Method::ReinforceKl | Method::ReinforceKlOffPolicy | Method::FlawedBaseline => {
                    q.to_vec()
                }
                _ => spec.behaviour.edge_probabilities(dag, &logits, q)?,
            };
            let f = functional(dag, method, q, &log_q, scalar, cfg.kappa)?;
            let g = expected_gradient(dag, &f, q, &pi)?;
            grad_logits = g.logits;
            g.scalar
        } else {
            let s = sampler.draw(dag, &logits, b, &mut rng);
            sampled_step(
                dag,
                method,
                spec,
                cfg,
                &s,
                &logits,
                scalar,
                scalar_slope,
                &mut values,
                &mut opt_values,
                &mut grad_v,
                &mut grad_logits,
                &mut rng,
            )?
        };
        opt_logits.step(&mut logits, &grad_logits)?;
        if method.has_scalar() {
            let mut sc = [scalar];
            opt_scalar.step(&mut sc, &[grad_scalar])?;
            scalar = sc[0];
        }
        tick();
    }
    unreachable!("the loop returns at it == iterations")
}

/// One sampled iteration: the kernel on the batch, the robust loss, the windowed values'
/// step, the kernels' chain rule into `grad_logits`. Returns the scalar's gradient.
#[allow(clippy::too_many_arguments)]
fn sampled_step(
    dag: &DiffusionDag,
    method: Method,
    spec: &RunSpec,
    cfg: &TrainConfig,
    s: &Sampled,
    logits: &[f64],
    scalar: f64,
    scalar_slope: f64,
    values: &mut [f64],
    opt_values: &mut Adam,
    grad_v: &mut [f64],
    grad_logits: &mut [f64],
    rng: &mut ChaCha8Rng,
) -> Result<f64, StudyError> {
    let t = dag.trajectory_len();
    let b = s.len();
    let batch = TrajectoryBatch::from_row_major(
        b,
        t,
        s.log_q.clone(),
        s.log_p.clone(),
        vec![t; b],
        s.log_r.clone(),
        BETA,
    )?;
    let (mut start, mut end) = (vec![0usize; b], vec![t; b]);
    let windows = if method.windowed() {
        for k in 0..b {
            (start[k], end[k]) = uniform_window(t, rng);
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
        Some(Windows::new(&batch, start.clone(), end.clone(), vs, ve)?)
    } else {
        None
    };
    let mut out = run_kernel(method, &batch, scalar, windows.as_ref(), cfg.kappa)?;
    let mut grad_scalar = out.grad_scalar;
    if spec.loss != Robust::Square {
        grad_scalar = apply_robust(&mut out, &spec.loss, scalar_slope);
    }
    let g: Vec<f64> = match method {
        Method::ReinforceKlOffPolicy => weighted_reinforce(&out.residual, &s.log_weights(t))
            .as_slice()
            .to_vec(),
        _ => out.g.as_slice().to_vec(),
    };
    if method.windowed() {
        let (Some(gs), Some(ge)) = (&out.grad_start, &out.grad_end) else {
            return Err(StudyError::Diverged(
                "windowed kernel returned no boundary gradients".into(),
            ));
        };
        grad_v.fill(0.0);
        for k in 0..b {
            grad_v[s.states[k * t + start[k]] as usize] += gs[k];
            if end[k] < t {
                grad_v[s.states[k * t + end[k]] as usize] += ge[k];
            }
        }
        opt_values.step(values, grad_v)?;
    }
    let edges = DMatrix::from_vec(t, b, s.edges.clone());
    logit_gradient_visited(dag.offsets(), logits, &edges, &start, &end, &g, grad_logits)?;
    Ok(grad_scalar)
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
    fn equal_weights_give_the_on_policy_gradient() {
        let a = DVector::from_vec(vec![1.0, -0.5, -0.5]);
        let g = weighted_reinforce(&a, &[0.3, 0.3, 0.3]);
        for (gi, ai) in g.iter().zip(a.iter()) {
            assert!((gi + ai / 3.0).abs() < 1e-15);
        }
    }

    #[test]
    fn kernel_scalar_slopes() {
        assert_eq!(kernel_scalar_slope(Method::Rtb).unwrap(), 1.0);
        assert_eq!(kernel_scalar_slope(Method::Tpcl).unwrap(), -1.0);
    }

    #[test]
    fn square_robust_leaves_the_kernel_unchanged_and_huber_clips() {
        let batch = TrajectoryBatch::from_row_major(
            3,
            1,
            vec![-0.5, -1.0, -2.0],
            vec![-1.0, -1.0, -1.0],
            vec![1, 1, 1],
            vec![0.0, -20.0, 1.0],
            BETA,
        )
        .unwrap();
        let base = run_kernel(Method::Rtb, &batch, 0.3, None, 0.0).unwrap();
        let mut sq = base.clone();
        let gs = apply_robust(&mut sq, &Robust::Square, 1.0);
        assert!((gs - base.grad_scalar).abs() < 1e-15);
        assert_eq!(sq.g, base.g);
        let mut hu = base.clone();
        let c = crate::exact::Rational::from_integer(5.into());
        apply_robust(&mut hu, &Robust::Huber(c), 1.0);
        // δ = 0.3 + 0.5 = 0.8 (inside), 0.3 + 0 + 20 = 20.3 (clipped to 5), 0.3 − 1 − 1 = −1.7.
        assert!((hu.g[0] - base.g[0]).abs() < 1e-15);
        assert!((hu.g[1] - 5.0 / 3.0).abs() < 1e-12);
        assert!((hu.g[2] - base.g[2]).abs() < 1e-15);
    }
}

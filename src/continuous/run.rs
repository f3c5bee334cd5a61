//! Configurations, the training loop and the results of the continuous experiment.
use super::methods::{
    half_mean_square, kl_div_statistic, rl_corrected_loss, rl_corrected_offpolicy_loss,
    rl_flawed_loss, rtb_residual, scalar, snis_weights, squeeze_value, trust_pcl_full,
    trust_pcl_step_terms, trust_pcl_windows, Method,
};
use super::metrics::{evaluate, Evaluation};
use super::network::PisNet;
use super::prior::PriorConfig;
use super::sde::{exploration_std, Sde};
use super::target::Reward;
use super::{ContinuousError, Result};
use candle_core::backprop::GradStore;
use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use std::time::Instant;

/// Keeps freed tensor buffers in the heap (glibc): every iteration allocates the same large
/// buffers, and returning them to the kernel each time costs page faults and zeroing. Called
/// before the first training iteration (and before any worker thread allocates).
pub fn tune_allocator() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        // SAFETY: mallopt only sets allocator parameters; called once, before the buffers.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 30);
            libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
            // One arena: a worker thread's arena grows by heaps of at most 64 MB and serves
            // the 13 MB tensors by mmap, page-faulting every time (measured: 3.7× the page
            // faults and 2.4 s of system time in 20 iterations with two shards).
            libc::mallopt(libc::M_ARENA_MAX, 1);
        }
    });
}

/// CPU seconds (user + system, all threads) used by this process so far; `None` where the
/// platform does not say.
pub fn process_cpu_seconds() -> Option<f64> {
    #[cfg(unix)]
    {
        let mut u = std::mem::MaybeUninit::<libc::rusage>::zeroed();
        // SAFETY: getrusage fills the struct it is given; RUSAGE_SELF is always valid.
        let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, u.as_mut_ptr()) };
        if rc != 0 {
            return None;
        }
        // SAFETY: getrusage returned 0, so the struct is initialised.
        let u = unsafe { u.assume_init() };
        let t = |v: libc::timeval| v.tv_sec as f64 + v.tv_usec as f64 * 1e-6;
        Some(t(u.ru_utime) + t(u.ru_stime))
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// Everything that defines a run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Config {
    /// Euler–Maruyama steps `T`.
    pub steps: usize,
    /// Diffusion coefficient `σ²` (per-step std `√(σ²·dt)`).
    pub sigma2: f64,
    /// Hidden width of the networks.
    pub hidden: usize,
    /// Trajectories per iteration.
    pub batch: usize,
    /// Fine-tuning iterations.
    pub iterations: usize,
    /// Adam learning rate of the policy (and of the value network).
    pub lr: f64,
    /// Adam learning rate of the scalar `log Z` / `V(s0)`.
    pub lr_scalar: f64,
    /// Inverse temperature β (α = 1/β).
    pub beta: f64,
    /// Weight κ of the flawed baseline's squared log-ratio.
    pub kappa: f64,
    /// Exploration factor (extra per-step std) of the schedule.
    pub exploration: f64,
    /// Window length `d` of the windowed Trust-PCL (divides `steps`).
    pub window: usize,
    /// Samples of the final evaluation (and of the plots).
    pub eval_samples: usize,
    /// Samples of the evaluations along the learning curve.
    pub curve_samples: usize,
    /// Evaluate every this many iterations (0: final only).
    pub eval_every: usize,
    /// Computation in f64 instead of f32.
    pub f64: bool,
    /// Shards of each batch, sampled and differentiated in parallel (data parallelism, one
    /// rayon task each); results depend on the number of shards (each has its own noise
    /// stream), never on the number of threads.
    pub shards: usize,
    /// The prior pretraining.
    pub prior: PriorConfig,
}

impl Config {
    /// The paper's configuration: T = 100, σ² = 5, width 64, batch 500, 5000 iterations,
    /// lr 1e-3 (log Z lr 0.1); the prior trained 10 000 iterations as in `pretrain_prior.py`.
    pub fn full() -> Self {
        Self {
            steps: 100,
            sigma2: 5.0,
            hidden: 64,
            batch: 500,
            iterations: 5000,
            lr: 1e-3,
            lr_scalar: 0.1,
            beta: 1.0,
            kappa: 0.01,
            exploration: 0.5,
            window: 10,
            eval_samples: 2000,
            curve_samples: 500,
            eval_every: 250,
            f64: false,
            shards: 2,
            prior: PriorConfig {
                iterations: 10_000,
                batch: 500,
                lr: 1e-3,
                hidden: 64,
                seed: 12345,
            },
        }
    }

    /// A configuration that runs in minutes on 2 cores: the paper's model and sampler, batch
    /// 500, 600 iterations (schedule rescaled), a prior trained 1500 iterations.
    pub fn quick() -> Self {
        let mut c = Self::full();
        c.iterations = 600;
        c.eval_every = 100;
        c.prior.iterations = 1500;
        c
    }

    /// A tiny configuration for tests (seconds): T = 10, width 16, batch 16.
    pub fn tiny() -> Self {
        Self {
            steps: 10,
            sigma2: 5.0,
            hidden: 16,
            batch: 16,
            iterations: 3,
            lr: 1e-3,
            lr_scalar: 0.1,
            beta: 1.0,
            kappa: 0.01,
            exploration: 0.5,
            window: 5,
            eval_samples: 64,
            curve_samples: 32,
            eval_every: 0,
            f64: true,
            shards: 2,
            prior: PriorConfig {
                iterations: 3,
                batch: 16,
                lr: 1e-3,
                hidden: 16,
                seed: 1,
            },
        }
    }

    /// Rejects invalid values with a clear message.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(ContinuousError::BadInput(m));
        for (name, v) in [
            ("sigma2", self.sigma2),
            ("lr", self.lr),
            ("lr-scalar", self.lr_scalar),
            ("beta", self.beta),
            ("prior lr", self.prior.lr),
        ] {
            if !v.is_finite() || v <= 0.0 {
                return bad(format!("{name} must be a positive finite number, got {v}"));
            }
        }
        for (name, v) in [("kappa", self.kappa), ("exploration", self.exploration)] {
            if !v.is_finite() || v < 0.0 {
                return bad(format!("{name} must be a finite number ≥ 0, got {v}"));
            }
        }
        for (name, v) in [
            ("steps", self.steps),
            ("hidden", self.hidden),
            ("batch", self.batch),
            ("eval-samples", self.eval_samples),
            ("curve samples", self.curve_samples),
            ("prior batch", self.prior.batch),
        ] {
            if v == 0 {
                return bad(format!("{name} must be positive"));
            }
        }
        if self.steps < 2 {
            return bad("steps must be at least 2".into());
        }
        if self.shards == 0 || self.shards > self.batch {
            return bad(format!(
                "shards must be between 1 and the batch size {}, got {}",
                self.batch, self.shards
            ));
        }
        if self.batch < 2 {
            return bad("batch must be at least 2 (the baselines centre by the batch mean)".into());
        }
        if self.window == 0 || !self.steps.is_multiple_of(self.window) {
            return bad(format!(
                "window {} must divide the number of steps {}",
                self.window, self.steps
            ));
        }
        if self.hidden != self.prior.hidden {
            return bad("the policy and the prior must have the same width".into());
        }
        Ok(())
    }

    /// The SDE of this configuration.
    pub fn sde(&self) -> Sde {
        Sde {
            steps: self.steps,
            sigma2: self.sigma2,
        }
    }

    /// The tensor dtype.
    pub fn dtype(&self) -> DType {
        if self.f64 {
            DType::F64
        } else {
            DType::F32
        }
    }
}

/// One point of a learning curve (training statistics).
#[derive(Debug, Clone, serde::Serialize)]
pub struct CurvePoint {
    /// Iteration.
    pub iteration: usize,
    /// The training loss.
    pub loss: f64,
    /// The paper's `kl_div` on the training batch.
    pub kl_div: f64,
    /// The learned `log Z` estimate (`log Z`, `V(s0)/α`), if the method has one.
    pub log_z: Option<f64>,
    /// The exploration std used.
    pub exploration: f64,
}

/// An evaluation along the learning curve.
#[derive(Debug, Clone, serde::Serialize)]
pub struct EvalPoint {
    /// Iteration.
    pub iteration: usize,
    /// The evaluation.
    pub eval: Evaluation,
}

/// The result of one (method, seed) run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RunResult {
    /// Method name.
    pub method: String,
    /// Seed.
    pub seed: u64,
    /// Iterations run.
    pub iterations: usize,
    /// Seconds spent in training iterations (evaluations excluded).
    pub train_seconds: f64,
    /// `train_seconds / iterations`.
    pub seconds_per_iteration: f64,
    /// CPU seconds (all threads) per training iteration, evaluations excluded: on a shared
    /// machine this is the load-independent measure of cost.
    pub cpu_seconds_per_iteration: Option<f64>,
    /// The 1-minute load average at the end of the run (Linux), beside the timings.
    pub load_average: Option<f64>,
    /// The learned `log Z` estimate at the end, if any.
    pub log_z_learned: Option<f64>,
    /// Training statistics, every few iterations.
    pub curve: Vec<CurvePoint>,
    /// Evaluations along training.
    pub evals: Vec<EvalPoint>,
    /// The final evaluation.
    pub final_eval: Evaluation,
}

fn to_f64(t: &Tensor) -> Result<f64> {
    Ok(t.to_dtype(DType::F64)?.to_scalar::<f64>()?)
}

fn adam(vars: Vec<Var>, lr: f64) -> Result<AdamW> {
    Ok(AdamW::new(
        vars,
        ParamsAdamW {
            lr,
            weight_decay: 0.0,
            ..ParamsAdamW::default()
        },
    )?)
}

/// The learner of one run: policy, scalar, optional value network and their optimisers.
pub struct Learner {
    /// The fine-tuned policy.
    pub policy: PisNet,
    /// `log Z` (RTB) or `V(s0)` (full Trust-PCL).
    pub scalar: Var,
    /// `V(t, x)` for the windowed Trust-PCL.
    pub value: Option<PisNet>,
    opt_policy: AdamW,
    opt_scalar: AdamW,
    opt_value: Option<AdamW>,
}

impl Learner {
    /// A learner starting from the prior's weights.
    pub fn new(cfg: &Config, prior: &PisNet, method: Method, rng: &mut ChaCha8Rng) -> Result<Self> {
        let policy = prior.deep_clone()?;
        let scalar = Var::from_tensor(&scalar(0.0, cfg.dtype())?)?;
        let value = if method == Method::TrustPclWindowed {
            Some(PisNet::new(cfg.hidden, 1, cfg.dtype(), rng)?)
        } else {
            None
        };
        Ok(Self {
            opt_policy: adam(policy.vars.clone(), cfg.lr)?,
            opt_scalar: adam(vec![scalar.clone()], cfg.lr_scalar)?,
            opt_value: match &value {
                Some(v) => Some(adam(v.vars.clone(), cfg.lr)?),
                None => None,
            },
            policy,
            scalar,
            value,
        })
    }
}

/// The outcome of one loss evaluation on a batch.
pub struct StepOutcome {
    /// The loss (tracked).
    pub loss: Tensor,
    /// The paper's `kl_div` on the batch.
    pub kl_div: f64,
    /// The learned `log Z` estimate, if any.
    pub log_z: Option<f64>,
}

/// The loss of `method` on a whole batch, from its per-step log-densities `log q` `(T, B)`
/// (tracked, or a leaf standing in for them), `log p`, `log r`, the states `(T+1, B, 2)` (for
/// the windowed value network) and, off-policy, the behaviour's `log b`.
#[allow(clippy::too_many_arguments)]
pub fn method_loss(
    cfg: &Config,
    learner: &Learner,
    method: Method,
    lq: &Tensor,
    lp: &Tensor,
    log_r: &Tensor,
    states: &Tensor,
    log_b: &[f64],
) -> Result<StepOutcome> {
    let sde = cfg.sde();
    let alpha = 1.0 / cfg.beta;
    let z = learner.scalar.as_tensor();
    Ok(match method {
        Method::Rtb => StepOutcome {
            loss: half_mean_square(&rtb_residual(z, lq, lp, log_r, cfg.beta)?)?,
            kl_div: kl_div_statistic(lq, lp, None)?,
            log_z: Some(to_f64(z)?),
        },
        Method::TrustPcl => {
            let terms = trust_pcl_step_terms(lq, lp, log_r, alpha)?;
            StepOutcome {
                loss: half_mean_square(&trust_pcl_full(z, &terms)?)?,
                kl_div: kl_div_statistic(lq, lp, None)?,
                log_z: Some(to_f64(z)? / alpha),
            }
        }
        Method::TrustPclWindowed => {
            let value = learner
                .value
                .as_ref()
                .ok_or_else(|| ContinuousError::BadInput("no value network".into()))?;
            let w = cfg.steps / cfg.window;
            let idx: Vec<u32> = (0..w).map(|i| (i * cfg.window) as u32).collect();
            let times: Vec<f64> = idx.iter().map(|&i| i as f64 * sde.dt()).collect();
            let idx = Tensor::from_vec(idx, w, &Device::Cpu)?;
            let xw = states.index_select(&idx, 0)?;
            let temb = value.time_embedding(&times, true)?;
            let v = squeeze_value(&value.forward_grid(&xw, &temb, true)?)?;
            let terms = trust_pcl_step_terms(lq, lp, log_r, alpha)?;
            let c = trust_pcl_windows(&v, &terms, cfg.window)?;
            let v0 = to_f64(&v.narrow(0, 0, 1)?.mean_all()?)?;
            StepOutcome {
                loss: (c.sqr()?.sum(0)?.mean_all()? * 0.5)?,
                kl_div: kl_div_statistic(lq, lp, None)?,
                log_z: Some(v0 / alpha),
            }
        }
        Method::Rl => StepOutcome {
            loss: rl_flawed_loss(lq, lp, log_r, cfg.kappa)?,
            kl_div: kl_div_statistic(lq, lp, None)?,
            log_z: None,
        },
        Method::RlCorrected => StepOutcome {
            loss: rl_corrected_loss(lq, lp, log_r, alpha)?,
            kl_div: kl_div_statistic(lq, lp, None)?,
            log_z: None,
        },
        Method::RlCorrectedOffpolicy => {
            let w = snis_weights(lq, log_b)?;
            StepOutcome {
                loss: rl_corrected_offpolicy_loss(lq, lp, log_r, log_b, alpha)?,
                kl_div: kl_div_statistic(lq, lp, Some(&w))?,
                log_z: None,
            }
        }
    })
}

/// Samples a batch as `cfg.shards` shards of (almost) equal size with exploration std `expl`:
/// one shard draws from `rng` itself; several draw from their own streams seeded from `rng`,
/// in parallel.
pub fn sample_shards(
    cfg: &Config,
    policy: &PisNet,
    expl: f64,
    rng: &mut ChaCha8Rng,
) -> Result<Vec<super::sde::Trajectories>> {
    let sde = cfg.sde();
    if cfg.shards <= 1 {
        return Ok(vec![sde.sample(policy, cfg.batch, expl, rng)?]);
    }
    let jobs: Vec<(usize, u64)> = (0..cfg.shards)
        .map(|s| {
            let size = cfg.batch / cfg.shards + usize::from(s < cfg.batch % cfg.shards);
            (size, rng.next_u64())
        })
        .collect();
    jobs.into_par_iter()
        .map(|(size, seed)| {
            let mut shard_rng = ChaCha8Rng::seed_from_u64(seed);
            sde.sample(policy, size, expl, &mut shard_rng)
        })
        .collect()
}

/// What one shard contributes: its tracked `log q`, and the untracked rest.
struct ShardScores {
    log_q: Tensor,
    log_p: Tensor,
    log_r: Tensor,
    states: Tensor,
    log_b: Vec<f64>,
}

/// One training step's loss statistics and the gradients of every learned parameter.
pub struct StepGradients {
    /// The loss value.
    pub loss: f64,
    /// The paper's `kl_div` on the batch.
    pub kl_div: f64,
    /// The learned `log Z` estimate, if any.
    pub log_z: Option<f64>,
    /// Gradients of the policy, the scalar and the value network.
    pub grads: GradStore,
}

/// The loss of `method` on the batch made of `shards` and the gradients of every parameter.
///
/// Each shard is scored in parallel (policy and prior, one batched network call each). The
/// loss is then formed on the whole batch exactly as [`method_loss`] defines it, with the
/// shards' `log q` replaced by one leaf tensor of the same values; its backward pass gives
/// `∂L/∂log q` (and the gradients of `log Z`, `V(s0)` and the value network). Each shard then
/// back-propagates `Σ ∂L/∂log q ⊙ log q` through its own graph, in parallel: by the chain
/// rule the shards' gradients sum to the gradient of the batch loss (tested against the
/// unsharded backward pass in `tests/continuous.rs`). With one shard the loss is
/// differentiated directly.
pub fn shard_gradients(
    cfg: &Config,
    learner: &Learner,
    prior: &PisNet,
    reward: &Reward,
    method: Method,
    expl: f64,
    shards: &[super::sde::Trajectories],
) -> Result<StepGradients> {
    let sde = cfg.sde();
    let dtype = cfg.dtype();
    let scores: Vec<ShardScores> = shards
        .par_iter()
        .map(|traj| -> Result<ShardScores> {
            let states = traj.to_tensor(dtype)?;
            let sld = sde.step_log_density(&learner.policy, &states, true)?;
            let log_p = sde.step_log_density(prior, &states, false)?.log_q;
            let log_r: Vec<f64> = traj
                .terminals()
                .iter()
                .map(|x| reward.log_reward(*x))
                .collect();
            let log_r = Tensor::from_vec(log_r, traj.batch, &Device::Cpu)?.to_dtype(dtype)?;
            let log_b = if method == Method::RlCorrectedOffpolicy {
                sde.behaviour_log_density(traj, &sld.drift, expl)?
            } else {
                Vec::new()
            };
            Ok(ShardScores {
                log_q: sld.log_q,
                log_p,
                log_r,
                states,
                log_b,
            })
        })
        .collect::<Result<_>>()?;
    if let [one] = scores.as_slice() {
        let out = method_loss(
            cfg,
            learner,
            method,
            &one.log_q,
            &one.log_p,
            &one.log_r,
            &one.states,
            &one.log_b,
        )?;
        return Ok(StepGradients {
            loss: to_f64(&out.loss)?,
            kl_div: out.kl_div,
            log_z: out.log_z,
            grads: out.loss.backward()?,
        });
    }
    let cat = |f: &dyn Fn(&ShardScores) -> Tensor, dim: usize| -> Result<Tensor> {
        Ok(Tensor::cat(&scores.iter().map(f).collect::<Vec<_>>(), dim)?)
    };
    let leaf = Var::from_tensor(&cat(&|s| s.log_q.detach(), 1)?)?;
    let log_p = cat(&|s| s.log_p.clone(), 1)?;
    let log_r = cat(&|s| s.log_r.clone(), 0)?;
    let states = cat(&|s| s.states.clone(), 1)?;
    let log_b: Vec<f64> = scores.iter().flat_map(|s| s.log_b.clone()).collect();
    let out = method_loss(
        cfg,
        learner,
        method,
        leaf.as_tensor(),
        &log_p,
        &log_r,
        &states,
        &log_b,
    )?;
    let mut grads = out.loss.backward()?;
    let seed = grads.remove(leaf.as_tensor()).ok_or_else(|| {
        ContinuousError::BadInput(format!("{}: loss without log q", method.name()))
    })?;
    let mut offsets = Vec::with_capacity(scores.len());
    let mut at = 0;
    for s in &scores {
        offsets.push(at);
        at += s.log_q.dim(1)?;
    }
    let shard_grads: Vec<GradStore> = scores
        .par_iter()
        .zip(offsets)
        .map(|(s, off)| -> Result<GradStore> {
            let g = seed.narrow(1, off, s.log_q.dim(1)?)?.detach();
            Ok((&s.log_q * &g)?.sum_all()?.backward()?)
        })
        .collect::<Result<_>>()?;
    for g in shard_grads {
        grads.extend(g)?;
    }
    Ok(StepGradients {
        loss: to_f64(&out.loss)?,
        kl_div: out.kl_div,
        log_z: out.log_z,
        grads,
    })
}

/// Fine-tunes a copy of `prior` with `method` and `seed`; `progress(iteration)` after each
/// iteration.
pub fn train(
    cfg: &Config,
    prior: &PisNet,
    method: Method,
    seed: u64,
    mut progress: impl FnMut(usize),
) -> Result<RunResult> {
    cfg.validate()?;
    tune_allocator();
    let reward = Reward::default();
    let sde = cfg.sde();
    let mut rng = ChaCha8Rng::seed_from_u64(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xC0FFEE);
    let mut eval_rng = ChaCha8Rng::seed_from_u64(seed ^ 0xE7A1);
    let mut learner = Learner::new(cfg, prior, method, &mut rng)?;
    let record_every = (cfg.iterations / 250).max(1);
    let mut curve = Vec::new();
    let mut evals = Vec::new();
    let mut train_seconds = 0.0;
    let mut train_cpu = Some(0.0);
    let mut last_log_z = None;
    for it in 0..cfg.iterations {
        if cfg.eval_every > 0 && it % cfg.eval_every == 0 {
            let eval = evaluate(
                &learner.policy,
                prior,
                &sde,
                &reward,
                cfg.curve_samples,
                &mut eval_rng,
            )?;
            evals.push(EvalPoint {
                iteration: it,
                eval,
            });
        }
        let start = Instant::now();
        let cpu_start = process_cpu_seconds();
        let expl = if method.explores() {
            exploration_std(it, cfg.iterations, cfg.exploration)
        } else {
            0.0
        };
        let shards = sample_shards(cfg, &learner.policy, expl, &mut rng)?;
        let tb = Instant::now();
        let out = shard_gradients(cfg, &learner, prior, &reward, method, expl, &shards)?;
        let loss = out.loss;
        if !loss.is_finite() {
            return Err(ContinuousError::NonFinite(format!(
                "{} loss at iteration {it} (seed {seed})",
                method.name()
            )));
        }
        let to = Instant::now();
        learner.opt_policy.step(&out.grads)?;
        learner.opt_scalar.step(&out.grads)?;
        if let Some(o) = learner.opt_value.as_mut() {
            o.step(&out.grads)?;
        }
        if std::env::var_os("RTB_DIFFUSION_PROFILE").is_some() {
            eprintln!(
                "profile: sample {:.3} s, scores and gradients {:.3} s, adam {:.3} s",
                (tb - start).as_secs_f64(),
                (to - tb).as_secs_f64(),
                to.elapsed().as_secs_f64()
            );
        }
        train_seconds += start.elapsed().as_secs_f64();
        train_cpu = match (train_cpu, cpu_start, process_cpu_seconds()) {
            (Some(acc), Some(a), Some(b)) => Some(acc + (b - a)),
            _ => None,
        };
        last_log_z = out.log_z;
        if it % record_every == 0 || it + 1 == cfg.iterations {
            curve.push(CurvePoint {
                iteration: it,
                loss,
                kl_div: out.kl_div,
                log_z: out.log_z,
                exploration: expl,
            });
        }
        progress(it);
    }
    // The learned estimate after the last update.
    let log_z_learned = match method {
        Method::Rtb => Some(to_f64(learner.scalar.as_tensor())?),
        Method::TrustPcl => Some(to_f64(learner.scalar.as_tensor())? * cfg.beta),
        Method::TrustPclWindowed => last_log_z,
        _ => None,
    };
    let final_eval = evaluate(
        &learner.policy,
        prior,
        &sde,
        &reward,
        cfg.eval_samples,
        &mut eval_rng,
    )?;
    Ok(RunResult {
        method: method.name().to_string(),
        seed,
        iterations: cfg.iterations,
        train_seconds,
        seconds_per_iteration: train_seconds / cfg.iterations.max(1) as f64,
        cpu_seconds_per_iteration: train_cpu.map(|c| c / cfg.iterations.max(1) as f64),
        load_average: load_average(),
        log_z_learned,
        curve,
        evals,
        final_eval,
    })
}

/// The 1-minute load average (Linux `/proc/loadavg`).
pub fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Mean and sample standard deviation.
pub fn mean_std(xs: &[f64]) -> (f64, f64) {
    let n = xs.len() as f64;
    if xs.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let m = xs.iter().sum::<f64>() / n;
    let s = if xs.len() > 1 {
        (xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
    } else {
        0.0
    };
    (m, s)
}

/// One row of the results table: a method's final metrics over seeds.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Summary {
    /// Method name.
    pub method: String,
    /// Number of seeds.
    pub seeds: usize,
    /// (mean, std) of the learned `log Z` (absent for the REINFORCE methods).
    pub log_z_learned: Option<(f64, f64)>,
    /// (mean, std) of `log Ẑ_IS`.
    pub log_z_is: (f64, f64),
    /// (mean, std) of the ELBO.
    pub elbo: (f64, f64),
    /// (mean, std) of the bridge EUBO.
    pub eubo: (f64, f64),
    /// (mean, std) of the mode-mass total variation.
    pub mode_tv: (f64, f64),
    /// (mean, std) of its exact-sample noise floor.
    pub mode_tv_floor: (f64, f64),
    /// (mean, std) of the energy distance.
    pub energy_distance: (f64, f64),
    /// (mean, std) of its exact-sample noise floor.
    pub energy_floor: (f64, f64),
    /// (mean, std) of the paper's `kl_div` on on-policy samples.
    pub kl_div: (f64, f64),
    /// Mean seconds per training iteration.
    pub seconds_per_iteration: f64,
    /// Mean CPU seconds per training iteration.
    pub cpu_seconds_per_iteration: Option<f64>,
}

/// Summarises runs by method (in the order of first appearance).
pub fn summarise(runs: &[RunResult]) -> Vec<Summary> {
    let mut methods: Vec<&str> = Vec::new();
    for r in runs {
        if !methods.contains(&r.method.as_str()) {
            methods.push(&r.method);
        }
    }
    methods
        .iter()
        .map(|m| {
            let rs: Vec<&RunResult> = runs.iter().filter(|r| r.method == *m).collect();
            let col = |f: &dyn Fn(&RunResult) -> f64| -> (f64, f64) {
                mean_std(&rs.iter().map(|r| f(r)).collect::<Vec<_>>())
            };
            let lz: Vec<f64> = rs.iter().filter_map(|r| r.log_z_learned).collect();
            Summary {
                method: m.to_string(),
                seeds: rs.len(),
                log_z_learned: if lz.is_empty() {
                    None
                } else {
                    Some(mean_std(&lz))
                },
                log_z_is: col(&|r| r.final_eval.log_z_is),
                elbo: col(&|r| r.final_eval.elbo),
                eubo: col(&|r| r.final_eval.eubo),
                mode_tv: col(&|r| r.final_eval.mode_tv),
                mode_tv_floor: col(&|r| r.final_eval.mode_tv_floor),
                energy_distance: col(&|r| r.final_eval.energy_distance),
                energy_floor: col(&|r| r.final_eval.energy_floor),
                kl_div: col(&|r| r.final_eval.kl_div),
                seconds_per_iteration: col(&|r| r.seconds_per_iteration).0,
                cpu_seconds_per_iteration: rs
                    .iter()
                    .map(|r| r.cpu_seconds_per_iteration)
                    .sum::<Option<f64>>()
                    .map(|c| c / rs.len() as f64),
            }
        })
        .collect()
}

/// The results table in Markdown.
pub fn markdown_table(rows: &[Summary]) -> String {
    let pm = |v: (f64, f64)| format!("{:.3} ± {:.3}", v.0, v.1);
    let mut s = String::from(
        "| method | seeds | learned log Z | log Ẑ_IS | ELBO | EUBO | mode TV (floor) | energy dist. (floor) | paper kl_div | s/iter (CPU s/iter) |\n\
         |---|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} ({:.3}) | {} ({:.4}) | {} | {:.3} ({}) |\n",
            r.method,
            r.seeds,
            r.log_z_learned.map(pm).unwrap_or_else(|| "—".into()),
            pm(r.log_z_is),
            pm(r.elbo),
            pm(r.eubo),
            pm(r.mode_tv),
            r.mode_tv_floor.0,
            pm(r.energy_distance),
            r.energy_floor.0,
            pm(r.kl_div),
            r.seconds_per_iteration,
            r.cpu_seconds_per_iteration
                .map(|c| format!("{c:.3}"))
                .unwrap_or_else(|| "—".into()),
        ));
    }
    s
}

//! The f64 kernels against the exact engine, on trajectories sampled from `spec/` environments.
//!
//! For each environment: trajectories are sampled from its posterior `q` (seeded); every
//! per-edge `log q`, `log p` and per-terminal `log r` is an exact log-form of the exact engine
//! ([`LogTable`]), converted to `f64` **once** ([`Ball::from_logform`], with a rigorous radius);
//! the midpoints form a [`TrajectoryBatch<f64>`] on which every kernel runs. The expected
//! values come from the objectives' one definition ([`crate::objectives::Definitions`]),
//! evaluated by the one evaluator ([`crate::objectives::evaluate_with_gradients`]) in ball
//! arithmetic on the balls themselves: each result is a ball that encloses the objective's
//! value (and, through dual numbers, its gradient) both at the exact inputs and at the
//! converted ones. Nothing here writes an objective's formula again.
//!
//! # Tolerance (derivation in `docs/error-bounds.md`, "Against the exact engine")
//! For each compared output `v` (per-trajectory residual and gradient, loss, scalar and
//! boundary gradients), let `v̂` be the kernel's value, `e_k` its rounding bound
//! ([`super::bounds::kernel_bounds`]: `|v̂ − v(x̂)| ≤ e_k`, `x̂` the converted inputs), and `B` the
//! evaluator's ball. Both `v(x*)` (the exact value) and `v(x̂)` lie in `B`, so a correct kernel
//! satisfies `|v̂ − mid B| ≤ e_k + rad B`; the check's ratio is `|v̂ − mid B| / (e_k + rad B)`
//! (times `1 + 10⁻⁶` for evaluating bounds in f64, plus the comparison's own rounding).
//!
//! With a mutant, the kernels run the mutated definitions and the reference stays correct: a
//! negative control showing the check detects a kernel computing another objective.
use nalgebra::DVector;
use num_traits::ToPrimitive;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::ball::Ball;
use super::bounds::{kernel_bounds, ParamErrors, EVAL_SLACK};
use super::error::{AgreementError, EnvironmentProblem};
use super::report::CheckResult;
use super::spec_sample::Sampler;
use crate::dag::{self, Environment, LogTable};
use crate::exact::{LogForm, Rational};
use crate::kernels::batch::{TrajectoryBatch, Windows};
use crate::kernels::fused::{evaluate_with, GradForm, Kernel, KernelId, KernelOutput, Shape};
use crate::kernels::sum::Summation;
use crate::mutant::Mutant;
use crate::objectives::{evaluate_with_gradients, Definitions, Trajectory, Window};

const U: f64 = f64::EPSILON / 2.0;

/// Options of the exact-engine checks.
#[derive(Debug, Clone, Copy)]
pub struct ExactSpecOptions {
    /// Trajectories sampled per environment.
    pub samples: usize,
    /// Seed of the sampler (and of the windows).
    pub seed: u64,
    /// A deliberately wrong kernel variant (the exact side stays correct).
    pub mutant: Option<Mutant>,
}

impl Default for ExactSpecOptions {
    fn default() -> Self {
        Self {
            samples: 256,
            seed: 0,
            mutant: None,
        }
    }
}

/// The kernels compared, in order (the check ids are `exact-spec/<kernel>`).
pub const EXACT_KERNELS: [KernelId; 7] = KernelId::ALL;

/// Running maximum of ratio and absolute error.
#[derive(Debug, Clone, Copy, Default)]
struct Acc {
    ratio: f64,
    abs: f64,
}

impl Acc {
    /// `v̂` (kernel, rounding bound `kb`) against the ball `b`.
    fn add(&mut self, v: f64, kb: f64, b: Ball) {
        let d = (v - b.mid).abs();
        let bound = (kb + b.rad) * (1.0 + EVAL_SLACK) + 2.0 * U * (v.abs() + b.mid.abs());
        let r = if d == 0.0 {
            0.0
        } else if bound == 0.0 || !d.is_finite() {
            f64::INFINITY
        } else {
            d / bound
        };
        self.ratio = self.ratio.max(r);
        self.abs = self.abs.max(if d.is_nan() { f64::INFINITY } else { d });
    }
    fn merge(&mut self, o: Acc) {
        self.ratio = self.ratio.max(o.ratio);
        self.abs = self.abs.max(o.abs);
    }
}

/// Runs the checks on every environment and returns one check per kernel
/// (`exact-spec/<kernel>`), each the worst over the environments.
pub fn exact_spec_checks(
    envs: &[Environment],
    opts: &ExactSpecOptions,
) -> Result<Vec<CheckResult>, AgreementError> {
    if opts.samples == 0 {
        return Err(AgreementError::Option {
            option: "--exact-samples",
            range: "at least 1",
            value: "0".into(),
        });
    }
    let mut accs = [Acc::default(); 7];
    for (k, env) in envs.iter().enumerate() {
        let per = env_accs(env, opts, opts.seed.wrapping_add(k as u64))
            .map_err(|e| e.in_file(&env.file))?;
        for (a, p) in accs.iter_mut().zip(per) {
            a.merge(p);
        }
    }
    Ok(EXACT_KERNELS
        .iter()
        .zip(accs)
        .map(|(id, a)| CheckResult {
            id: format!("exact-spec/{}", id.name()),
            holds: a.ratio <= 1.0,
            max_error_over_bound: a.ratio,
            max_abs_error: a.abs,
        })
        .collect())
}

fn ball(form: &LogForm, what: &str) -> Result<Ball, EnvironmentProblem> {
    Ball::from_logform(form).ok_or_else(|| EnvironmentProblem::NotFloat(what.into()))
}

/// One environment: sample, build the batch, run each kernel, compare.
fn env_accs(
    env: &Environment,
    opts: &ExactSpecOptions,
    seed: u64,
) -> Result<[Acc; 7], EnvironmentProblem> {
    let n = opts.samples;
    let optimum = dag::optimum(env).ok();
    let logs = LogTable::new(env, optimum.as_ref())?;
    let sampler = Sampler::new(env)?;
    let t = sampler.longest().max(1);
    let (paths, lengths) = sampler.sample(n, seed)?;
    let path = |i: usize| -> Vec<usize> {
        paths[i * t..i * t + lengths[i]]
            .iter()
            .map(|&e| e as usize)
            .collect()
    };

    // Exact numbers, converted once.
    let lq: Vec<Ball> = logs
        .log_posterior
        .iter()
        .map(|f| ball(f, "log q"))
        .collect::<Result<_, _>>()?;
    let lp: Vec<Ball> = logs
        .log_prior
        .iter()
        .map(|f| ball(f, "log p"))
        .collect::<Result<_, _>>()?;
    let lr: Vec<Option<Ball>> = logs
        .log_reward
        .iter()
        .map(|f| f.as_ref().map(|f| ball(f, "log r")).transpose())
        .collect::<Result<_, _>>()?;
    let beta_hat = env
        .beta
        .to_f64()
        .filter(|b| b.is_finite() && *b > 0.0)
        .ok_or_else(|| {
            EnvironmentProblem::NotFloat(format!("β = {} (as a positive float)", env.beta))
        })?;
    // The kernels' objectives at their β̂ (a rational: every f64 is); the flawed baseline's κ
    // is set to 1/2 here so that the kernel's κ is exact in f64.
    let mut defs = Definitions::from_f64(beta_hat)
        .ok_or_else(|| EnvironmentProblem::NotFloat(format!("β̂ = {beta_hat}")))?;
    defs.flawed.kappa = Rational::new(1.into(), 2.into());
    let kappa = 0.5;
    let kernel_defs = defs.clone().mutated(opts.mutant);
    let alpha = env.alpha();

    let log_z = match &logs.optimum {
        Some(o) => o.log_z.clone(),
        None => LogForm::constant(Rational::new(1.into(), 3.into())),
    };
    let log_f = |s: usize| -> LogForm {
        match &logs.optimum {
            Some(o) => o.log_flow[s].clone(),
            None => LogForm::constant(Rational::new(((s % 7) as i64 + 1).into(), 5.into())),
        }
    };
    let v0 = log_z.scale(&alpha);
    let (z_b, v0_b) = (ball(&log_z, "log Z")?, ball(&v0, "V(s0)")?);

    // Windows: one per trajectory, from the same seed (a separate stream).
    let mut wrng = ChaCha8Rng::seed_from_u64(seed);
    wrng.set_stream(u64::MAX);
    let mut start = vec![0usize; n];
    let mut end = vec![0usize; n];
    for i in 0..n {
        let len = lengths[i];
        let s = wrng.gen_range(0..len);
        start[i] = s;
        end[i] = wrng.gen_range(s + 1..=len);
    }
    let state_at = |p: &[usize], k: usize| -> usize {
        if k == 0 {
            env.edges[p[0]].from
        } else {
            env.edges[p[k - 1]].to
        }
    };

    // The evaluator's inputs (balls around the exact values) and the batch (their midpoints).
    let mut q_in = vec![f64::NAN; n * t];
    let mut p_in = vec![f64::NAN; n * t];
    let mut r_in = vec![0.0; n];
    let slack = 1.0 + EVAL_SLACK;
    let mut with_v: Vec<Trajectory<Ball>> = Vec::with_capacity(n);
    let mut with_f: Vec<Trajectory<Ball>> = Vec::with_capacity(n);
    for i in 0..n {
        let p = path(i);
        for (k, &e) in p.iter().enumerate() {
            q_in[i * t + k] = lq[e].mid;
            p_in[i * t + k] = lp[e].mid;
        }
        let x = env.edges[p[p.len() - 1]].to;
        let r_ball = lr[x].ok_or_else(|| EnvironmentProblem::NoReward(env.states[x].clone()))?;
        r_in[i] = r_ball.mid;
        // The flawed kernel uses exp(log r̂): |e^{log r̂} − r| ≤ r (e^{c} − 1) ≤ 2 r c.
        let r = Ball::from_rational(env.reward(x))
            .ok_or_else(|| EnvironmentProblem::NotFloat(format!("r({})", env.states[x])))?;
        let reward = r.widen(slack * r.mid.abs() * r_ball.rad * 2.0);
        let (ss, se) = (state_at(&p, start[i]), state_at(&p, end[i]));
        let terminal_end = end[i] == lengths[i];
        let flow = |s: usize, scale: &Rational| ball(&log_f(s).scale(scale), "log F");
        let one = Rational::from_integer(1.into());
        let traj = Trajectory {
            log_q: p.iter().map(|&e| lq[e]).collect(),
            log_p: p.iter().map(|&e| lp[e]).collect(),
            log_r: r_ball,
            reward,
            window: None,
        };
        let window = |scale: &Rational| -> Result<Window<Ball>, EnvironmentProblem> {
            Ok(Window {
                start: start[i],
                end: end[i],
                value_start: flow(ss, scale)?,
                value_end: if terminal_end {
                    Ball::exact(0.0)
                } else {
                    flow(se, scale)?
                },
            })
        };
        with_v.push(Trajectory {
            window: Some(window(&alpha)?),
            ..traj.clone()
        });
        with_f.push(Trajectory {
            window: Some(window(&one)?),
            ..traj
        });
    }
    let batch = TrajectoryBatch::from_row_major(n, t, q_in, p_in, lengths.clone(), r_in, beta_hat)?;
    let mids = |ts: &[Trajectory<Ball>], f: fn(&Window<Ball>) -> Ball| {
        DVector::from_iterator(
            n,
            ts.iter()
                .map(|t| f(t.window.as_ref().expect("every trajectory has a window")).mid),
        )
    };
    let windows_v = Windows::new(
        &batch,
        start.clone(),
        end.clone(),
        mids(&with_v, |w| w.value_start),
        mids(&with_v, |w| w.value_end),
    )?;
    let windows_f = Windows::new(
        &batch,
        start.clone(),
        end.clone(),
        mids(&with_f, |w| w.value_start),
        mids(&with_f, |w| w.value_end),
    )?;

    let shape = Shape::of(&kernel_defs)?;
    let mut accs = [Acc::default(); 7];
    for (slot, id) in EXACT_KERNELS.iter().enumerate() {
        let (kernel, objective, inputs, scalar): (Kernel<f64>, _, &[Trajectory<Ball>], Ball) =
            match id {
                KernelId::Rtb => (Kernel::Rtb { log_z: z_b.mid }, &defs.rtb, &with_v, z_b),
                KernelId::Tpcl => (Kernel::Tpcl { v0: v0_b.mid }, &defs.tpcl, &with_v, v0_b),
                KernelId::TpclWindowed => (
                    Kernel::TpclWindowed {
                        windows: &windows_v,
                    },
                    &defs.tpcl_windowed,
                    &with_v,
                    Ball::exact(0.0),
                ),
                KernelId::SubTb => (
                    Kernel::SubTb {
                        windows: &windows_f,
                    },
                    &defs.subtb,
                    &with_f,
                    Ball::exact(0.0),
                ),
                KernelId::TpclSurrogate => (
                    Kernel::TpclSurrogate { v0: v0_b.mid },
                    &defs.tpcl_surrogate,
                    &with_v,
                    v0_b,
                ),
                KernelId::ReinforceKl => (
                    Kernel::ReinforceKl,
                    &defs.reinforce_kl,
                    &with_v,
                    Ball::exact(0.0),
                ),
                KernelId::Flawed => (
                    Kernel::Flawed { kappa },
                    &defs.flawed,
                    &with_v,
                    Ball::exact(0.0),
                ),
            };
        let exp = evaluate_with_gradients(objective, &defs.beta, inputs, &scalar)?;
        let out: KernelOutput<f64> =
            evaluate_with(&batch, &kernel, GradForm::PerTrajectory, Some(&kernel_defs))?;
        let kb = kernel_bounds(
            Summation::Cpu,
            &batch,
            &kernel,
            &shape,
            &out,
            &ParamErrors::default(),
        );
        let acc = &mut accs[slot];
        acc.add(out.loss, kb.loss, exp.evaluation.loss);
        acc.add(out.grad_scalar, kb.grad_scalar, exp.scalar);
        let windowed = id.windowed();
        for (i, &window_start) in start.iter().enumerate() {
            // ∂L/∂log q is the same on every step read; compare it on the first one.
            let first = if windowed { window_start } else { 0 };
            acc.add(out.residual[i], kb.residual[i], exp.evaluation.residuals[i]);
            acc.add(out.g[i], kb.g[i], exp.log_q[i][first]);
        }
        if windowed {
            for (got, bound, want) in [
                (&out.grad_start, &kb.grad_start, &exp.value_start),
                (&out.grad_end, &kb.grad_end, &exp.value_end),
            ] {
                if let Some(got) = got {
                    for i in 0..n {
                        acc.add(got[i], bound.get(i).copied().unwrap_or(0.0), want[i]);
                    }
                }
            }
        }
    }
    Ok(accs)
}

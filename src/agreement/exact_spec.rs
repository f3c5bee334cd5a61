//! The f64 kernels against the exact engine, on trajectories sampled from `spec/` environments.
//!
//! For each environment: trajectories are sampled from its posterior `q` (seeded); every
//! per-edge `log q`, `log p` and per-terminal `log r` is an exact log-form of the exact engine
//! ([`LogTable`]), converted to `f64` **once** ([`Ball::from_logform`], with a rigorous radius);
//! the converted values form a [`TrajectoryBatch<f64>`] on which every kernel runs. On the exact
//! side, each trajectory's residual (`δ`, `C`, `C_{i:j}`, `δ_{i:j}`, the REINFORCE reward) and
//! sums (`Σ log q`, `Σ(log q − log p)`) are composed **exactly** as log-forms from the same
//! exact numbers, and evaluated to `f64` only at the end, as balls; losses, means and
//! gradients then follow in ball arithmetic.
//!
//! # Tolerance (derivation in `docs/error-bounds.md`, "Against the exact engine")
//! For each compared output `v` (per-trajectory residual and gradient, loss, scalar and
//! boundary gradients), let `v̂` be the kernel's value, `e_k` its rounding bound
//! ([`super::bounds::kernel_bounds`]: `|v̂ − v(x̂)| ≤ e_k`, `x̂` the converted inputs), and `B` the
//! ball computed from the exact residuals widened by the conversion sensitivity
//! `s ≥ |R(x̂) − R(x*)|` of each residual. Then both `v(x*)` (the exact value) and `v(x̂)` lie in
//! `B`, so a correct kernel satisfies `|v̂ − mid B| ≤ e_k + rad B`; the check's ratio is
//! `|v̂ − mid B| / (e_k + rad B)` (times `1 + 10⁻⁶` for evaluating bounds in f64, plus the
//! comparison's own rounding).
use std::ops::{Add, Mul, Neg, Sub};

use nalgebra::DVector;
use num_traits::{Signed, ToPrimitive};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::ball::Ball;
use super::bounds::{kernel_bounds, ParamErrors, EVAL_SLACK};
use super::report::CheckResult;
use super::spec_sample::Sampler;
use crate::dag::{self, Environment, LogTable};
use crate::exact::{LogForm, Rational};
use crate::kernels::batch::{TrajectoryBatch, Windows};
use crate::kernels::fused::{evaluate_mutant, GradForm, Kernel, KernelId, KernelOutput};
use crate::mutant::Mutant;

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

/// The exact side of one kernel, as balls.
struct Expected {
    residual: Vec<Ball>,
    loss: Ball,
    g: Vec<Ball>,
    grad_scalar: Ball,
    grad_start: Option<Vec<Ball>>,
    grad_end: Option<Vec<Ball>>,
}

/// Runs the checks on every environment and returns one check per kernel
/// (`exact-spec/<kernel>`), each the worst over the environments.
pub fn exact_spec_checks(
    envs: &[Environment],
    opts: &ExactSpecOptions,
) -> Result<Vec<CheckResult>, String> {
    if opts.samples == 0 {
        return Err("exact-spec: the sample count must be at least 1".into());
    }
    let mut accs = [Acc::default(); 7];
    for (k, env) in envs.iter().enumerate() {
        let per = env_accs(env, opts, opts.seed.wrapping_add(k as u64))
            .map_err(|e| format!("{}: {e}", env.file))?;
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

/// `|a − b|` of two rationals, rounded up to `f64`.
fn rational_gap(a: &Rational, b: &Rational) -> f64 {
    let g = (a - b).abs().to_f64().unwrap_or(f64::INFINITY);
    g * (1.0 + 4.0 * U) + f64::MIN_POSITIVE
}

fn ball(form: &LogForm, what: &str) -> Result<Ball, String> {
    Ball::from_logform(form).ok_or_else(|| format!("{what} does not fit in f64"))
}

/// One environment: sample, build the batch, run each kernel, compare.
fn env_accs(env: &Environment, opts: &ExactSpecOptions, seed: u64) -> Result<[Acc; 7], String> {
    let n = opts.samples;
    let optimum = dag::optimum(env).ok();
    let logs = LogTable::new(env, optimum.as_ref()).map_err(|e| e.to_string())?;
    let sampler = Sampler::new(env)?;
    let t = sampler.longest().max(1);
    let (paths, lengths) = sampler.sample(n, seed).map_err(|e| e.to_string())?;
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
        .ok_or("β does not convert to a positive f64")?;
    let beta_hat_exact = Rational::from_float(beta_hat).ok_or("β̂ not finite")?;
    let err_beta = rational_gap(&env.beta, &beta_hat_exact);
    let alpha = env.alpha();
    // The kernels use α̂ = 1/β̂ (exactly, in their bound's reference): a ball holding both.
    let err_alpha = rational_gap(&alpha, &beta_hat_exact.recip());
    let alpha_hat = 1.0 / beta_hat;
    let alpha_ball = Ball::new(alpha_hat, err_alpha + U * alpha_hat * 1.01);
    let alpha_up = alpha_hat * (1.0 + 2.0 * U);

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

    // The batch from the converted numbers.
    let mut q_in = vec![f64::NAN; n * t];
    let mut p_in = vec![f64::NAN; n * t];
    let mut r_in = vec![0.0; n];
    let (mut vs, mut ve, mut fs, mut fe) = (vec![0.0; n], vec![0.0; n], vec![0.0; n], vec![0.0; n]);
    // Per-trajectory conversion radii of the learned boundary values.
    let (mut vs_c, mut ve_c, mut fs_c, mut fe_c) =
        (vec![0.0; n], vec![0.0; n], vec![0.0; n], vec![0.0; n]);
    let mut terminal_of = vec![0usize; n];
    let mut paths_v = Vec::with_capacity(n);
    for i in 0..n {
        let p = path(i);
        for (k, &e) in p.iter().enumerate() {
            q_in[i * t + k] = lq[e].mid;
            p_in[i * t + k] = lp[e].mid;
        }
        let x = env.edges[p[p.len() - 1]].to;
        terminal_of[i] = x;
        r_in[i] = lr[x].ok_or("terminal without reward")?.mid;
        let (ss, se) = (state_at(&p, start[i]), state_at(&p, end[i]));
        let bs = ball(&log_f(ss), "log F")?;
        let bv = ball(&log_f(ss).scale(&alpha), "V")?;
        (fs[i], fs_c[i], vs[i], vs_c[i]) = (bs.mid, bs.rad, bv.mid, bv.rad);
        if end[i] < lengths[i] {
            let be = ball(&log_f(se), "log F")?;
            let bw = ball(&log_f(se).scale(&alpha), "V")?;
            (fe[i], fe_c[i], ve[i], ve_c[i]) = (be.mid, be.rad, bw.mid, bw.rad);
        }
        paths_v.push(p);
    }
    let batch = TrajectoryBatch::from_row_major(n, t, q_in, p_in, lengths.clone(), r_in, beta_hat)
        .map_err(|e| e.to_string())?;
    let windows_v = Windows::new(
        &batch,
        start.clone(),
        end.clone(),
        DVector::from_vec(vs),
        DVector::from_vec(ve),
    )
    .map_err(|e| e.to_string())?;
    let windows_f = Windows::new(
        &batch,
        start.clone(),
        end.clone(),
        DVector::from_vec(fs),
        DVector::from_vec(fe),
    )
    .map_err(|e| e.to_string())?;

    // Exact per-trajectory log-forms, evaluated once each, widened by conversion sensitivity.
    let slack = 1.0 + EVAL_SLACK;
    let mut rtb_res = Vec::with_capacity(n);
    let mut tpcl_res = Vec::with_capacity(n);
    let mut tw_res = Vec::with_capacity(n);
    let mut sub_res = Vec::with_capacity(n);
    let mut rkl_reward = Vec::with_capacity(n);
    let mut flawed_reward = Vec::with_capacity(n);
    let mut slq_b = Vec::with_capacity(n);
    let mut sd_b = Vec::with_capacity(n);
    for (i, p) in paths_v.iter().enumerate() {
        let x = terminal_of[i];
        let log_r = logs.log_reward(x);
        let r_ball = lr[x].ok_or("terminal without reward")?;
        let (c_r, r_mag) = (r_ball.rad, r_ball.mid.abs() + r_ball.rad);
        let sum = |range: std::ops::Range<usize>, table: &[LogForm]| {
            p[range]
                .iter()
                .fold(LogForm::zero(), |acc, &e| acc.add(&table[e]))
        };
        let rad = |range: std::ops::Range<usize>, table: &[Ball]| -> (f64, f64) {
            p[range].iter().fold((0.0, 0.0), |(c, m), &e| {
                (c + table[e].rad, m + table[e].mid.abs() + table[e].rad)
            })
        };
        let full = 0..p.len();
        let win = start[i]..end[i];
        let (sq, sp) = (
            sum(full.clone(), &logs.log_posterior),
            sum(full.clone(), &logs.log_prior),
        );
        let (sqw, spw) = (
            sum(win.clone(), &logs.log_posterior),
            sum(win.clone(), &logs.log_prior),
        );
        let ((cq, mq), (cp, mp)) = (rad(full.clone(), &lq), rad(full, &lp));
        let ((cqw, mqw), (cpw, mpw)) = (rad(win.clone(), &lq), rad(win, &lp));
        let sd = sq.sub(&sp);
        let sdw = sqw.sub(&spw);
        let beta_r = beta_hat * (1.0 + 2.0 * U) * c_r + err_beta * r_mag;

        // RTB δ = log Z + Σ log q − Σ log p − β log r.
        let delta = log_z.add(&sd).sub(&log_r.scale(&env.beta));
        rtb_res.push(ball(&delta, "δ")?.widen(slack * (z_b.rad + cq + cp + beta_r)));
        // Trust-PCL C = −V(s0) + Σ(−α log q + α log p) + log r.
        let c = v0
            .scale(&-Rational::from_integer(1.into()))
            .add(&sd.scale(&-alpha.clone()))
            .add(log_r);
        let sens_c = v0_b.rad + alpha_up * (cq + cp) + err_alpha * (mq + mp) + c_r;
        tpcl_res.push(ball(&c, "C")?.widen(slack * sens_c));
        // Windowed: C_{i:j} = −V(s_i) − α Σ_w(log q − log p) + (log r | V(s_j)).
        let terminal_end = end[i] == lengths[i];
        let (ss, se) = (state_at(p, start[i]), state_at(p, end[i]));
        let (end_v, end_v_c, end_f, end_f_c) = if terminal_end {
            (log_r.clone(), c_r, log_r.scale(&env.beta), beta_r)
        } else {
            (log_f(se).scale(&alpha), ve_c[i], log_f(se), fe_c[i])
        };
        let cw = log_f(ss)
            .scale(&-alpha.clone())
            .sub(&sdw.scale(&alpha))
            .add(&end_v);
        let sens_cw = vs_c[i] + alpha_up * (cqw + cpw) + err_alpha * (mqw + mpw) + end_v_c;
        tw_res.push(ball(&cw, "C_ij")?.widen(slack * sens_cw));
        // Relative SubTB δ_{i:j} = log F(s_i) + Σ_w(log q − log p) − (β log r | log F(s_j)).
        let dw = log_f(ss).add(&sdw).sub(&end_f);
        sub_res.push(ball(&dw, "δ_ij")?.widen(slack * (fs_c[i] + cqw + cpw + end_f_c)));
        // REINFORCE-KL reward R = log r − α Σ(log q − log p).
        let reward = log_r.sub(&sd.scale(&alpha));
        let sens_r = c_r + alpha_up * (cq + cp) + err_alpha * (mq + mp);
        rkl_reward.push(ball(&reward, "R")?.widen(slack * sens_r));
        // Flawed: r(x) exact; the kernel uses exp(log r̂): |e^{log r̂} − r| ≤ r (e^{c_r} − 1).
        let r = Ball::from_rational(env.reward(x)).ok_or("r(x) does not fit in f64")?;
        flawed_reward.push(r.widen(slack * r.mid.abs() * c_r * 2.0));
        slq_b.push(ball(&sq, "Σ log q")?.widen(slack * cq));
        sd_b.push(ball(&sd, "Σ(log q − log p)")?.widen(slack * (cq + cp)));
    }

    let terminal_end: Vec<bool> = (0..n).map(|i| end[i] == lengths[i]).collect();
    let zero = Ball::exact(0.0);
    let half = |b: Ball| b.square().scale_exact(0.5);
    let mut accs = [Acc::default(); 7];
    for (slot, id) in EXACT_KERNELS.iter().enumerate() {
        let (kernel, exp): (Kernel<f64>, Expected) = match id {
            KernelId::Rtb => (
                Kernel::Rtb { log_z: z_b.mid },
                Expected {
                    loss: Ball::mean(rtb_res.iter().map(|&d| half(d)), n),
                    g: rtb_res.iter().map(|d| d.div_count(n)).collect(),
                    grad_scalar: Ball::mean(rtb_res.iter().copied(), n),
                    residual: rtb_res.clone(),
                    grad_start: None,
                    grad_end: None,
                },
            ),
            KernelId::Tpcl => (
                Kernel::Tpcl { v0: v0_b.mid },
                Expected {
                    loss: Ball::mean(tpcl_res.iter().map(|&c| half(c)), n),
                    g: tpcl_res
                        .iter()
                        .map(|&c| alpha_ball.mul(c).neg().div_count(n))
                        .collect(),
                    grad_scalar: Ball::mean(tpcl_res.iter().copied(), n).neg(),
                    residual: tpcl_res.clone(),
                    grad_start: None,
                    grad_end: None,
                },
            ),
            KernelId::TpclWindowed => (
                Kernel::TpclWindowed {
                    windows: &windows_v,
                },
                Expected {
                    loss: Ball::mean(tw_res.iter().map(|&c| half(c)), n),
                    g: tw_res
                        .iter()
                        .map(|&c| alpha_ball.mul(c).neg().div_count(n))
                        .collect(),
                    grad_scalar: zero,
                    grad_start: Some(tw_res.iter().map(|c| c.neg().div_count(n)).collect()),
                    grad_end: Some(
                        tw_res
                            .iter()
                            .zip(&terminal_end)
                            .map(|(c, &te)| if te { zero } else { c.div_count(n) })
                            .collect(),
                    ),
                    residual: tw_res.clone(),
                },
            ),
            KernelId::SubTb => (
                Kernel::SubTb {
                    windows: &windows_f,
                },
                Expected {
                    loss: Ball::mean(sub_res.iter().map(|&d| half(d)), n),
                    g: sub_res.iter().map(|d| d.div_count(n)).collect(),
                    grad_scalar: zero,
                    grad_start: Some(sub_res.iter().map(|d| d.div_count(n)).collect()),
                    grad_end: Some(
                        sub_res
                            .iter()
                            .zip(&terminal_end)
                            .map(|(d, &te)| if te { zero } else { d.neg().div_count(n) })
                            .collect(),
                    ),
                    residual: sub_res.clone(),
                },
            ),
            KernelId::TpclSurrogate => (
                Kernel::TpclSurrogate { v0: v0_b.mid },
                Expected {
                    loss: Ball::mean(
                        tpcl_res.iter().zip(&slq_b).map(|(&c, &s)| c.mul(s).neg()),
                        n,
                    ),
                    g: tpcl_res.iter().map(|c| c.neg().div_count(n)).collect(),
                    grad_scalar: zero,
                    residual: tpcl_res.clone(),
                    grad_start: None,
                    grad_end: None,
                },
            ),
            KernelId::ReinforceKl | KernelId::Flawed => {
                let rewards = if *id == KernelId::ReinforceKl {
                    &rkl_reward
                } else {
                    &flawed_reward
                };
                let b = Ball::mean(rewards.iter().copied(), n);
                let adv: Vec<Ball> = rewards.iter().map(|&r| r.sub(b)).collect();
                let kappa = 0.5;
                let (kernel, loss, g) = if *id == KernelId::ReinforceKl {
                    (
                        Kernel::ReinforceKl,
                        Ball::mean(adv.iter().zip(&slq_b).map(|(&a, &s)| a.mul(s).neg()), n),
                        adv.iter().map(|a| a.neg().div_count(n)).collect(),
                    )
                } else {
                    (
                        Kernel::Flawed { kappa },
                        Ball::mean(
                            adv.iter().zip(&slq_b).zip(&sd_b).map(|((&a, &s), &d)| {
                                a.mul(s).neg().add(d.square().scale_exact(kappa))
                            }),
                            n,
                        ),
                        adv.iter()
                            .zip(&sd_b)
                            .map(|(&a, &d)| d.scale_exact(2.0 * kappa).sub(a).div_count(n))
                            .collect(),
                    )
                };
                (
                    kernel,
                    Expected {
                        residual: adv,
                        loss,
                        g,
                        grad_scalar: zero,
                        grad_start: None,
                        grad_end: None,
                    },
                )
            }
        };
        let out: KernelOutput<f64> =
            evaluate_mutant(&batch, &kernel, GradForm::PerTrajectory, opts.mutant)
                .map_err(|e| e.to_string())?;
        let kb = kernel_bounds(&batch, &kernel, opts.mutant, &out, &ParamErrors::default());
        let acc = &mut accs[slot];
        acc.add(out.loss, kb.loss, exp.loss);
        acc.add(out.grad_scalar, kb.grad_scalar, exp.grad_scalar);
        for i in 0..n {
            acc.add(out.residual[i], kb.residual[i], exp.residual[i]);
            acc.add(out.g[i], kb.g[i], exp.g[i]);
        }
        for (got, bound, want) in [
            (&out.grad_start, &kb.grad_start, &exp.grad_start),
            (&out.grad_end, &kb.grad_end, &exp.grad_end),
        ] {
            if let (Some(got), Some(want)) = (got, want) {
                for i in 0..n {
                    acc.add(got[i], bound.get(i).copied().unwrap_or(0.0), want[i]);
                }
            }
        }
    }
    Ok(accs)
}

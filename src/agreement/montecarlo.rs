//! Monte Carlo at scale (C6): sample-mean gradients with respect to every softmax logit,
//! from the batched kernels and the softmax chain rule, against the exact expectations of
//! [`crate::expect`], with a stated confidence bound.
//!
//! # The test
//! `N` trajectories `τ_i ∼ q` (seeded). For a kernel with per-trajectory gradient `g_i`
//! (`∂(batch-mean loss)/∂ log q` on every step of row `i`), the sample mean gradient with
//! respect to `θ_b` is `m_b = (1/N) Σ_i X_i(b)`, `X_i(b) = N g_i (1[b ∈ τ_i] − q(b) 1[s(b) ∈ τ_i])`
//! ([`TabularSoftmax::logit_gradient_rows`]; a DAG trajectory visits a state at most once).
//! Its standard error is `SE_b = sqrt(v_b / N)` with `v_b` the sample variance of `X_i(b)`, and
//! `z_b = (m_b − E_b) / SE_b` with `E_b` the exact expectation (converted to f64 once).
//!
//! A check holds iff `max_b |z_b| ≤ z*`, `z* = Φ⁻¹(1 − p / (2m))`: the two-sided normal quantile
//! at the Bonferroni-corrected level for the `m` logits tested, so that a correct kernel fails
//! a check with probability at most `p` (default `10⁻⁶`) in the normal approximation (CLT;
//! `N` is large and each tested logit's state is visited at least [`McConfig::min_visits`]
//! times). Logits of states visited fewer times are not tested (counted as `untested`); those
//! of single-child states have an identically zero gradient and must come out exactly 0.
//!
//! # The checks (expected values)
//! - `mc/rtb-logz-0`, `mc/rtb-logz-star`: RTB at `log Z = 0` and at `log Z*`:
//!   `E[∇L_RTB] = ∇KL(q ‖ q*) = −β ∇J(q)`, whatever `log Z`;
//! - `mc/tpcl`: Trust-PCL with the shared scalar `V(s0) = α log Z*`: `α² E[∇L_RTB]` (C3);
//! - `mc/tpcl-surrogate`: the surrogate `−sg(C) Σ log q`: `α E[∇L_RTB]`;
//! - `mc/reinforce-kl`: `E[∇L_RKL] = −∇J(q)` for a constant baseline; the kernel's baseline is
//!   the batch mean, whose estimator has expectation exactly `−(1 − 1/N) ∇J(q)` (the `j = i`
//!   term of the mean is correlated with `τ_i`): that is the value compared against.
use std::path::{Path, PathBuf};
use std::time::Instant;

use nalgebra::DMatrix;
use num_traits::ToPrimitive;
use rayon::prelude::*;
use serde::Serialize;

use super::ball::Ball;
use super::error::{AgreementError, EnvironmentProblem};
use super::report::{CheckResult, Device, Dtype, GradcheckReport};
use super::spec_sample::Sampler;
use crate::dag::{self, flow, Environment, LogTable};
use crate::exact::Poly;
use crate::expect::{self, Route};
use crate::input::Plan;
use crate::kernels::batch::TrajectoryBatch;
use crate::kernels::error::BatchError;
use crate::kernels::fused::{evaluate_with, GradForm, Kernel};
use crate::kernels::softmax::TabularSoftmax;
use crate::mutant::Mutant;
use crate::objectives::Definitions;

/// What to run.
#[derive(Debug, Clone)]
pub struct McConfig {
    /// The spec file.
    pub spec: PathBuf,
    /// `N`, the number of sampled trajectories.
    pub samples: usize,
    /// Seed of the sampler.
    pub seed: u64,
    /// A deliberately wrong kernel variant.
    pub mutant: Option<Mutant>,
    /// Family-wise false-alarm probability `p` of one check.
    pub family_error: f64,
    /// A logit is tested only if its state was visited at least this many times.
    pub min_visits: usize,
    /// The exact expectations are enumerated up to this many trajectories (the `O(|E|)`
    /// recursion above it).
    pub enumeration_limit: u64,
}

impl Default for McConfig {
    fn default() -> Self {
        Self {
            spec: PathBuf::new(),
            samples: 1_000_000,
            seed: 0,
            mutant: None,
            family_error: 1e-6,
            min_visits: 500,
            enumeration_limit: 10_000,
        }
    }
}

/// One check's statistics.
#[derive(Debug, Clone, Serialize)]
pub struct McCheck {
    /// Check id (`mc/rtb-logz-0`, …).
    pub id: String,
    /// `max |z|` over the tested logits.
    pub max_abs_z: f64,
    /// The edge (`from->to`) where it is reached.
    pub worst_edge: Option<String>,
}

/// The Monte Carlo report: gradcheck's schema plus the statistics.
#[derive(Debug, Clone, Serialize)]
pub struct McReport {
    /// The common gradcheck fields (`batch` = N, `steps` = T, `dtype` f64, `device` cpu);
    /// each check's `max_error_over_bound` is `max |z| / z*`, its `max_abs_error`
    /// `max |m_b − E_b|`.
    #[serde(flatten)]
    pub report: GradcheckReport,
    /// The largest `|z|` over every check and tested logit.
    pub max_abs_z: f64,
    /// The threshold `z*`.
    pub z_threshold: f64,
    /// Family-wise false-alarm probability `p` per check.
    pub family_error: f64,
    /// The spec file.
    pub spec: String,
    /// How the exact expectations were computed.
    pub route: Route,
    /// Logits tested (per check).
    pub tested_parameters: usize,
    /// Logits of multi-child states visited fewer than `min_visits` times (not tested).
    pub untested_parameters: usize,
    /// Per check: `max |z|` and where.
    pub details: Vec<McCheck>,
}

/// `z*` with `P(|Z| > z*) = p / m` for a standard normal `Z`: `z* = −Φ⁻¹(p / (2m))`, the
/// quantile taken in the lower tail where it is accurate (statrs' normal inverse CDF).
pub fn bonferroni_threshold(p: f64, m: usize) -> f64 {
    use statrs::distribution::{ContinuousCDF, Normal};
    let tail = p / (2.0 * m.max(1) as f64);
    -Normal::standard().inverse_cdf(tail)
}

/// The environment's softmax layout: non-terminal states in topological order, each owning a
/// contiguous range of edges.
struct Layout {
    offsets: Vec<usize>,
    /// Environment edge → softmax edge.
    to_softmax: Vec<usize>,
    /// Softmax edge → environment edge.
    to_env: Vec<usize>,
}

fn layout(env: &Environment) -> Layout {
    let mut offsets = vec![0];
    let mut to_softmax = vec![0; env.edges.len()];
    let mut to_env = Vec::with_capacity(env.edges.len());
    for &s in &env.topo {
        if env.is_terminal(s) {
            continue;
        }
        for &e in &env.out_edges[s] {
            to_softmax[e] = to_env.len();
            to_env.push(e);
        }
        offsets.push(to_env.len());
    }
    Layout {
        offsets,
        to_softmax,
        to_env,
    }
}

/// Per logit: `Σ_i X_i(b)²`, and per softmax state the visit count.
fn second_moments(
    pol: &TabularSoftmax<f64>,
    offsets: &[usize],
    edges: &DMatrix<u32>,
    lengths: &[usize],
    g: &[f64],
) -> (Vec<f64>, Vec<usize>) {
    let (t, n) = edges.shape();
    let ne = pol.probabilities().len();
    let ns = offsets.len() - 1;
    let q = pol.probabilities();
    let state_of = pol.state_of();
    let scale = n as f64;
    let zero = || (vec![0.0f64; ne], vec![0usize; ns]);
    (0..n)
        .into_par_iter()
        .with_min_len(4096)
        .fold(zero, |(mut s2, mut visits), i| {
            let x = scale * g[i];
            for k in 0..lengths[i] {
                let a = edges.as_slice()[i * t + k] as usize;
                let s = state_of[a];
                visits[s] += 1;
                for b in offsets[s]..offsets[s + 1] {
                    let d = if b == a { 1.0 - q[b] } else { -q[b] };
                    s2[b] += (x * d) * (x * d);
                }
            }
            (s2, visits)
        })
        .reduce(zero, |(mut a, mut va), (b, vb)| {
            a.iter_mut().zip(b).for_each(|(x, y)| *x += y);
            va.iter_mut().zip(vb).for_each(|(x, y)| *x += y);
            (a, va)
        })
}

/// Runs the Monte Carlo checks on one spec.
pub fn run_mc(cfg: &McConfig) -> Result<McReport, AgreementError> {
    let start = Instant::now();
    if cfg.samples < 2 {
        return Err(AgreementError::Option {
            option: "--samples",
            range: "at least 2",
            value: cfg.samples.to_string(),
        });
    }
    if !(cfg.family_error > 0.0 && cfg.family_error < 1.0) {
        return Err(AgreementError::Option {
            option: "the family-wise error",
            range: "in (0, 1)",
            value: cfg.family_error.to_string(),
        });
    }
    let env = dag::load_file(Path::new(&cfg.spec))?;
    let problem = |p: EnvironmentProblem| p.in_file(&env.file);
    let logs = LogTable::new(&env, None).map_err(|e| problem(e.into()))?;
    let exp = expect::expectations(&env, &logs, cfg.enumeration_limit);
    let lay = layout(&env);
    let ne = env.edges.len();
    let to_f64 = |p: &Poly, what: &str| {
        Ball::from_poly(p)
            .map(|b| b.mid)
            .ok_or_else(|| problem(EnvironmentProblem::NotFloat(what.into())))
    };
    // Expectations in softmax edge order.
    let mut e_rtb = vec![0.0; ne];
    let mut e_rkl = vec![0.0; ne];
    for (k, &e) in lay.to_env.iter().enumerate() {
        e_rtb[k] = to_f64(&exp.rtb[e], "E[∇L_RTB]")?;
        e_rkl[k] = to_f64(&exp.rkl[e], "E[∇L_RKL]")?;
    }
    // Converted once: log q, log p per edge, log r per terminal, the logits.
    let conv = |f: &crate::exact::LogForm| {
        Ball::from_logform(f)
            .map(|b| b.mid)
            .ok_or_else(|| problem(EnvironmentProblem::NotFloat("a log-probability".into())))
    };
    let lq: Vec<f64> = logs
        .log_posterior
        .iter()
        .map(conv)
        .collect::<Result<_, _>>()?;
    let lp: Vec<f64> = logs.log_prior.iter().map(conv).collect::<Result<_, _>>()?;
    let lr: Vec<f64> = (0..env.states.len())
        .map(|s| logs.log_reward[s].as_ref().map_or(Ok(0.0), conv))
        .collect::<Result<_, _>>()?;
    let logits: Vec<f64> = lay.to_env.iter().map(|&e| lq[e]).collect();
    let pol = TabularSoftmax::from_logits(lay.offsets.clone(), &logits)?;
    let beta = env
        .beta
        .to_f64()
        .filter(|b| b.is_finite() && *b > 0.0)
        .ok_or_else(|| problem(EnvironmentProblem::NotFloat(format!("β = {}", env.beta))))?;
    let alpha = 1.0 / beta;
    // log Z*: from the exact optimum when rational, else by backward induction in f64.
    let log_z_star = match dag::optimum(&env) {
        Ok(opt) => Ball::from_rational(&opt.z).map(|b| b.mid.ln()),
        Err(_) => None,
    }
    .unwrap_or_else(|| {
        // F* by the one backward pass, in f64: prior weights, r(x)^β at the terminals.
        let prior: Vec<f64> = lp.iter().map(|l| l.exp()).collect();
        let zeros = vec![0.0f64; env.edges.len()];
        let f = flow::backward(&env, &prior, &zeros, |x| (beta * lr[x]).exp()).value;
        f[env.source].ln()
    });
    if !log_z_star.is_finite() {
        return Err(problem(EnvironmentProblem::NotFloat("log Z*".into())));
    }

    // Sample and build the batch.
    let n = cfg.samples;
    let sampler = Sampler::new(&env).map_err(problem)?;
    let t = sampler.longest().max(1);
    // Everything the run allocates per sampled entry, planned before anything is: the edge
    // table, log q, log p, the softmax edge table, the per-trajectory gradient (8 bytes),
    // and per row the lengths, log r, starts and a gradient row.
    let mut plan = Plan::new(&format!(
        "gradcheck --spec {} --samples {n}",
        crate::input::escape_controls(&env.file)
    ));
    sampler.plan(n, &mut plan)?;
    let entries = crate::input::product("Monte Carlo batch", &[("N", n as u64), ("T", t as u64)])?;
    plan.add("log q, log p [N, T] (f64)", entries, 16)?;
    plan.add("softmax edges [N, T] (u32)", entries, 4)?;
    plan.add("kernel workspace [N, T] (allowance, f64)", entries, 8)?;
    plan.add("per-row values [N]", n as u64, 64)?;
    let per_sample = 4 + 16 + 4 + 8;
    let cap = crate::input::memory_cap();
    let most = cap.bytes / (t as u64 * per_sample + 72);
    plan.check_and_announce(&format!(
        "the longest trajectory has {} steps: at most --samples {most} fit",
        sampler.longest()
    ))?;
    let (paths, lengths) = sampler.sample(n, cfg.seed)?;
    let mut q_in = vec![f64::NAN; n * t];
    let mut p_in = vec![f64::NAN; n * t];
    let mut r_in = vec![0.0; n];
    let mut sm_edges = vec![0u32; n * t];
    q_in.par_chunks_mut(t)
        .zip(p_in.par_chunks_mut(t))
        .zip(sm_edges.par_chunks_mut(t))
        .zip(r_in.par_iter_mut())
        .enumerate()
        .for_each(|(i, (((qr, pr), er), r))| {
            let row = &paths[i * t..i * t + lengths[i]];
            for (k, &e) in row.iter().enumerate() {
                let e = e as usize;
                qr[k] = lq[e];
                pr[k] = lp[e];
                er[k] = lay.to_softmax[e] as u32;
            }
            let last = row[row.len() - 1] as usize;
            *r = lr[env.edges[last].to];
        });
    drop(paths);
    let batch = TrajectoryBatch::from_row_major(n, t, q_in, p_in, lengths.clone(), r_in, beta)?;
    let edges = DMatrix::from_vec(t, n, sm_edges);
    let starts = vec![0usize; n];

    let defs = Definitions::from_f64(beta)
        .ok_or(BatchError::InvalidBeta(beta))?
        .mutated(cfg.mutant);
    // The factor the definitions predict for the shared scalar (α²).
    let shared = alpha.powi(defs.factors.shared_scalar.0 as i32);
    let reinforce_factor = 1.0 - 1.0 / n as f64;
    let v0 = alpha * log_z_star;
    let checks: Vec<(&str, Kernel<f64>, Vec<f64>)> = vec![
        ("mc/rtb-logz-0", Kernel::Rtb { log_z: 0.0 }, e_rtb.clone()),
        (
            "mc/rtb-logz-star",
            Kernel::Rtb { log_z: log_z_star },
            e_rtb.clone(),
        ),
        (
            "mc/tpcl",
            Kernel::Tpcl { v0 },
            e_rtb.iter().map(|x| shared * x).collect(),
        ),
        (
            "mc/tpcl-surrogate",
            Kernel::TpclSurrogate { v0 },
            e_rtb.iter().map(|x| alpha * x).collect(),
        ),
        (
            "mc/reinforce-kl",
            Kernel::ReinforceKl,
            e_rkl.iter().map(|x| reinforce_factor * x).collect(),
        ),
    ];

    let offsets = &lay.offsets;
    let state_of = pol.state_of().to_vec();
    let degree = |b: usize| offsets[state_of[b] + 1] - offsets[state_of[b]];
    let mut results = Vec::new();
    let mut details = Vec::new();
    let mut tested = 0;
    let mut untested = 0;
    let mut threshold = f64::NAN;
    for (id, kernel, expected) in checks {
        let out = evaluate_with(&batch, &kernel, GradForm::PerTrajectory, Some(&defs))?;
        let g = out.g.as_slice();
        let mean = pol.logit_gradient_rows(&edges, &starts, &lengths, g)?;
        let (s2, visits) = second_moments(&pol, offsets, &edges, &lengths, g);
        let mut zs: Vec<(usize, f64)> = Vec::new();
        let mut max_abs = 0.0f64;
        let (mut t_count, mut u_count) = (0, 0);
        for b in 0..ne {
            let (m, e) = (mean[b], expected[b]);
            if degree(b) == 1 {
                // Identically zero: exact on both sides.
                let z = if m == 0.0 && e == 0.0 {
                    0.0
                } else {
                    f64::INFINITY
                };
                zs.push((b, z));
                continue;
            }
            if visits[state_of[b]] < cfg.min_visits {
                u_count += 1;
                continue;
            }
            t_count += 1;
            let nf = n as f64;
            let var = ((s2[b] - nf * m * m) / (nf - 1.0)).max(0.0);
            let se = (var / nf).sqrt();
            let d = m - e;
            max_abs = max_abs.max(d.abs());
            let z = if d == 0.0 {
                0.0
            } else if se > 0.0 {
                d / se
            } else {
                f64::INFINITY
            };
            zs.push((b, z));
        }
        tested = t_count;
        untested = u_count;
        threshold = bonferroni_threshold(cfg.family_error, t_count.max(1));
        let (worst, zmax) = zs
            .iter()
            .map(|&(b, z)| (b, if z.is_nan() { f64::INFINITY } else { z.abs() }))
            .fold((None, 0.0f64), |(wb, wz), (b, z)| {
                if z > wz || wb.is_none() {
                    (Some(b), z.max(wz))
                } else {
                    (wb, wz)
                }
            });
        results.push(CheckResult {
            id: id.to_string(),
            holds: zmax <= threshold,
            max_error_over_bound: zmax / threshold,
            max_abs_error: max_abs,
        });
        details.push(McCheck {
            id: id.to_string(),
            max_abs_z: zmax,
            worst_edge: worst.map(|b| env.edge_name(lay.to_env[b])),
        });
    }
    let max_abs_z = details.iter().map(|d| d.max_abs_z).fold(0.0, f64::max);
    let mut report = GradcheckReport {
        dtype: Dtype::F64,
        batch: n,
        steps: t,
        device: Device::Cpu,
        all_hold: true,
        checks: Vec::new(),
        seconds: 0.0,
    };
    for c in results {
        report.push(c);
    }
    report.seconds = start.elapsed().as_secs_f64();
    Ok(McReport {
        report,
        max_abs_z,
        z_threshold: threshold,
        family_error: cfg.family_error,
        spec: env.file.clone(),
        route: exp.route,
        tested_parameters: tested,
        untested_parameters: untested,
        details,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds() {
        // Two-sided 5% → 1.96; Bonferroni over 10 at 10⁻⁶ → P(|Z| > z) = 10⁻⁷ → 5.33.
        assert!((bonferroni_threshold(0.05, 1) - 1.96).abs() < 1e-3);
        assert!((bonferroni_threshold(1e-6, 10) - 5.327).abs() < 1e-2);
    }
}

//! Rigorous floating-point error bounds for every kernel output (derivation in
//! `docs/error-bounds.md`).
//!
//! For each output `x̂` of a kernel run in a float type with unit roundoff `u`, the bound `e`
//! satisfies `|x̂ − x*| ≤ e`, where `x*` is the exact real value of the same objective on the
//! same (exactly representable) inputs, with exact `α = 1/β` and with each derived parameter
//! (e.g. `V(s0)` computed as `log Z / β`) replaced by its exact value; the caller states how
//! far each such parameter may be from its exact value ([`ParamErrors`]).
//!
//! The linear part (the per-trajectory residual) uses the standard result for a sum of
//! products evaluated with at most `m` roundings on each leaf's path:
//! `|ŝ − s| ≤ γ_m Σ_j |c_j x_j|`, `γ_m = m u / (1 − m u)` (Higham, Lemma 3.1 and §4.2); the
//! nonlinear part follows each kernel's operations one by one. The bounds are evaluated in
//! `f64`; [`EVAL_SLACK`] covers that evaluation's own rounding.
use rayon::prelude::*;

use crate::kernels::batch::TrajectoryBatch;
use crate::kernels::float::Float;
use crate::kernels::fused::Shape;
use crate::kernels::fused::{Kernel, KernelOutput};
use crate::kernels::sum::Summation;

/// Relative allowance for evaluating the bounds themselves in `f64`: every bound is a sum of
/// at most `N < 9·10⁹` non-negative terms and products, whose relative rounding error is at
/// most `γ_N` in f64 `< 10⁻⁶`.
pub const EVAL_SLACK: f64 = 1e-6;

/// `γ_m = m u / (1 − m u)`.
pub fn gamma(m: usize, u: f64) -> f64 {
    let mu = m as f64 * u;
    assert!(mu < 0.5, "γ_{m} undefined for u = {u}");
    mu / (1.0 - mu)
}

/// How far derived parameters given to a kernel may be from their exact values.
#[derive(Debug, Clone, Default)]
pub struct ParamErrors {
    /// `|v0 − α log Z|` (Trust-PCL full and surrogate).
    pub v0: f64,
    /// Per trajectory `|V(s_start) − α log F(s_start)|` (windowed Trust-PCL); empty = 0.
    pub value_start: Vec<f64>,
    /// Per trajectory `|V(s_end) − α log F(s_end)|`; empty = 0.
    pub value_end: Vec<f64>,
}

/// Error bounds for each output of a [`KernelOutput`].
#[derive(Debug, Clone)]
pub struct KernelBounds {
    /// Bound on the loss.
    pub loss: f64,
    /// Per trajectory, bound on the residual.
    pub residual: Vec<f64>,
    /// Per trajectory, bound on `g_i` (and so on every dense entry of row `i`).
    pub g: Vec<f64>,
    /// Bound on the scalar gradient.
    pub grad_scalar: f64,
    /// Per trajectory, bounds on the start-boundary gradient (windowed kernels).
    pub grad_start: Vec<f64>,
    /// Per trajectory, bounds on the end-boundary gradient (windowed kernels).
    pub grad_end: Vec<f64>,
}

/// Per-row sums in f64 over the range a kernel reads.
#[derive(Debug, Clone, Copy, Default)]
pub struct RowStats {
    abs_q: f64,
    abs_p: f64,
    sum_q: f64,
    sum_p: f64,
    n: usize,
}

/// Per-row f64 sums (`Σ|log q|`, `Σ|log p|`, `Σ log q`, `Σ log p`) over the live steps and
/// over the windows: the data the bounds need, computed once per batch.
#[derive(Debug, Clone)]
pub struct BoundStats {
    full: Vec<RowStats>,
    window: Vec<RowStats>,
}

impl BoundStats {
    /// One pass over the batch (and one over the windows, if given).
    pub fn new<F: Float>(
        batch: &TrajectoryBatch<F>,
        windows: Option<&crate::kernels::batch::Windows<F>>,
    ) -> Self {
        Self {
            full: row_stats(batch, None),
            window: windows
                .map(|w| row_stats(batch, Some((w.start(), w.end()))))
                .unwrap_or_default(),
        }
    }
}

fn row_stats<F: Float>(
    batch: &TrajectoryBatch<F>,
    ranges: Option<(&[usize], &[usize])>,
) -> Vec<RowStats> {
    (0..batch.batch())
        .into_par_iter()
        .with_min_len(256)
        .map(|i| {
            let (q, p) = (batch.row_log_q(i), batch.row_log_p(i));
            let (s, e) = match ranges {
                Some((s, e)) => (s[i], e[i]),
                None => (0, q.len()),
            };
            let mut r = RowStats {
                n: e - s,
                ..Default::default()
            };
            for t in s..e {
                let (a, b) = (q[t].to_f64(), p[t].to_f64());
                r.abs_q += a.abs();
                r.abs_p += b.abs();
                r.sum_q += a;
                r.sum_p += b;
            }
            r
        })
        .collect()
}

/// Bound on `fl(Σ_i x̂_i) / n` given per-term `(|x̂_i| magnitude, error)` over the live rows,
/// summed over `B` slots by the backend's order (`depth_b` rounded additions per term), then
/// divided by the live count `n`.
fn mean_bound(
    mags_errs: impl Iterator<Item = (f64, f64)>,
    depth_b: usize,
    n: usize,
    u: f64,
    n_exact: bool,
) -> f64 {
    let (mut m, mut e) = (0.0, 0.0);
    for (mi, ei) in mags_errs {
        m += mi;
        e += ei;
    }
    let sum_err = e + gamma(depth_b, u) * m;
    let sum_mag = m * (1.0 + gamma(depth_b, u));
    (sum_err + gamma(if n_exact { 1 } else { 2 }, u) * (sum_mag + sum_err)) / n as f64
}

/// `|fl(x̂ ŷ) − x* y*|` from `|x̂|, e_x, |ŷ|, e_y`.
fn prod_err(x: f64, ex: f64, y: f64, ey: f64, u: f64) -> f64 {
    ex * y + (x + ex) * ey + u * x * y
}

/// Bound on `fl(x̂ / n)` (live count `n`, rounded to the float type if beyond its exact range).
fn div_err(x: f64, ex: f64, n: usize, u: f64, n_exact: bool) -> f64 {
    (ex + gamma(if n_exact { 1 } else { 2 }, u) * (x + ex)) / n as f64
}

/// Error bounds for one kernel run on the backend whose summation order is `summation`.
pub fn kernel_bounds<F: Float>(
    summation: Summation,
    batch: &TrajectoryBatch<F>,
    kernel: &Kernel<'_, F>,
    shape: &Shape,
    out: &KernelOutput<F>,
    params: &ParamErrors,
) -> KernelBounds {
    let windows = kernel.windows();
    let stats = BoundStats::new(batch, windows);
    kernel_bounds_with(summation, batch, kernel, shape, out, params, &stats)
}

/// [`kernel_bounds`] with the per-row sums computed beforehand ([`BoundStats::new`] on the
/// same batch, with the kernel's windows if it has any).
pub fn kernel_bounds_with<F: Float>(
    summation: Summation,
    batch: &TrajectoryBatch<F>,
    kernel: &Kernel<'_, F>,
    shape: &Shape,
    out: &KernelOutput<F>,
    params: &ParamErrors,
    stats: &BoundStats,
) -> KernelBounds {
    let u = F::UNIT_ROUNDOFF;
    // Per-row sums over steps (phase 1) run on the backend; the batch means (phase 2) run on
    // the CPU for both backends (`kernels::cuda`), so they take the CPU tree's depth.
    let depth = |n: usize| summation.depth(n);
    let b = batch.batch();
    let mean_depth = Summation::Cpu.depth(b);
    let n = batch.live();
    let n_exact = n <= F::EXACT_INT_LIMIT;
    let beta = batch.beta().to_f64();
    let alpha = 1.0 / beta;
    let lengths = batch.lengths();
    let log_r: Vec<f64> = batch.log_r().iter().map(|x| x.to_f64()).collect();
    let live = |i: usize| lengths[i] > 0;
    let res: Vec<f64> = out.residual.iter().map(|x| x.to_f64()).collect();
    // x² without ½: twice the loss and the derivative factor 2 (both exact in floats).
    let half = match kernel {
        Kernel::Rtb { .. } => shape.rtb_half,
        Kernel::Tpcl { .. } => shape.tpcl_half,
        Kernel::TpclWindowed { .. } => shape.tpcl_windowed_half,
        Kernel::SubTb { .. } => shape.subtb_half,
        _ => true,
    };
    let d_scale = if half { 1.0 } else { 2.0 };
    let sq_scale = d_scale / 2.0;
    let stats = if kernel.id().windowed() {
        &stats.window
    } else {
        &stats.full
    };
    assert_eq!(
        stats.len(),
        b,
        "BoundStats computed for another batch or without windows"
    );
    let pe = |v: &Vec<f64>, i: usize| v.get(i).copied().unwrap_or(0.0);
    let zeros = vec![0.0; b];
    // Per-row residual bound, linear part: γ_m Σ|addends| (+ parameter errors).
    let residual: Vec<f64> = (0..b)
        .map(|i| {
            if !live(i) {
                return 0.0;
            }
            let s = &stats[i];
            let k = depth(s.n);
            let lr = log_r[i].abs();
            let a = s.abs_q + s.abs_p;
            match kernel {
                Kernel::Rtb { log_z } => {
                    let lz = log_z.to_f64().abs();
                    if shape.rtb_beta_on_ratio {
                        gamma(k + 3, u) * (lz + lr + beta * a)
                    } else {
                        gamma(k.max(1) + 2, u) * (lz + beta * lr + a)
                    }
                }
                Kernel::Tpcl { v0 } | Kernel::TpclSurrogate { v0 } => {
                    gamma(k + 5, u) * (alpha * a + lr + v0.to_f64().abs()) + params.v0
                }
                Kernel::TpclWindowed { windows } => {
                    let end_val = if windows.end()[i] == lengths[i] {
                        lr
                    } else {
                        windows.value_end()[i].to_f64().abs() + pe(&params.value_end, i)
                    };
                    let vs = windows.value_start()[i].to_f64().abs();
                    gamma(k + 5, u) * (alpha * a + end_val + vs)
                        + pe(&params.value_start, i)
                        + pe(&params.value_end, i)
                }
                Kernel::SubTb { windows } => {
                    let terminal = windows.end()[i] == lengths[i];
                    let vs = windows.value_start()[i].to_f64().abs();
                    if shape.subtb_beta_on_ratio {
                        // fl(fl(fl(vs + fl(β·s)) − e)): one more rounding on the ratio.
                        let end_val = if terminal {
                            lr
                        } else {
                            windows.value_end()[i].to_f64().abs()
                        };
                        gamma(k + 4, u) * (vs + beta * a + end_val)
                    } else {
                        let end_val = if terminal {
                            beta * lr
                        } else {
                            windows.value_end()[i].to_f64().abs()
                        };
                        gamma(k + 3, u) * (vs + a + end_val)
                    }
                }
                // The advantage's bound is computed below (it needs the baseline's).
                Kernel::ReinforceKl | Kernel::Flawed { .. } => 0.0,
            }
        })
        .collect();
    // Magnitude and bound of Σ log q (surrogate, REINFORCE, flawed) and Σ(log q − log p).
    let slq = |i: usize| {
        let s = &stats[i];
        let e = gamma(depth(s.n), u) * s.abs_q;
        (s.sum_q.abs() + 2.0 * e, e)
    };
    let sd = |i: usize| {
        let s = &stats[i];
        let e = gamma(depth(s.n) + 1, u) * (s.abs_q + s.abs_p);
        ((s.sum_q - s.sum_p).abs() + 2.0 * e, e)
    };
    let mut kb = KernelBounds {
        loss: 0.0,
        residual,
        g: zeros.clone(),
        grad_scalar: 0.0,
        grad_start: Vec::new(),
        grad_end: Vec::new(),
    };
    let sq_loss = |kb: &KernelBounds, scale: f64| {
        mean_bound(
            (0..b).filter(|&i| live(i)).map(|i| {
                let (r, e) = (res[i].abs(), kb.residual[i]);
                (
                    scale * r * r * (1.0 + u),
                    scale * (e * (2.0 * r + e) + u * r * r),
                )
            }),
            mean_depth,
            n,
            u,
            n_exact,
        )
    };
    match kernel {
        Kernel::Rtb { .. } | Kernel::SubTb { .. } => {
            kb.loss = sq_loss(&kb, sq_scale);
            // g = fl(fl(w·δ̂)/n), w = d (exact: 1 or 2) or fl(d·β) (β on the log-ratio: two
            // roundings, as for Trust-PCL's λ̂ below).
            let on_ratio = match kernel {
                Kernel::Rtb { .. } => shape.rtb_beta_on_ratio,
                _ => shape.subtb_beta_on_ratio,
            };
            let per = |i: usize| {
                let (r, e) = (res[i].abs(), kb.residual[i]);
                if on_ratio {
                    let pe = d_scale * beta * (e + gamma(2, u) * (r + e));
                    div_err(d_scale * beta * r * (1.0 + gamma(2, u)), pe, n, u, n_exact)
                } else {
                    div_err(d_scale * r, d_scale * e, n, u, n_exact)
                }
            };
            kb.g = (0..b).map(per).collect();
            if let Kernel::Rtb { .. } = kernel {
                kb.grad_scalar = mean_bound(
                    (0..b)
                        .filter(|&i| live(i))
                        .map(|i| (d_scale * res[i].abs(), d_scale * kb.residual[i])),
                    mean_depth,
                    n,
                    u,
                    n_exact,
                );
            } else {
                kb.grad_start = (0..b)
                    .map(|i| {
                        div_err(
                            d_scale * res[i].abs(),
                            d_scale * kb.residual[i],
                            n,
                            u,
                            n_exact,
                        )
                    })
                    .collect();
                kb.grad_end = kb.grad_start.clone();
            }
        }
        Kernel::Tpcl { .. } | Kernel::TpclWindowed { .. } => {
            kb.loss = sq_loss(&kb, sq_scale);
            // fl(fl(−(d λ̂) Ĉ) / n), λ̂ = α(1 + ε): γ_2 on the product, then the division.
            kb.g = (0..b)
                .map(|i| {
                    let (c, e) = (res[i].abs(), kb.residual[i]);
                    let pe = d_scale * alpha * (e + gamma(2, u) * (c + e));
                    div_err(d_scale * alpha * c * (1.0 + gamma(2, u)), pe, n, u, n_exact)
                })
                .collect();
            let per = |i: usize| {
                div_err(
                    d_scale * res[i].abs(),
                    d_scale * kb.residual[i],
                    n,
                    u,
                    n_exact,
                )
            };
            if let Kernel::Tpcl { .. } = kernel {
                kb.grad_scalar = mean_bound(
                    (0..b)
                        .filter(|&i| live(i))
                        .map(|i| (d_scale * res[i].abs(), d_scale * kb.residual[i])),
                    mean_depth,
                    n,
                    u,
                    n_exact,
                );
            } else {
                kb.grad_start = (0..b).map(per).collect();
                kb.grad_end = kb.grad_start.clone();
            }
        }
        Kernel::TpclSurrogate { .. } => {
            kb.loss = mean_bound(
                (0..b).filter(|&i| live(i)).map(|i| {
                    let (m, e) = slq(i);
                    let (c, ec) = (res[i].abs(), kb.residual[i]);
                    (c * m * (1.0 + u), prod_err(c, ec, m, e, u))
                }),
                mean_depth,
                n,
                u,
                n_exact,
            );
            kb.g = (0..b)
                .map(|i| div_err(res[i].abs(), kb.residual[i], n, u, n_exact))
                .collect();
        }
        Kernel::ReinforceKl | Kernel::Flawed { .. } => {
            // Reward R_i: log r − α̂ Σ(log q − log p) (m = k + 4), or exp(log r) within 2u.
            let reward: Vec<(f64, f64)> = (0..b)
                .map(|i| {
                    if !live(i) {
                        return (0.0, 0.0);
                    }
                    match kernel {
                        Kernel::Flawed { .. } => {
                            let r = log_r[i].exp();
                            (r * (1.0 + 3.0 * u), 2.0 * u * r * (1.0 + 3.0 * u))
                        }
                        _ => {
                            let s = &stats[i];
                            let mag = log_r[i].abs() + alpha * (s.abs_q + s.abs_p);
                            let e = gamma(depth(s.n) + 4, u) * mag;
                            (
                                log_r[i].abs() + alpha * (s.sum_q - s.sum_p).abs() + 2.0 * e,
                                e,
                            )
                        }
                    }
                })
                .collect();
            let e_b = mean_bound(
                (0..b).filter(|&i| live(i)).map(|i| reward[i]),
                mean_depth,
                n,
                u,
                n_exact,
            );
            kb.residual = (0..b)
                .map(|i| {
                    if live(i) {
                        reward[i].1 + e_b + u * res[i].abs() / (1.0 - u)
                    } else {
                        0.0
                    }
                })
                .collect();
            let kappa = match kernel {
                Kernel::Flawed { kappa } => kappa.to_f64().abs(),
                _ => 0.0,
            };
            kb.loss = mean_bound(
                (0..b).filter(|&i| live(i)).map(|i| {
                    let (a, ea) = (res[i].abs(), kb.residual[i]);
                    let (m, e) = slq(i);
                    let (pm, pe) = prod_err_mag(a, ea, m, e, u);
                    if kappa == 0.0 {
                        return (pm, pe);
                    }
                    let (dm, de) = sd(i);
                    // κ fl(Ŝd²): square, then the product with κ, then the sum with −Â Ŝlq.
                    let sq_e = de * (2.0 * dm + de) + u * dm * dm;
                    let km = kappa * dm * dm * (1.0 + u) * (1.0 + u);
                    let ke = kappa * sq_e + u * km;
                    ((pm + km) * (1.0 + u), pe + ke + u * (pm + km + pe + ke))
                }),
                mean_depth,
                n,
                u,
                n_exact,
            );
            kb.g = (0..b)
                .map(|i| {
                    let (a, ea) = (res[i].abs(), kb.residual[i]);
                    if kappa == 0.0 {
                        return div_err(a, ea, n, u, n_exact);
                    }
                    let (dm, de) = sd(i);
                    let t = 2.0 * kappa * dm;
                    let te = 2.0 * kappa * de + u * t;
                    let x = (t * (1.0 + u) + a) * (1.0 + u);
                    div_err(x, te + ea + u * (x + te + ea), n, u, n_exact)
                })
                .collect();
        }
    }
    let s = 1.0 + EVAL_SLACK;
    let scale = |v: &mut Vec<f64>| v.iter_mut().for_each(|x| *x *= s);
    kb.loss *= s;
    kb.grad_scalar *= s;
    scale(&mut kb.residual);
    scale(&mut kb.g);
    scale(&mut kb.grad_start);
    scale(&mut kb.grad_end);
    kb
}

/// `(magnitude, error)` of `fl(x̂ ŷ)`.
fn prod_err_mag(x: f64, ex: f64, y: f64, ey: f64, u: f64) -> (f64, f64) {
    (x * y * (1.0 + u), prod_err(x, ex, y, ey, u))
}

/// One comparison `a ≈ f · b` of two bounded values with a bounded factor.
///
/// Returns `|â − f̂ b̂| / bound`, where `bound = e_a + (|f̂| + e_f) e_b + e_f |b̂|` plus the
/// rounding of the comparison itself in f64 (`2 u₆₄ (|â| + |f̂ b̂|)`). The identity `a* = f* b*`
/// is consistent with the data iff the ratio is `≤ 1`. Both sides exactly 0 give 0.
pub fn ratio(a: f64, ea: f64, b: f64, eb: f64, f: f64, ef: f64) -> f64 {
    let u64_ = <f64 as Float>::UNIT_ROUNDOFF;
    let fb = f * b;
    let diff = (a - fb).abs();
    let bound = ea + (f.abs() + ef) * eb + ef * b.abs() + 2.0 * u64_ * (a.abs() + fb.abs());
    if diff == 0.0 {
        0.0
    } else if bound == 0.0 || !diff.is_finite() {
        f64::INFINITY
    } else {
        diff / bound
    }
}

//! At-scale agreement: C1–C4 between the float kernels, and f32 against f64, each with a
//! tolerance from the derived error bounds of [`super::bounds`] (no guessed epsilons).
//!
//! A check *holds* when, for every compared output, `|â − f·b̂| ≤ bound` (ratio ≤ 1), with
//! `bound` the sum of both sides' error bounds (plus the factor's own rounding). The report's
//! `checks` is a plain `Vec`: further checks (e.g. against the exact engine) are appended with
//! [`GradcheckReport::push`].
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use nalgebra::DMatrix;
use rayon::prelude::*;

use super::bounds::{kernel_bounds_with, ratio, BoundStats, KernelBounds, ParamErrors};
pub use super::report::{CheckResult, Device, Dtype, GradcheckReport};
use crate::kernels::batch::{TrajectoryBatch, Windows};
use crate::kernels::cuda::{CudaBackend, CudaFloat};
use crate::kernels::error::BatchError;
use crate::kernels::float::Float;
use crate::kernels::fused::Shape;
use crate::kernels::fused::{evaluate_into, GradForm, Kernel, KernelId, KernelOutput};
use crate::kernels::generate::{chunks, generate, GenConfig, Generated};
use crate::mutant::Mutant;
use crate::objectives::Definitions;

/// What to check.
#[derive(Debug, Clone)]
pub struct GradcheckConfig {
    /// `B`.
    pub batch: usize,
    /// `T`.
    pub steps: usize,
    /// Float type of the main checks.
    pub dtype: Dtype,
    /// β (use β ≠ 1: at β = 1, α = α² and some mutants are invisible).
    pub beta: f64,
    /// Seed of the generated batch.
    pub seed: u64,
    /// Device.
    pub device: Device,
    /// A deliberately wrong variant to swap in.
    pub mutant: Option<Mutant>,
    /// Show a progress bar (on stderr, only when it is a terminal).
    pub progress: bool,
    /// Spec files or directories: the f64 kernels are also checked against the exact engine
    /// on trajectories sampled from each environment's `q` (`exact-spec/<kernel>`); none if
    /// empty.
    pub exact_specs: Vec<std::path::PathBuf>,
    /// Trajectories sampled per environment for the exact-engine checks.
    pub exact_samples: usize,
}

impl Default for GradcheckConfig {
    fn default() -> Self {
        Self {
            batch: 4096,
            steps: 64,
            dtype: Dtype::F32,
            beta: 1.5,
            seed: 0,
            device: Device::Cpu,
            mutant: None,
            progress: false,
            exact_specs: Vec::new(),
            exact_samples: 256,
        }
    }
}

/// Running maximum of error ratios and absolute errors.
#[derive(Debug, Clone, Copy, Default)]
struct Acc {
    ratio: f64,
    abs: f64,
}

impl Acc {
    fn add(&mut self, a: f64, ea: f64, b: f64, eb: f64, f: (f64, f64)) {
        let r = ratio(a, ea, b, eb, f.0, f.1);
        self.ratio = self.ratio.max(r);
        let d = (a - f.0 * b).abs();
        self.abs = self.abs.max(if d.is_nan() { f64::INFINITY } else { d });
    }
    fn merge(self, o: Acc) -> Acc {
        Acc {
            ratio: self.ratio.max(o.ratio),
            abs: self.abs.max(o.abs),
        }
    }
    fn result(self, id: impl Into<String>) -> CheckResult {
        CheckResult {
            id: id.into(),
            holds: self.ratio <= 1.0,
            max_error_over_bound: self.ratio,
            max_abs_error: self.abs,
        }
    }
}

/// Compares per-trajectory vectors `a ≈ f b` on live rows (`mask`).
fn cmp_rows<F: Float>(
    acc: &mut Acc,
    a: &[F],
    ea: &[f64],
    b: &[F],
    eb: &[f64],
    f: (f64, f64),
    mask: impl Fn(usize) -> bool,
) {
    for i in 0..a.len() {
        if mask(i) {
            acc.add(a[i].to_f64(), ea[i], b[i].to_f64(), eb[i], f);
        }
    }
}

/// The dense gradient is exactly `g_i` on the live (windowed) steps and 0 elsewhere.
fn dense_layout<F: Float>(
    d: &DMatrix<F>,
    g: &[F],
    range: &(dyn Fn(usize) -> (usize, usize) + Sync),
) -> Acc {
    let t = d.nrows();
    if t == 0 {
        return Acc::default();
    }
    d.as_slice()
        .par_chunks(t)
        .enumerate()
        .map(|(i, c)| {
            let (s, e) = range(i);
            // Bit-exact: g_i on the live steps, +0 or −0 elsewhere.
            let ok = c[..s].iter().all(|&x| x == F::ZERO)
                && c[s..e]
                    .iter()
                    .all(|&x| x.to_f64().to_bits() == g[i].to_f64().to_bits())
                && c[e..].iter().all(|&x| x == F::ZERO);
            if ok {
                Acc::default()
            } else {
                Acc {
                    ratio: f64::INFINITY,
                    abs: f64::INFINITY,
                }
            }
        })
        .reduce(Acc::default, Acc::merge)
}

/// Where the kernels run during a check.
enum Backend {
    Cpu,
    Cuda(CudaBackend),
}

impl Backend {
    fn eval<F: CudaFloat>(
        &self,
        batch: &TrajectoryBatch<F>,
        kernel: &Kernel<'_, F>,
        form: GradForm,
        defs: &Definitions,
        dense: Option<&mut DMatrix<F>>,
    ) -> Result<KernelOutput<F>, BatchError> {
        match self {
            Backend::Cpu => evaluate_into(batch, kernel, Some(defs), dense),
            Backend::Cuda(c) => {
                let mut out = c.evaluate_with(batch, kernel, form, Some(defs))?;
                if let (Some(buf), Some(d)) = (dense, out.dense.take()) {
                    buf.copy_from(&d);
                }
                Ok(out)
            }
        }
    }
}

/// One kernel's output with its bounds.
struct Run<F: Float> {
    out: KernelOutput<F>,
    bounds: KernelBounds,
}

/// Runs one kernel (dense gradient into `dense`, checked there against `g` for the
/// `dense-layout` check) and bounds its outputs.
#[allow(clippy::too_many_arguments)]
fn run<F: CudaFloat>(
    backend: &Backend,
    batch: &TrajectoryBatch<F>,
    kernel: &Kernel<'_, F>,
    defs: &Definitions,
    params: &ParamErrors,
    stats: &BoundStats,
    dense: Option<(&mut DMatrix<F>, &mut Acc)>,
) -> Result<Run<F>, BatchError> {
    let out = match dense {
        None => backend.eval(batch, kernel, GradForm::PerTrajectory, defs, None)?,
        Some((buf, layout)) => {
            let out = backend.eval(batch, kernel, GradForm::Dense, defs, Some(&mut *buf))?;
            let windows = match kernel {
                Kernel::TpclWindowed { windows } | Kernel::SubTb { windows } => Some(*windows),
                _ => None,
            };
            let range = |i: usize| match windows {
                Some(w) => (w.start()[i], w.end()[i]),
                None => (0, batch.lengths()[i]),
            };
            *layout = layout.merge(dense_layout(buf, out.g.as_slice(), &range));
            out
        }
    };
    let shape = Shape::for_batch(batch, Some(defs))?;
    let bounds = kernel_bounds_with(batch, kernel, &shape, &out, params, stats);
    Ok(Run { out, bounds })
}

/// The suite's definitions at a batch's β with the run's mutant applied.
fn definitions<F: Float>(
    batch: &TrajectoryBatch<F>,
    mutant: Option<Mutant>,
) -> Result<Definitions, BatchError> {
    let beta = batch.beta().to_f64();
    Ok(Definitions::from_f64(beta)
        .ok_or(BatchError::InvalidBeta(beta))?
        .mutated(mutant))
}

/// Errors of the derived parameters as generated: `V = fl(x / β)` is within `u |x/β|` of
/// `α x`, i.e. within `u |V̂| / (1 − u)`.
fn param_errors<F: Float>(g: &Generated<F>) -> ParamErrors {
    let u = F::UNIT_ROUNDOFF;
    let e = |x: F| u * x.to_f64().abs() / (1.0 - u);
    ParamErrors {
        v0: e(g.v0),
        value_start: g.windows_v.value_start().iter().map(|&x| e(x)).collect(),
        value_end: g.windows_v.value_end().iter().map(|&x| e(x)).collect(),
    }
}

/// The factors of the identities, in f64 with their rounding: `(α̂, e)`, `(α̂², e)`.
fn factors(beta: f64) -> ((f64, f64), (f64, f64)) {
    let u = <f64 as Float>::UNIT_ROUNDOFF;
    let a = 1.0 / beta;
    let a2 = a * a;
    ((a, u * a * 1.000_001), (a2, 3.0 * u * a2 * 1.000_001))
}

/// C1–C4 on one generated batch, in `F`.
fn identity_checks<F: CudaFloat>(
    backend: &Backend,
    g: &Generated<F>,
    defs: &Definitions,
    pb: &ProgressBar,
) -> Result<Vec<CheckResult>, BatchError> {
    let batch = &g.batch;
    let lengths = batch.lengths();
    let live = |i: usize| lengths[i] > 0;
    let pe = param_errors(g);
    let none = ParamErrors::default();
    let (alpha, alpha2) = factors(batch.beta().to_f64());
    let neg_alpha = (-alpha.0, alpha.1);
    // The shared-scalar checks expect the definitions' power of α (α²).
    let shared = match defs.factors.shared_scalar.0 {
        1 => alpha,
        2 => alpha2,
        k => {
            return Err(BatchError::Unsupported(format!(
                "a shared-scalar factor α^{k}"
            )))
        }
    };
    let mut checks = Vec::new();
    let we = g.windows_v.end();

    let stats = BoundStats::new(batch, Some(&g.windows_v));
    // One dense buffer, reused by every kernel; each dense result is checked bit-exactly
    // against `g` (`dense-layout`), so comparing `g` compares every per-step entry.
    let mut buf = DMatrix::from_element(batch.steps(), batch.batch(), F::ZERO);
    let mut layout = Acc::default();
    let k_rtb = Kernel::Rtb { log_z: g.log_z };
    let rtb = run(
        backend,
        batch,
        &k_rtb,
        defs,
        &none,
        &stats,
        Some((&mut buf, &mut layout)),
    )?;
    let k_tpcl = Kernel::Tpcl { v0: g.v0 };
    let tpcl = run(
        backend,
        batch,
        &k_tpcl,
        defs,
        &pe,
        &stats,
        Some((&mut buf, &mut layout)),
    )?;
    pb.inc(1);

    let mut acc = Acc::default();
    cmp_rows(
        &mut acc,
        tpcl.out.residual.as_slice(),
        &tpcl.bounds.residual,
        rtb.out.residual.as_slice(),
        &rtb.bounds.residual,
        neg_alpha,
        live,
    );
    checks.push(acc.result("c1-residual"));

    let mut acc = Acc::default();
    acc.add(
        tpcl.out.loss.to_f64(),
        tpcl.bounds.loss,
        rtb.out.loss.to_f64(),
        rtb.bounds.loss,
        shared,
    );
    checks.push(acc.result("c2-loss"));

    let mut acc = Acc::default();
    cmp_rows(
        &mut acc,
        tpcl.out.g.as_slice(),
        &tpcl.bounds.g,
        rtb.out.g.as_slice(),
        &rtb.bounds.g,
        shared,
        live,
    );
    checks.push(acc.result("c3-grad-logq-shared"));

    // Shared scalar V(s0) = α log Z: ∂L_TPCL/∂log Z = α ∂L_TPCL/∂V(s0) (chain rule, in f64).
    let gv = tpcl.out.grad_scalar.to_f64();
    let chain = alpha.0 * gv;
    let chain_err = alpha.0 * tpcl.bounds.grad_scalar
        + alpha.1 * (gv.abs() + tpcl.bounds.grad_scalar)
        + <f64 as Float>::UNIT_ROUNDOFF * chain.abs();
    let mut acc = Acc::default();
    acc.add(
        chain,
        chain_err,
        rtb.out.grad_scalar.to_f64(),
        rtb.bounds.grad_scalar,
        shared,
    );
    checks.push(acc.result("c3-grad-logz-shared"));

    let mut acc = Acc::default();
    acc.add(
        gv,
        tpcl.bounds.grad_scalar,
        rtb.out.grad_scalar.to_f64(),
        rtb.bounds.grad_scalar,
        alpha,
    );
    checks.push(acc.result("c3-grad-v0-independent"));

    let k_surr = Kernel::TpclSurrogate { v0: g.v0 };
    let surr = run(
        backend,
        batch,
        &k_surr,
        defs,
        &pe,
        &stats,
        Some((&mut buf, &mut layout)),
    )?;
    let mut acc = Acc::default();
    cmp_rows(
        &mut acc,
        surr.out.g.as_slice(),
        &surr.bounds.g,
        rtb.out.g.as_slice(),
        &rtb.bounds.g,
        alpha,
        live,
    );
    checks.push(acc.result("c3-surrogate-grad-logq"));
    pb.inc(1);

    let k_tw = Kernel::TpclWindowed {
        windows: &g.windows_v,
    };
    let tw = run(
        backend,
        batch,
        &k_tw,
        defs,
        &pe,
        &stats,
        Some((&mut buf, &mut layout)),
    )?;
    let k_sub = Kernel::SubTb {
        windows: &g.windows_log_f,
    };
    let sub = run(
        backend,
        batch,
        &k_sub,
        defs,
        &none,
        &stats,
        Some((&mut buf, &mut layout)),
    )?;
    let mut acc = Acc::default();
    cmp_rows(
        &mut acc,
        tw.out.residual.as_slice(),
        &tw.bounds.residual,
        sub.out.residual.as_slice(),
        &sub.bounds.residual,
        neg_alpha,
        live,
    );
    checks.push(acc.result("c4-window-residual"));
    let mut acc = Acc::default();
    acc.add(
        tw.out.loss.to_f64(),
        tw.bounds.loss,
        sub.out.loss.to_f64(),
        sub.bounds.loss,
        alpha2,
    );
    checks.push(acc.result("c4-window-loss"));
    let mut acc = Acc::default();
    cmp_rows(
        &mut acc,
        tw.out.g.as_slice(),
        &tw.bounds.g,
        sub.out.g.as_slice(),
        &sub.bounds.g,
        alpha2,
        live,
    );
    checks.push(acc.result("c4-window-grad-logq"));
    let mut acc = Acc::default();
    if let (Some(a), Some(b)) = (&tw.out.grad_start, &sub.out.grad_start) {
        cmp_rows(
            &mut acc,
            a.as_slice(),
            &tw.bounds.grad_start,
            b.as_slice(),
            &sub.bounds.grad_start,
            alpha,
            live,
        );
    }
    if let (Some(a), Some(b)) = (&tw.out.grad_end, &sub.out.grad_end) {
        cmp_rows(
            &mut acc,
            a.as_slice(),
            &tw.bounds.grad_end,
            b.as_slice(),
            &sub.bounds.grad_end,
            alpha,
            |i| live(i) && we[i] < lengths[i],
        );
    }
    checks.push(acc.result("c4-window-grad-boundary"));
    checks.push(layout.result("dense-layout"));
    pb.inc(1);
    Ok(checks)
}

/// The parameters of a generated batch, cast to another float type (`V` recomputed there as
/// `log Z / β`, like the generator does).
fn cast_generated<G: Float, F: Float>(g: &Generated<F>) -> Result<Generated<G>, BatchError> {
    let batch: TrajectoryBatch<G> = g.batch.cast()?;
    let beta = batch.beta();
    let windows_log_f: Windows<G> = g.windows_log_f.cast(&batch)?;
    let windows_v = windows_log_f.with_values(
        &batch,
        windows_log_f.value_start().map(|x| x / beta),
        windows_log_f.value_end().map(|x| x / beta),
    )?;
    let log_z = G::from_f64(g.log_z.to_f64());
    Ok(Generated {
        batch,
        log_z,
        v0: log_z / beta,
        windows_log_f,
        windows_v,
    })
}

/// Every kernel in f32 against f64 on the same (f32-representable) inputs.
fn precision_checks(
    backend: &Backend,
    g32: &Generated<f32>,
    mutant: Option<Mutant>,
) -> Result<Vec<CheckResult>, BatchError> {
    let defs = &definitions(&g32.batch, mutant)?;
    let g64: Generated<f64> = cast_generated(g32)?;
    let (pe32, pe64) = (param_errors(g32), param_errors(&g64));
    // V in f64 is computed from the same f32 inputs; each side's parameter error is its own.
    let s32 = BoundStats::new(&g32.batch, Some(&g32.windows_v));
    let s64 = BoundStats::new(&g64.batch, Some(&g64.windows_v));
    let mut checks = Vec::new();
    for id in KernelId::ALL {
        let (k32, k64, p32, p64): (Kernel<f32>, Kernel<f64>, &ParamErrors, &ParamErrors) = match id
        {
            KernelId::Rtb => (
                Kernel::Rtb { log_z: g32.log_z },
                Kernel::Rtb { log_z: g64.log_z },
                &ParamErrors::default(),
                &ParamErrors::default(),
            ),
            KernelId::Tpcl => (
                Kernel::Tpcl { v0: g32.v0 },
                Kernel::Tpcl { v0: g64.v0 },
                &pe32,
                &pe64,
            ),
            KernelId::TpclWindowed => (
                Kernel::TpclWindowed {
                    windows: &g32.windows_v,
                },
                Kernel::TpclWindowed {
                    windows: &g64.windows_v,
                },
                &pe32,
                &pe64,
            ),
            KernelId::SubTb => (
                Kernel::SubTb {
                    windows: &g32.windows_log_f,
                },
                Kernel::SubTb {
                    windows: &g64.windows_log_f,
                },
                &ParamErrors::default(),
                &ParamErrors::default(),
            ),
            KernelId::TpclSurrogate => (
                Kernel::TpclSurrogate { v0: g32.v0 },
                Kernel::TpclSurrogate { v0: g64.v0 },
                &pe32,
                &pe64,
            ),
            KernelId::ReinforceKl => (
                Kernel::ReinforceKl,
                Kernel::ReinforceKl,
                &ParamErrors::default(),
                &ParamErrors::default(),
            ),
            KernelId::Flawed => (
                Kernel::Flawed { kappa: 0.5 },
                Kernel::Flawed { kappa: 0.5 },
                &ParamErrors::default(),
                &ParamErrors::default(),
            ),
        };
        let a = run(backend, &g32.batch, &k32, defs, p32, &s32, None)?;
        let b = run(backend, &g64.batch, &k64, defs, p64, &s64, None)?;
        let lengths = g32.batch.lengths();
        let live = |i: usize| lengths[i] > 0;
        let one = (1.0, 0.0);
        let mut acc = Acc::default();
        acc.add(
            a.out.loss as f64,
            a.bounds.loss,
            b.out.loss,
            b.bounds.loss,
            one,
        );
        acc.add(
            a.out.grad_scalar as f64,
            a.bounds.grad_scalar,
            b.out.grad_scalar,
            b.bounds.grad_scalar,
            one,
        );
        let wide = |v: &nalgebra::DVector<f32>| v.map(|x| x as f64);
        let (ar, ag) = (wide(&a.out.residual), wide(&a.out.g));
        cmp_rows(
            &mut acc,
            ar.as_slice(),
            &a.bounds.residual,
            b.out.residual.as_slice(),
            &b.bounds.residual,
            one,
            live,
        );
        cmp_rows(
            &mut acc,
            ag.as_slice(),
            &a.bounds.g,
            b.out.g.as_slice(),
            &b.bounds.g,
            one,
            live,
        );
        if let (Some(x), Some(y)) = (&a.out.grad_start, &b.out.grad_start) {
            cmp_rows(
                &mut acc,
                wide(x).as_slice(),
                &a.bounds.grad_start,
                y.as_slice(),
                &b.bounds.grad_start,
                one,
                live,
            );
        }
        if let (Some(x), Some(y)) = (&a.out.grad_end, &b.out.grad_end) {
            cmp_rows(
                &mut acc,
                wide(x).as_slice(),
                &a.bounds.grad_end,
                y.as_slice(),
                &b.bounds.grad_end,
                one,
                live,
            );
        }
        checks.push(acc.result(format!("f32-vs-f64/{}", id.name())));
    }
    Ok(checks)
}

/// Runs every gradcheck check and returns the report. Bad configurations (β ≤ 0, `T = 0`,
/// `B = 0`, CUDA unavailable) are errors.
pub fn run_checks(cfg: &GradcheckConfig) -> Result<GradcheckReport, BatchError> {
    let start = Instant::now();
    if !(cfg.beta.is_finite() && cfg.beta > 0.0) {
        return Err(BatchError::InvalidBeta(cfg.beta));
    }
    let backend = match cfg.device {
        Device::Cpu => Backend::Cpu,
        Device::Cuda => Backend::Cuda(CudaBackend::new(0)?),
    };
    let gen = GenConfig {
        batch: cfg.batch,
        steps: cfg.steps,
        seed: cfg.seed,
        beta: cfg.beta,
        full_lengths: false,
    };
    let pb = if cfg.progress && cfg.batch.saturating_mul(cfg.steps) >= 10_000_000 {
        let pb = ProgressBar::new(chunks(&gen) + 4);
        pb.set_style(
            ProgressStyle::with_template("gradcheck {bar:40} {pos}/{len} {elapsed}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        pb
    } else {
        ProgressBar::hidden()
    };
    let mut checks = Vec::new();
    match cfg.dtype {
        Dtype::F32 => {
            let g = generate::<f32>(&gen, Some(&pb))?;
            checks.extend(identity_checks(
                &backend,
                &g,
                &definitions(&g.batch, cfg.mutant)?,
                &pb,
            )?);
            checks.extend(precision_checks(&backend, &g, cfg.mutant)?);
        }
        Dtype::F64 => {
            let g = generate::<f64>(&gen, Some(&pb))?;
            checks.extend(identity_checks(
                &backend,
                &g,
                &definitions(&g.batch, cfg.mutant)?,
                &pb,
            )?);
            let g32: Generated<f32> = cast_generated(&g)?;
            drop(g);
            checks.extend(precision_checks(&backend, &g32, cfg.mutant)?);
        }
    }
    if !cfg.exact_specs.is_empty() {
        let envs =
            crate::dag::load_dir(&cfg.exact_specs).map_err(|e| BatchError::Spec(e.to_string()))?;
        if envs.is_empty() {
            return Err(BatchError::Spec(format!(
                "no spec files found under {:?}",
                cfg.exact_specs
            )));
        }
        let opts = super::exact_spec::ExactSpecOptions {
            samples: cfg.exact_samples,
            seed: cfg.seed,
            mutant: cfg.mutant,
        };
        checks
            .extend(super::exact_spec::exact_spec_checks(&envs, &opts).map_err(BatchError::Spec)?);
    }
    pb.inc(1);
    pb.finish_and_clear();
    let mut report = GradcheckReport {
        dtype: cfg.dtype,
        batch: cfg.batch,
        steps: cfg.steps,
        device: cfg.device,
        all_hold: true,
        checks: Vec::new(),
        seconds: 0.0,
    };
    for c in checks {
        report.push(c);
    }
    report.seconds = start.elapsed().as_secs_f64();
    Ok(report)
}

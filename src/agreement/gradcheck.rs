//! At-scale agreement: C1–C4 between the float kernels, and f32 against f64, each with a
//! tolerance from the derived error bounds of [`super::bounds`] (no guessed epsilons).
//!
//! A check *holds* when, for every compared output, `|â − f·b̂| ≤ bound` (ratio ≤ 1), with
//! `bound` the sum of both sides' error bounds (plus the factor's own rounding). The report's
//! `checks` is a plain `Vec`: further checks (e.g. against the exact engine) are appended with
//! [`GradcheckReport::push`].
use std::time::Instant;

use nalgebra::{DMatrix, DVector};
use rayon::prelude::*;

use super::bounds::{kernel_bounds_with, ratio, BoundStats, KernelBounds, ParamErrors};
pub use super::error::AgreementError;
pub use super::report::{CheckResult, Device, Dtype, GradcheckReport};
use crate::kernels::batch::{TrajectoryBatch, Windows};
use crate::kernels::cuda::{CudaBackend, CudaFloat};
use crate::kernels::error::BatchError;
use crate::kernels::float::Float;
use crate::kernels::fused::Shape;
use crate::kernels::fused::{evaluate_into, GradForm, Kernel, KernelId, KernelOutput};
use crate::kernels::generate::{chunks, generate, GenConfig, Generated};
use crate::kernels::sum::Summation;
use crate::mutant::Mutant;
use crate::objectives::Definitions;
use crate::progress::Progress;

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
    /// The summation order whose depth this backend's bounds use.
    fn summation(&self) -> Summation {
        match self {
            Backend::Cpu => Summation::Cpu,
            Backend::Cuda(_) => Summation::Cuda,
        }
    }

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
            let windows = kernel.windows();
            let range = |i: usize| match windows {
                Some(w) => (w.start()[i], w.end()[i]),
                None => (0, batch.lengths()[i]),
            };
            *layout = layout.merge(dense_layout(buf, out.g.as_slice(), &range));
            out
        }
    };
    let shape = Shape::for_batch(batch, Some(defs))?;
    let bounds = kernel_bounds_with(
        backend.summation(),
        batch,
        kernel,
        &shape,
        &out,
        params,
        stats,
    );
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

/// The kernel `id` on a generated batch, with the errors of the parameters it reads (`V`
/// derived from `log Z` or `log F` by a rounded division; `log Z`, `log F` exact as given).
fn kernel_of<'a, F: Float>(
    id: KernelId,
    g: &'a Generated<F>,
    pe: &ParamErrors,
) -> (Kernel<'a, F>, ParamErrors) {
    let exact = ParamErrors::default();
    match id {
        KernelId::Rtb => (Kernel::Rtb { log_z: g.log_z }, exact),
        KernelId::Tpcl => (Kernel::Tpcl { v0: g.v0 }, pe.clone()),
        KernelId::TpclWindowed => (
            Kernel::TpclWindowed {
                windows: &g.windows_v,
            },
            pe.clone(),
        ),
        KernelId::SubTb => (
            Kernel::SubTb {
                windows: &g.windows_log_f,
            },
            exact,
        ),
        KernelId::TpclSurrogate => (Kernel::TpclSurrogate { v0: g.v0 }, pe.clone()),
        KernelId::ReinforceKl => (Kernel::ReinforceKl, exact),
        KernelId::Flawed => (
            Kernel::Flawed {
                kappa: F::from_f64(0.5),
            },
            exact,
        ),
    }
}

/// One output of a kernel run, as the values it compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Output {
    /// The batch-mean loss.
    Loss,
    /// The per-trajectory residual.
    Residual,
    /// The per-trajectory gradient `∂L/∂log q[t, i]` (the dense form is checked bit-exactly
    /// against it: `dense-layout`).
    G,
    /// `∂L/∂log Z` or `∂L/∂V(s0)`.
    GradScalar,
    /// `α · ∂L/∂V(s0)`: Trust-PCL's scalar gradient carried to `log Z` by the chain rule of
    /// `V(s0) = α log Z` (computed here in f64, its rounding added to the bound).
    GradScalarToLogZ,
    /// The window boundaries' gradients: the start on every live row, the end on rows whose
    /// window ends before the terminal (`interior_end`) or on every live row.
    Boundary {
        /// Compare the end's gradient only where the window ends before the terminal.
        interior_end: bool,
    },
}

/// The factor `f` of an identity `lhs ≈ f · rhs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Factor {
    Alpha,
    NegAlpha,
    AlphaSquared,
    /// The definitions' power of α for the shared-scalar checks (α²; α under
    /// `alpha-not-squared`).
    Shared,
}

/// One identity between two kernels' outputs: `lhs ≈ factor · rhs` on every compared value.
struct Identity {
    id: &'static str,
    lhs: (KernelId, Output),
    factor: Factor,
    rhs: (KernelId, Output),
}

/// The at-scale identities C1–C4, one row each (docs/claims.md states them).
const IDENTITIES: [Identity; 10] = {
    use KernelId::{Rtb, SubTb, Tpcl, TpclSurrogate, TpclWindowed};
    use Output::*;
    const fn row(
        id: &'static str,
        lhs: (KernelId, Output),
        factor: Factor,
        rhs: (KernelId, Output),
    ) -> Identity {
        Identity {
            id,
            lhs,
            factor,
            rhs,
        }
    }
    let boundary = Boundary { interior_end: true };
    [
        row(
            "c1-residual",
            (Tpcl, Residual),
            Factor::NegAlpha,
            (Rtb, Residual),
        ),
        row("c2-loss", (Tpcl, Loss), Factor::Shared, (Rtb, Loss)),
        row("c3-grad-logq-shared", (Tpcl, G), Factor::Shared, (Rtb, G)),
        row(
            "c3-grad-logz-shared",
            (Tpcl, GradScalarToLogZ),
            Factor::Shared,
            (Rtb, GradScalar),
        ),
        row(
            "c3-grad-v0-independent",
            (Tpcl, GradScalar),
            Factor::Alpha,
            (Rtb, GradScalar),
        ),
        row(
            "c3-surrogate-grad-logq",
            (TpclSurrogate, G),
            Factor::Alpha,
            (Rtb, G),
        ),
        row(
            "c4-window-residual",
            (TpclWindowed, Residual),
            Factor::NegAlpha,
            (SubTb, Residual),
        ),
        row(
            "c4-window-loss",
            (TpclWindowed, Loss),
            Factor::AlphaSquared,
            (SubTb, Loss),
        ),
        row(
            "c4-window-grad-logq",
            (TpclWindowed, G),
            Factor::AlphaSquared,
            (SubTb, G),
        ),
        row(
            "c4-window-grad-boundary",
            (TpclWindowed, boundary),
            Factor::Alpha,
            (SubTb, boundary),
        ),
    ]
};

/// The kernels the identities read, in the order they run.
const IDENTITY_KERNELS: [KernelId; 5] = [
    KernelId::Rtb,
    KernelId::Tpcl,
    KernelId::TpclSurrogate,
    KernelId::TpclWindowed,
    KernelId::SubTb,
];

/// Every output a kernel has, for the f32-against-f64 checks.
const ALL_OUTPUTS: [Output; 5] = [
    Output::Loss,
    Output::GradScalar,
    Output::Residual,
    Output::G,
    Output::Boundary {
        interior_end: false,
    },
];

/// What a batch tells the comparisons: which rows are live and where windows end.
struct Rows<'a> {
    lengths: &'a [usize],
    window_end: &'a [usize],
    alpha: (f64, f64),
}

/// The values (with their error bounds) of one output of one run, `None` where not compared.
fn side<F: Float>(run: &Run<F>, output: Output, rows: &Rows<'_>) -> Vec<Option<(f64, f64)>> {
    let live = |i: usize| rows.lengths[i] > 0;
    let per_row = |v: &DVector<F>, e: &[f64], keep: &dyn Fn(usize) -> bool| {
        v.iter()
            .zip(e)
            .enumerate()
            .map(|(i, (x, &e))| keep(i).then(|| (x.to_f64(), e)))
            .collect::<Vec<_>>()
    };
    let (out, b) = (&run.out, &run.bounds);
    match output {
        Output::Loss => vec![Some((out.loss.to_f64(), b.loss))],
        Output::GradScalar => vec![Some((out.grad_scalar.to_f64(), b.grad_scalar))],
        Output::GradScalarToLogZ => {
            let (alpha, alpha_err) = rows.alpha;
            let gv = out.grad_scalar.to_f64();
            let chain = alpha * gv;
            let err = alpha * b.grad_scalar
                + alpha_err * (gv.abs() + b.grad_scalar)
                + <f64 as Float>::UNIT_ROUNDOFF * chain.abs();
            vec![Some((chain, err))]
        }
        Output::Residual => per_row(&out.residual, &b.residual, &live),
        Output::G => per_row(&out.g, &b.g, &live),
        Output::Boundary { interior_end } => {
            let mut values = Vec::new();
            if let Some(start) = &out.grad_start {
                values.extend(per_row(start, &b.grad_start, &live));
            }
            if let Some(end) = &out.grad_end {
                let keep =
                    |i: usize| live(i) && (!interior_end || rows.window_end[i] < rows.lengths[i]);
                values.extend(per_row(end, &b.grad_end, &keep));
            }
            values
        }
    }
}

/// `lhs ≈ f · rhs` on every value both sides compare.
fn compare<F: Float, G: Float>(
    id: impl Into<String>,
    lhs: (&Run<F>, Output),
    f: (f64, f64),
    rhs: (&Run<G>, Output),
    rows: &Rows<'_>,
) -> CheckResult {
    let (a, b) = (side(lhs.0, lhs.1, rows), side(rhs.0, rhs.1, rows));
    let mut acc = Acc::default();
    if a.len() != b.len() {
        // One side has an output the other lacks (a windowed kernel against a full one):
        // the identity cannot hold.
        acc.ratio = f64::INFINITY;
        acc.abs = f64::INFINITY;
    }
    for (x, y) in a.iter().zip(&b) {
        if let (Some((x, ex)), Some((y, ey))) = (x, y) {
            acc.add(*x, *ex, *y, *ey, f);
        }
    }
    acc.result(id)
}

/// C1–C4 on one generated batch, in `F`: every row of [`IDENTITIES`].
fn identity_checks<F: CudaFloat>(
    backend: &Backend,
    g: &Generated<F>,
    defs: &Definitions,
    pb: &Progress,
) -> Result<Vec<CheckResult>, BatchError> {
    let batch = &g.batch;
    let pe = param_errors(g);
    let (alpha, alpha2) = factors(batch.beta().to_f64());
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
    let stats = BoundStats::new(batch, Some(&g.windows_v));
    // One dense buffer, reused by every kernel; each dense result is checked bit-exactly
    // against `g` (`dense-layout`), so comparing `g` compares every per-step entry.
    let mut buf = DMatrix::from_element(batch.steps(), batch.batch(), F::ZERO);
    let mut layout = Acc::default();
    let mut runs = Vec::with_capacity(IDENTITY_KERNELS.len());
    for id in IDENTITY_KERNELS {
        let (kernel, params) = kernel_of(id, g, &pe);
        let r = run(
            backend,
            batch,
            &kernel,
            defs,
            &params,
            &stats,
            Some((&mut buf, &mut layout)),
        )?;
        runs.push((id, r));
        pb.inc(1);
    }
    let of = |id: KernelId| {
        runs.iter()
            .find(|(k, _)| *k == id)
            .map(|(_, r)| r)
            .ok_or_else(|| BatchError::Unsupported(format!("no run of {}", id.name())))
    };
    let rows = Rows {
        lengths: batch.lengths(),
        window_end: g.windows_v.end(),
        alpha,
    };
    let mut checks = Vec::with_capacity(IDENTITIES.len() + 1);
    for identity in &IDENTITIES {
        let f = match identity.factor {
            Factor::Alpha => alpha,
            Factor::NegAlpha => (-alpha.0, alpha.1),
            Factor::AlphaSquared => alpha2,
            Factor::Shared => shared,
        };
        checks.push(compare(
            identity.id,
            (of(identity.lhs.0)?, identity.lhs.1),
            f,
            (of(identity.rhs.0)?, identity.rhs.1),
            &rows,
        ));
    }
    checks.push(layout.result("dense-layout"));
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

/// Every kernel in f32 against f64 on the same (f32-representable) inputs: every output
/// ([`ALL_OUTPUTS`]) equal within both sides' bounds.
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
    let rows = Rows {
        lengths: g32.batch.lengths(),
        window_end: g32.windows_v.end(),
        alpha: factors(g64.batch.beta()).0,
    };
    let mut checks = Vec::new();
    for id in KernelId::ALL {
        let (k32, p32) = kernel_of(id, g32, &pe32);
        let (k64, p64) = kernel_of(id, &g64, &pe64);
        let a = run(backend, &g32.batch, &k32, defs, &p32, &s32, None)?;
        let b = run(backend, &g64.batch, &k64, defs, &p64, &s64, None)?;
        checks.push(outputs_agree(&a, &b, &rows).result(format!("f32-vs-f64/{}", id.name())));
    }
    Ok(checks)
}

/// Every output ([`ALL_OUTPUTS`]) of two runs equal within both sides' bounds.
fn outputs_agree<F: Float, G: Float>(a: &Run<F>, b: &Run<G>, rows: &Rows<'_>) -> Acc {
    let mut acc = Acc::default();
    for output in ALL_OUTPUTS {
        let c = compare("", (a, output), (1.0, 0.0), (b, output), rows);
        acc = acc.merge(Acc {
            ratio: c.max_error_over_bound,
            abs: c.max_abs_error,
        });
    }
    acc
}

/// Every kernel on the GPU against the CPU kernels on the same batch: every output equal
/// within the sum of the two backends' bounds, each derived with its own summation depth.
fn cross_device_checks<F: CudaFloat>(
    gpu: &Backend,
    g: &Generated<F>,
    defs: &Definitions,
) -> Result<Vec<CheckResult>, BatchError> {
    let pe = param_errors(g);
    let stats = BoundStats::new(&g.batch, Some(&g.windows_v));
    let rows = Rows {
        lengths: g.batch.lengths(),
        window_end: g.windows_v.end(),
        alpha: factors(g.batch.beta().to_f64()).0,
    };
    let mut checks = Vec::new();
    for id in KernelId::ALL {
        let (k, p) = kernel_of(id, g, &pe);
        let cpu = run(&Backend::Cpu, &g.batch, &k, defs, &p, &stats, None)?;
        let dev = run(gpu, &g.batch, &k, defs, &p, &stats, None)?;
        checks.push(outputs_agree(&cpu, &dev, &rows).result(format!("cpu-vs-cuda/{}", id.name())));
    }
    Ok(checks)
}

/// Runs every gradcheck check and returns the report. Bad configurations (β ≤ 0, `T = 0`,
/// `B = 0`, CUDA unavailable) are errors.
pub fn run_checks(cfg: &GradcheckConfig) -> Result<GradcheckReport, AgreementError> {
    let start = Instant::now();
    if !(cfg.beta.is_finite() && cfg.beta > 0.0) {
        return Err(BatchError::InvalidBeta(cfg.beta).into());
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
        Progress::stderr(
            "gradcheck",
            chunks(&gen) + IDENTITY_KERNELS.len() as u64 + 1,
        )
    } else {
        Progress::hidden()
    };
    let mut checks = Vec::new();
    match cfg.dtype {
        Dtype::F32 => {
            let g = generate::<f32>(&gen, Some(&pb))?;
            let defs = definitions(&g.batch, cfg.mutant)?;
            checks.extend(identity_checks(&backend, &g, &defs, &pb)?);
            if let Backend::Cuda(_) = backend {
                checks.extend(cross_device_checks(&backend, &g, &defs)?);
            }
            checks.extend(precision_checks(&backend, &g, cfg.mutant)?);
        }
        Dtype::F64 => {
            let g = generate::<f64>(&gen, Some(&pb))?;
            let defs = definitions(&g.batch, cfg.mutant)?;
            checks.extend(identity_checks(&backend, &g, &defs, &pb)?);
            if let Backend::Cuda(_) = backend {
                checks.extend(cross_device_checks(&backend, &g, &defs)?);
            }
            let g32: Generated<f32> = cast_generated(&g)?;
            drop(g);
            checks.extend(precision_checks(&backend, &g32, cfg.mutant)?);
        }
    }
    if !cfg.exact_specs.is_empty() {
        let envs = crate::dag::load_dir(&cfg.exact_specs)?;
        if envs.is_empty() {
            return Err(AgreementError::NoSpecs(cfg.exact_specs.clone()));
        }
        let opts = super::exact_spec::ExactSpecOptions {
            samples: cfg.exact_samples,
            seed: cfg.seed,
            mutant: cfg.mutant,
        };
        checks.extend(super::exact_spec::exact_spec_checks(&envs, &opts)?);
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

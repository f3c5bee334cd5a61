//! The fused loss-and-gradient kernels.
//!
//! Every kernel has the same three phases:
//! 1. **one read of the inputs** (parallel over trajectories): per trajectory, one or two
//!    pairwise sums over the live (or windowed) steps of a per-step term in `log q`, `log p`;
//! 2. `O(B)` work: residuals, the batch-mean loss, the per-trajectory gradient `g`, the
//!    scalar / boundary gradients;
//! 3. (dense form only) one write of the `T × B` gradient `∂L/∂log q[t, i] = g_i · live[t, i]`.
//!
//! On the CPU they run as **one pass** where they can ([`RowPass`]): each row's part of
//! phase 2 (its residual, `g_i`, its boundary gradients) is computed from its sums while
//! they are in registers, its window checked as it is reached, and, for the kernels whose
//! `g_i` needs only row `i` and quantities known before the pass (all but REINFORCE-KL, whose
//! baseline is the batch mean of a sum over the steps; the flawed baseline's is the mean of
//! the raw rewards, computed from `log r` first), its dense column written in the same pass. What is left of phase 2 is
//! the batch means. The per-row arithmetic is one closure per kernel in [`compute`], run by
//! the CPU pass and, on the host, after the CUDA backend's device sums.
//!
//! Every objective here depends on `log q` only through sums over a trajectory's steps, so the
//! gradient has per-trajectory structure; [`GradForm::PerTrajectory`] returns `g` alone and
//! the kernel only reads its inputs.
//!
//! The Trust-PCL kernels build their residual from the per-step RL terms
//! `r_t − (τ_H + λ) log q_t + λ log p_t` (γ = 1, τ_H = 0, λ = α = 1/β, `r_t = log r(x)` on the
//! step into the terminal, `V(terminal) = 0`); nothing in them refers to RTB.
use nalgebra::{DMatrix, DVector};
use rayon::prelude::*;
use serde::Serialize;

use super::batch::{TrajectoryBatch, Windows};
use super::error::BatchError;
use super::float::Float;
use super::simd;
use super::stream::LINE_BYTES;
use super::sum::{
    lanes_sum, lanes_sum2, lanes_sum2_linear_q, lanes_sum_linear, sum_leaves, Leaf, BLOCK,
};
use crate::objectives::definition::{Definitions, Objective, Reduction};
use crate::objectives::rtb::BetaPlacement;
use num_traits::ToPrimitive;

/// Trajectories per parallel task in the memory-bound phases: one leaf of the batch sums'
/// pairwise tree ([`super::sum::sum_by`]), so each task sums its rows' terms into one leaf.
const ROWS_PER_TASK: usize = BLOCK;

/// A kernel and its parameters.
#[derive(Debug, Clone, Copy)]
pub enum Kernel<'a, F: Float> {
    /// RTB: `δ = log Z + Σ log q − Σ log p − β log r`, `L = ½ δ²`.
    Rtb {
        /// Learned `log Z`.
        log_z: F,
    },
    /// Trust-PCL on the full trajectory:
    /// `C = −V(s0) + Σ_t [r_t − α log q_t + α log p_t]`, `L = ½ C²`.
    Tpcl {
        /// Learned `V(s0)`.
        v0: F,
    },
    /// Trust-PCL on one window per trajectory with learned `V` at its boundaries.
    TpclWindowed {
        /// Windows and `V(s_start)`, `V(s_end)`.
        windows: &'a Windows<F>,
    },
    /// Relative SubTB on one window per trajectory with learned `log F` at its boundaries:
    /// `δ = log F(s_i) + Σ log q − Σ log p − log F(s_j)`, `log F(x) = β log r(x)`.
    SubTb {
        /// Windows and `log F(s_start)`, `log F(s_end)`.
        windows: &'a Windows<F>,
    },
    /// The reference Trust-PCL code's policy surrogate `L = −sg(C) · Σ_t log q_t`.
    TpclSurrogate {
        /// `V(s0)` inside `C` (no gradient flows to it through `sg`).
        v0: F,
    },
    /// REINFORCE with KL-regularized reward: `A = log r − α (log q(τ) − log p(τ)) − b`,
    /// `b` the batch mean of the rest, `L = −sg(A) · log q(τ)`.
    ReinforceKl,
    /// The flawed baseline (negative control): `A = r(x) − mean r` (raw reward, not
    /// `log r`), `L = −sg(A) · log q(τ) + κ (log q(τ) − log p(τ))²`.
    Flawed {
        /// Weight κ of the squared log-ratio penalty.
        kappa: F,
    },
}

/// The kernels' names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum KernelId {
    /// [`Kernel::Rtb`].
    Rtb,
    /// [`Kernel::Tpcl`].
    Tpcl,
    /// [`Kernel::TpclWindowed`].
    TpclWindowed,
    /// [`Kernel::SubTb`].
    SubTb,
    /// [`Kernel::TpclSurrogate`].
    TpclSurrogate,
    /// [`Kernel::ReinforceKl`].
    ReinforceKl,
    /// [`Kernel::Flawed`].
    Flawed,
}

impl KernelId {
    /// Every kernel, in a fixed order.
    pub const ALL: [KernelId; 7] = [
        KernelId::Rtb,
        KernelId::Tpcl,
        KernelId::TpclWindowed,
        KernelId::SubTb,
        KernelId::TpclSurrogate,
        KernelId::ReinforceKl,
        KernelId::Flawed,
    ];
    /// Kebab-case name (`rtb`, `tpcl-windowed`, …).
    pub fn name(self) -> &'static str {
        match self {
            KernelId::Rtb => "rtb",
            KernelId::Tpcl => "tpcl",
            KernelId::TpclWindowed => "tpcl-windowed",
            KernelId::SubTb => "subtb",
            KernelId::TpclSurrogate => "tpcl-surrogate",
            KernelId::ReinforceKl => "reinforce-kl",
            KernelId::Flawed => "flawed",
        }
    }
    /// Whether the kernel reads windows.
    pub fn windowed(self) -> bool {
        matches!(self, KernelId::TpclWindowed | KernelId::SubTb)
    }
    /// Whether the dense form can only be written after every row has been read: REINFORCE-KL's
    /// `g_i = −(R_i − b)/B` needs the batch mean `b` of the rewards `R_i = log r_i − λ·Σ_t(log q
    /// − log p)`, which are sums over the per-step inputs, so no column can be written before
    /// the last row is read. (The flawed baseline's mean is of `exp(log r)`, an `O(B)` input,
    /// so its dense form is written inside the pass.)
    pub fn dense_after_all_reads(self) -> bool {
        matches!(self, KernelId::ReinforceKl)
    }
}

impl<'a, F: Float> Kernel<'a, F> {
    /// The windows a windowed kernel reads (`None` for the full-trajectory kernels).
    pub fn windows(&self) -> Option<&'a Windows<F>> {
        match *self {
            Kernel::TpclWindowed { windows } | Kernel::SubTb { windows } => Some(windows),
            _ => None,
        }
    }

    /// The kernel's name.
    pub fn id(&self) -> KernelId {
        match self {
            Kernel::Rtb { .. } => KernelId::Rtb,
            Kernel::Tpcl { .. } => KernelId::Tpcl,
            Kernel::TpclWindowed { .. } => KernelId::TpclWindowed,
            Kernel::SubTb { .. } => KernelId::SubTb,
            Kernel::TpclSurrogate { .. } => KernelId::TpclSurrogate,
            Kernel::ReinforceKl => KernelId::ReinforceKl,
            Kernel::Flawed { .. } => KernelId::Flawed,
        }
    }
}

/// Which gradient with respect to the per-step `log q` to return.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum GradForm {
    /// The dense `T × B` gradient (what autograd materializes) as well as `g`.
    Dense,
    /// Only the per-trajectory `g` (`B` values): the kernel only reads its inputs.
    PerTrajectory,
}

/// A kernel's result: the batch-mean loss and its gradients.
#[derive(Debug, Clone)]
pub struct KernelOutput<F: Float> {
    /// Which kernel.
    pub kernel: KernelId,
    /// Batch-mean loss (over the live rows).
    pub loss: F,
    /// Per-trajectory residual: `δ` (RTB), `C` (Trust-PCL, surrogate), `C_{i:j}` (windowed),
    /// `δ_{i:j}` (SubTB), the advantage `A` (REINFORCE-KL, flawed); 0 on empty rows.
    pub residual: DVector<F>,
    /// Per-trajectory gradient: `∂L/∂log q[t, i] = g_i` for every live (windowed) step `t`.
    pub g: DVector<F>,
    /// The dense `T × B` gradient (zero on padding and outside windows), when asked for.
    pub dense: Option<DMatrix<F>>,
    /// `∂L/∂log Z` (RTB), `∂L/∂V(s0)` (Trust-PCL); 0 where the kernel has no such scalar
    /// (the surrogate's `sg(C)` stops it).
    pub grad_scalar: F,
    /// Windowed kernels: `∂L/∂V(s_start)` or `∂L/∂log F(s_start)` per trajectory.
    pub grad_start: Option<DVector<F>>,
    /// Windowed kernels: `∂L/∂V(s_end)` or `∂L/∂log F(s_end)` (0 where the end is terminal).
    pub grad_end: Option<DVector<F>>,
}

/// What the fused kernels read from the objective definitions: plain flags and factors,
/// derived once per call by [`Shape::of`]. The kernels support the definitions' regime of
/// the equivalence (γ = 1, τ_H = 0, mean reduction); anything else is refused.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Shape {
    /// RTB's loss is `½ δ²` (else `δ²`).
    pub rtb_half: bool,
    /// RTB's β sits on the log-ratio (else on the log-reward).
    pub rtb_beta_on_ratio: bool,
    /// Trust-PCL's loss is `½ C²`.
    pub tpcl_half: bool,
    /// Windowed Trust-PCL's loss is `½ C²`.
    pub tpcl_windowed_half: bool,
    /// `λ/α` times the penalty's sign for Trust-PCL (±1 in the equivalence regime).
    pub tpcl_lambda: f64,
    /// The same for windowed Trust-PCL.
    pub tpcl_windowed_lambda: f64,
    /// The same for the surrogate.
    pub tpcl_surrogate_lambda: f64,
    /// SubTB's loss is `½ δ²`.
    pub subtb_half: bool,
    /// SubTB's β sits on the log-ratio.
    pub subtb_beta_on_ratio: bool,
    /// REINFORCE-KL's KL weight over α.
    pub reinforce_lambda: f64,
}

impl Shape {
    /// Reads the definitions; refuses what the kernels do not compute.
    pub fn of(defs: &Definitions) -> Result<Self, BatchError> {
        let supported = |o: &Objective| -> Result<(), BatchError> {
            if o.undiscounted_without_entropy() && o.reduction == Reduction::Mean {
                Ok(())
            } else {
                Err(BatchError::Unsupported(format!(
                    "{:?}: the fused kernels compute γ = 1, τ_H = 0 and the mean reduction only",
                    o.family
                )))
            }
        };
        for o in [
            &defs.rtb,
            &defs.tpcl,
            &defs.tpcl_windowed,
            &defs.tpcl_surrogate,
            &defs.subtb,
            &defs.reinforce_kl,
            &defs.flawed,
        ] {
            supported(o)?;
        }
        // λ/α · sign = λ·β·sign, exact in rationals; ±1 in the regime, so the kernels'
        // products by it are exact.
        let over_alpha = |o: &Objective| {
            let r = &o.regularisation;
            (&r.relative_entropy * &defs.beta * &r.penalty_sign)
                .to_f64()
                .unwrap_or(f64::NAN)
        };
        Ok(Self {
            rtb_half: defs.rtb.half,
            rtb_beta_on_ratio: defs.rtb.beta == BetaPlacement::OnLogRatio,
            tpcl_half: defs.tpcl.half,
            tpcl_windowed_half: defs.tpcl_windowed.half,
            tpcl_lambda: over_alpha(&defs.tpcl),
            tpcl_windowed_lambda: over_alpha(&defs.tpcl_windowed),
            tpcl_surrogate_lambda: over_alpha(&defs.tpcl_surrogate),
            subtb_half: defs.subtb.half,
            subtb_beta_on_ratio: defs.subtb.beta == BetaPlacement::OnLogRatio,
            reinforce_lambda: (&defs.reinforce_kl.regularisation.relative_entropy * &defs.beta)
                .to_f64()
                .unwrap_or(f64::NAN),
        })
    }

    /// The definitions at the batch's β, checked to be that β exactly.
    pub(crate) fn for_batch<F: Float>(
        batch: &TrajectoryBatch<F>,
        defs: Option<&Definitions>,
    ) -> Result<Self, BatchError> {
        let beta = batch.beta().to_f64();
        match defs {
            None => Self::of(&Definitions::from_f64(beta).ok_or(BatchError::InvalidBeta(beta))?),
            Some(d) if crate::exact::Rational::from_float(beta).as_ref() == Some(&d.beta) => {
                Self::of(d)
            }
            Some(d) => Err(BatchError::Unsupported(format!(
                "the definitions are for β = {} but the batch has β = {beta}",
                d.beta
            ))),
        }
    }
}

/// Evaluates one kernel with the suite's definitions at the batch's β.
pub fn evaluate<F: Float>(
    batch: &TrajectoryBatch<F>,
    kernel: &Kernel<'_, F>,
    form: GradForm,
) -> Result<KernelOutput<F>, BatchError> {
    evaluate_with(batch, kernel, form, None)
}

/// Evaluates one kernel with the given definitions (for instance a mutant's,
/// [`Definitions::mutated`]); `None` is the suite's definitions at the batch's β.
pub fn evaluate_with<F: Float>(
    batch: &TrajectoryBatch<F>,
    kernel: &Kernel<'_, F>,
    form: GradForm,
    defs: Option<&Definitions>,
) -> Result<KernelOutput<F>, BatchError> {
    match form {
        GradForm::PerTrajectory => evaluate_into(batch, kernel, defs, None),
        GradForm::Dense => {
            let mut dense = DMatrix::from_element(batch.steps(), batch.batch(), F::ZERO);
            let mut out = evaluate_into(batch, kernel, defs, Some(&mut dense))?;
            out.dense = Some(dense);
            Ok(out)
        }
    }
}

/// Evaluates one kernel, writing the dense gradient (if `dense` is given) into a caller-owned
/// `T × B` buffer (no allocation of `B × T` memory per call); the output's `dense` is `None`.
pub fn evaluate_into<F: Float>(
    batch: &TrajectoryBatch<F>,
    kernel: &Kernel<'_, F>,
    defs: Option<&Definitions>,
    dense: Option<&mut DMatrix<F>>,
) -> Result<KernelOutput<F>, BatchError> {
    if let Some(d) = &dense {
        let want = (batch.steps(), batch.batch());
        if d.shape() != want {
            return Err(BatchError::ShapeMismatch {
                what: "dense gradient buffer",
                found: d.shape(),
                expected: want,
            });
        }
    }
    let shape = Shape::for_batch(batch, defs)?;
    let windows = kernel.windows();
    let pass = CpuPass {
        batch,
        level: Level::Dispatched,
        ahead: prefetch_rows(batch),
        stores: dense_stores(batch, windows),
    };
    compute(batch, kernel, &shape, &pass, dense)
}

fn check_scalar<F: Float>(what: &'static str, x: F) -> Result<(), BatchError> {
    if x.is_finite() {
        Ok(())
    } else {
        Err(BatchError::NonFiniteScalar {
            what,
            value: x.to_f64(),
        })
    }
}

/// The windows' count must be the batch's (checked before any row is read).
fn check_window_count<F: Float>(
    batch: &TrajectoryBatch<F>,
    w: &Windows<F>,
) -> Result<(), BatchError> {
    if w.start().len() == batch.batch() {
        Ok(())
    } else {
        Err(BatchError::ShapeMismatch {
            what: "windows",
            found: (w.start().len(), 1),
            expected: (batch.batch(), 1),
        })
    }
}

fn window_error<F: Float>(batch: &TrajectoryBatch<F>, w: &Windows<F>, i: usize) -> BatchError {
    BatchError::WindowOutOfRange {
        row: i,
        start: w.start()[i],
        end: w.end()[i],
        length: batch.lengths()[i],
    }
}

/// Every window within its trajectory ([`super::batch::window_fits`]); the first bad row is
/// reported. The CPU pass checks each row as it reads it instead; backends that read the
/// rows elsewhere (CUDA) check here first.
#[cfg_attr(not(feature = "cuda"), allow(dead_code))]
pub(crate) fn check_windows<F: Float>(
    batch: &TrajectoryBatch<F>,
    w: &Windows<F>,
) -> Result<(), BatchError> {
    check_window_count(batch, w)?;
    let (start, end, lengths) = (w.start(), w.end(), batch.lengths());
    let bad = |i: usize| !super::batch::window_fits(start[i], end[i], lengths[i]);
    match (0..batch.batch())
        .into_par_iter()
        .with_min_len(4096)
        .find_first(|&i| bad(i))
    {
        None => Ok(()),
        Some(i) => Err(window_error(batch, w, i)),
    }
}

/// A per-step term `a · log q + b · log p`, evaluated as `fl(fl(a log q) + fl(b log p))`
/// (products by ±1 and additions of +0 are exact, so `(1, −1)` is exactly `fl(log q − log p)`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Term<F> {
    /// Coefficient of `log q`.
    pub a: F,
    /// Coefficient of `log p`.
    pub b: F,
}

/// A kernel's per-row part of phase 2: row `i`'s `N` outputs and `M` batch-sum terms from its
/// sums `s1`, `s2`. Any closure of that shape is one; a kernel whose row is too large for the
/// compiler to inline as a closure implements it on a struct, with the method inlined always
/// (a row finished out of line returned its outputs through memory, and the pass's wide reload
/// of those narrow stores stalled: 13–17 % of windowed Trust-PCL's samples, session 15 of
/// `docs/performance.md`).
pub(crate) trait Finish<F, const N: usize, const M: usize>: Sync + Copy {
    /// Row `i`'s outputs and terms.
    fn row(&self, i: usize, s1: F, s2: F) -> ([F; N], [F; M]);
}

impl<F, const N: usize, const M: usize, C> Finish<F, N, M> for C
where
    C: Fn(usize, F, F) -> ([F; N], [F; M]) + Sync + Copy,
{
    #[inline(always)]
    fn row(&self, i: usize, s1: F, s2: F) -> ([F; N], [F; M]) {
        self(i, s1, s2)
    }
}

/// Phase 1 of a kernel with its per-row part of phase 2 fused in: per trajectory, the sums
/// `s1`, `s2` of one or two [`Term`]s over its live steps (`0..length`) or its window (`s2 = 0`
/// with one term), turned at once by `finish(i, s1, s2)` into the row's `N` outputs and `M`
/// terms of batch sums (outputs and terms 0 on empty rows); the batch sums come back summed
/// by [`super::sum::sum_by`]'s scheme, bit for bit (so a loss needs no second pass over a
/// `B`-long vector). A bad window is an error naming its row. Implemented by the CPU
/// ([`CpuPass`]: the outputs are written while the row is in registers) and by the CUDA
/// backend (device sums, then `finish` on the host): one definition of each kernel's per-row
/// arithmetic, in [`compute`], serves both.
pub(crate) trait RowPass<F: Float> {
    /// Runs the pass; with `dense = Some((buffer, k))` the pass also writes output `k` (the
    /// per-trajectory gradient `g`) as the dense `T × B` gradient, when it can (the CPU
    /// does, in the same pass; it returns whether it did).
    fn rows<const N: usize, const M: usize, Fin>(
        &self,
        windows: Option<&Windows<F>>,
        t1: Term<F>,
        t2: Option<Term<F>>,
        finish: Fin,
        dense: Option<(&mut DMatrix<F>, usize)>,
    ) -> Result<Rows<F, N, M>, BatchError>
    where
        Fin: Finish<F, N, M>;
}

/// What a [`RowPass`] returns.
pub(crate) struct Rows<F, const N: usize, const M: usize> {
    /// The `N` per-row outputs.
    pub outs: [Vec<F>; N],
    /// The `M` batch sums of the per-row terms.
    pub sums: [F; M],
    /// Whether the pass wrote the dense gradient.
    pub wrote_dense: bool,
}

/// The CPU pass: rayon over chunks of rows, pairwise sums at the given [`Level`], software
/// prefetch `ahead` rows ahead (0: none).
#[derive(Clone, Copy)]
pub(crate) struct CpuPass<'b, F: Float> {
    /// The batch.
    pub batch: &'b TrajectoryBatch<F>,
    /// Which compilation of the loop to run.
    pub level: Level,
    /// Prefetch distance in rows.
    pub ahead: usize,
    /// The stores of a dense gradient written in the pass ([`dense_stores`]).
    pub stores: Stores,
}

impl<F: Float> RowPass<F> for CpuPass<'_, F> {
    fn rows<const N: usize, const M: usize, Fin>(
        &self,
        windows: Option<&Windows<F>>,
        t1: Term<F>,
        t2: Option<Term<F>>,
        finish: Fin,
        dense: Option<(&mut DMatrix<F>, usize)>,
    ) -> Result<Rows<F, N, M>, BatchError>
    where
        Fin: Finish<F, N, M>,
    {
        if let Some(w) = windows {
            check_window_count(self.batch, w)?;
        }
        let (one, neg, zero) = (F::ONE, -F::ONE, F::ZERO);
        let Term { a, b } = t1;
        let diff = t1 == (Term { a: one, b: neg });
        // The common terms get closures without multiplications (the products by ±1 and 0
        // are exact, so the sums are the same bits either way). The dispatched loops sum every
        // term but the general second one by explicit vectors (`linear`: the first term's
        // coefficients; the second, if any, is then `log q`): `fl(1·q) + fl(−1·p)` is
        // exactly `fl(q − p)`, so those are the same bits too.
        match t2 {
            None if diff => self.run::<N, M, false, _, _, _>(
                dense,
                windows,
                |q, p| q - p,
                |_, _| zero,
                Some(t1),
                finish,
            ),
            // The read reference of `bench` (`log q + log p`).
            None if t1 == (Term { a: one, b: one }) => self.run::<N, M, false, _, _, _>(
                dense,
                windows,
                |q, p| q + p,
                |_, _| zero,
                Some(t1),
                finish,
            ),
            None => self.run::<N, M, false, _, _, _>(
                dense,
                windows,
                move |q, p| a * q + b * p,
                |_, _| zero,
                Some(t1),
                finish,
            ),
            Some(t2) => {
                let Term { a: c, b: d } = t2;
                if t2 == (Term { a: one, b: zero }) && diff {
                    self.run::<N, M, true, _, _, _>(
                        dense,
                        windows,
                        |q, p| q - p,
                        |q, _| q,
                        Some(t1),
                        finish,
                    )
                } else if t2 == (Term { a: one, b: zero }) {
                    self.run::<N, M, true, _, _, _>(
                        dense,
                        windows,
                        move |q, p| a * q + b * p,
                        |q, _| q,
                        Some(t1),
                        finish,
                    )
                } else {
                    self.run::<N, M, true, _, _, _>(
                        dense,
                        windows,
                        move |q, p| a * q + b * p,
                        move |q, p| c * q + d * p,
                        None,
                        finish,
                    )
                }
            }
        }
    }
}

impl<F: Float> CpuPass<'_, F> {
    #[allow(clippy::too_many_arguments)]
    fn run<const N: usize, const M: usize, const TWO: bool, Fa, Fb, Fin>(
        &self,
        dense: Option<(&mut DMatrix<F>, usize)>,
        windows: Option<&Windows<F>>,
        f: Fa,
        g: Fb,
        linear: Option<Term<F>>,
        finish: Fin,
    ) -> Result<Rows<F, N, M>, BatchError>
    where
        Fa: Fn(F, F) -> F + Copy + Sync,
        Fb: Fn(F, F) -> F + Copy + Sync,
        Fin: Finish<F, N, M>,
    {
        let batch = self.batch;
        let b = batch.batch();
        // Uninitialised outputs: every row of every output is written below exactly once
        // (zero-filling them first was a second write of each, and its page faults).
        let mut outs: [Vec<F>; N] = std::array::from_fn(|_| Vec::with_capacity(b));
        let rows = RowSums::new(batch, windows, self.ahead, (f, g), linear, self.level);
        let level = self.level;
        let t = batch.steps();
        let wrote_dense = dense.is_some() && t > 0;
        let g_index = dense.as_ref().map_or(0, |d| d.1);
        let stores = self.stores;
        let (first_bad, leaves) = {
            let mut parts: [&mut [std::mem::MaybeUninit<F>]; N] =
                outs.each_mut().map(|v| &mut v.spare_capacity_mut()[..b]);
            let chunks = chunk_outputs(&mut parts, ROWS_PER_TASK);
            // The dense gradient's columns, chunked like the rows (none when T = 0).
            let mut dense_chunks: Vec<Option<&mut [F]>> = match dense {
                Some((d, _)) if t > 0 => d
                    .as_mut_slice()
                    .chunks_mut(t * ROWS_PER_TASK)
                    .map(Some)
                    .collect(),
                _ => Vec::new(),
            };
            dense_chunks.resize_with(chunks.len(), || None);
            let per_chunk = chunks
                .into_par_iter()
                .zip(dense_chunks)
                .enumerate()
                .map(|(c, (outs, dense))| {
                    let first = c * ROWS_PER_TASK;
                    // Compiled apart: the per-trajectory form's loop carries no column writer
                    // (with one, its short rows ran 20 % slower), and each kind of stores gets
                    // its own loop (session 16).
                    macro_rules! task {
                        ($dense:expr) => {
                            run_at::<F, _>(
                                level,
                                RowTask::<F, _, _, _, TWO, { $dense }, N, M> {
                                    rows,
                                    first,
                                    outs,
                                    finish,
                                    dense,
                                    g_index,
                                },
                            )
                        };
                    }
                    match writer_of(&dense, stores) {
                        NO_COLUMNS => task!(NO_COLUMNS),
                        PLAIN_COLUMNS => task!(PLAIN_COLUMNS),
                        _ => task!(STREAMED_COLUMNS),
                    }
                })
                .collect::<Vec<_>>();
            // The first bad row over every chunk (`Option::min` would prefer `None`).
            let first_bad = per_chunk.iter().filter_map(|c| c.0).min();
            (first_bad, per_chunk.into_iter().map(|c| c.1))
        };
        if let (Some(i), Some(w)) = (first_bad, windows) {
            return Err(window_error(batch, w, i));
        }
        for v in outs.iter_mut() {
            // SAFETY: `RowTask` wrote every element `0..b` of every output (one chunk per
            // `ROWS_PER_TASK` rows covering `0..b`, each writing all its rows).
            unsafe { v.set_len(b) };
        }
        Ok(Rows {
            outs,
            sums: sums_of_leaves(leaves),
            wrote_dense,
        })
    }
}

/// The `M` batch sums from the chunks' leaves, in row order (see [`Leaf`]).
fn sums_of_leaves<F: Float, const M: usize>(
    leaves: impl ExactSizeIterator<Item = [F; M]>,
) -> [F; M] {
    if M == 0 {
        return [F::ZERO; M];
    }
    let mut by_sum: [Vec<F>; M] = std::array::from_fn(|_| Vec::with_capacity(leaves.len()));
    for leaf in leaves {
        for (v, x) in by_sum.iter_mut().zip(leaf) {
            v.push(x);
        }
    }
    by_sum.map(|v| sum_leaves(&v))
}

/// Splits `N` equally long outputs into aligned chunks of `size` rows: one `[chunk; N]` per
/// parallel task.
fn chunk_outputs<'o, T, const N: usize>(
    parts: &'o mut [&mut [T]; N],
    size: usize,
) -> Vec<[&'o mut [T]; N]> {
    let mut iters: [_; N] = parts.each_mut().map(|p| p.chunks_mut(size));
    let mut chunks = Vec::new();
    if N == 0 {
        // Nothing to split (and `any` over no iterators would never end the loop).
        return chunks;
    }
    loop {
        let next: [Option<&mut [T]>; N] = iters.each_mut().map(|it| it.next());
        if next.iter().any(Option::is_none) {
            return chunks;
        }
        chunks.push(next.map(|c| c.expect("checked above")));
    }
}

/// [`CpuPass`] returning the bare sums (`s1`, and `s2` when there are two terms; else an
/// empty vector): what `bench` times as phase 1 alone and the tests compare across levels.
pub(crate) fn cpu_row_sums_tuned<F: Float>(
    batch: &TrajectoryBatch<F>,
    windows: Option<&Windows<F>>,
    t1: Term<F>,
    t2: Option<Term<F>>,
    level: Level,
    ahead: usize,
) -> Result<(Vec<F>, Vec<F>), BatchError> {
    let pass = CpuPass {
        batch,
        level,
        ahead,
        stores: Stores::Regular,
    };
    if t2.is_some() {
        let [s1, s2] = pass
            .rows(windows, t1, t2, |_, x, y| ([x, y], []), None)?
            .outs;
        Ok((s1, s2))
    } else {
        let [s1] = pass.rows(windows, t1, t2, |_, x, _| ([x], []), None)?.outs;
        Ok((s1, Vec::new()))
    }
}

/// [`cpu_row_sums_tuned`] at the kernels' prefetch distance for this batch ([`prefetch_rows`]).
pub(crate) fn cpu_row_sums_at<F: Float>(
    batch: &TrajectoryBatch<F>,
    windows: Option<&Windows<F>>,
    t1: Term<F>,
    t2: Option<Term<F>>,
    level: Level,
) -> Result<(Vec<F>, Vec<F>), BatchError> {
    cpu_row_sums_tuned(batch, windows, t1, t2, level, prefetch_rows(batch))
}

/// Which compilation of the phase-1 loop to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Level {
    /// The best instruction set of this CPU ([`simd::dispatch`]).
    Dispatched,
    /// The baseline build ([`simd::baseline`]).
    Baseline,
}

#[inline(always)]
fn run_at<F: Float, T: simd::Task>(level: Level, task: T) -> T::Output {
    match level {
        Level::Dispatched => simd::dispatch_for(F::BYTES, task),
        Level::Baseline => simd::baseline(task),
    }
}

/// What phase 1 reads: the inputs, the rows' ranges and the per-step terms.
#[derive(Clone, Copy)]
struct RowSums<'a, F: Float, Fa, Fb> {
    q: &'a [F],
    p: &'a [F],
    t: usize,
    lengths: &'a [usize],
    windows: Option<&'a Windows<F>>,
    /// Software prefetch distance in rows (0: none).
    ahead: usize,
    f: Fa,
    g: Fb,
    /// The first term's coefficients (`f` is then that term), summed by [`lanes_sum_linear`]
    /// (one term) or [`lanes_sum2_linear_q`] (two: the second, `g`, is then `log q`); `None`:
    /// the closures.
    linear: Option<Term<F>>,
    /// Whether [`lanes_sum_linear`] may use explicit AVX vectors (a dispatched loop on a CPU
    /// with AVX).
    wide: bool,
}

impl<'a, F: Float, Fa, Fb> RowSums<'a, F, Fa, Fb> {
    fn new(
        batch: &'a TrajectoryBatch<F>,
        windows: Option<&'a Windows<F>>,
        ahead: usize,
        (f, g): (Fa, Fb),
        linear: Option<Term<F>>,
        level: Level,
    ) -> Self {
        Self {
            q: batch.log_q().as_slice(),
            p: batch.log_p().as_slice(),
            t: batch.steps(),
            lengths: batch.lengths(),
            windows,
            ahead,
            f,
            g,
            linear,
            // Windows too, since the explicit loop's remainder is one masked step (its scalar
            // remainder lost to the vectoriser's around the short windows: session 7 of
            // docs/performance.md; the masked one: session 13).
            wide: level == Level::Dispatched && simd::has_avx(),
        }
    }
}

/// The fused pass on one chunk of rows (`first..first + len`): one sum per row (two with
/// `TWO`, from the same read), finished into the row's `N` outputs and `M` terms, and output
/// `g_index` written on the row's live (windowed) steps of the dense gradient (0 elsewhere)
/// when its columns are given. Returns the chunk's first row whose window does not fit (its
/// outputs and terms are zero and its steps are not read) and the chunk's leaf of each batch
/// sum. Run through [`simd::dispatch`]. `DENSE` is the columns' writer ([`NO_COLUMNS`],
/// [`PLAIN_COLUMNS`] or [`STREAMED_COLUMNS`]), fixed at compile time.
struct RowTask<
    'a,
    'o,
    F: Float,
    Fa,
    Fb,
    Fin,
    const TWO: bool,
    const DENSE: u8,
    const N: usize,
    const M: usize,
> {
    rows: RowSums<'a, F, Fa, Fb>,
    first: usize,
    outs: [&'o mut [std::mem::MaybeUninit<F>]; N],
    finish: Fin,
    dense: Option<&'o mut [F]>,
    g_index: usize,
}

impl<F: Float, Fa, Fb, Fin, const TWO: bool, const DENSE: u8, const N: usize, const M: usize>
    simd::Task for RowTask<'_, '_, F, Fa, Fb, Fin, TWO, DENSE, N, M>
where
    Fa: Fn(F, F) -> F + Copy,
    Fb: Fn(F, F) -> F + Copy,
    Fin: Finish<F, N, M>,
{
    type Output = (Option<usize>, [F; M]);
    #[inline(always)]
    fn run(self) -> (Option<usize>, [F; M]) {
        let RowSums {
            q,
            p,
            t,
            lengths,
            windows,
            ahead,
            f,
            g,
            linear,
            wide,
        } = self.rows;
        let mut outs = self.outs;
        // `DENSE` is which writer `CpuPass::run` chose for these columns: known at compile
        // time, so the loop holds that writer's code alone.
        let (cols, stores) = columns_of::<DENSE, _>(self.dense);
        let mut dense = DenseColumns::new(cols, stores, wide);
        let mut first_bad = None;
        let mut leaves = [Leaf::new(); M];
        let len = if N == 0 { 0 } else { outs[0].len() };
        for k in 0..len {
            let i = self.first + k;
            if ahead > 0 {
                prefetch_row(q, p, t, lengths, windows, i + ahead);
            }
            let (s, e) = range(lengths, windows, i);
            let fits = windows.is_none() || super::batch::window_fits(s, e, lengths[i]);
            let (vals, terms) = if !fits {
                first_bad = first_bad.or(Some(i));
                ([F::ZERO; N], [F::ZERO; M])
            } else if lengths[i] == 0 {
                ([F::ZERO; N], [F::ZERO; M])
            } else {
                let (a, b) = (&q[i * t + s..i * t + e], &p[i * t + s..i * t + e]);
                // The explicit vectors where they apply, else the closures (the scalar
                // loop's own form of the term: `q − p` without products).
                let (x, y) = match linear {
                    // SAFETY: `wide` is set only where the CPU has AVX (`RowSums::new`).
                    Some(Term { a: c, b: d }) if wide && TWO => unsafe {
                        lanes_sum2_linear_q(a, b, c, d)
                    },
                    // SAFETY: as above.
                    Some(Term { a: c, b: d }) if wide => unsafe {
                        (lanes_sum_linear(a, b, c, d), F::ZERO)
                    },
                    _ if TWO => lanes_sum2(a, b, f, g),
                    _ => (lanes_sum(a, b, f), F::ZERO),
                };
                self.finish.row(i, x, y)
            };
            if fits {
                dense.column(t, s, e, vals[self.g_index]);
            } else {
                dense.column(t, 0, 0, F::ZERO);
            }
            for (out, v) in outs.iter_mut().zip(vals) {
                out[k].write(v);
            }
            for (leaf, x) in leaves.iter_mut().zip(terms) {
                leaf.add(k, x);
            }
        }
        dense.finish();
        (first_bad, leaves.map(Leaf::sum))
    }
}

/// [`RowTask`]'s writer of the dense columns, a compile-time choice: none.
const NO_COLUMNS: u8 = 0;
/// [`DenseColumns::Plain`].
const PLAIN_COLUMNS: u8 = 1;
/// [`DenseColumns::Stream`].
const STREAMED_COLUMNS: u8 = 2;

/// The writer constant of `cols` written with `stores` (the inverse of [`columns_of`]).
fn writer_of<T>(cols: &Option<T>, stores: Stores) -> u8 {
    match (cols, stores) {
        (None, _) => NO_COLUMNS,
        (Some(_), Stores::Regular) => PLAIN_COLUMNS,
        (Some(_), Stores::NonTemporal) => STREAMED_COLUMNS,
    }
}

/// The columns and stores [`DenseColumns::new`] takes for the writer constant `DENSE`: the
/// columns only where it writes them (then a constant, so the loop keeps one writer's code).
#[inline(always)]
fn columns_of<const DENSE: u8, T>(cols: Option<T>) -> (Option<T>, Stores) {
    match DENSE {
        PLAIN_COLUMNS => (cols, Stores::Regular),
        STREAMED_COLUMNS => (cols, Stores::NonTemporal),
        _ => (None, Stores::Regular),
    }
}

/// The dense gradient's columns of one chunk of rows, written column after column (`0` before
/// the row's range, `g_i` on it, `0` after) with ordinary or streaming stores.
enum DenseColumns<'o, F: Float> {
    /// No dense form asked for (or the kernel fills it later).
    None,
    /// Ordinary stores; `next` is the first element of the next column; `wide`: whether
    /// [`Float::column_avx`] may write the short columns.
    Plain {
        cols: &'o mut [F],
        next: usize,
        wide: bool,
    },
    /// Streaming stores.
    Stream(LineSink<'o, F>),
}

impl<'o, F: Float> DenseColumns<'o, F> {
    #[inline(always)]
    fn new(cols: Option<&'o mut [F]>, stores: Stores, wide: bool) -> Self {
        match (cols, stores) {
            (None, _) => Self::None,
            (Some(cols), Stores::Regular) => Self::Plain {
                cols,
                next: 0,
                wide,
            },
            (Some(cols), Stores::NonTemporal) => Self::Stream(LineSink::new(cols)),
        }
    }

    /// Writes the next column (`t` steps, `g` on `s..e`).
    #[inline(always)]
    fn column(&mut self, t: usize, s: usize, e: usize, g: F) {
        match self {
            Self::None => {}
            Self::Plain { cols, next, wide } => {
                write_column(&mut cols[*next..*next + t], s, e, g, *wide);
                *next += t;
            }
            Self::Stream(sink) => sink.column(t, s, e, g),
        }
    }

    #[inline(always)]
    fn finish(self) {
        if let Self::Stream(sink) = self {
            sink.finish();
        }
    }
}

/// Writes one column of the dense gradient with ordinary stores: `g` on `s..e`, 0 elsewhere.
///
/// A short column (at most [`SHORT_COLUMN`] steps) with `wide` (the CPU has AVX2, in a
/// dispatched loop) is written by [`Float::column_avx`], a vector per eight (four) elements,
/// each selected by its index. Three `fill`s per column cost three loops whose vector bodies a
/// column of 8 or 37 steps never reaches: at `T = 8` the dense write alone ran at 54 % of the
/// copy reference (`docs/performance.md`, session 16). Longer columns keep the `fill`s.
#[inline(always)]
fn write_column<F: Float>(col: &mut [F], s: usize, e: usize, g: F, wide: bool) {
    if wide && col.len() <= SHORT_COLUMN {
        // SAFETY: `wide` only where the CPU has AVX2 (`RowSums::new`, `FillTask`); `s ≤ e ≤
        // col.len()` (a range that fits its row, of at most `SHORT_COLUMN` steps).
        unsafe { F::column_avx(col, s, e, g) };
    } else {
        col[..s].fill(F::ZERO);
        col[s..e].fill(g);
        col[e..].fill(F::ZERO);
    }
}

/// The longest column [`write_column`] writes by index.
const SHORT_COLUMN: usize = 64;

/// How many rows ahead phase 1 prefetches when its inputs come from memory.
const PREFETCH_ROWS: usize = 16;

/// How many rows ahead the pass over `batch` prefetches: none while the inputs (`2·B·T·s`
/// bytes) fit in an eighth of the last-level cache, [`PREFETCH_ROWS`] above it. Prefetching is
/// for rows that come from memory: a row's window at a random offset defeats the hardware
/// prefetchers, and at `B = 2^20` the windowed passes ran 15 % faster with it. Rows already in
/// the cache gain nothing from it and pay for its instructions: at `B = 65536`, `T = 100`
/// (52 MB of `f32` inputs, in a 480 MiB cache shared by the virtual machine's host) SubTB's
/// pass ran 13 % faster without it, and at twice the bytes 5 % slower; an eighth of the cache
/// sits between the two (`docs/performance.md`, session 15).
pub(crate) fn prefetch_rows<F: Float>(batch: &TrajectoryBatch<F>) -> usize {
    prefetch_distance(
        2 * batch.batch() * batch.steps() * F::BYTES,
        last_level_cache_bytes(),
    )
}

/// [`prefetch_rows`] for `inputs` bytes and a last-level cache of `cache` bytes.
fn prefetch_distance(inputs: usize, cache: usize) -> usize {
    if inputs <= cache / 8 {
        0
    } else {
        PREFETCH_ROWS
    }
}

/// Software prefetch of row `i`'s range in both inputs. Windows start at random offsets, which
/// defeats the hardware stream prefetcher row after row (each row then pays a miss latency);
/// asking a few rows ahead turns that latency-bound pass back into a bandwidth-bound one.
#[inline(always)]
fn prefetch_row<F: Float>(
    q: &[F],
    p: &[F],
    t: usize,
    lengths: &[usize],
    windows: Option<&Windows<F>>,
    i: usize,
) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        if i >= lengths.len() {
            return;
        }
        let (s, e) = range(lengths, windows, i);
        // A window that does not fit is reported by the pass, never read (nor prefetched:
        // its addresses could lie outside the inputs).
        if !super::batch::window_fits(s, e, lengths[i]) {
            return;
        }
        let line = 64 / F::BYTES;
        let mut k = i * t + s;
        while k < i * t + e {
            // SAFETY: `k` is in bounds of both slices (row i's range); prefetch never faults.
            unsafe {
                _mm_prefetch(q.as_ptr().add(k) as *const i8, _MM_HINT_T0);
                _mm_prefetch(p.as_ptr().add(k) as *const i8, _MM_HINT_T0);
            }
            k += line;
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (q, p, t, lengths, windows, i);
}

#[inline(always)]
fn range<F: Float>(lengths: &[usize], windows: Option<&Windows<F>>, i: usize) -> (usize, usize) {
    match windows {
        Some(w) => (w.start()[i], w.end()[i]),
        None => (0, lengths[i]),
    }
}

/// How phase 3 writes the dense gradient.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stores {
    /// Ordinary stores (each written cache line is first read into the cache).
    Regular,
    /// Non-temporal (streaming) stores for every whole, aligned cache line: the line is
    /// written to memory without being read first, so the write moves `B·T·s` bytes instead
    /// of `2·B·T·s`. Falls back to [`Stores::Regular`] off x86-64.
    NonTemporal,
}

/// The last-level cache's size in bytes (Linux: sysfs; elsewhere, or unreadable: 32 MiB).
pub fn last_level_cache_bytes() -> usize {
    static BYTES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *BYTES.get_or_init(|| {
        let read = |path: String| std::fs::read_to_string(path).ok();
        let mut best = None;
        for index in 0..8 {
            let dir = format!("/sys/devices/system/cpu/cpu0/cache/index{index}");
            let (Some(level), Some(size)) =
                (read(format!("{dir}/level")), read(format!("{dir}/size")))
            else {
                continue;
            };
            let size = size.trim();
            let bytes = if let Some(k) = size.strip_suffix('K') {
                k.parse::<usize>().ok().map(|k| k << 10)
            } else if let Some(m) = size.strip_suffix('M') {
                m.parse::<usize>().ok().map(|m| m << 20)
            } else {
                size.parse::<usize>().ok()
            };
            if let (Ok(level), Some(bytes)) = (level.trim().parse::<u32>(), bytes) {
                if best.is_none_or(|(l, _)| level > l) {
                    best = Some((level, bytes));
                }
            }
        }
        best.map_or(32 << 20, |(_, bytes)| bytes)
    })
}

/// The stores [`evaluate_into`] uses for the dense gradient of `batch` ([`stores_for`] with
/// this machine's last-level cache).
pub fn dense_stores<F: Float>(batch: &TrajectoryBatch<F>, windows: Option<&Windows<F>>) -> Stores {
    stores_for(
        batch.batch(),
        batch.steps() * F::BYTES,
        windows.is_some(),
        last_level_cache_bytes(),
    )
}

/// The stores for a dense gradient of `batch` columns of `column` bytes each (around windows
/// if `windowed`), on a last-level cache of `cache` bytes. Streaming stores where both hold:
/// - **the call's working set is out of the cache**: the inputs read and the gradient written,
///   `3·B·T·s` bytes, exceed an eighth of the cache (the fraction [`prefetch_rows`] applies to
///   the inputs alone). Below
///   that the written lines are cheap to read first and may be used again; above it each read
///   is a second trip to memory. An eighth, not all: this machine's 480 MiB L3 is shared with
///   the host's other tenants, and the share one call gets is far smaller. Beside the kernels'
///   own pass (`bench`'s read-then-write reference: every input read, then the gradient
///   written) streaming won by 1.1–1.9× in `f32` and 1.7–1.8× in `f64` at `B = 65536`,
///   `T = 100` (79 and 157 MB; seven runs), and by 1.1–1.2× in `f64` at `B = 32768` (79 MB),
///   where `f32` (39 MB) was even; with it the `f64` dense kernels at `B = 65536` ran 72–81 →
///   87–98 % of their floor over five rounds, REINFORCE-KL's 59–63 → 91–95 %
///   (`docs/performance.md`, session 18). The write alone, over a buffer still in the cache from its last call, was even
///   there (session 17);
/// - **a column is long enough for the streaming writer**, which assembles every partial line
///   element by element: at least a line ([`LINE_BYTES`]) for whole rows (rows of 16–48 bytes
///   wrote 1.2–2.3× faster with ordinary stores, rows of a line or more 1.9–3.4× slower), and
///   [`WINDOWED_STREAM_LINES`] lines around windows, whose random ends put two partial lines
///   in every column. Measured by `examples/dense_stores`.
pub fn stores_for(batch: usize, column: usize, windowed: bool, cache: usize) -> Stores {
    let working_set = batch.saturating_mul(column).saturating_mul(3);
    let shortest = if windowed {
        WINDOWED_STREAM_LINES * LINE_BYTES
    } else {
        LINE_BYTES
    };
    if column >= shortest && working_set > cache / 8 {
        Stores::NonTemporal
    } else {
        Stores::Regular
    }
}

/// The fewest lines a windowed column takes for streaming stores. On this machine they won from
/// 4 lines (`f32`, `T = 64`: 19 against 14 GB/s); the AMD EPYC of session 13 measured ordinary
/// stores 1.6× faster at 6¼ lines (`f32`, `T = 100`), so the bound sits above that: at 12½
/// lines (`f64`, `T = 100`, `B = 2^20`) the windowed dense kernels ran 85–86 → 109–111 % of
/// their floor with streaming stores (session 18), and from 16 lines streaming wrote 2.3–2.9×
/// faster alone (session 17).
const WINDOWED_STREAM_LINES: usize = 8;

/// Phase 3: writes `g_i` on row `i`'s live (windowed) steps and 0 elsewhere.
pub(crate) fn fill_dense<F: Float>(
    batch: &TrajectoryBatch<F>,
    windows: Option<&Windows<F>>,
    g: &[F],
    dense: &mut DMatrix<F>,
) {
    fill_dense_with(
        batch,
        windows,
        g,
        dense.as_mut_slice(),
        dense_stores(batch, windows),
    )
}

/// [`fill_dense`] with the given kind of stores (both are timed by `bench`).
pub fn fill_dense_with<F: Float>(
    batch: &TrajectoryBatch<F>,
    windows: Option<&Windows<F>>,
    g: &[F],
    dense: &mut [F],
    stores: Stores,
) {
    let t = batch.steps();
    if t == 0 {
        return;
    }
    let lengths = batch.lengths();
    dense
        .par_chunks_mut(t * ROWS_PER_TASK)
        .enumerate()
        .for_each(|(c, chunk)| {
            simd::dispatch_for(
                F::BYTES,
                FillTask {
                    chunk,
                    t,
                    first: c * ROWS_PER_TASK,
                    lengths,
                    windows,
                    g,
                    stores,
                },
            )
        });
}

/// Phase 3 on one chunk of rows: its columns written in order by [`DenseColumns`], the
/// writer of the fused pass (the same stores, the same short-column path).
struct FillTask<'a, F: Float> {
    chunk: &'a mut [F],
    t: usize,
    first: usize,
    lengths: &'a [usize],
    windows: Option<&'a Windows<F>>,
    g: &'a [F],
    stores: Stores,
}

impl<F: Float> simd::Task for FillTask<'_, F> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let rows = self.chunk.len() / self.t;
        // Dispatched (`fill_dense_with`): AVX2 wherever the dispatch found AVX.
        let mut cols = DenseColumns::new(Some(self.chunk), self.stores, simd::has_avx());
        for k in 0..rows {
            let i = self.first + k;
            let (s, e) = range(self.lengths, self.windows, i);
            cols.column(self.t, s, e, self.g[i]);
        }
        cols.finish();
    }
}

/// Writes a slice front to back as runs of equal values, streaming whole aligned lines.
struct LineSink<'a, F: Float> {
    out: &'a mut [F],
    /// Next element to write.
    k: usize,
    /// `out[..head]` and `out[body_end..]` are the partial lines (ordinary stores).
    head: usize,
    body_end: usize,
    /// Elements per line.
    per_line: usize,
    /// The line being assembled.
    buf: [F; 16],
}

impl<'a, F: Float> LineSink<'a, F> {
    #[inline(always)]
    fn new(out: &'a mut [F]) -> Self {
        let per_line = LINE_BYTES / F::BYTES;
        let head = super::stream::head(out);
        let body_end = head + (out.len() - head) / per_line * per_line;
        Self {
            out,
            k: 0,
            head,
            body_end,
            per_line,
            buf: [F::ZERO; 16],
        }
    }

    #[inline(always)]
    fn run(&mut self, v: F, mut n: usize) {
        while n > 0 && self.k < self.head {
            self.out[self.k] = v;
            self.k += 1;
            n -= 1;
        }
        // A compile-time power of two once `F` is known (no division in the loop).
        let l = LINE_BYTES / F::BYTES;
        while n > 0 && self.k < self.body_end {
            let idx = (self.k - self.head) % l;
            if idx == 0 && n >= l {
                let line = [v; 16];
                self.stream(&line, self.k);
                self.k += l;
                n -= l;
                continue;
            }
            let m = n.min(l - idx);
            // Branch-free over the fixed 16 slots (no call to memset for a few elements).
            for j in 0..16 {
                if j >= idx && j < idx + m {
                    self.buf[j] = v;
                }
            }
            self.k += m;
            n -= m;
            if idx + m == l {
                let line = self.buf;
                self.stream(&line, self.k - l);
            }
        }
        while n > 0 {
            self.out[self.k] = v;
            self.k += 1;
            n -= 1;
        }
    }

    /// Writes the next column: `t` elements, `g` on `s..e`, 0 elsewhere, as three runs (short
    /// columns staged through [`write_column`] were slower where rows are whole lines:
    /// `docs/performance.md`, session 16).
    #[inline(always)]
    fn column(&mut self, t: usize, s: usize, e: usize, g: F) {
        self.run(F::ZERO, s);
        self.run(g, e - s);
        self.run(F::ZERO, t - e);
    }

    /// Writes one line `out[at..at + per_line]` (64-byte aligned) from `line`.
    #[inline(always)]
    fn stream(&mut self, line: &[F; 16], at: usize) {
        debug_assert!(at + self.per_line <= self.body_end);
        // SAFETY: `out[head]` is on a 64-byte boundary (`stream::head`), and every `at` passed
        // here is `head` plus whole lines (`run` streams only where `(k − head) % l == 0`).
        unsafe { super::stream::line(&mut self.out[at..at + self.per_line], line) };
    }

    /// Orders the streaming stores before anything the thread writes next.
    #[inline(always)]
    fn finish(self) {
        debug_assert_eq!(self.k, self.out.len());
        super::stream::fence();
    }
}

/// `N` per-row vectors and `M` batch sums of per-row terms from one parallel pass over the
/// rows (outputs and terms 0 on empty rows); the sums are [`super::sum::sum_by`]'s bits.
pub(crate) fn per_row_sums<F: Float, const N: usize, const M: usize>(
    batch: &TrajectoryBatch<F>,
    f: impl Fn(usize) -> ([F; N], [F; M]) + Sync,
) -> ([Vec<F>; N], [F; M]) {
    /// Leaves per parallel task.
    const LEAVES: usize = 16;
    let lengths = batch.lengths();
    let b = batch.batch();
    let mut outs: [Vec<F>; N] = std::array::from_fn(|_| Vec::with_capacity(b));
    let leaves: Vec<Vec<[F; M]>> = {
        let mut parts: [&mut [std::mem::MaybeUninit<F>]; N] =
            outs.each_mut().map(|v| &mut v.spare_capacity_mut()[..b]);
        let chunks = chunk_outputs(&mut parts, LEAVES * BLOCK);
        // With no outputs there are no chunks to split the rows by: one task per leaf range.
        let tasks = if N == 0 {
            b.div_ceil(LEAVES * BLOCK)
        } else {
            chunks.len()
        };
        let mut chunks: Vec<Option<[&mut [std::mem::MaybeUninit<F>]; N]>> =
            chunks.into_iter().map(Some).collect();
        chunks.resize_with(tasks, || None);
        chunks
            .into_par_iter()
            .enumerate()
            .map(|(c, mut parts)| {
                let first = c * LEAVES * BLOCK;
                let rows = (b - first).min(LEAVES * BLOCK);
                let mut leaves = Vec::with_capacity(LEAVES);
                for leaf_first in (0..rows).step_by(BLOCK) {
                    let mut leaf = [Leaf::new(); M];
                    for k in 0..BLOCK.min(rows - leaf_first) {
                        let i = first + leaf_first + k;
                        let (vals, terms) = if lengths[i] > 0 {
                            f(i)
                        } else {
                            ([F::ZERO; N], [F::ZERO; M])
                        };
                        if let Some(parts) = parts.as_mut() {
                            for (part, v) in parts.iter_mut().zip(vals) {
                                part[leaf_first + k].write(v);
                            }
                        }
                        for (l, x) in leaf.iter_mut().zip(terms) {
                            l.add(k, x);
                        }
                    }
                    leaves.push(leaf.map(Leaf::sum));
                }
                leaves
            })
            .collect()
    };
    for v in outs.iter_mut() {
        // SAFETY: every element `0..b` of every output was written above (one task per
        // `LEAVES · BLOCK` rows covering `0..b`, each writing all its rows).
        unsafe { v.set_len(b) };
    }
    (
        outs,
        sums_of_leaves(leaves.into_iter().flatten().collect::<Vec<_>>().into_iter()),
    )
}

/// Whether every value is finite: in parallel, without an early exit (a fold over booleans
/// vectorises; these are `O(B)` checks after a memory-bound pass).
fn all_finite<F: Float>(v: &[F]) -> bool {
    v.par_chunks(1 << 14)
        .all(|c| c.iter().fold(true, |ok, x| ok & x.is_finite()))
}

fn finite<F: Float>(
    out: KernelOutput<F>,
    kernel: &'static str,
) -> Result<KernelOutput<F>, BatchError> {
    let bad = |what| BatchError::Overflow {
        kernel,
        dtype: F::NAME,
        what,
    };
    if !out.loss.is_finite() {
        return Err(bad("loss"));
    }
    if !out.grad_scalar.is_finite() || !all_finite(out.g.as_slice()) {
        return Err(bad("gradient"));
    }
    Ok(out)
}

/// Phases 1 and 2 of a kernel (the per-row part of phase 2 fused into the `pass`), with the
/// definitions' [`Shape`].
pub(crate) fn compute<F: Float>(
    batch: &TrajectoryBatch<F>,
    kernel: &Kernel<'_, F>,
    shape: &Shape,
    pass: &impl RowPass<F>,
    mut dense: Option<&mut DMatrix<F>>,
) -> Result<KernelOutput<F>, BatchError> {
    let n = F::from_usize(batch.live());
    let alpha = batch.alpha();
    let beta = batch.beta();
    let log_r = batch.log_r().as_slice();
    // Trust-PCL per-step RL term without the reward: −(τ_H + λ) log q + λ log p, τ_H = 0,
    // λ = (λ/α)·α with the penalty's sign (a bonus, +λ log q − λ log p, when it is flipped).
    let lam_of = |over_alpha: f64| F::from_f64(over_alpha) * alpha;
    let diff = Term {
        a: F::ONE,
        b: -F::ONE,
    };
    let just_q = Term {
        a: F::ONE,
        b: F::ZERO,
    };
    // ½ x² and its derivative factor (x² and 2x without ½).
    let scales = |half: bool| {
        if half {
            (F::HALF, F::ONE)
        } else {
            (F::ONE, F::TWO)
        }
    };
    let id = kernel.id();
    let empty = |residual: DVector<F>, g: DVector<F>, loss: F, grad_scalar: F| KernelOutput {
        kernel: id,
        loss,
        residual,
        g,
        dense: None,
        grad_scalar,
        grad_start: None,
        grad_end: None,
    };
    // Whether the pass wrote the dense gradient (kernels whose `g_i` needs only row `i`).
    let mut wrote = false;
    let out = match *kernel {
        Kernel::Rtb { log_z } => {
            check_scalar("log_z", log_z)?;
            let beta_on_ratio = shape.rtb_beta_on_ratio;
            let (sq_scale, d_scale) = scales(shape.rtb_half);
            // ∂δ/∂log q is β when β sits on the log-ratio.
            let w = if beta_on_ratio {
                d_scale * beta
            } else {
                d_scale
            };
            // The loss and ∂L/∂log Z are batch means of per-row terms, summed in the pass.
            let rows = pass.rows(
                None,
                diff,
                None,
                |i: usize, s: F, _: F| {
                    let d = if beta_on_ratio {
                        (log_z - log_r[i]) + beta * s
                    } else {
                        (log_z - beta * log_r[i]) + s
                    };
                    ([d, (w * d) / n], [sq_scale * (d * d), d_scale * d])
                },
                dense.as_deref_mut().map(|d| (d, 1)),
            )?;
            wrote = rows.wrote_dense;
            let [delta, g] = rows.outs;
            let [loss, gz] = rows.sums.map(|x| x / n);
            empty(delta.into(), g.into(), loss, gz)
        }
        Kernel::Tpcl { v0 } => {
            check_scalar("v0", v0)?;
            let lam = lam_of(shape.tpcl_lambda);
            let (sq_scale, d_scale) = scales(shape.tpcl_half);
            // Σ_t r_t = log r(x) (paid on the step into the terminal), V(terminal) = 0.
            let rows = pass.rows(
                None,
                Term { a: -lam, b: lam },
                None,
                |i: usize, s: F, _: F| {
                    let c = (s + log_r[i]) - v0;
                    (
                        [c, (-(d_scale * lam) * c) / n],
                        [sq_scale * (c * c), d_scale * c],
                    )
                },
                dense.as_deref_mut().map(|d| (d, 1)),
            )?;
            wrote = rows.wrote_dense;
            let [c, g] = rows.outs;
            let [loss, mean_c] = rows.sums.map(|x| x / n);
            empty(c.into(), g.into(), loss, -mean_c)
        }
        Kernel::TpclSurrogate { v0 } => {
            check_scalar("v0", v0)?;
            let lam = lam_of(shape.tpcl_surrogate_lambda);
            let rows = pass.rows(
                None,
                Term { a: -lam, b: lam },
                Some(just_q),
                |i: usize, s: F, slq: F| {
                    let c = (s + log_r[i]) - v0;
                    ([c, -c / n], [-(c * slq)])
                },
                dense.as_deref_mut().map(|d| (d, 1)),
            )?;
            wrote = rows.wrote_dense;
            let [c, g] = rows.outs;
            let [loss] = rows.sums.map(|x| x / n);
            empty(c.into(), g.into(), loss, F::ZERO)
        }
        Kernel::TpclWindowed { windows } => {
            let (sq_scale, d_scale) = scales(shape.tpcl_windowed_half);
            let row = WindowedTpclRow {
                lengths: batch.lengths(),
                end: windows.end(),
                log_r,
                value_start: windows.value_start().as_slice(),
                value_end: windows.value_end().as_slice(),
                lam: lam_of(shape.tpcl_windowed_lambda),
                sq_scale,
                d_scale,
                n,
            };
            let rows = pass.rows(
                Some(windows),
                Term {
                    a: -row.lam,
                    b: row.lam,
                },
                None,
                row,
                dense.as_deref_mut().map(|d| (d, 1)),
            )?;
            wrote = rows.wrote_dense;
            let [c, g, gs, ge] = rows.outs;
            let [loss] = rows.sums.map(|x| x / n);
            KernelOutput {
                grad_start: Some(gs.into()),
                grad_end: Some(ge.into()),
                ..empty(c.into(), g.into(), loss, F::ZERO)
            }
        }
        Kernel::SubTb { windows } => {
            let (sq_scale, d_scale) = scales(shape.subtb_half);
            // β on the log-reward: log F(x) = β log r, weight 1 on the log-ratio; on the
            // log-ratio: log F(x) = log r, weight β.
            let on_ratio = shape.subtb_beta_on_ratio;
            let row = SubTbRow {
                lengths: batch.lengths(),
                end: windows.end(),
                log_r,
                flow_start: windows.value_start().as_slice(),
                flow_end: windows.value_end().as_slice(),
                beta,
                on_ratio,
                w: if on_ratio { d_scale * beta } else { d_scale },
                sq_scale,
                d_scale,
                n,
            };
            let rows = pass.rows(
                Some(windows),
                diff,
                None,
                row,
                dense.as_deref_mut().map(|d| (d, 1)),
            )?;
            wrote = rows.wrote_dense;
            let [d, g, gs, ge] = rows.outs;
            let [loss] = rows.sums.map(|x| x / n);
            KernelOutput {
                grad_start: Some(gs.into()),
                grad_end: Some(ge.into()),
                ..empty(d.into(), g.into(), loss, F::ZERO)
            }
        }
        Kernel::ReinforceKl => {
            let lam = lam_of(shape.reinforce_lambda);
            // The KL-regularized reward needs only the row; the baseline needs the batch.
            let rows = pass.rows(
                None,
                diff,
                Some(just_q),
                |i: usize, sd: F, slq: F| {
                    let reward = log_r[i] - lam * sd;
                    ([reward, slq], [reward])
                },
                None,
            )?;
            let [reward, slq] = rows.outs;
            let [b] = rows.sums.map(|x| x / n);
            let ([a, g], [loss]) = per_row_sums(batch, |i| {
                let a = reward[i] - b;
                ([a, -a / n], [-(a * slq[i])])
            });
            empty(a.into(), g.into(), loss / n, F::ZERO)
        }
        Kernel::Flawed { kappa } => {
            check_scalar("kappa", kappa)?;
            let overflow = || BatchError::Overflow {
                kernel: "flawed",
                dtype: F::NAME,
                what: "r = exp(log r)",
            };
            // Row i's outputs (a, g_i) and loss term from its advantage a = r_i − b, one
            // definition for both orders below.
            let row = move |a: F, sd: F, slq: F| {
                (
                    [a, ((F::TWO * kappa) * sd - a) / n],
                    [-(a * slq) + kappa * (sd * sd)],
                )
            };
            if dense.is_some() {
                // The raw reward and its batch mean need only `log r`, so they come first and
                // each row's `g_i` (and its dense column) is finished inside the pass.
                let ([r], [sum_r]) = per_row_sums(batch, |i| {
                    let r = log_r[i].exp();
                    ([r], [r])
                });
                if !all_finite(&r) {
                    return Err(overflow());
                }
                let b = sum_r / n;
                let rows = pass.rows(
                    None,
                    diff,
                    Some(just_q),
                    |i: usize, sd: F, slq: F| row(r[i] - b, sd, slq),
                    dense.as_deref_mut().map(|d| (d, 1)),
                )?;
                wrote = rows.wrote_dense;
                let [a, g] = rows.outs;
                let [loss] = rows.sums.map(|x| x / n);
                empty(a.into(), g.into(), loss, F::ZERO)
            } else {
                // Without a dense column to write in the pass, `exp(log r)` is computed inside
                // it, where the arithmetic waits on memory anyway (an O(B) pass of `exp`
                // before it was about 5 % of the kernel at B = 2^20: docs/performance.md,
                // session 12); the advantages follow from the pass's sum of `r`.
                let rows = pass.rows(
                    None,
                    diff,
                    Some(just_q),
                    |i: usize, sd: F, slq: F| {
                        let r = log_r[i].exp();
                        ([r, sd, slq], [r])
                    },
                    None,
                )?;
                let [r, sd, slq] = rows.outs;
                if !all_finite(&r) {
                    return Err(overflow());
                }
                let b = rows.sums[0] / n;
                let ([a, g], [loss]) = per_row_sums(batch, |i| row(r[i] - b, sd[i], slq[i]));
                empty(a.into(), g.into(), loss / n, F::ZERO)
            }
        }
    };
    if let Some(d) = dense {
        if !wrote {
            let windows = kernel.windows();
            fill_dense(batch, windows, out.g.as_slice(), d);
        }
    }
    finite(out, id.name())
}

/// `x / n` rounded once to `F`, divided in `f64`. For `f64` that is `x / n`. For `f32` the `f64`
/// quotient rounded to `f32` is the correctly rounded `f32` quotient (53 ≥ 2·24 + 2 bits:
/// double rounding is innocuous for a division; test
/// `dividing_in_f64_gives_the_f32_quotient`), so the bits are those of `x / n`.
///
/// Why: a windowed row has two divisions by `n`, and the compiler may pack two `f32`
/// divisions into one 4-lane `vdivps` whose two spare lanes hold whatever the register held.
/// In one build they held neighbouring struct fields, denormal as floats, and every row paid a
/// microcode assist: SubTB 3.5× slower (`docs/performance.md`, session 15). Two `f64`
/// divisions fill a 128-bit register: no spare lane.
#[inline(always)]
fn div_in_f64<F: Float>(x: F, n: F) -> F {
    // Opaque to the optimiser, which would otherwise turn the f64 division of two widened
    // f32 values back into an f32 division (the same theorem), and pack it again.
    F::from_f64(std::hint::black_box(x.to_f64()) / n.to_f64())
}

/// Windowed Trust-PCL's row: the consistency error `c` over the window (`V` at its start; at
/// its end `V`, or the log-reward where the end is terminal, where `V = 0`), `g`, the two
/// boundary gradients and the loss term.
#[derive(Clone, Copy)]
struct WindowedTpclRow<'a, F> {
    lengths: &'a [usize],
    end: &'a [usize],
    log_r: &'a [F],
    value_start: &'a [F],
    value_end: &'a [F],
    /// The KL weight λ of the per-step term `−λ log q + λ log p`.
    lam: F,
    /// ½ or 1 on the square; 1 or 2 on its derivative.
    sq_scale: F,
    d_scale: F,
    /// The live rows' count.
    n: F,
}

impl<F: Float> Finish<F, 4, 1> for WindowedTpclRow<'_, F> {
    #[inline(always)]
    fn row(&self, i: usize, s: F, _: F) -> ([F; 4], [F; 1]) {
        let Self { d_scale, n, .. } = *self;
        // Both boundaries are read and one selected: the end is terminal in about a third of
        // the rows, at random, and a branch on it mispredicted.
        let terminal = self.end[i] == self.lengths[i];
        let (at_terminal, at_end) = (self.log_r[i], self.value_end[i]);
        let c = (s + if terminal { at_terminal } else { at_end }) - self.value_start[i];
        // −(d c)/n; the end's gradient is its negation, exactly (rounding is symmetric).
        let gs = div_in_f64(-(d_scale * c), n);
        let ge = if terminal { F::ZERO } else { -gs };
        (
            [c, div_in_f64(-(d_scale * self.lam) * c, n), gs, ge],
            [self.sq_scale * (c * c)],
        )
    }
}

/// Relative SubTB's row: the residual `d` over the window (`log F` at its start; at its end
/// `log F`, or the reward's flow where the end is terminal), `g`, the two boundary gradients
/// and the loss term.
#[derive(Clone, Copy)]
struct SubTbRow<'a, F> {
    lengths: &'a [usize],
    end: &'a [usize],
    log_r: &'a [F],
    flow_start: &'a [F],
    flow_end: &'a [F],
    beta: F,
    /// Whether β multiplies the log-ratio (else the log-reward).
    on_ratio: bool,
    /// `∂d/∂(log q)`'s factor with the square's derivative.
    w: F,
    sq_scale: F,
    d_scale: F,
    n: F,
}

impl<F: Float> Finish<F, 4, 1> for SubTbRow<'_, F> {
    #[inline(always)]
    fn row(&self, i: usize, s: F, _: F) -> ([F; 4], [F; 1]) {
        let Self {
            beta, d_scale, n, ..
        } = *self;
        let ratio = if self.on_ratio { beta * s } else { s };
        // Both end flows are read and one selected (as in windowed Trust-PCL).
        let terminal = self.end[i] == self.lengths[i];
        let at_terminal = if self.on_ratio {
            self.log_r[i]
        } else {
            beta * self.log_r[i]
        };
        let at_end = self.flow_end[i];
        let d = (self.flow_start[i] + ratio) - if terminal { at_terminal } else { at_end };
        // (d d)/n; the end's gradient is its negation, exactly.
        let gs = div_in_f64(d_scale * d, n);
        let ge = if terminal { F::ZERO } else { -gs };
        (
            [d, div_in_f64(self.w * d, n), gs, ge],
            [self.sq_scale * (d * d)],
        )
    }
}

/// Parameters for [`all_kernels`].
#[derive(Debug, Clone, Copy)]
pub struct AllKernelsParams<'a, F: Float> {
    /// `log Z` for RTB.
    pub log_z: F,
    /// `V(s0)` for Trust-PCL and its surrogate.
    pub v0: F,
    /// κ for the flawed baseline.
    pub kappa: F,
    /// Windows with `V` at the boundaries (windowed Trust-PCL); skipped if `None`.
    pub windows_v: Option<&'a Windows<F>>,
    /// Windows with `log F` at the boundaries (relative SubTB); skipped if `None`.
    pub windows_log_f: Option<&'a Windows<F>>,
}

impl<'a, F: Float> AllKernelsParams<'a, F> {
    /// Kernel `id` with these parameters; `None` for a windowed kernel whose windows are not
    /// given.
    pub fn kernel(&self, id: KernelId) -> Option<Kernel<'a, F>> {
        Some(match id {
            KernelId::Rtb => Kernel::Rtb { log_z: self.log_z },
            KernelId::Tpcl => Kernel::Tpcl { v0: self.v0 },
            KernelId::TpclWindowed => Kernel::TpclWindowed {
                windows: self.windows_v?,
            },
            KernelId::SubTb => Kernel::SubTb {
                windows: self.windows_log_f?,
            },
            KernelId::TpclSurrogate => Kernel::TpclSurrogate { v0: self.v0 },
            KernelId::ReinforceKl => Kernel::ReinforceKl,
            KernelId::Flawed => Kernel::Flawed { kappa: self.kappa },
        })
    }
}

/// Every kernel's loss and gradients on one batch, in [`KernelId::ALL`] order (windowed
/// kernels only when their windows are given). Meant for comparing against exact values.
pub fn all_kernels<F: Float>(
    batch: &TrajectoryBatch<F>,
    params: &AllKernelsParams<'_, F>,
    form: GradForm,
) -> Result<Vec<KernelOutput<F>>, BatchError> {
    let kernels = KernelId::ALL.into_iter().filter_map(|id| params.kernel(id));
    kernels.map(|k| evaluate(batch, &k, form)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::generate::{generate, GenConfig};

    fn gen<F: Float>(
        batch: usize,
        steps: usize,
        seed: u64,
    ) -> crate::kernels::generate::Generated<F> {
        let cfg = GenConfig {
            batch,
            steps,
            seed,
            beta: 1.5,
            full_lengths: false,
        };
        generate::<F>(&cfg, None).unwrap()
    }

    fn phase1_is_bit_identical_across_levels<F: Float>() {
        for (batch, steps, seed) in [(700, 100, 1), (300, 37, 2), (1000, 9, 3), (40, 600, 4)] {
            let g = gen::<F>(batch, steps, seed);
            let terms = [
                (
                    Term {
                        a: F::ONE,
                        b: -F::ONE,
                    },
                    None,
                ),
                (
                    Term {
                        a: -F::from_f64(0.75),
                        b: F::from_f64(0.75),
                    },
                    None,
                ),
                (
                    Term {
                        a: F::ONE,
                        b: -F::ONE,
                    },
                    Some(Term {
                        a: F::ONE,
                        b: F::ZERO,
                    }),
                ),
                (
                    Term {
                        a: -F::from_f64(1.25),
                        b: F::from_f64(1.25),
                    },
                    Some(Term {
                        a: F::ONE,
                        b: F::ZERO,
                    }),
                ),
                (
                    Term {
                        a: -F::from_f64(1.25),
                        b: F::from_f64(1.25),
                    },
                    Some(Term {
                        a: F::from_f64(0.5),
                        b: F::from_f64(3.0),
                    }),
                ),
            ];
            for w in [None, Some(&g.windows_v)] {
                for (t1, t2) in terms {
                    let x = cpu_row_sums_at(&g.batch, w, t1, t2, Level::Dispatched).unwrap();
                    let y = cpu_row_sums_at(&g.batch, w, t1, t2, Level::Baseline).unwrap();
                    let bits = |v: &[F]| v.iter().map(|x| x.to_f64().to_bits()).collect::<Vec<_>>();
                    assert_eq!(bits(&x.0), bits(&y.0), "{} {batch}x{steps}", F::NAME);
                    assert_eq!(bits(&x.1), bits(&y.1), "{} {batch}x{steps}", F::NAME);
                }
            }
        }
    }

    /// The dense gradient written into a caller's buffer full of NaN (as a reused buffer
    /// holds anything) is `g_i` on each row's live (windowed) steps and 0 elsewhere, for every
    /// kernel: those whose pass writes it and those filled after the batch means.
    #[test]
    fn dense_into_a_dirty_buffer_is_g_on_the_steps_and_zero_elsewhere() {
        dirty_buffer_is_overwritten::<f32>();
        dirty_buffer_is_overwritten::<f64>();
    }

    /// Columns of every length class, in both kinds of stores: one step, short ones (written
    /// by index with ordinary stores), the longest short one and the shortest long one, and
    /// long ones.
    fn dirty_buffer_is_overwritten<F: Float>() {
        let short = SHORT_COLUMN;
        for (batch, steps) in [
            (700, 40),
            (257, 9),
            (300, 1),
            (1000, 3),
            (200, short),
            (130, short + 1),
            (90, 100),
        ] {
            let g = gen::<F>(batch, steps, 21);
            let b = &g.batch;
            for id in KernelId::ALL {
                let kernel = AllKernelsParams {
                    log_z: g.log_z,
                    v0: g.v0,
                    kappa: F::HALF,
                    windows_v: Some(&g.windows_v),
                    windows_log_f: Some(&g.windows_log_f),
                }
                .kernel(id)
                .unwrap();
                let windows = kernel.windows();
                for stores in [Stores::Regular, Stores::NonTemporal] {
                    let pass = CpuPass {
                        batch: b,
                        level: Level::Dispatched,
                        ahead: PREFETCH_ROWS,
                        stores,
                    };
                    let shape = Shape::for_batch(b, None).unwrap();
                    let mut buf = DMatrix::from_element(steps, batch, F::NAN);
                    let out = compute(b, &kernel, &shape, &pass, Some(&mut buf)).unwrap();
                    for i in 0..batch {
                        let (s, e) = range(b.lengths(), windows, i);
                        for t in 0..steps {
                            let want = if (s..e).contains(&t) {
                                out.g[i]
                            } else {
                                F::ZERO
                            };
                            let got = buf[(t, i)].to_f64().to_bits();
                            assert_eq!(
                                got,
                                want.to_f64().to_bits(),
                                "{id:?} {stores:?} {} {batch}×{steps} ({t}, {i})",
                                F::NAME
                            );
                        }
                    }
                }
            }
        }
    }

    /// Windows built for one batch, used on another with other lengths: the fused pass
    /// reports the first row whose window does not fit (found by the one rule,
    /// `window_fits`), for both windowed kernels and both forms, and reads none of it.
    #[test]
    fn windows_of_another_batch_are_refused_at_their_first_bad_row() {
        let a = gen::<f64>(3000, 60, 11);
        let b = gen::<f64>(3000, 60, 12);
        let (start, end) = (a.windows_v.start(), a.windows_v.end());
        let first_bad = (0..3000)
            .find(|&i| !crate::kernels::batch::window_fits(start[i], end[i], b.batch.lengths()[i]))
            .expect("the two batches' lengths differ somewhere");
        for kernel in [
            Kernel::TpclWindowed {
                windows: &a.windows_v,
            },
            Kernel::SubTb {
                windows: &a.windows_v,
            },
        ] {
            for form in [GradForm::PerTrajectory, GradForm::Dense] {
                match evaluate(&b.batch, &kernel, form) {
                    Err(BatchError::WindowOutOfRange { row, .. }) => assert_eq!(row, first_bad),
                    other => panic!("{:?}: {:?}", kernel.id(), other.map(|o| o.loss)),
                }
            }
            // Control: on their own batch the same windows are accepted.
            assert!(evaluate(&a.batch, &kernel, GradForm::PerTrajectory).is_ok());
        }
        // One bad row only, in a late chunk (the chunks before it report none): a batch with
        // `a`'s steps whose row 2100 ends before its window does.
        let k = 2100;
        let mut lengths = a.batch.lengths().to_vec();
        lengths[k] = start[k];
        let one_bad = TrajectoryBatch::new(
            a.batch.log_q().clone(),
            a.batch.log_p().clone(),
            lengths,
            a.batch.log_r().clone(),
            a.batch.beta(),
        )
        .unwrap();
        match evaluate(
            &one_bad,
            &Kernel::SubTb {
                windows: &a.windows_v,
            },
            GradForm::PerTrajectory,
        ) {
            Err(BatchError::WindowOutOfRange { row, .. }) => assert_eq!(row, k),
            other => panic!("{:?}", other.map(|o| o.loss)),
        }
        // A window count that is not the batch's.
        let small = gen::<f64>(10, 60, 13);
        assert!(matches!(
            evaluate(
                &b.batch,
                &Kernel::SubTb {
                    windows: &small.windows_v
                },
                GradForm::PerTrajectory
            ),
            Err(BatchError::ShapeMismatch {
                what: "windows",
                ..
            })
        ));
    }

    #[test]
    fn dividing_in_f64_gives_the_f32_quotient() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(15);
        // Random bit patterns (every exponent: subnormal, normal, huge; both signs), over
        // random divisors and over the batch sizes a kernel divides by.
        let mut checked = 0usize;
        for k in 0..2_000_000u32 {
            let x = f32::from_bits(rng.gen::<u32>());
            let n = if k % 2 == 0 {
                f32::from_bits(rng.gen::<u32>())
            } else {
                rng.gen_range(1..=1u32 << 24) as f32
            };
            if x.is_nan() || n.is_nan() {
                continue;
            }
            assert_eq!(
                div_in_f64(x, n).to_bits(),
                (x / n).to_bits(),
                "{x:e} / {n:e}"
            );
            checked += 1;
        }
        assert!(checked > 1_900_000);
        // Negative control: through an intermediate of 25 bits (under 2·24 + 2) double
        // rounding is not innocuous, and the same comparison finds quotients that differ.
        let round_to_25_bits = |q: f64| {
            // Veltkamp's split: the high part of q with 53 − 28 = 25 significant bits.
            let t = q * ((1u64 << 28) as f64 + 1.0);
            t - (t - q)
        };
        let differ = (0..100_000)
            .filter(|_| {
                let x = rng.gen_range(1.0f32..2.0);
                let n = rng.gen_range(1..=1u32 << 20) as f32;
                (round_to_25_bits(x as f64 / n as f64) as f32).to_bits() != (x / n).to_bits()
            })
            .count();
        assert!(differ > 0, "a 25-bit intermediate never differed");
    }

    #[test]
    fn the_writer_constant_gives_back_its_columns_and_stores() {
        // `CpuPass::run` turns (columns, stores) into a constant and `RowTask` turns it back:
        // each writer must get the stores it was chosen for, and no columns means no writer.
        let mut buf = [0.0f64; 4];
        for stores in [Stores::Regular, Stores::NonTemporal] {
            let cols = Some(&mut buf[..]);
            let (back, kind) = match writer_of(&cols, stores) {
                PLAIN_COLUMNS => columns_of::<PLAIN_COLUMNS, _>(cols),
                STREAMED_COLUMNS => columns_of::<STREAMED_COLUMNS, _>(cols),
                other => panic!("columns with {stores:?} chose writer {other}"),
            };
            assert!(back.is_some());
            assert_eq!(kind, stores);
            assert_eq!(writer_of::<&mut [f64]>(&None, stores), NO_COLUMNS);
        }
        let (none, _) = columns_of::<NO_COLUMNS, _>(Some(&mut buf[..]));
        assert!(none.is_none());
    }

    #[test]
    fn streaming_stores_for_long_columns_out_of_an_eighth_of_the_cache() {
        let cache = 480 << 20;
        // Whole rows: a line per column and a working set over an eighth of the cache.
        let out_of_cache = cache / 8 / (3 * 64) + 1;
        assert_eq!(
            stores_for(out_of_cache, 64, false, cache),
            Stores::NonTemporal
        );
        assert_eq!(stores_for(out_of_cache, 63, false, cache), Stores::Regular);
        assert_eq!(
            stores_for(out_of_cache - 1, 64, false, cache),
            Stores::Regular
        );
        // Around windows: eight lines.
        let out_of_cache = cache / 8 / (3 * 512) + 1;
        assert_eq!(
            stores_for(out_of_cache, 512, true, cache),
            Stores::NonTemporal
        );
        assert_eq!(stores_for(out_of_cache, 511, true, cache), Stores::Regular);
        assert_eq!(
            stores_for(out_of_cache, 512, false, cache),
            Stores::NonTemporal
        );
        assert_eq!(
            stores_for(out_of_cache - 1, 512, true, cache),
            Stores::Regular
        );
        // The shapes that set the rule, on that cache: f32 rows of 8 steps at B = 2^23 keep
        // ordinary stores, f64 rows of 8 stream; T = 100 at B = 65536 streams in both types
        // (79 and 157 MB), f32 T = 100 at B = 32768 (39 MB) does not; windowed f32 T = 1000 at
        // B = 65536 streams, windowed f32 T = 100 at B = 2^20 (6¼ lines) does not, windowed
        // f64 T = 100 (12½ lines) does.
        assert_eq!(stores_for(1 << 23, 8 * 4, false, cache), Stores::Regular);
        assert_eq!(
            stores_for(1 << 23, 8 * 8, false, cache),
            Stores::NonTemporal
        );
        assert_eq!(
            stores_for(65536, 100 * 4, false, cache),
            Stores::NonTemporal
        );
        assert_eq!(
            stores_for(65536, 100 * 8, false, cache),
            Stores::NonTemporal
        );
        assert_eq!(stores_for(32768, 100 * 4, false, cache), Stores::Regular);
        assert_eq!(
            stores_for(65536, 1000 * 4, true, cache),
            Stores::NonTemporal
        );
        assert_eq!(stores_for(1 << 20, 100 * 4, true, cache), Stores::Regular);
        assert_eq!(
            stores_for(1 << 20, 100 * 8, true, cache),
            Stores::NonTemporal
        );
    }

    #[test]
    fn rows_in_an_eighth_of_the_cache_are_not_prefetched() {
        let cache = 480 << 20;
        assert_eq!(prefetch_distance(0, cache), 0);
        assert_eq!(prefetch_distance(cache / 8, cache), 0);
        assert_eq!(prefetch_distance(cache / 8 + 1, cache), PREFETCH_ROWS);
        // The bench's two sizes on that cache: B = 65536 in f32 (52 MB) is not prefetched,
        // in f64 (105 MB) it is.
        assert_eq!(prefetch_distance(2 * 65536 * 100 * 4, cache), 0);
        assert_eq!(prefetch_distance(2 * 65536 * 100 * 8, cache), PREFETCH_ROWS);
    }

    #[test]
    fn dispatched_phase1_equals_the_baseline_bit_for_bit() {
        phase1_is_bit_identical_across_levels::<f32>();
        phase1_is_bit_identical_across_levels::<f64>();
    }

    /// The negative control of the test above: a different summation order is visible in
    /// the bits (so bit-identity is a real check, not an artefact of the data).
    #[test]
    fn another_summation_order_changes_the_bits() {
        let g = gen::<f32>(700, 100, 1);
        let x = cpu_row_sums_at(
            &g.batch,
            None,
            Term { a: 1.0, b: -1.0 },
            None,
            Level::Dispatched,
        )
        .unwrap()
        .0;
        let differs = (0..700).any(|i| {
            let n = g.batch.lengths()[i];
            let seq: f32 = (0..n)
                .map(|t| g.batch.row_log_q(i)[t] - g.batch.row_log_p(i)[t])
                .fold(0.0, |a, b| a + b);
            seq.to_bits() != x[i].to_bits()
        });
        assert!(differs);
    }

    fn sink_writes_every_run<F: Float>() {
        // Every misalignment of the start, runs of every length around a line.
        let mut backing = [F::NAN; 2000];
        for offset in 0..20 {
            for seed in 0..5usize {
                let len = 500 + seed * 37 + offset;
                let out = &mut backing[offset..offset + len];
                out.fill(F::NAN);
                let mut want = Vec::with_capacity(len);
                let mut sink = LineSink::new(out);
                let mut r = seed * 7919 + offset;
                while want.len() < len {
                    r = r
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407)
                        >> 7;
                    let n = (r % 40).min(len - want.len());
                    let v = F::from_usize(want.len() % 1000);
                    sink.run(v, n);
                    want.extend(std::iter::repeat_n(v, n));
                }
                sink.finish();
                let got = &backing[offset..offset + len];
                assert!(
                    got.iter().zip(&want).all(|(a, b)| a == b),
                    "{} offset {offset}",
                    F::NAME
                );
            }
        }
    }

    /// Columns of every length from 1 to 20 steps (around a line in both types), with random
    /// ranges inside them, at every misalignment of the start: the streaming sink writes what
    /// each column means.
    fn sink_writes_every_column<F: Float>() {
        let mut backing = [F::NAN; 3000];
        for offset in 0..20 {
            for seed in 0..5usize {
                let len = 2000 + offset;
                let out = &mut backing[offset..offset + len];
                out.fill(F::NAN);
                let mut want = Vec::with_capacity(len);
                let mut sink = LineSink::new(out);
                let mut r = seed * 7919 + offset;
                let mut next = |m: usize| {
                    r = r
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407)
                        >> 7;
                    r % m
                };
                while want.len() < len {
                    let t = (1 + next(20)).min(len - want.len());
                    let s = next(t + 1);
                    let e = s + next(t - s + 1);
                    let g = F::from_usize(1 + want.len() % 1000);
                    sink.column(t, s, e, g);
                    want.extend((0..t).map(|c| if (s..e).contains(&c) { g } else { F::ZERO }));
                }
                sink.finish();
                let got = &backing[offset..offset + len];
                let bad = got.iter().zip(&want).position(|(a, b)| a != b);
                assert_eq!(bad, None, "{} offset {offset} seed {seed}", F::NAME);
            }
        }
    }

    #[test]
    fn streaming_sink_writes_every_short_column() {
        sink_writes_every_column::<f32>();
        sink_writes_every_column::<f64>();
    }

    #[test]
    fn streaming_sink_writes_what_ordinary_stores_write() {
        sink_writes_every_run::<f32>();
        sink_writes_every_run::<f64>();
    }

    #[test]
    fn both_kinds_of_stores_fill_the_same_dense_gradient() {
        for (batch, steps) in [(600, 100), (300, 7), (513, 33)] {
            let g = gen::<f32>(batch, steps, 9);
            let gv: Vec<f32> = (0..batch).map(|i| i as f32 + 0.5).collect();
            for w in [None, Some(&g.windows_v)] {
                let mut a = DMatrix::from_element(steps, batch, f32::NAN);
                let mut b = DMatrix::from_element(steps, batch, f32::NAN);
                fill_dense_with(&g.batch, w, &gv, a.as_mut_slice(), Stores::Regular);
                fill_dense_with(&g.batch, w, &gv, b.as_mut_slice(), Stores::NonTemporal);
                assert_eq!(a, b);
            }
        }
    }

    /// The dense gradient written inside the pass: streaming stores (chosen by [`stores_for`]
    /// only above an eighth of the last-level cache, so rarely at the other tests' sizes) give
    /// what ordinary stores give,
    /// for full rows and windows, in f32 and f64.
    fn fused_pass_stores_agree<F: Float>() {
        for (batch, steps) in [(600, 100), (300, 7), (513, 33)] {
            let g = gen::<F>(batch, steps, 9);
            let shape = Shape::for_batch(&g.batch, None).expect("the suite's definitions");
            let params = AllKernelsParams {
                log_z: g.log_z,
                v0: g.v0,
                kappa: F::HALF,
                windows_v: Some(&g.windows_v),
                windows_log_f: Some(&g.windows_log_f),
            };
            for id in KernelId::ALL {
                let kernel = params.kernel(id).expect("both windows are given");
                let [a, mut b] = [Stores::Regular, Stores::NonTemporal].map(|stores| {
                    let pass = CpuPass {
                        batch: &g.batch,
                        level: Level::Dispatched,
                        ahead: PREFETCH_ROWS,
                        stores,
                    };
                    let mut d = DMatrix::from_element(steps, batch, F::NAN);
                    compute(&g.batch, &kernel, &shape, &pass, Some(&mut d)).expect("valid");
                    d
                });
                let same = |a: &DMatrix<F>, b: &DMatrix<F>| {
                    a.iter()
                        .zip(b.iter())
                        .all(|(x, y)| x.to_f64().to_bits() == y.to_f64().to_bits())
                };
                assert!(same(&a, &b), "{} {} {batch}×{steps}", id.name(), F::NAME);
                // Negative control: one wrong element is seen.
                b[(steps - 1, batch / 2)] = F::from_f64(7.25);
                assert!(!same(&a, &b));
            }
        }
    }

    #[test]
    fn streaming_stores_in_the_pass_write_what_ordinary_stores_write() {
        fused_pass_stores_agree::<f32>();
        fused_pass_stores_agree::<f64>();
    }
}

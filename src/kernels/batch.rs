//! The input of every kernel: a validated batch of trajectories, and windows on it.
use nalgebra::{DMatrix, DVector};
use rayon::prelude::*;

use super::error::BatchError;
use super::float::Float;

/// Largest positive `log q` / `log p` accepted as rounding of a log-probability of 1:
/// `32 u` (a log-softmax `x − logsumexp(x)` over a few children of moderate logits rounds by a
/// few `u`; anything larger is a bug upstream, not rounding).
pub fn positive_tolerance<F: Float>() -> f64 {
    32.0 * F::UNIT_ROUNDOFF
}

/// A batch of `B` trajectories with up to `T` steps each, validated once at construction.
///
/// # Layout
/// The per-step matrices are nalgebra `T × B` matrices (`nrows = T` steps, `ncols = B`
/// trajectories). nalgebra is column-major, so one trajectory's steps are contiguous: the memory
/// is exactly that of a row-major `B × T` array (PyTorch's `[B, T]` tensor), and every kernel
/// reads each trajectory's live prefix `0..length` as one contiguous slice and never touches
/// the padding. [`TrajectoryBatch::from_batch_major`] accepts the `B × T` orientation (one
/// transposing copy) and [`TrajectoryBatch::from_row_major`] a row-major `[B, T]` buffer (no
/// copy).
///
/// # Invariants (checked by [`TrajectoryBatch::new`], relied on by the kernels)
/// shapes agree; `length ≤ T`; every live entry (`t < length`) of `log q`, `log p` is finite
/// and `≤` [`positive_tolerance`]; `log r` is finite on every row of positive length; `β` is
/// finite and positive. Padding entries may hold anything (even NaN): no kernel reads them. A
/// row of length 0 is an empty padding row: it contributes nothing, and batch means are over
/// the `live` rows (length ≥ 1).
#[derive(Debug, Clone)]
pub struct TrajectoryBatch<F: Float> {
    log_q: DMatrix<F>,
    log_p: DMatrix<F>,
    lengths: Vec<usize>,
    log_r: DVector<F>,
    beta: F,
    live: usize,
}

impl<F: Float> TrajectoryBatch<F> {
    /// Validates and builds a batch from step-major `T × B` matrices (column `i` =
    /// trajectory `i`).
    pub fn new(
        log_q: DMatrix<F>,
        log_p: DMatrix<F>,
        lengths: Vec<usize>,
        log_r: DVector<F>,
        beta: F,
    ) -> Result<Self, BatchError> {
        let (t, b) = log_q.shape();
        if log_p.shape() != (t, b) {
            return Err(BatchError::ShapeMismatch {
                what: "log_p",
                found: log_p.shape(),
                expected: (t, b),
            });
        }
        if lengths.len() != b {
            return Err(BatchError::ShapeMismatch {
                what: "lengths",
                found: (lengths.len(), 1),
                expected: (b, 1),
            });
        }
        if log_r.len() != b {
            return Err(BatchError::ShapeMismatch {
                what: "log_r",
                found: (log_r.len(), 1),
                expected: (b, 1),
            });
        }
        if !(beta.is_finite() && beta > F::ZERO) {
            return Err(BatchError::InvalidBeta(beta.to_f64()));
        }
        if let Some((row, &len)) = lengths.iter().enumerate().find(|(_, &l)| l > t) {
            return Err(BatchError::LengthOutOfRange {
                row,
                length: len as i64,
                steps: t,
            });
        }
        let tol = positive_tolerance::<F>();
        let check = |i: usize| -> Result<(), BatchError> {
            let len = lengths[i];
            if len == 0 {
                return Ok(());
            }
            let r = log_r[i];
            if !r.is_finite() {
                return Err(BatchError::NonFinite {
                    what: "log_r",
                    row: i,
                    step: None,
                    value: r.to_f64(),
                });
            }
            for (what, m) in [("log_q", &log_q), ("log_p", &log_p)] {
                let col = &m.as_slice()[i * t..i * t + len];
                for (s, &v) in col.iter().enumerate() {
                    if !v.is_finite() {
                        return Err(BatchError::NonFinite {
                            what,
                            row: i,
                            step: Some(s),
                            value: v.to_f64(),
                        });
                    }
                    if v.to_f64() > tol {
                        return Err(BatchError::PositiveLogProbability {
                            what,
                            row: i,
                            step: s,
                            value: v.to_f64(),
                            tolerance: tol,
                        });
                    }
                }
            }
            Ok(())
        };
        // The first error in row order, whatever the thread schedule.
        (0..b)
            .into_par_iter()
            .with_min_len(256)
            .map(check)
            .collect::<Result<(), _>>()
            .map_err(|e| first_error(&lengths, e, check))?;
        let live = lengths.iter().filter(|&&l| l > 0).count();
        if live == 0 {
            return Err(BatchError::NoLiveTrajectory);
        }
        Ok(Self {
            log_q,
            log_p,
            lengths,
            log_r,
            beta,
            live,
        })
    }

    /// Builds a batch from row-major `[B, T]` buffers (PyTorch layout), without copying.
    pub fn from_row_major(
        batch: usize,
        steps: usize,
        log_q: Vec<F>,
        log_p: Vec<F>,
        lengths: Vec<usize>,
        log_r: Vec<F>,
        beta: F,
    ) -> Result<Self, BatchError> {
        let n = crate::input::product(
            "a row-major batch",
            &[("B", batch as u64), ("T", steps as u64)],
        )?;
        for (what, v) in [("log_q", &log_q), ("log_p", &log_p)] {
            if v.len() as u64 != n {
                return Err(BatchError::ShapeMismatch {
                    what,
                    found: (v.len(), 1),
                    expected: (n as usize, 1),
                });
            }
        }
        Self::new(
            DMatrix::from_vec(steps, batch, log_q),
            DMatrix::from_vec(steps, batch, log_p),
            lengths,
            DVector::from_vec(log_r),
            beta,
        )
    }

    /// Builds a batch from batch-major `B × T` matrices (row `i` = trajectory `i`), copying
    /// them into the step-major layout.
    pub fn from_batch_major(
        log_q: &DMatrix<F>,
        log_p: &DMatrix<F>,
        lengths: Vec<usize>,
        log_r: DVector<F>,
        beta: F,
    ) -> Result<Self, BatchError> {
        if log_p.shape() != log_q.shape() {
            return Err(BatchError::ShapeMismatch {
                what: "log_p",
                found: log_p.shape(),
                expected: log_q.shape(),
            });
        }
        Self::new(log_q.transpose(), log_p.transpose(), lengths, log_r, beta)
    }

    /// Converts signed lengths (as a tensor library may hold them), refusing any outside
    /// `0..=steps`.
    pub fn lengths_from_signed(lengths: &[i64], steps: usize) -> Result<Vec<usize>, BatchError> {
        lengths
            .iter()
            .enumerate()
            .map(|(row, &l)| {
                if l < 0 || l as u64 > steps as u64 {
                    Err(BatchError::LengthOutOfRange {
                        row,
                        length: l,
                        steps,
                    })
                } else {
                    Ok(l as usize)
                }
            })
            .collect()
    }

    /// `B`, the number of trajectories (rows of length 0 included).
    pub fn batch(&self) -> usize {
        self.log_q.ncols()
    }
    /// `T`, the number of step slots.
    pub fn steps(&self) -> usize {
        self.log_q.nrows()
    }
    /// The number of live rows (length ≥ 1): the divisor of every batch mean.
    pub fn live(&self) -> usize {
        self.live
    }
    /// Per-step `log q`, `T × B`.
    pub fn log_q(&self) -> &DMatrix<F> {
        &self.log_q
    }
    /// Per-step `log p`, `T × B`.
    pub fn log_p(&self) -> &DMatrix<F> {
        &self.log_p
    }
    /// Trajectory lengths.
    pub fn lengths(&self) -> &[usize] {
        &self.lengths
    }
    /// `log r(x)` per trajectory.
    pub fn log_r(&self) -> &DVector<F> {
        &self.log_r
    }
    /// β.
    pub fn beta(&self) -> F {
        self.beta
    }
    /// `α = 1/β`, rounded once.
    pub fn alpha(&self) -> F {
        F::ONE / self.beta
    }
    /// Trajectory `i`'s live `log q` (contiguous).
    pub fn row_log_q(&self, i: usize) -> &[F] {
        let t = self.steps();
        &self.log_q.as_slice()[i * t..i * t + self.lengths[i]]
    }
    /// Trajectory `i`'s live `log p` (contiguous).
    pub fn row_log_p(&self, i: usize) -> &[F] {
        let t = self.steps();
        &self.log_p.as_slice()[i * t..i * t + self.lengths[i]]
    }
    /// Bytes of per-step input (`2 · B · T · size_of::<F>()`), what a kernel must read.
    pub fn input_bytes(&self) -> usize {
        2 * self.batch() * self.steps() * F::BYTES
    }
    /// The same batch in another float type (rounded to nearest; re-validated, since
    /// narrowing can overflow).
    pub fn cast<G: Float>(&self) -> Result<TrajectoryBatch<G>, BatchError> {
        TrajectoryBatch::new(
            self.log_q.map(|x| G::from_f64(x.to_f64())),
            self.log_p.map(|x| G::from_f64(x.to_f64())),
            self.lengths.clone(),
            self.log_r.map(|x| G::from_f64(x.to_f64())),
            G::from_f64(self.beta.to_f64()),
        )
    }

    /// The same batch in `f64` (exact widening).
    pub fn to_f64(&self) -> TrajectoryBatch<f64> {
        TrajectoryBatch {
            log_q: self.log_q.map(|x| x.to_f64()),
            log_p: self.log_p.map(|x| x.to_f64()),
            lengths: self.lengths.clone(),
            log_r: self.log_r.map(|x| x.to_f64()),
            beta: self.beta.to_f64(),
            live: self.live,
        }
    }
}

fn first_error<E>(lengths: &[usize], some: E, check: impl Fn(usize) -> Result<(), E>) -> E {
    (0..lengths.len())
        .find_map(|i| check(i).err())
        .unwrap_or(some)
}

/// Whether the window `start..end` fits a trajectory of `length` steps: `0 ≤ start < end ≤
/// length`, or `start = end = 0` on an empty row. The one statement of this rule: window
/// construction and every windowed kernel call check it here.
#[inline]
pub fn window_fits(start: usize, end: usize, length: usize) -> bool {
    if length == 0 {
        start == 0 && end == 0
    } else {
        start < end && end <= length
    }
}

/// One window `s_start → … → s_end` per trajectory, with a learned value at each boundary
/// (`V` for windowed Trust-PCL, `log F` for relative SubTB).
///
/// Window `i` covers steps `start[i]..end[i]` with `0 ≤ start < end ≤ length` (rows of
/// length 0 must have `start = end = 0` and are ignored). When `end = length` the end state is
/// the terminal: its value is not learned (`V(x) = 0`, `log F(x) = β log r(x)`) and
/// `value_end` is ignored there.
#[derive(Debug, Clone)]
pub struct Windows<F: Float> {
    start: Vec<usize>,
    end: Vec<usize>,
    value_start: DVector<F>,
    value_end: DVector<F>,
}

impl<F: Float> Windows<F> {
    /// Validates windows against a batch.
    pub fn new(
        batch: &TrajectoryBatch<F>,
        start: Vec<usize>,
        end: Vec<usize>,
        value_start: DVector<F>,
        value_end: DVector<F>,
    ) -> Result<Self, BatchError> {
        let b = batch.batch();
        for (what, n) in [
            ("window start", start.len()),
            ("window end", end.len()),
            ("value_start", value_start.len()),
            ("value_end", value_end.len()),
        ] {
            if n != b {
                return Err(BatchError::ShapeMismatch {
                    what,
                    found: (n, 1),
                    expected: (b, 1),
                });
            }
        }
        for i in 0..b {
            let len = batch.lengths()[i];
            let (s, e) = (start[i], end[i]);
            if !window_fits(s, e, len) {
                return Err(BatchError::WindowOutOfRange {
                    row: i,
                    start: s,
                    end: e,
                    length: len,
                });
            }
            if len == 0 {
                continue;
            }
            if !value_start[i].is_finite() {
                return Err(BatchError::NonFinite {
                    what: "window value_start",
                    row: i,
                    step: Some(s),
                    value: value_start[i].to_f64(),
                });
            }
            if e < len && !value_end[i].is_finite() {
                return Err(BatchError::NonFinite {
                    what: "window value_end",
                    row: i,
                    step: Some(e),
                    value: value_end[i].to_f64(),
                });
            }
        }
        Ok(Self {
            start,
            end,
            value_start,
            value_end,
        })
    }

    /// Window start state index per trajectory.
    pub fn start(&self) -> &[usize] {
        &self.start
    }
    /// Window end state index per trajectory.
    pub fn end(&self) -> &[usize] {
        &self.end
    }
    /// Learned value at each window's start state.
    pub fn value_start(&self) -> &DVector<F> {
        &self.value_start
    }
    /// Learned value at each window's end state (ignored where the end is terminal).
    pub fn value_end(&self) -> &DVector<F> {
        &self.value_end
    }
    /// The same windows with other boundary values (same indices, re-validated values).
    pub fn with_values(
        &self,
        batch: &TrajectoryBatch<F>,
        value_start: DVector<F>,
        value_end: DVector<F>,
    ) -> Result<Self, BatchError> {
        Self::new(
            batch,
            self.start.clone(),
            self.end.clone(),
            value_start,
            value_end,
        )
    }
    /// The same windows in another float type, for a batch of that type.
    pub fn cast<G: Float>(&self, batch: &TrajectoryBatch<G>) -> Result<Windows<G>, BatchError> {
        Windows::new(
            batch,
            self.start.clone(),
            self.end.clone(),
            self.value_start.map(|x| G::from_f64(x.to_f64())),
            self.value_end.map(|x| G::from_f64(x.to_f64())),
        )
    }

    /// The same windows in `f64` (exact widening).
    pub fn to_f64(&self) -> Windows<f64> {
        Windows {
            start: self.start.clone(),
            end: self.end.clone(),
            value_start: self.value_start.map(|x| x.to_f64()),
            value_end: self.value_end.map(|x| x.to_f64()),
        }
    }
}

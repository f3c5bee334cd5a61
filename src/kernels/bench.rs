//! Throughput of the fused kernels beside memory-bandwidth references measured in the same
//! run (used by `rtb-trustpcl bench`; `benches/kernels.rs` measures the same with criterion,
//! from the same [`BenchSetup`]).
//!
//! Bytes moved, counted per cache line actually touched (`s = size_of::<F>()`):
//! - the per-step inputs: the distinct 64-byte lines of `log q` and `log p` that the kernel's
//!   ranges cover (every live step for the full-trajectory kernels, the window for the
//!   windowed ones; [`input_lines_bytes`]);
//! - the `O(B)` vectors: `log r` and the lengths read, the residual and `g` written
//!   (`B·(8 + 3s)`); the windowed kernels also read the window bounds and boundary values and
//!   write the two boundary gradients (`B·(16 + 4s)`);
//! - the dense form: the `B·T·s` gradient written.
//!
//! The floors: the **read reference** sums every input element (`2·B·T·s` bytes read, same
//! threads, same dispatched instruction set), the faster of two ways: a plain chunked sum
//! ([`parallel_read`]) and the kernels' own row pass with software prefetch
//! ([`parallel_read_rows`]; both are reported); the **copy reference** copies the inputs into a
//! second buffer (`4·B·T·s` bytes: read + write), the faster of ordinary stores
//! ([`parallel_copy`]) and streaming stores ([`parallel_copy_streaming`]), as the kernels may
//! write either ([`super::fused::stores_for`]). A per-trajectory kernel only reads, so its
//! floor is the read reference; a dense kernel reads and writes, so its floor is the copy
//! reference. "Of floor" = the kernel's GB/s over its floor's GB/s from the same run.
//!
//! Timing: this machine's memory system is shared with other tenants, and one binary's
//! timings move by up to 1.7× between adjacent runs (docs/performance.md). So every figure
//! is the **best of the repeats** (the run least disturbed; the median is reported beside),
//! and each kernel is timed **alternately with its floor**, one call of each per repeat
//! ([`time_alternating`]): its fraction of floor compares two timings taken in the same
//! seconds, not a kernel timed minutes after its reference. The best of each side can still
//! come from different rounds, so the **paired** fraction is reported beside it: the median
//! over the rounds of the kernel's GB/s over its floor's in the same round.
//!
//! The windowed kernels read only their windows' lines, at a different offset in every row;
//! the hardware fetches about the whole row anyway, so the contiguous floors' GB/s over the
//! windows' bytes is out of reach. They are held to the same references over the same lines:
//! the **windowed read reference** sums every input element inside the windows (the faster of
//! a plain loop, [`parallel_read_windows`], and the row pass over the windows,
//! [`parallel_read_rows`]), the **windowed copy reference** writes each row's `q + p`
//! inside its window and zeros around it ([`parallel_copy_windows`]: the windows read, whole
//! rows written; the faster of ordinary and streaming stores). Their fractions of the
//! contiguous floors are reported beside.
//!
//! REINFORCE-KL's dense gradient `g_i = −(R_i − b)/B` needs the batch mean `b` of rewards that
//! are sums over the per-step inputs, so nothing can be written before the last row is read
//! ([`KernelId::dense_after_all_reads`]): it cannot overlap reads and writes as the copy does.
//! Its floor is the **read-then-write reference**: the read reference, then the same dense
//! write the kernels do (every row's value over its row, the faster of ordinary and streaming
//! stores), timed as one (`2·B·T·s + B·T·s` bytes). Its fraction of the copy reference is
//! reported beside.
use std::time::Instant;

use nalgebra::DMatrix;
use rayon::prelude::*;
use serde::Serialize;

use super::batch::{TrajectoryBatch, Windows};
use super::error::BatchError;
use super::float::Float;
use super::fused::{
    cpu_row_sums_at, cpu_row_sums_tuned, evaluate_into, fill_dense_with, AllKernelsParams,
    GradForm, Kernel, KernelId, KernelOutput, Level, Stores, Term,
};
use super::generate::{generate, GenConfig, Generated};
use super::simd;
use super::stream;

/// The reference a row is held to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Floor {
    /// The read reference (per-trajectory forms).
    #[serde(rename = "read")]
    Read,
    /// The copy reference (dense forms).
    #[serde(rename = "copy")]
    Copy,
    /// The read reference over the windows' lines (windowed per-trajectory forms).
    #[serde(rename = "read-win")]
    ReadWindows,
    /// The copy reference over the windows' lines (windowed dense forms).
    #[serde(rename = "copy-win")]
    CopyWindows,
    /// The read reference, then the dense write alone (dense forms that can only write after
    /// every row is read: [`KernelId::dense_after_all_reads`]).
    #[serde(rename = "read-then-write")]
    ReadThenWrite,
}

impl Floor {
    /// Every floor.
    pub const ALL: [Self; 5] = [
        Self::Copy,
        Self::Read,
        Self::ReadWindows,
        Self::CopyWindows,
        Self::ReadThenWrite,
    ];

    /// The floor of kernel `id` in `form`: a per-trajectory form only reads, a dense form
    /// reads and writes; a windowed kernel reads only its windows; a dense form whose every
    /// value needs the whole batch read first cannot overlap its reads and writes, so it is
    /// held to a read followed by a write.
    pub fn of(id: KernelId, form: GradForm) -> Self {
        match (form, id.windowed()) {
            (GradForm::PerTrajectory, false) => Self::Read,
            (GradForm::PerTrajectory, true) => Self::ReadWindows,
            (GradForm::Dense, _) if id.dense_after_all_reads() => Self::ReadThenWrite,
            (GradForm::Dense, false) => Self::Copy,
            (GradForm::Dense, true) => Self::CopyWindows,
        }
    }

    /// The two ways each floor is done, timed apart in every run; the faster is the floor
    /// (a kernel must not look faster than its floor because the floor was done badly): a
    /// read as a plain chunked sum or as the kernels' row pass; a copy, and the write after the
    /// read, with ordinary or with streaming stores.
    pub const fn ways(self) -> [&'static str; 2] {
        match self {
            Self::Read | Self::ReadWindows => ["plain-sum", "rows"],
            Self::Copy | Self::CopyWindows => ["plain", "streaming"],
            Self::ReadThenWrite => ["regular-stores", "streaming-stores"],
        }
    }

    /// The name printed and written to JSON.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Copy => "copy",
            Self::ReadWindows => "read-win",
            Self::CopyWindows => "copy-win",
            Self::ReadThenWrite => "read-then-write",
        }
    }
}

impl std::fmt::Display for Floor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.name())
    }
}

/// One measured row.
#[derive(Debug, Clone, Serialize)]
pub struct Measurement {
    /// Kernel name, or `copy` / `read` for the references, or a phase measured alone.
    pub name: String,
    /// `dense`, `per-trajectory`, `reference`, or the variant of a phase.
    pub form: String,
    /// Median seconds over the repeats.
    pub median_seconds: f64,
    /// Fewest seconds over the repeats (the run least disturbed by other tenants of the
    /// memory system; the GB/s and fractions use it).
    pub best_seconds: f64,
    /// Bytes moved per run (see the module docs).
    pub bytes: f64,
    /// `bytes / best_seconds / 1e9`.
    pub gbps: f64,
    /// The reference this row is held to.
    pub floor: Floor,
    /// The floor's GB/s timed alternately with this row (one call of each per repeat, best
    /// of the repeats); the kernels' rows only, the other rows use the run's references.
    pub floor_gbps: f64,
    /// `gbps / floor_gbps`.
    pub fraction_of_floor: f64,
    /// The kernels' rows: the median over the repeats of this row's GB/s over its floor's
    /// GB/s in the same round (the two calls back to back); `None` for the other rows.
    pub paired_fraction_of_floor: Option<f64>,
    /// This row's GB/s over the run's read reference's GB/s.
    pub fraction_of_read: f64,
    /// This row's GB/s over the run's copy reference's GB/s.
    pub fraction_of_copy: f64,
}

/// A whole bench run in one float type.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    /// `B`.
    pub batch: usize,
    /// `T`.
    pub steps: usize,
    /// `"f32"` or `"f64"`.
    pub dtype: &'static str,
    /// Repeats per measurement (best and median reported).
    pub repeats: usize,
    /// rayon threads.
    pub threads: usize,
    /// The instruction set the loops were dispatched to ([`simd::level`]).
    pub simd: &'static str,
    /// The copy reference's GB/s.
    pub copy_gbps: f64,
    /// The read reference's GB/s.
    pub read_gbps: f64,
    /// The windowed read reference's GB/s (the windows' lines only).
    pub read_windows_gbps: f64,
    /// The windowed copy reference's GB/s (the windows' lines read, whole rows written).
    pub copy_windows_gbps: f64,
    /// Every measurement, references first.
    pub measurements: Vec<Measurement>,
}

/// Seconds of repeated calls of one piece of work.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timing {
    /// The fewest seconds.
    pub best: f64,
    /// The median seconds.
    pub median: f64,
}

impl Timing {
    pub(crate) fn of(mut seconds: Vec<f64>) -> Self {
        seconds.sort_by(|a, b| a.total_cmp(b));
        Self {
            best: seconds[0],
            median: seconds[seconds.len() / 2],
        }
    }
}

/// Seconds of `f()` over `repeats` calls (after one warm-up call).
pub fn time_repeats(repeats: usize, mut f: impl FnMut()) -> Timing {
    f();
    Timing::of(
        (0..repeats.max(1))
            .map(|_| {
                let s = Instant::now();
                f();
                s.elapsed().as_secs_f64()
            })
            .collect(),
    )
}

/// Two pieces of work timed alternately ([`time_alternating`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Alternated {
    /// The first's timings.
    pub first: Timing,
    /// The second's timings.
    pub second: Timing,
    /// Per round, the first's seconds over the second's (the two calls back to back).
    pub ratios: Vec<f64>,
}

impl Alternated {
    /// The median of [`Alternated::ratios`] (the upper one of an even count, as
    /// [`Timing::median`]).
    pub fn median_ratio(&self) -> f64 {
        let mut r = self.ratios.clone();
        r.sort_by(|a, b| a.total_cmp(b));
        r[r.len() / 2]
    }
}

/// Seconds of `first` and of `second` over `repeats` rounds of one call each, alternating
/// (after one warm-up call of each): both see the same state of a memory system shared with
/// other tenants, whose load moves one binary's timings by up to 1.7× between adjacent runs
/// on this machine (docs/performance.md), so a kernel is compared with its floor as measured
/// beside it. The per-round ratios keep each pair together: the best of each side can come
/// from different rounds, and so from different states of the host.
pub fn time_alternating<S>(
    repeats: usize,
    state: &mut S,
    mut first: impl FnMut(&mut S),
    mut second: impl FnMut(&mut S),
) -> Alternated {
    first(state);
    second(state);
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for _ in 0..repeats.max(1) {
        let s = Instant::now();
        first(state);
        a.push(s.elapsed().as_secs_f64());
        let s = Instant::now();
        second(state);
        b.push(s.elapsed().as_secs_f64());
    }
    let ratios = a.iter().zip(&b).map(|(x, y)| x / y).collect();
    Alternated {
        first: Timing::of(a),
        second: Timing::of(b),
        ratios,
    }
}

/// The copy reference: `dst ← src`, split across the rayon threads like the kernels.
pub fn parallel_copy<F: Float>(src: &[F], dst: &mut [F]) {
    dst.par_chunks_mut(1 << 16)
        .zip(src.par_chunks(1 << 16))
        .for_each(|(d, s)| d.copy_from_slice(s));
}

/// One chunk of the streaming copy: `dst ← src`.
struct StreamingCopyTask<'a, F>(&'a [F], &'a mut [F]);

impl<F: Float> simd::Task for StreamingCopyTask<'_, F> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        stream::copy(self.0, self.1);
        stream::fence();
    }
}

/// [`parallel_copy`] with streaming stores for every whole line of `dst` (the library's
/// `memcpy` decides its stores by a threshold drawn from the cache size the machine reports,
/// and a chunk of 256–512 KiB never reaches it).
pub fn parallel_copy_streaming<F: Float>(src: &[F], dst: &mut [F]) {
    dst.par_chunks_mut(1 << 16)
        .zip(src.par_chunks(1 << 16))
        .for_each(|(d, s)| simd::dispatch_for(F::BYTES, StreamingCopyTask(s, d)));
}

struct ReadTask<'a, F>(&'a [F], &'a [F]);

impl<F: Float> simd::Task for ReadTask<'_, F> {
    type Output = F;
    #[inline(always)]
    fn run(self) -> F {
        super::sum::lanes_sum(self.0, self.1, |p, q| p + q)
    }
}

/// The read reference: a sum of every input element (prevents the reads from being elided),
/// with the kernels' dispatched instruction set.
pub fn parallel_read<F: Float>(a: &[F], b: &[F]) -> F {
    // Chunks of 64 blocks: the longest sum `lanes_sum` keeps on the stack (no recursion).
    a.par_chunks(1 << 14)
        .zip(b.par_chunks(1 << 14))
        .map(|(x, y)| simd::dispatch_for(F::BYTES, ReadTask(x, y)))
        .sum()
}

/// The read reference done the kernels' way: the row pass summing `log q + log p` over every
/// row, or over the windows where `windows` is given (chunks of rows, software prefetch where
/// the kernels prefetch, one sum written per row).
pub fn parallel_read_rows<F: Float>(
    batch: &TrajectoryBatch<F>,
    windows: Option<&Windows<F>>,
) -> Result<(), BatchError> {
    let both = Term {
        a: F::ONE,
        b: F::ONE,
    };
    std::hint::black_box(cpu_row_sums_at(
        batch,
        windows,
        both,
        None,
        Level::Dispatched,
    )?);
    Ok(())
}

/// Rows per parallel task in the windowed references (as the kernels' row pass).
const REFERENCE_ROWS: usize = 256;

/// One chunk of rows of the windowed references: its log q and log p rows and its rows'
/// window starts and ends.
struct WindowChunk<'a, F> {
    q: &'a [F],
    p: &'a [F],
    start: &'a [usize],
    end: &'a [usize],
}

/// The batch's rows in chunks of [`REFERENCE_ROWS`] rows (as the kernels' row pass), each
/// with its windows; `t > 0`.
fn window_chunks<'a, F: Float>(
    batch: &'a TrajectoryBatch<F>,
    windows: &'a Windows<F>,
) -> impl IndexedParallelIterator<Item = WindowChunk<'a, F>> + 'a {
    let t = batch.steps();
    let rows = t * REFERENCE_ROWS;
    let (q, p) = (batch.log_q().as_slice(), batch.log_p().as_slice());
    q.par_chunks(rows)
        .zip(p.par_chunks(rows))
        .enumerate()
        .map(move |(c, (q, p))| {
            let first = c * REFERENCE_ROWS;
            let last = first + q.len() / t;
            WindowChunk {
                q,
                p,
                start: &windows.start()[first..last],
                end: &windows.end()[first..last],
            }
        })
}

/// The windowed read reference's loop: the sum of every input element inside the windows of
/// one chunk's rows (the lines the windowed kernels read, nothing else).
struct WindowReadTask<'a, F> {
    chunk: WindowChunk<'a, F>,
    t: usize,
}

impl<F: Float> simd::Task for WindowReadTask<'_, F> {
    type Output = F;
    #[inline(always)]
    fn run(self) -> F {
        let WindowChunk { q, p, start, end } = self.chunk;
        let mut total = F::ZERO;
        for (i, (&s, &e)) in start.iter().zip(end).enumerate() {
            let (a, b) = (i * self.t + s, i * self.t + e);
            total += super::sum::lanes_sum(&q[a..b], &p[a..b], |x, y| x + y);
        }
        total
    }
}

/// The windowed read reference: [`parallel_read`] over the windows only, in chunks of rows.
pub fn parallel_read_windows<F: Float>(batch: &TrajectoryBatch<F>, windows: &Windows<F>) -> F {
    let t = batch.steps();
    if t == 0 {
        return F::ZERO;
    }
    window_chunks(batch, windows)
        .map(|chunk| simd::dispatch_for(F::BYTES, WindowReadTask { chunk, t }))
        .sum()
}

/// The windowed copy reference's values for `out`, the elements `k0..k0 + out.len()` of a
/// chunk's rows laid end to end: `q + p` inside each row's window, zeros around it.
#[inline(always)]
fn window_values<F: Float>(chunk: &WindowChunk<'_, F>, t: usize, k0: usize, out: &mut [F]) {
    let (mut k, mut o) = (k0, 0);
    while o < out.len() {
        let (i, c) = (k / t, k % t);
        let n = (t - c).min(out.len() - o);
        // The window's part of the piece `c..c + n` of row `i`.
        let lo = chunk.start[i].clamp(c, c + n);
        let hi = chunk.end[i].clamp(lo, c + n);
        let (a, b) = (i * t + lo, i * t + hi);
        let piece = &mut out[o..o + n];
        piece[..lo - c].fill(F::ZERO);
        for ((d, &x), &y) in piece[lo - c..hi - c]
            .iter_mut()
            .zip(&chunk.q[a..b])
            .zip(&chunk.p[a..b])
        {
            *d = x + y;
        }
        piece[hi - c..].fill(F::ZERO);
        o += n;
        k += n;
    }
}

/// The windowed copy reference's loop: each row of `dst` gets `q + p` inside its window and
/// zeros around it (the windowed dense kernels' traffic: the windows read, whole rows
/// written), with ordinary stores, or streamed through a small staging buffer (the values of
/// [`STAGED`] elements at a time, then every whole line of them streamed).
struct WindowCopyTask<'a, F> {
    chunk: WindowChunk<'a, F>,
    dst: &'a mut [F],
    t: usize,
    stores: Stores,
}

/// Elements staged per streamed segment of the windowed copy: whole lines in both types, 8 KiB
/// of `f64` (in the first-level cache).
const STAGED: usize = 1024;

impl<F: Float> simd::Task for WindowCopyTask<'_, F> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let Self {
            chunk,
            dst,
            t,
            stores,
        } = self;
        match stores {
            Stores::Regular => window_values(&chunk, t, 0, dst),
            Stores::NonTemporal => {
                // The partial line before the first boundary directly; from there on every
                // segment starts on a line.
                let head = stream::head(dst);
                window_values(&chunk, t, 0, &mut dst[..head]);
                let mut staging = [F::ZERO; STAGED];
                let mut k = head;
                while k < dst.len() {
                    let n = STAGED.min(dst.len() - k);
                    window_values(&chunk, t, k, &mut staging[..n]);
                    stream::copy(&staging[..n], &mut dst[k..k + n]);
                    k += n;
                }
                stream::fence();
            }
        }
    }
}

/// The windowed copy reference: [`WindowCopyTask`] over every row, in chunks of rows, with
/// the given stores.
pub fn parallel_copy_windows<F: Float>(
    batch: &TrajectoryBatch<F>,
    windows: &Windows<F>,
    dst: &mut [F],
    stores: Stores,
) {
    let t = batch.steps();
    if t == 0 {
        return;
    }
    dst.par_chunks_mut(t * REFERENCE_ROWS)
        .zip(window_chunks(batch, windows))
        .for_each(|(dst, chunk)| {
            simd::dispatch_for(
                F::BYTES,
                WindowCopyTask {
                    chunk,
                    dst,
                    t,
                    stores,
                },
            )
        });
}

/// A full-length benchmark batch (every trajectory has `T` steps).
pub fn bench_batch<F: Float>(batch: usize, steps: usize) -> Result<Generated<F>, BatchError> {
    generate(
        &GenConfig {
            batch,
            steps,
            seed: 42,
            beta: 1.5,
            full_lengths: true,
        },
        None,
    )
}

/// Kernel `id` with the generated batch's parameters (κ = ½ for the flawed baseline).
pub fn bench_kernel<F: Float>(g: &Generated<F>, id: KernelId) -> Kernel<'_, F> {
    let params = AllKernelsParams {
        log_z: g.log_z,
        v0: g.v0,
        kappa: F::from_f64(0.5),
        windows_v: Some(&g.windows_v),
        windows_log_f: Some(&g.windows_log_f),
    };
    params
        .kernel(id)
        .expect("both windows are given, so every kernel exists")
}

/// The benchmark's inputs and the dense buffer the kernels write into: one setup for
/// `bench` and for the criterion benches.
pub struct BenchSetup<F: Float> {
    /// The batch, its windows and parameters.
    pub generated: Generated<F>,
    /// The caller-owned `T × B` dense gradient buffer.
    pub dense: DMatrix<F>,
}

impl<F: Float> BenchSetup<F> {
    /// A full-length batch of `B × T` ([`bench_batch`]) and its dense buffer.
    pub fn new(batch: usize, steps: usize) -> Result<Self, BatchError> {
        crate::input::product(
            "bench",
            &[("3", 3), ("B", batch as u64), ("T", steps as u64)],
        )?;
        Ok(Self {
            generated: bench_batch(batch, steps)?,
            dense: DMatrix::from_element(steps, batch, F::ZERO),
        })
    }

    /// The batch.
    pub fn batch(&self) -> &TrajectoryBatch<F> {
        &self.generated.batch
    }

    /// The kernel `id` with the setup's parameters (κ = ½ for the flawed baseline).
    pub fn kernel(&self, id: KernelId) -> Kernel<'_, F> {
        bench_kernel(&self.generated, id)
    }

    /// The windows kernel `id` reads, if any.
    pub fn windows(&self, id: KernelId) -> Option<&Windows<F>> {
        self.kernel(id).windows()
    }

    /// One evaluation of kernel `id` in `form` (the dense form into [`Self::dense`]).
    pub fn run(&mut self, id: KernelId, form: GradForm) -> Result<KernelOutput<F>, BatchError> {
        let g = &self.generated;
        let kernel = bench_kernel(g, id);
        let buf = (form == GradForm::Dense).then_some(&mut self.dense);
        evaluate_into(&g.batch, &kernel, None, buf)
    }

    /// Bytes kernel `id` moves in `form` (see the module docs).
    pub fn bytes(&self, id: KernelId, form: GradForm) -> f64 {
        kernel_bytes(self.batch(), self.windows(id), form)
    }
}

/// Bytes of the distinct 64-byte lines of `log q` and `log p` that the rows' ranges (every
/// live step, or the windows) cover, in the buffers' actual placement in memory.
pub fn input_lines_bytes<F: Float>(
    batch: &TrajectoryBatch<F>,
    windows: Option<&Windows<F>>,
) -> f64 {
    input_lines_bytes_at(
        batch,
        windows,
        64,
        batch.log_q().as_slice().as_ptr() as usize,
        batch.log_p().as_slice().as_ptr() as usize,
    )
}

/// Bytes of the distinct `line`-byte lines of `log q` and `log p` that the rows' ranges cover,
/// with the two buffers at addresses `q_base` and `p_base` (the device's copies start on
/// 256-byte boundaries: pass 0 and 32-byte sectors there). A `line` of 0 counts bytes.
pub fn input_lines_bytes_at<F: Float>(
    batch: &TrajectoryBatch<F>,
    windows: Option<&Windows<F>>,
    line: usize,
    q_base: usize,
    p_base: usize,
) -> f64 {
    let line = line.max(1);
    let t = batch.steps();
    let lines = |base: usize| {
        let mut count = 0usize;
        let mut last: Option<usize> = None;
        for i in 0..batch.batch() {
            let (s, e) = match windows {
                Some(w) => (w.start()[i], w.end()[i]),
                None => (0, batch.lengths()[i]),
            };
            if e <= s {
                continue;
            }
            let first = (base + (i * t + s) * F::BYTES) / line;
            let end = (base + (i * t + e - 1) * F::BYTES) / line;
            // Rows are in increasing address order: only the previous row can share a line.
            let from = if last == Some(first) {
                first + 1
            } else {
                first
            };
            count += (end + 1).saturating_sub(from);
            last = Some(end);
        }
        count
    };
    ((lines(q_base) + lines(p_base)) * line) as f64
}

/// Bytes a kernel moves (see the module docs); `windows` for the windowed kernels.
pub fn kernel_bytes<F: Float>(
    batch: &TrajectoryBatch<F>,
    windows: Option<&Windows<F>>,
    form: GradForm,
) -> f64 {
    let (b, t, s) = (batch.batch() as f64, batch.steps() as f64, F::BYTES as f64);
    let mut bytes = input_lines_bytes(batch, windows) + b * (8.0 + 3.0 * s);
    if windows.is_some() {
        bytes += b * (16.0 + 4.0 * s);
    }
    if form == GradForm::Dense {
        bytes += b * t * s;
    }
    bytes
}

/// The references, each done the faster of its two ways ([`Floor::ways`]) found when the run
/// measured them, with the buffers the copies write into.
struct References<F: Float> {
    /// The copy reference's destination (`2·B·T`); its first half is the windowed copy's and
    /// the read-then-write's.
    dst: Vec<F>,
    /// Per floor (in [`Floor::ALL`]'s order), whether it is done its second way.
    second_way: [bool; 5],
    /// Keeps the sums from being elided.
    sink: F,
    /// One value per row, written over each row by the read-then-write reference.
    row_values: Vec<F>,
}

impl<F: Float> References<F> {
    /// Every floor done its first way, for a batch of `batch` rows of `steps` steps.
    fn new(batch: usize, steps: usize) -> Self {
        Self {
            dst: vec![F::ZERO; 2 * batch * steps],
            second_way: [false; 5],
            sink: F::ZERO,
            row_values: (0..batch).map(|i| F::from_usize(i % 7)).collect(),
        }
    }

    /// Whether `floor` is done its second way.
    fn second_way(&mut self, floor: Floor) -> &mut bool {
        let k = Floor::ALL
            .iter()
            .position(|&f| f == floor)
            .expect("every floor is in Floor::ALL");
        &mut self.second_way[k]
    }

    /// Times `floor` both ways and keeps the faster for the rest of the run: `[first way,
    /// second way, faster]`.
    fn time_both_ways(
        &mut self,
        floor: Floor,
        setup: &BenchSetup<F>,
        repeats: usize,
    ) -> [Timing; 3] {
        *self.second_way(floor) = false;
        let first = time_repeats(repeats, || self.run(floor, setup));
        *self.second_way(floor) = true;
        let second = time_repeats(repeats, || self.run(floor, setup));
        let faster = second.best < first.best;
        *self.second_way(floor) = faster;
        [first, second, if faster { second } else { first }]
    }

    /// One call of `floor`'s reference on `setup`'s batch (the windowed ones over the
    /// windows of the windowed kernels: both use the same windows), done the way chosen.
    fn run(&mut self, floor: Floor, setup: &BenchSetup<F>) {
        let batch = setup.batch();
        let n = batch.batch() * batch.steps();
        let w = &setup.generated.windows_log_f;
        let (q, p) = (batch.log_q().as_slice(), batch.log_p().as_slice());
        let second = *self.second_way(floor);
        let stores = if second {
            Stores::NonTemporal
        } else {
            Stores::Regular
        };
        match floor {
            Floor::Copy => {
                let (d0, d1) = self.dst.split_at_mut(n);
                let copy: fn(&[F], &mut [F]) = if second {
                    parallel_copy_streaming
                } else {
                    parallel_copy
                };
                copy(q, d0);
                copy(p, d1);
            }
            Floor::CopyWindows => parallel_copy_windows(batch, w, &mut self.dst[..n], stores),
            Floor::ReadThenWrite => {
                self.run(Floor::Read, setup);
                fill_dense_with(batch, None, &self.row_values, &mut self.dst[..n], stores);
            }
            Floor::Read | Floor::ReadWindows => {
                let windows = (floor == Floor::ReadWindows).then_some(w);
                if second {
                    // Checked when the run began: the same inputs cannot fail.
                    let _ = parallel_read_rows(batch, windows);
                } else {
                    self.sink += match windows {
                        None => parallel_read(q, p),
                        Some(w) => parallel_read_windows(batch, w),
                    };
                }
            }
        }
        std::hint::black_box(self.sink);
    }
}

/// Measures the references, every kernel in both gradient forms (each timed alternately
/// with its floor), and two phases alone (phase 1 of RTB at the baseline and the dispatched
/// instruction set; the dense write with ordinary and streaming stores). Every figure is the
/// best of the repeats, the median beside it.
pub fn run_bench<F: Float>(
    batch: usize,
    steps: usize,
    repeats: usize,
) -> Result<BenchReport, BatchError> {
    let mut setup = BenchSetup::<F>::new(batch, steps)?;
    let n = batch * steps;
    // The row pass is checked once here; the references' later calls cannot fail.
    let w = &setup.generated.windows_log_f;
    parallel_read_rows(setup.batch(), None)?;
    parallel_read_rows(setup.batch(), Some(w))?;
    let mut refs = References::new(batch, steps);
    let in_bytes = (2 * n * F::BYTES) as f64;
    // The windowed kernels' floors: the same references over the windows' lines only.
    // Reading a window at a random offset in a row of 6–13 lines costs about what the whole
    // row costs (docs/performance.md, session 7), so the contiguous floors' GB/s over the
    // windows' bytes cannot be reached by any code; these can. Both kinds of fraction are
    // reported.
    let w_bytes = input_lines_bytes(setup.batch(), Some(w));
    let floor_bytes = |floor: Floor| match floor {
        Floor::Read => in_bytes,
        Floor::Copy => 2.0 * in_bytes,
        Floor::ReadWindows => w_bytes,
        Floor::CopyWindows => w_bytes + (n * F::BYTES) as f64,
        Floor::ReadThenWrite => in_bytes + (n * F::BYTES) as f64,
    };
    // Every floor both ways, the faster kept for the rest of the run (a kernel must not look
    // faster than its floor because the floor was done badly): the reads as a plain chunked
    // sum and as the kernels' row pass (software prefetch ahead where the kernels prefetch),
    // which ran faster on the DRAM-sized batch; the copies and the write after the read with
    // ordinary and with streaming stores, which won by up to 2.9× on long rows (session 17).
    // In `Floor::ALL`'s order: the read-then-write reference reads the way the read chose.
    let timings: Vec<(Floor, [Timing; 3])> = Floor::ALL
        .iter()
        .map(|&floor| (floor, refs.time_both_ways(floor, &setup, repeats)))
        .collect();
    let gbps = |bytes: f64, t: Timing| bytes / t.best / 1e9;
    let run_floor_gbps = |floor: Floor| {
        let (_, [.., faster]) = timings
            .iter()
            .find(|(f, _)| *f == floor)
            .expect("every floor is timed");
        gbps(floor_bytes(floor), *faster)
    };
    let copy_gbps = run_floor_gbps(Floor::Copy);
    let read_gbps = run_floor_gbps(Floor::Read);
    let row = |name: &str, form: &str, floor: Floor, t: Timing, bytes: f64, floor_gbps: f64| {
        let g = gbps(bytes, t);
        Measurement {
            name: name.into(),
            form: form.into(),
            median_seconds: t.median,
            best_seconds: t.best,
            bytes,
            gbps: g,
            floor,
            floor_gbps,
            fraction_of_floor: g / floor_gbps,
            paired_fraction_of_floor: None,
            fraction_of_read: g / read_gbps,
            fraction_of_copy: g / copy_gbps,
        }
    };
    let reference = |name: &str, form: &str, floor: Floor, t: Timing, bytes: f64| {
        row(name, form, floor, t, bytes, run_floor_gbps(floor))
    };
    // Per floor: the faster way ("reference"), then each way by its name.
    let mut rows = Vec::new();
    for &(floor, [first, second, faster]) in &timings {
        let [first_name, second_name] = floor.ways();
        for (form, t) in [
            ("reference", faster),
            (first_name, first),
            (second_name, second),
        ] {
            rows.push(reference(floor.name(), form, floor, t, floor_bytes(floor)));
        }
    }
    for id in KernelId::ALL {
        for form in [GradForm::PerTrajectory, GradForm::Dense] {
            let floor = Floor::of(id, form);
            let mut result = Ok(());
            let mut state = (&mut setup, &mut refs);
            let timed = time_alternating(
                repeats,
                &mut state,
                |(setup, refs)| refs.run(floor, setup),
                |(setup, _)| {
                    if let Err(e) = setup.run(id, form) {
                        result = Err(e);
                    }
                },
            );
            result?;
            let form_name = match form {
                GradForm::PerTrajectory => "per-trajectory",
                GradForm::Dense => "dense",
            };
            let bytes = setup.bytes(id, form);
            // Per round: (bytes / kernel s) / (floor bytes / floor s).
            let paired = bytes / floor_bytes(floor) * timed.median_ratio();
            rows.push(Measurement {
                paired_fraction_of_floor: Some(paired),
                ..row(
                    id.name(),
                    form_name,
                    floor,
                    timed.second,
                    bytes,
                    gbps(floor_bytes(floor), timed.first),
                )
            });
        }
    }
    // The copy's buffer is freed here; the per-row values serve the dense-write rows below.
    let References { row_values: g, .. } = refs;
    // Phase 1 of RTB alone (the sums of log q − log p), at each instruction set.
    let diff = Term {
        a: F::ONE,
        b: -F::ONE,
    };
    let p1_bytes = input_lines_bytes(setup.batch(), None);
    for (level, name) in [
        (Level::Baseline, "baseline"),
        (Level::Dispatched, simd::level_for(F::BYTES)),
    ] {
        cpu_row_sums_at(setup.batch(), None, diff, None, level)?;
        let t = time_repeats(repeats, || {
            // Checked just above: the same inputs cannot fail here.
            let _ = std::hint::black_box(cpu_row_sums_at(setup.batch(), None, diff, None, level));
        });
        rows.push(reference("phase1-rtb", name, Floor::Read, t, p1_bytes));
    }
    // Phase 1 of SubTB alone (the same sums over the windows), at three prefetch distances.
    let w = &setup.generated.windows_log_f;
    for ahead in [0, 4, 16] {
        cpu_row_sums_tuned(setup.batch(), Some(w), diff, None, Level::Dispatched, ahead)?;
        let t = time_repeats(repeats, || {
            // Checked just above.
            let _ = std::hint::black_box(cpu_row_sums_tuned(
                setup.batch(),
                Some(w),
                diff,
                None,
                Level::Dispatched,
                ahead,
            ));
        });
        let form = format!("prefetch-{ahead}-rows");
        rows.push(reference("phase1-subtb", &form, Floor::Read, t, w_bytes));
    }
    // The dense write alone, with each kind of store.
    for (stores, name) in [
        (Stores::Regular, "regular-stores"),
        (Stores::NonTemporal, "streaming-stores"),
    ] {
        // Full rows, then SubTB's windows (zeros around each window).
        for (windows, what) in [
            (None, "dense-write"),
            (Some(&setup.generated.windows_log_f), "dense-write-win"),
        ] {
            let t = time_repeats(repeats, || {
                fill_dense_with(
                    &setup.generated.batch,
                    windows,
                    &g,
                    setup.dense.as_mut_slice(),
                    stores,
                );
            });
            rows.push(reference(what, name, Floor::Copy, t, (n * F::BYTES) as f64));
        }
    }
    Ok(BenchReport {
        batch,
        steps,
        dtype: F::NAME,
        repeats,
        threads: rayon::current_num_threads(),
        simd: simd::level_for(F::BYTES),
        copy_gbps,
        read_gbps,
        read_windows_gbps: run_floor_gbps(Floor::ReadWindows),
        copy_windows_gbps: run_floor_gbps(Floor::CopyWindows),
        measurements: rows,
    })
}

/// One kernel's device time in `bench --device cuda`
/// ([`crate::kernels::cuda::CudaBackend::time_kernel`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DeviceKernelTiming {
    /// Phase 1: the row sums, with the kernel's own terms and windows.
    pub rows: Timing,
    /// Phase 3: the dense fill of `g`.
    pub fill: Timing,
    /// How many sums per row phase 1 writes (1 or 2).
    pub sums: usize,
}

/// The device's bandwidth references ([`crate::kernels::cuda::CudaBackend::time_references`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DeviceReferences {
    /// Both inputs copied by a 16-byte-vector kernel.
    pub copy: Timing,
    /// Both inputs copied by the driver (`cuMemcpyDtoD`).
    pub copy_driver: Timing,
    /// One input's size written by the driver (`cuMemsetD8`): the floor of the dense fill.
    pub write_driver: Timing,
    /// Both inputs read by a 16-byte-vector kernel.
    pub read: Timing,
    /// Bytes the copy kernel moves (read + write).
    pub copy_bytes: f64,
    /// Bytes the driver's copy moves (read + write).
    pub copy_driver_bytes: f64,
    /// Bytes the driver's write writes.
    pub write_driver_bytes: f64,
    /// Bytes the read kernel reads.
    pub read_bytes: f64,
}

/// One row of `bench --device cuda`.
#[derive(Debug, Clone, Serialize)]
pub struct DeviceMeasurement {
    /// Kernel name, or `copy` / `copy-driver` / `read` / `write-driver` for the references.
    pub name: String,
    /// `per-trajectory` (phase 1), `dense` (phases 1 and 3), `fill` (phase 3 alone) or
    /// `reference`.
    pub form: String,
    /// Median seconds over the repeats (device time between two events).
    pub median_seconds: f64,
    /// Fewest seconds over the repeats.
    pub best_seconds: f64,
    /// Bytes moved per run ([`device_kernel_bytes`]).
    pub bytes: f64,
    /// `bytes / median_seconds / 1e9`.
    pub gbps: f64,
    /// `gbps` over the card's peak ([`DeviceBenchReport::peak_gbps`]).
    pub fraction_of_peak: f64,
    /// `gbps` over the faster copy reference's (by the median).
    pub fraction_of_copy: f64,
}

/// `bench --device cuda` in one float type.
#[derive(Debug, Clone, Serialize)]
pub struct DeviceBenchReport {
    /// The device's name.
    pub device: String,
    /// `B`.
    pub batch: usize,
    /// `T`.
    pub steps: usize,
    /// `"f32"` or `"f64"`.
    pub dtype: &'static str,
    /// Repeats per measurement.
    pub repeats: usize,
    /// The card's peak memory bandwidth from its attributes (memory clock × 2 × bus width).
    pub peak_gbps: f64,
    /// The faster copy reference's GB/s (by the median).
    pub copy_gbps: f64,
    /// The read reference's GB/s (by the median).
    pub read_gbps: f64,
    /// References first, then every kernel in both forms and its fill alone.
    pub measurements: Vec<DeviceMeasurement>,
}

/// Bytes one kernel's device phases move, counted per 32-byte sector touched (the device's
/// unit of memory access; its buffers start on 256-byte boundaries): phase 1 reads the
/// sectors of `log q` and `log p` its ranges cover and the two 4-byte bounds per row, and
/// writes `sums` values per row; phase 3 reads `g` and the bounds and writes the `B·T`
/// dense gradient. `form` [`GradForm::Dense`] counts both phases.
pub fn device_kernel_bytes<F: Float>(
    batch: &TrajectoryBatch<F>,
    windows: Option<&Windows<F>>,
    sums: usize,
    form: GradForm,
) -> f64 {
    let (b, s) = (batch.batch() as f64, F::BYTES as f64);
    let rows = input_lines_bytes_at(batch, windows, 32, 0, 0) + b * (8.0 + sums as f64 * s);
    match form {
        GradForm::PerTrajectory => rows,
        GradForm::Dense => rows + device_fill_bytes::<F>(batch.batch(), batch.steps()),
    }
}

/// Bytes the dense fill moves: `g` and the bounds read, `B·T` values written.
pub fn device_fill_bytes<F: Float>(batch: usize, steps: usize) -> f64 {
    let (b, t, s) = (batch as f64, steps as f64, F::BYTES as f64);
    b * (s + 8.0) + b * t * s
}

/// Measures the device's references and every kernel's device phases on one uploaded batch
/// (the same generated batch and parameters as [`run_bench`]). GB/s use the median of the
/// repeats: the device is not shared the way the host's memory is.
pub fn run_device_bench<F: crate::kernels::cuda::CudaFloat>(
    backend: &crate::kernels::cuda::CudaBackend,
    batch: usize,
    steps: usize,
    repeats: usize,
) -> Result<DeviceBenchReport, BatchError> {
    let generated = bench_batch::<F>(batch, steps)?;
    let dev = backend.upload(&generated.batch)?;
    let peak = backend.peak_gbps()?;
    let refs = backend.time_references(&dev, repeats)?;
    let gbps = |bytes: f64, t: Timing| bytes / t.median / 1e9;
    let copy_gbps =
        gbps(refs.copy_bytes, refs.copy).max(gbps(refs.copy_driver_bytes, refs.copy_driver));
    let row = |name: &str, form: &str, t: Timing, bytes: f64| {
        let g = gbps(bytes, t);
        DeviceMeasurement {
            name: name.to_string(),
            form: form.to_string(),
            median_seconds: t.median,
            best_seconds: t.best,
            bytes,
            gbps: g,
            fraction_of_peak: g / peak,
            fraction_of_copy: g / copy_gbps,
        }
    };
    let mut measurements = vec![
        row("copy", "reference", refs.copy, refs.copy_bytes),
        row(
            "copy-driver",
            "reference",
            refs.copy_driver,
            refs.copy_driver_bytes,
        ),
        row("read", "reference", refs.read, refs.read_bytes),
        row(
            "write-driver",
            "reference",
            refs.write_driver,
            refs.write_driver_bytes,
        ),
    ];
    for id in KernelId::ALL {
        let kernel = bench_kernel(&generated, id);
        let timing = backend.time_kernel(&dev, &generated.batch, &kernel, repeats)?;
        let windows = kernel.windows();
        let bytes = |form| device_kernel_bytes(&generated.batch, windows, timing.sums, form);
        let dense = Timing {
            best: timing.rows.best + timing.fill.best,
            median: timing.rows.median + timing.fill.median,
        };
        measurements.push(row(
            id.name(),
            "per-trajectory",
            timing.rows,
            bytes(GradForm::PerTrajectory),
        ));
        measurements.push(row(id.name(), "dense", dense, bytes(GradForm::Dense)));
        measurements.push(row(
            id.name(),
            "fill",
            timing.fill,
            device_fill_bytes::<F>(batch, steps),
        ));
    }
    Ok(DeviceBenchReport {
        device: backend.device_name(),
        batch,
        steps,
        dtype: F::NAME,
        repeats,
        peak_gbps: peak,
        copy_gbps,
        read_gbps: gbps(refs.read_bytes, refs.read),
        measurements,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A batch of small integer-valued log-probabilities (every sum of the tests below exact in
    /// f32 and f64) with its generated windows.
    fn integer_setup<F: Float>(batch: usize, steps: usize) -> BenchSetup<F> {
        let mut setup = BenchSetup::<F>::new(batch, steps).expect("a valid bench batch");
        let g = &mut setup.generated;
        let q: Vec<F> = (0..batch * steps).map(|k| -F::from_usize(k % 7)).collect();
        let p: Vec<F> = (0..batch * steps).map(|k| -F::from_usize(k % 5)).collect();
        g.batch = TrajectoryBatch::from_row_major(
            batch,
            steps,
            q,
            p,
            g.batch.lengths().to_vec(),
            g.batch.log_r().as_slice().to_vec(),
            g.batch.beta(),
        )
        .expect("same shape as the generated batch");
        setup
    }

    fn windowed_references_touch_exactly_the_windows<F: Float>() {
        let (b, t) = (600, 37);
        let setup = integer_setup::<F>(b, t);
        let batch = setup.batch();
        let w = &setup.generated.windows_log_f;
        let (q, p) = (batch.log_q().as_slice(), batch.log_p().as_slice());
        let (mut want, mut whole) = (F::ZERO, F::ZERO);
        for i in 0..b {
            for k in 0..t {
                let x = q[i * t + k] + p[i * t + k];
                whole += x;
                if (w.start()[i]..w.end()[i]).contains(&k) {
                    want += x;
                }
            }
        }
        assert_eq!(parallel_read_windows(batch, w), want);
        // Negative control: the windows are a strict part of the rows, so the whole rows'
        // sum differs.
        assert_ne!(want, whole);
        // Both kinds of stores, into a buffer at every offset from a line boundary (the
        // streamed form's partial lines fall at every place in a row).
        let mut buf = vec![F::NAN; b * t + 16];
        for stores in [Stores::Regular, Stores::NonTemporal] {
            for offset in 0..16 {
                buf.fill(F::NAN);
                let dst = &mut buf[offset..offset + b * t];
                parallel_copy_windows(batch, w, dst, stores);
                for i in 0..b {
                    for k in 0..t {
                        let inside = (w.start()[i]..w.end()[i]).contains(&k);
                        let want = if inside {
                            q[i * t + k] + p[i * t + k]
                        } else {
                            F::ZERO
                        };
                        assert_eq!(
                            dst[i * t + k],
                            want,
                            "{} {stores:?} +{offset}: row {i}, step {k}",
                            F::NAME
                        );
                    }
                }
                // Nothing outside the destination is written.
                assert!(buf[..offset]
                    .iter()
                    .chain(&buf[offset + b * t..])
                    .all(|x| x.to_f64().is_nan()));
            }
        }
    }

    #[test]
    fn the_windowed_references_touch_exactly_the_windows() {
        windowed_references_touch_exactly_the_windows::<f32>();
        windowed_references_touch_exactly_the_windows::<f64>();
    }

    #[test]
    fn every_kernel_row_is_held_to_its_own_floor_timed_beside_it() {
        let report = run_bench::<f64>(700, 23, 3).expect("a small bench run");
        for id in KernelId::ALL {
            for (form, name) in [
                (GradForm::PerTrajectory, "per-trajectory"),
                (GradForm::Dense, "dense"),
            ] {
                let m = report
                    .measurements
                    .iter()
                    .find(|m| m.name == id.name() && m.form == name)
                    .expect("every kernel in both forms");
                // Written out, not computed by `Floor::of`: REINFORCE-KL's dense gradient
                // needs the batch mean of row sums, so it alone cannot overlap reads and writes.
                let want = match (form, id.windowed(), id) {
                    (GradForm::PerTrajectory, false, _) => "read",
                    (GradForm::PerTrajectory, true, _) => "read-win",
                    (GradForm::Dense, _, KernelId::ReinforceKl) => "read-then-write",
                    (GradForm::Dense, false, _) => "copy",
                    (GradForm::Dense, true, _) => "copy-win",
                };
                assert_eq!(m.floor.name(), want, "{} {name}", id.name());
                assert!(m.best_seconds > 0.0 && m.best_seconds <= m.median_seconds);
                assert!(m.floor_gbps.is_finite() && m.floor_gbps > 0.0);
                assert_eq!(m.fraction_of_floor, m.gbps / m.floor_gbps);
                let paired = m.paired_fraction_of_floor.expect("a kernel row is paired");
                assert!(paired.is_finite() && paired > 0.0);
                assert_eq!(m.gbps, m.bytes / m.best_seconds / 1e9);
            }
        }
        // Every floor is reported both ways and as the faster of the two.
        for floor in Floor::ALL {
            let best = |form: &str| {
                report
                    .measurements
                    .iter()
                    .find(|m| m.name == floor.name() && m.form == form)
                    .unwrap_or_else(|| panic!("{floor} {form}"))
                    .best_seconds
            };
            let [a, b] = floor.ways();
            assert_eq!(best("reference"), best(a).min(best(b)), "{floor}");
        }
        // The references' rows are not paired with anything.
        assert!(report
            .measurements
            .iter()
            .filter(|m| m.form == "reference")
            .all(|m| m.paired_fraction_of_floor.is_none()));
        // The JSON names of the floors.
        let json = serde_json::to_string(&report).expect("serialisable");
        for name in [
            "\"read\"",
            "\"copy\"",
            "\"read-win\"",
            "\"copy-win\"",
            "\"read-then-write\"",
        ] {
            assert!(json.contains(&format!("\"floor\":{name}")), "{name}");
        }
    }

    /// One call of `floor` on `setup`'s batch, done its first or `second` way, into a buffer of
    /// NaNs (row `i`'s value for the read-then-write reference: `i % 7 + 1`).
    fn run_one_way<F: Float>(setup: &BenchSetup<F>, floor: Floor, second: bool) -> References<F> {
        let (b, t) = (setup.batch().batch(), setup.batch().steps());
        let mut refs = References {
            dst: vec![F::NAN; 2 * b * t],
            row_values: (0..b).map(|i| F::from_usize(i % 7 + 1)).collect(),
            ..References::new(b, t)
        };
        *refs.second_way(floor) = second;
        refs.run(floor, setup);
        refs
    }

    fn read_then_write_reads_every_input_then_writes_every_row<F: Float>() {
        let (b, t) = (300, 19);
        let setup = integer_setup::<F>(b, t);
        let batch = setup.batch();
        let (q, p) = (batch.log_q().as_slice(), batch.log_p().as_slice());
        // Both ways of the write: ordinary and streaming stores.
        for streaming in [false, true] {
            let refs = run_one_way(&setup, Floor::ReadThenWrite, streaming);
            // The plain read's sum of every input (small integers: exact in any order).
            let want: F = q.iter().zip(p).map(|(&x, &y)| x + y).sum();
            assert_eq!(refs.sink, want, "{}", F::NAME);
            for i in 0..b {
                for k in 0..t {
                    let want = if k < batch.lengths()[i] {
                        F::from_usize(i % 7 + 1)
                    } else {
                        F::ZERO
                    };
                    assert_eq!(refs.dst[i * t + k], want, "{} row {i}, step {k}", F::NAME);
                }
            }
            // Negative control: the second half of the buffer (the copy's) is not written.
            assert!(refs.dst[b * t..].iter().all(|x| x.to_f64().is_nan()));
        }
    }

    #[test]
    fn the_read_then_write_reference_reads_every_input_then_writes_every_row() {
        read_then_write_reads_every_input_then_writes_every_row::<f32>();
        read_then_write_reads_every_input_then_writes_every_row::<f64>();
    }

    fn copy_copies_both_inputs_either_way<F: Float>() {
        // Rows of 37 steps put every row's start at another place in a line.
        let (b, t) = (300, 37);
        let setup = integer_setup::<F>(b, t);
        let batch = setup.batch();
        let (q, p) = (batch.log_q().as_slice(), batch.log_p().as_slice());
        for streaming in [false, true] {
            let refs = run_one_way(&setup, Floor::Copy, streaming);
            assert_eq!(&refs.dst[..b * t], q, "{} streaming: {streaming}", F::NAME);
            assert_eq!(&refs.dst[b * t..], p, "{} streaming: {streaming}", F::NAME);
        }
    }

    #[test]
    fn the_copy_reference_copies_both_inputs_either_way() {
        copy_copies_both_inputs_either_way::<f32>();
        copy_copies_both_inputs_either_way::<f64>();
    }

    #[test]
    fn each_floor_names_its_two_ways_apart_from_the_reference() {
        for floor in Floor::ALL {
            let [a, b] = floor.ways();
            assert!(a != b && a != "reference" && b != "reference", "{floor}");
        }
    }

    #[test]
    fn alternating_timings_are_kept_apart() {
        // Negative control for a swap of the two timings: the first piece of work sleeps,
        // the second does not, so only the first's best can reach the sleep.
        let pause = std::time::Duration::from_millis(3);
        let timed = time_alternating(
            3,
            &mut 0u32,
            |calls| {
                *calls += 1;
                std::thread::sleep(pause);
            },
            |calls| *calls += 1,
        );
        assert!(timed.first.best >= pause.as_secs_f64());
        assert!(timed.second.best < pause.as_secs_f64());
        // One ratio per round, the sleeper's over the other's: far above 1.
        assert_eq!(timed.ratios.len(), 3);
        assert!(timed.ratios.iter().all(|&r| r > 1.0));
    }

    /// The paired median keeps rounds together, so it differs from the ratio of the two
    /// bests when the bests come from different rounds (here the first's best is in round 0
    /// and the second's in round 2): the negative control of a statistic that mixed rounds.
    #[test]
    fn the_paired_median_keeps_each_round_together() {
        // (first, second) seconds per round.
        let rounds = [(1.0, 2.0), (3.0, 2.0), (3.0, 1.0)];
        let timed = Alternated {
            first: Timing::of(rounds.iter().map(|r| r.0).collect()),
            second: Timing::of(rounds.iter().map(|r| r.1).collect()),
            ratios: rounds.iter().map(|r| r.0 / r.1).collect(),
        };
        // Ratios 0.5, 1.5, 3.0: the median is 1.5; the ratio of the bests is 1.0 / 1.0.
        assert_eq!(timed.median_ratio(), 1.5);
        assert_eq!(timed.first.best / timed.second.best, 1.0);
    }

    /// The device's byte count against a brute-force set of the 32-byte sectors touched,
    /// for full rows and for windows, in both float types; the dense form adds exactly the
    /// fill's bytes. Negative control: 64-byte lines (the host's unit) count more on windows.
    #[test]
    fn device_bytes_count_each_touched_sector_once() {
        fn check<F: Float>() {
            let (b, t) = (500, 37);
            let g = bench_batch::<F>(b, t).expect("a valid bench batch");
            let batch = &g.batch;
            for windows in [None, Some(&g.windows_log_f)] {
                let mut sectors = std::collections::HashSet::new();
                for i in 0..b {
                    let (s, e) = match windows {
                        Some(w) => (w.start()[i], w.end()[i]),
                        None => (0, batch.lengths()[i]),
                    };
                    for k in s..e {
                        sectors.insert((i * t + k) * F::BYTES / 32);
                    }
                }
                for sums in [1, 2] {
                    let want = (2 * 32 * sectors.len()) as f64 + (b * (8 + sums * F::BYTES)) as f64;
                    let per = device_kernel_bytes(batch, windows, sums, GradForm::PerTrajectory);
                    assert_eq!(per, want, "{} windows {}", F::NAME, windows.is_some());
                    let dense = device_kernel_bytes(batch, windows, sums, GradForm::Dense);
                    let fill = (b * (F::BYTES + 8) + b * t * F::BYTES) as f64;
                    assert_eq!(dense, want + fill);
                }
                if windows.is_some() {
                    let lines = input_lines_bytes_at(batch, windows, 64, 0, 0);
                    assert!(lines > (2 * 32 * sectors.len()) as f64, "{lines}");
                }
            }
        }
        check::<f32>();
        check::<f64>();
    }
}

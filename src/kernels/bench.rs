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
//! second buffer (`4·B·T·s` bytes: read + write). A per-trajectory kernel only reads, so its
//! floor is the read reference; a dense kernel reads and writes, so its floor is the copy
//! reference. "Of floor" = the kernel's GB/s over its floor's GB/s from the same run.
//!
//! The windowed kernels read only their windows' lines, at a different offset in every row;
//! the hardware fetches about the whole row anyway, so the contiguous floors' GB/s over the
//! windows' bytes is out of reach. They are held to the same references over the same lines:
//! the **windowed read reference** sums every input element inside the windows (the faster of
//! a plain loop, [`parallel_read_windows`], and the row pass over the windows,
//! [`parallel_read_rows_in`]), the **windowed copy reference** writes each row's `q + p`
//! inside its window and zeros around it ([`parallel_copy_windows`]: the windows read, whole
//! rows written). Their fractions of the contiguous floors are reported beside.
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

/// One measured row.
#[derive(Debug, Clone, Serialize)]
pub struct Measurement {
    /// Kernel name, or `copy` / `read` for the references, or a phase measured alone.
    pub name: String,
    /// `dense`, `per-trajectory`, `reference`, or the variant of a phase.
    pub form: String,
    /// Median seconds over the repeats.
    pub median_seconds: f64,
    /// Bytes moved per run (see the module docs).
    pub bytes: f64,
    /// `bytes / median_seconds / 1e9`.
    pub gbps: f64,
    /// The reference this row is held to: `read` or `copy`, or for the windowed kernels
    /// `read-win` or `copy-win` (the same references over the windows' lines).
    pub floor: &'static str,
    /// This row's GB/s over its floor's GB/s from the same run.
    pub fraction_of_floor: f64,
    /// This row's GB/s over the read reference's GB/s.
    pub fraction_of_read: f64,
    /// This row's GB/s over the copy reference's GB/s.
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
    /// Repeats per measurement (median taken).
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

/// Median wall-clock seconds of `repeats` calls (after one warm-up call).
pub fn median_seconds(repeats: usize, mut f: impl FnMut()) -> f64 {
    f();
    let mut t: Vec<f64> = (0..repeats.max(1))
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed().as_secs_f64()
        })
        .collect();
    t.sort_by(|a, b| a.total_cmp(b));
    t[t.len() / 2]
}

/// The copy reference: `dst ← src`, split across the rayon threads like the kernels.
pub fn parallel_copy<F: Float>(src: &[F], dst: &mut [F]) {
    dst.par_chunks_mut(1 << 16)
        .zip(src.par_chunks(1 << 16))
        .for_each(|(d, s)| d.copy_from_slice(s));
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

/// The read reference done the kernels' way: median seconds of the row pass summing
/// `log q + log p` over every row (chunks of rows, software prefetch, one sum written per row).
pub fn parallel_read_rows<F: Float>(
    batch: &TrajectoryBatch<F>,
    repeats: usize,
) -> Result<f64, BatchError> {
    parallel_read_rows_in(batch, None, repeats)
}

/// [`parallel_read_rows`] over the windows only where `windows` is given.
pub fn parallel_read_rows_in<F: Float>(
    batch: &TrajectoryBatch<F>,
    windows: Option<&Windows<F>>,
    repeats: usize,
) -> Result<f64, BatchError> {
    let both = Term {
        a: F::ONE,
        b: F::ONE,
    };
    cpu_row_sums_at(batch, windows, both, None, Level::Dispatched)?;
    Ok(median_seconds(repeats, || {
        // Checked just above: the same inputs cannot fail here.
        let _ = std::hint::black_box(cpu_row_sums_at(
            batch,
            windows,
            both,
            None,
            Level::Dispatched,
        ));
    }))
}

/// Rows per parallel task in the windowed references (as the kernels' row pass).
const REFERENCE_ROWS: usize = 256;

/// The windowed read reference's loop: the sum of every input element inside the windows of
/// rows `first..first + len` (the lines the windowed kernels read, nothing else).
struct WindowReadTask<'a, F> {
    q: &'a [F],
    p: &'a [F],
    t: usize,
    start: &'a [usize],
    end: &'a [usize],
}

impl<F: Float> simd::Task for WindowReadTask<'_, F> {
    type Output = F;
    #[inline(always)]
    fn run(self) -> F {
        let mut total = F::ZERO;
        for (i, (&s, &e)) in self.start.iter().zip(self.end).enumerate() {
            let (a, b) = (i * self.t + s, i * self.t + e);
            total += super::sum::lanes_sum(&self.q[a..b], &self.p[a..b], |x, y| x + y);
        }
        total
    }
}

/// The windowed read reference: [`parallel_read`] over the windows only, in chunks of rows.
pub fn parallel_read_windows<F: Float>(batch: &TrajectoryBatch<F>, windows: &Windows<F>) -> F {
    let t = batch.steps();
    let (q, p) = (batch.log_q().as_slice(), batch.log_p().as_slice());
    let rows = t * REFERENCE_ROWS;
    q.par_chunks(rows.max(1))
        .zip(p.par_chunks(rows.max(1)))
        .enumerate()
        .map(|(c, (q, p))| {
            let first = c * REFERENCE_ROWS;
            let last = first + q.len() / t.max(1);
            simd::dispatch_for(
                F::BYTES,
                WindowReadTask {
                    q,
                    p,
                    t,
                    start: &windows.start()[first..last],
                    end: &windows.end()[first..last],
                },
            )
        })
        .sum()
}

/// The windowed copy reference's loop: each row of `dst` gets `q + p` inside its window and
/// zeros around it (the windowed dense kernels' traffic: the windows read, whole rows written).
struct WindowCopyTask<'a, F> {
    q: &'a [F],
    p: &'a [F],
    dst: &'a mut [F],
    t: usize,
    start: &'a [usize],
    end: &'a [usize],
}

impl<F: Float> simd::Task for WindowCopyTask<'_, F> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        for (i, row) in self.dst.chunks_exact_mut(self.t).enumerate() {
            let (s, e) = (self.start[i], self.end[i]);
            let (q, p) = (
                &self.q[i * self.t + s..i * self.t + e],
                &self.p[i * self.t + s..],
            );
            row[..s].fill(F::ZERO);
            for ((d, &x), &y) in row[s..e].iter_mut().zip(q).zip(p) {
                *d = x + y;
            }
            row[e..].fill(F::ZERO);
        }
    }
}

/// The windowed copy reference: [`WindowCopyTask`] over every row, in chunks of rows.
pub fn parallel_copy_windows<F: Float>(
    batch: &TrajectoryBatch<F>,
    windows: &Windows<F>,
    dst: &mut [F],
) {
    let t = batch.steps();
    if t == 0 {
        return;
    }
    let (q, p) = (batch.log_q().as_slice(), batch.log_p().as_slice());
    let rows = t * REFERENCE_ROWS;
    dst.par_chunks_mut(rows)
        .zip(q.par_chunks(rows).zip(p.par_chunks(rows)))
        .enumerate()
        .for_each(|(c, (dst, (q, p)))| {
            let first = c * REFERENCE_ROWS;
            let last = first + dst.len() / t;
            simd::dispatch_for(
                F::BYTES,
                WindowCopyTask {
                    q,
                    p,
                    dst,
                    t,
                    start: &windows.start()[first..last],
                    end: &windows.end()[first..last],
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
            let first = (base + (i * t + s) * F::BYTES) / 64;
            let end = (base + (i * t + e - 1) * F::BYTES) / 64;
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
    let q = lines(batch.log_q().as_slice().as_ptr() as usize);
    let p = lines(batch.log_p().as_slice().as_ptr() as usize);
    ((q + p) * 64) as f64
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

/// Measures the references, every kernel in both gradient forms, and two phases alone
/// (phase 1 of RTB at the baseline and the dispatched instruction set; the dense write with
/// ordinary and streaming stores).
pub fn run_bench<F: Float>(
    batch: usize,
    steps: usize,
    repeats: usize,
) -> Result<BenchReport, BatchError> {
    let mut setup = BenchSetup::<F>::new(batch, steps)?;
    let n = batch * steps;
    let (src_q, src_p) = (
        setup.batch().log_q().as_slice(),
        setup.batch().log_p().as_slice(),
    );
    let mut dst = vec![F::ZERO; 2 * n];
    let copy_s = median_seconds(repeats, || {
        let (d0, d1) = dst.split_at_mut(n);
        parallel_copy(src_q, d0);
        parallel_copy(src_p, d1);
    });
    drop(dst);
    let in_bytes = (2 * n * F::BYTES) as f64;
    let copy_gbps = 2.0 * in_bytes / copy_s / 1e9;
    let mut sink = F::ZERO;
    let read_plain_s = median_seconds(repeats, || {
        sink += parallel_read(src_q, src_p);
    });
    std::hint::black_box(sink);
    // The same read as the kernels' row pass (chunks of rows, software prefetch ahead): on
    // the DRAM-sized batch it ran faster than the plain sum, so the floor is the faster of the
    // two (a kernel must not look faster than its floor because the floor read badly).
    let read_rows_s = parallel_read_rows(setup.batch(), repeats)?;
    let read_s = read_plain_s.min(read_rows_s);
    let read_gbps = in_bytes / read_s / 1e9;
    // The windowed kernels' floors: the same references over the windows' lines only (both
    // windowed kernels use the same windows). Reading a window at a random offset in a row of
    // 6–13 lines costs about what the whole row costs (docs/performance.md, session 7), so
    // the contiguous floors' GB/s over the windows' bytes cannot be reached by any code;
    // these can. Both kinds of fraction are reported.
    let w = &setup.generated.windows_log_f;
    let w_bytes = input_lines_bytes(setup.batch(), Some(w));
    let read_win_plain_s = median_seconds(repeats, || {
        sink += parallel_read_windows(setup.batch(), w);
    });
    std::hint::black_box(sink);
    let read_win_rows_s = parallel_read_rows_in(setup.batch(), Some(w), repeats)?;
    let read_win_s = read_win_plain_s.min(read_win_rows_s);
    let read_win_gbps = w_bytes / read_win_s / 1e9;
    let mut dst = vec![F::ZERO; n];
    let copy_win_s = median_seconds(repeats, || {
        parallel_copy_windows(setup.batch(), w, &mut dst);
    });
    drop(dst);
    let copy_win_bytes = w_bytes + (n * F::BYTES) as f64;
    let copy_win_gbps = copy_win_bytes / copy_win_s / 1e9;
    let row = |name: &str, form: &str, floor: &'static str, secs: f64, bytes: f64| {
        let gbps = bytes / secs / 1e9;
        let floor_gbps = match floor {
            "read" => read_gbps,
            "read-win" => read_win_gbps,
            "copy-win" => copy_win_gbps,
            _ => copy_gbps,
        };
        Measurement {
            name: name.into(),
            form: form.into(),
            median_seconds: secs,
            bytes,
            gbps,
            floor,
            fraction_of_floor: gbps / floor_gbps,
            fraction_of_read: gbps / read_gbps,
            fraction_of_copy: gbps / copy_gbps,
        }
    };
    let mut rows = vec![
        row("copy", "reference", "copy", copy_s, 2.0 * in_bytes),
        row("read", "reference", "read", read_s, in_bytes),
        row("read", "plain-sum", "read", read_plain_s, in_bytes),
        row("read", "rows-prefetch", "read", read_rows_s, in_bytes),
        row("read-win", "reference", "read-win", read_win_s, w_bytes),
        row(
            "read-win",
            "plain-sum",
            "read-win",
            read_win_plain_s,
            w_bytes,
        ),
        row(
            "read-win",
            "rows-prefetch",
            "read-win",
            read_win_rows_s,
            w_bytes,
        ),
        row(
            "copy-win",
            "reference",
            "copy-win",
            copy_win_s,
            copy_win_bytes,
        ),
    ];
    for id in KernelId::ALL {
        for form in [GradForm::PerTrajectory, GradForm::Dense] {
            let mut result = Ok(());
            let secs = median_seconds(repeats, || {
                if let Err(e) = setup.run(id, form) {
                    result = Err(e);
                }
            });
            result?;
            let (form_name, floor) = match (form, id.windowed()) {
                (GradForm::Dense, false) => ("dense", "copy"),
                (GradForm::Dense, true) => ("dense", "copy-win"),
                (GradForm::PerTrajectory, false) => ("per-trajectory", "read"),
                (GradForm::PerTrajectory, true) => ("per-trajectory", "read-win"),
            };
            rows.push(row(
                id.name(),
                form_name,
                floor,
                secs,
                setup.bytes(id, form),
            ));
        }
    }
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
        let secs = median_seconds(repeats, || {
            // Checked just above: the same inputs cannot fail here.
            let _ = std::hint::black_box(cpu_row_sums_at(setup.batch(), None, diff, None, level));
        });
        rows.push(row("phase1-rtb", name, "read", secs, p1_bytes));
    }
    // Phase 1 of SubTB alone (the same sums over the windows), at three prefetch distances.
    let w = &setup.generated.windows_log_f;
    for ahead in [0, 4, 16] {
        cpu_row_sums_tuned(setup.batch(), Some(w), diff, None, Level::Dispatched, ahead)?;
        let secs = median_seconds(repeats, || {
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
        rows.push(row("phase1-subtb", &form, "read", secs, w_bytes));
    }
    // The dense write alone, with each kind of store.
    let g: Vec<F> = (0..batch).map(|i| F::from_usize(i % 7)).collect();
    for (stores, name) in [
        (Stores::Regular, "regular-stores"),
        (Stores::NonTemporal, "streaming-stores"),
    ] {
        // Full rows, then SubTB's windows (zeros around each window).
        for (windows, what) in [
            (None, "dense-write"),
            (Some(&setup.generated.windows_log_f), "dense-write-win"),
        ] {
            let secs = median_seconds(repeats, || {
                fill_dense_with(
                    &setup.generated.batch,
                    windows,
                    &g,
                    &mut setup.dense,
                    stores,
                );
            });
            rows.push(row(what, name, "copy", secs, (n * F::BYTES) as f64));
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
        read_windows_gbps: read_win_gbps,
        copy_windows_gbps: copy_win_gbps,
        measurements: rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A batch of integer-valued log-probabilities (every sum exact in f64) with its generated windows.
    fn integer_setup(batch: usize, steps: usize) -> BenchSetup<f64> {
        let mut setup = BenchSetup::<f64>::new(batch, steps).expect("a valid bench batch");
        let g = &mut setup.generated;
        let q: Vec<f64> = (0..batch * steps).map(|k| -((k % 7) as f64)).collect();
        let p: Vec<f64> = (0..batch * steps).map(|k| -((k % 5) as f64)).collect();
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

    #[test]
    fn the_windowed_references_touch_exactly_the_windows() {
        let (b, t) = (600, 37);
        let setup = integer_setup(b, t);
        let batch = setup.batch();
        let w = &setup.generated.windows_log_f;
        let (q, p) = (batch.log_q().as_slice(), batch.log_p().as_slice());
        let (mut want, mut whole) = (0.0, 0.0);
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
        let mut dst = vec![f64::NAN; b * t];
        parallel_copy_windows(batch, w, &mut dst);
        for i in 0..b {
            for k in 0..t {
                let inside = (w.start()[i]..w.end()[i]).contains(&k);
                let want = if inside {
                    q[i * t + k] + p[i * t + k]
                } else {
                    0.0
                };
                assert_eq!(dst[i * t + k], want, "row {i}, step {k}");
            }
        }
    }
}

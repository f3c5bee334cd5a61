//! Throughput of the fused kernels beside memory-bandwidth references, measured in the same
//! run (used by `rtb-trustpcl bench`; `benches/kernels.rs` measures the same with criterion).
//!
//! Bytes moved: a kernel reads `log q` and `log p` (`2·B·T·s` bytes, `s = size_of::<F>()`),
//! plus `O(B)` vectors (`log r`, the residual and `g` written: `3·B·s`; windows add
//! `2·B·(8 + s)`); the dense form also writes the `B·T·s` gradient. The copy reference copies
//! the `2·B·T·s` input bytes into a second buffer (it moves `4·B·T·s` bytes: read + write), with
//! the same threads; the read reference only sums them. GB/s = bytes moved / median seconds.
use std::time::Instant;

use nalgebra::DMatrix;
use rayon::prelude::*;
use serde::Serialize;

use super::batch::TrajectoryBatch;
use super::error::BatchError;
use super::float::Float;
use super::fused::{evaluate_into, GradForm, Kernel, KernelId};
use super::generate::{generate, GenConfig, Generated};

/// One measured row.
#[derive(Debug, Clone, Serialize)]
pub struct Measurement {
    /// Kernel name, or `copy` / `read` for the references.
    pub name: String,
    /// `dense`, `per-trajectory`, or `reference`.
    pub form: String,
    /// Median seconds over the repeats.
    pub median_seconds: f64,
    /// Bytes moved per run.
    pub bytes: f64,
    /// `bytes / median_seconds / 1e9`.
    pub gbps: f64,
    /// This row's GB/s over the copy reference's GB/s from the same run.
    pub fraction_of_copy: f64,
}

/// A whole bench run (the `--json` schema of `bench`).
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
    /// The copy reference's GB/s.
    pub copy_gbps: f64,
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

/// The read reference: a sum of every input element (prevents the reads from being elided).
pub fn parallel_read<F: Float>(a: &[F], b: &[F]) -> F {
    a.par_chunks(1 << 16)
        .zip(b.par_chunks(1 << 16))
        .map(|(x, y)| super::sum::lanes_sum(x, y, |p, q| p + q))
        .sum()
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

/// Bytes a kernel moves (see the module docs).
pub fn kernel_bytes<F: Float>(batch: &TrajectoryBatch<F>, id: KernelId, form: GradForm) -> f64 {
    let (b, t, s) = (batch.batch() as f64, batch.steps() as f64, F::BYTES as f64);
    let mut bytes = 2.0 * b * t * s + 3.0 * b * s;
    if id.windowed() {
        bytes += 2.0 * b * (8.0 + s);
    }
    if form == GradForm::Dense {
        bytes += b * t * s;
    }
    bytes
}

/// Measures the references and every kernel in both gradient forms.
pub fn run_bench<F: Float>(
    batch: usize,
    steps: usize,
    repeats: usize,
) -> Result<BenchReport, BatchError> {
    let n_in = crate::input::product(
        "bench",
        &[("2", 2), ("B", batch as u64), ("T", steps as u64)],
    )? as usize;
    let g = bench_batch::<F>(batch, steps)?;
    let b = &g.batch;
    let src = b.log_q().as_slice();
    let mut dst = vec![F::ZERO; n_in];
    let copy_s = median_seconds(repeats, || {
        let (d0, d1) = dst.split_at_mut(batch * steps);
        parallel_copy(src, d0);
        parallel_copy(b.log_p().as_slice(), d1);
    });
    drop(dst);
    let in_bytes = (n_in * F::BYTES) as f64;
    let copy_gbps = 2.0 * in_bytes / copy_s / 1e9;
    let mut sink = F::ZERO;
    let read_s = median_seconds(repeats, || {
        sink += parallel_read(src, b.log_p().as_slice());
    });
    std::hint::black_box(sink);
    let mut rows = vec![
        Measurement {
            name: "copy".into(),
            form: "reference".into(),
            median_seconds: copy_s,
            bytes: 2.0 * in_bytes,
            gbps: copy_gbps,
            fraction_of_copy: 1.0,
        },
        Measurement {
            name: "read".into(),
            form: "reference".into(),
            median_seconds: read_s,
            bytes: in_bytes,
            gbps: in_bytes / read_s / 1e9,
            fraction_of_copy: in_bytes / read_s / 1e9 / copy_gbps,
        },
    ];
    let mut dense = DMatrix::from_element(steps, batch, F::ZERO);
    for id in KernelId::ALL {
        let kernel = match id {
            KernelId::Rtb => Kernel::Rtb { log_z: g.log_z },
            KernelId::Tpcl => Kernel::Tpcl { v0: g.v0 },
            KernelId::TpclWindowed => Kernel::TpclWindowed {
                windows: &g.windows_v,
            },
            KernelId::SubTb => Kernel::SubTb {
                windows: &g.windows_log_f,
            },
            KernelId::TpclSurrogate => Kernel::TpclSurrogate { v0: g.v0 },
            KernelId::ReinforceKl => Kernel::ReinforceKl,
            KernelId::Flawed => Kernel::Flawed {
                kappa: F::from_f64(0.5),
            },
        };
        for form in [GradForm::Dense, GradForm::PerTrajectory] {
            let mut result = Ok(());
            let secs = median_seconds(repeats, || {
                let buf = (form == GradForm::Dense).then_some(&mut dense);
                if let Err(e) = evaluate_into(b, &kernel, None, buf) {
                    result = Err(e);
                }
            });
            result?;
            let bytes = kernel_bytes(b, id, form);
            let gbps = bytes / secs / 1e9;
            rows.push(Measurement {
                name: id.name().into(),
                form: match form {
                    GradForm::Dense => "dense".into(),
                    GradForm::PerTrajectory => "per-trajectory".into(),
                },
                median_seconds: secs,
                bytes,
                gbps,
                fraction_of_copy: gbps / copy_gbps,
            });
        }
    }
    Ok(BenchReport {
        batch,
        steps,
        dtype: F::NAME,
        repeats,
        threads: rayon::current_num_threads(),
        copy_gbps,
        measurements: rows,
    })
}

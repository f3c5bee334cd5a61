//! Reproducible random batches with realistic log-probabilities, varied lengths and padding.
//!
//! Rows are generated in chunks of [`ROWS_PER_CHUNK`], chunk `c` from the ChaCha8 stream `c` of
//! the seed, so a batch depends only on `(seed, B, T, β)`, never on the thread count.
use nalgebra::{DMatrix, DVector};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use super::batch::{TrajectoryBatch, Windows};
use super::error::BatchError;
use super::float::Float;

/// Rows per generator chunk (and per progress tick).
pub const ROWS_PER_CHUNK: usize = 4096;

/// What to generate.
#[derive(Debug, Clone, Copy)]
pub struct GenConfig {
    /// `B`.
    pub batch: usize,
    /// `T`.
    pub steps: usize,
    /// Seed.
    pub seed: u64,
    /// β (rounded once to the float type).
    pub beta: f64,
    /// Every trajectory has length `T` (no padding, no empty rows): for benchmarks, where the
    /// bytes a kernel must read are then exactly `2·B·T·size_of::<F>()`.
    pub full_lengths: bool,
}

/// A generated batch and the learned parameters that go with it.
#[derive(Debug, Clone)]
pub struct Generated<F: Float> {
    /// The trajectories (padding holds NaN, which no kernel may read).
    pub batch: TrajectoryBatch<F>,
    /// `log Z`.
    pub log_z: F,
    /// `V(s0) = log Z / β`, rounded once.
    pub v0: F,
    /// One window per trajectory with `log F` at its boundaries.
    pub windows_log_f: Windows<F>,
    /// The same windows with `V = log F / β` (each rounded once).
    pub windows_v: Windows<F>,
}

struct Row {
    len: usize,
    log_r: f64,
    start: usize,
    end: usize,
    f_start: f64,
    f_end: f64,
}

/// A log-probability as a policy would produce it: 0 for a state with one child (10%), else
/// the log of a uniform probability in `[e^-12, 1)`.
fn log_prob(rng: &mut ChaCha8Rng) -> f64 {
    // One 53-bit uniform draw decides both (cheap: this runs B·T times).
    let x = (rng.gen::<u64>() >> 11) as f64 * (1.0 / (1u64 << 53) as f64);
    if x < 0.1 {
        0.0
    } else {
        let lo = 6.144_212_353_328_21e-6; // e^-12
        (lo + (x - 0.1) / 0.9 * (1.0 - lo)).ln().min(0.0)
    }
}

/// Generates a batch. `progress`, if given, advances by one per chunk of rows.
pub fn generate<F: Float>(
    cfg: &GenConfig,
    progress: Option<&crate::progress::Progress>,
) -> Result<Generated<F>, BatchError> {
    let (b, t) = (cfg.batch, cfg.steps);
    // Every product checked before anything is allocated (callers plan against the memory
    // cap; this refuses what does not even fit in the address space).
    let n = crate::input::product(
        "a generated batch",
        &[
            ("B", b as u64),
            ("T", t as u64),
            ("bytes per entry", 2 * F::BYTES as u64),
        ],
    )? / (2 * F::BYTES as u64);
    let n = usize::try_from(n).map_err(|_| crate::input::LimitError::Overflow {
        what: "a generated batch".into(),
        expression: format!("B × T = {b} × {t} entries"),
    })?;
    let mut q = vec![F::NAN; n];
    let mut p = vec![F::NAN; n];
    let mut rows: Vec<Row> = Vec::with_capacity(b);
    let chunk_elems = t.saturating_mul(ROWS_PER_CHUNK).max(1);
    let per_chunk: Vec<Vec<Row>> = q
        .par_chunks_mut(chunk_elems)
        .zip(p.par_chunks_mut(chunk_elems))
        .enumerate()
        .map(|(c, (qc, pc))| {
            let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
            rng.set_stream(c as u64 + 1);
            let n_rows = qc.len().checked_div(t).unwrap_or(0);
            let mut out = Vec::with_capacity(n_rows);
            for k in 0..n_rows {
                let len = if cfg.full_lengths {
                    t
                } else if t == 0 || rng.gen_bool(0.02) {
                    0
                } else if rng.gen_bool(0.3) {
                    t
                } else {
                    rng.gen_range(1..=t)
                };
                for s in 0..len {
                    qc[k * t + s] = F::from_f64(log_prob(&mut rng));
                    pc[k * t + s] = F::from_f64(log_prob(&mut rng));
                }
                let (start, end) = if len == 0 {
                    (0, 0)
                } else {
                    let start = rng.gen_range(0..len);
                    let end = if rng.gen_bool(0.3) {
                        len
                    } else {
                        rng.gen_range(start + 1..=len)
                    };
                    (start, end)
                };
                out.push(Row {
                    len,
                    log_r: rng.gen_range(-5.0..3.0),
                    start,
                    end,
                    f_start: rng.gen_range(-3.0..3.0),
                    f_end: rng.gen_range(-3.0..3.0),
                });
            }
            if let Some(pb) = progress {
                pb.inc(1);
            }
            out
        })
        .collect();
    if t == 0 {
        // No step slots: every row is empty.
        rows.extend((0..b).map(|_| Row {
            len: 0,
            log_r: 0.0,
            start: 0,
            end: 0,
            f_start: 0.0,
            f_end: 0.0,
        }));
    }
    rows.extend(per_chunk.into_iter().flatten());
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let log_z = F::from_f64(rng.gen_range(-3.0..3.0));
    let beta = F::from_f64(cfg.beta);
    let batch = TrajectoryBatch::new(
        DMatrix::from_vec(t, b, q),
        DMatrix::from_vec(t, b, p),
        rows.iter().map(|r| r.len).collect(),
        DVector::from_iterator(b, rows.iter().map(|r| F::from_f64(r.log_r))),
        beta,
    )?;
    let fs = DVector::from_iterator(b, rows.iter().map(|r| F::from_f64(r.f_start)));
    let fe = DVector::from_iterator(b, rows.iter().map(|r| F::from_f64(r.f_end)));
    let windows_log_f = Windows::new(
        &batch,
        rows.iter().map(|r| r.start).collect(),
        rows.iter().map(|r| r.end).collect(),
        fs.clone(),
        fe.clone(),
    )?;
    let windows_v =
        windows_log_f.with_values(&batch, fs.map(|x| x / beta), fe.map(|x| x / beta))?;
    Ok(Generated {
        batch,
        log_z,
        v0: log_z / beta,
        windows_log_f,
        windows_v,
    })
}

/// Number of progress ticks [`generate`] makes for a configuration.
pub fn chunks(cfg: &GenConfig) -> u64 {
    if cfg.steps == 0 {
        0
    } else {
        cfg.batch.div_ceil(ROWS_PER_CHUNK) as u64
    }
}

//! `export-batch`: writes a reproducible batch (per-step `log q`, `log p`, lengths, `log r`, β,
//! `log Z`) as `.npz` or JSON, for a third-party implementation to compute its losses on and
//! `classify` to name its convention (docs/classify.md).
use std::path::PathBuf;

use clap::Args;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::conventions::classify::ExportedBatch;
use crate::conventions::npz;

/// Arguments of `export-batch`.
#[derive(Debug, Args)]
pub struct ExportBatchArgs {
    /// Output file: `.npz` (NumPy) or anything else for JSON.
    #[arg(long)]
    pub out: PathBuf,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Number of trajectories `B`.
    #[arg(long, default_value_t = 64)]
    pub batch: usize,
    /// Step slots `T` (lengths vary in `1..=T`; padding is 0).
    #[arg(long, default_value_t = 12)]
    pub steps: usize,
    /// β (≠ 1, so that β placement and α powers are distinguishable).
    #[arg(long, default_value_t = 1.5)]
    pub beta: f64,
    /// `log Z`.
    #[arg(long, default_value_t = 0.7)]
    pub log_z: f64,
}

/// The batch `export-batch` writes: lengths uniform in `1..=T`, log-probabilities `ln u`,
/// `u` uniform in `[0.05, 1)`, `log r` uniform in `[−3, 2)`.
pub fn make_batch(args: &ExportBatchArgs) -> ExportedBatch {
    let (b, t) = (args.batch, args.steps);
    let mut rng = ChaCha8Rng::seed_from_u64(args.seed);
    let mut log_q = vec![0.0; b * t];
    let mut log_p = vec![0.0; b * t];
    let mut lengths = vec![0; b];
    let mut log_r = vec![0.0; b];
    for i in 0..b {
        lengths[i] = rng.gen_range(1..=t.max(1));
        for k in 0..lengths[i] {
            log_q[i * t + k] = rng.gen_range(0.05f64..1.0).ln();
            log_p[i * t + k] = rng.gen_range(0.05f64..1.0).ln();
        }
        log_r[i] = rng.gen_range(-3.0..2.0);
    }
    ExportedBatch {
        batch: b,
        steps: t,
        log_q,
        log_p,
        lengths,
        log_r,
        beta: args.beta,
        log_z: args.log_z,
    }
}

/// Runs `export-batch`; returns the exit code.
pub fn run(args: &ExportBatchArgs) -> u8 {
    let batch = make_batch(args);
    if let Err(e) = batch.validate() {
        eprintln!("export-batch: {e}");
        return super::EXIT_BAD_INPUT;
    }
    match npz::write(&args.out, &batch, None) {
        Ok(()) => {
            eprintln!(
                "export-batch: wrote B = {}, T = {}, β = {}, log Z = {} to {}",
                batch.batch,
                batch.steps,
                batch.beta,
                batch.log_z,
                args.out.display()
            );
            super::EXIT_HOLDS
        }
        Err(e) => {
            eprintln!("export-batch: {e}");
            super::EXIT_BAD_INPUT
        }
    }
}

//! `export-batch`: writes a reproducible batch (per-step `log q`, `log p`, lengths, `log r`, β,
//! `log Z`) as `.npz` or JSON, for a third-party implementation to compute its losses on and
//! `classify` to name its convention (docs/classify.md).
use std::path::PathBuf;

use clap::Args;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::conventions::classify::ExportedBatch;
use crate::conventions::npz;
use crate::input::{in_range, product, LimitError, Plan};

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

/// Checks the arguments (before the batch is generated) and plans the run: per `[B, T]`
/// entry, `log q` and `log p` (f64) and their serialised copies: 40 bytes in `.npz`, 200 in
/// JSON (lists of lists, then text). The batch must stay under what `classify` reads
/// ([`npz::MAX_BATCH_DATA_BYTES`]; for JSON [`npz::MAX_JSON_BYTES`], at most 48 bytes of
/// text an entry).
pub fn check(args: &ExportBatchArgs) -> Result<Plan, LimitError> {
    in_range(
        "--batch",
        args.batch as u64,
        1,
        u64::MAX,
        "at least one trajectory",
    )?;
    in_range(
        "--steps",
        args.steps as u64,
        1,
        u64::MAX,
        "at least one step slot",
    )?;
    if !(args.beta.is_finite() && args.beta > 0.0) {
        return Err(LimitError::OutOfRange {
            arg: "--beta".into(),
            value: args.beta.to_string(),
            reason: "must be finite and positive".into(),
        });
    }
    if !args.log_z.is_finite() {
        return Err(LimitError::OutOfRange {
            arg: "--log-z".into(),
            value: args.log_z.to_string(),
            reason: "must be finite".into(),
        });
    }
    let entries = product(
        "the size of the run",
        &[
            ("--batch", args.batch as u64),
            ("--steps", args.steps as u64),
        ],
    )?;
    // `classify` reads at most npz::MAX_BATCH_DATA_BYTES of arrays: log q, log p and the
    // user's grad_log_q, 8 bytes an entry each.
    let data = product(
        "the size of the batch",
        &[("B × T", entries), ("bytes", 24)],
    )?;
    if data > npz::MAX_BATCH_DATA_BYTES {
        return Err(LimitError::OutOfRange {
            arg: "--batch × --steps".into(),
            value: entries.to_string(),
            reason: format!(
                "`classify` reads at most {} of arrays (log q, log p and a gradient at 8 bytes an entry each): at most {} entries",
                crate::input::human_bytes(npz::MAX_BATCH_DATA_BYTES),
                npz::MAX_BATCH_DATA_BYTES / 24
            ),
        });
    }
    let json = args.out.extension().and_then(|e| e.to_str()) != Some("npz");
    if json {
        let text = product(
            "the size of the JSON file",
            &[("B × T", entries), ("bytes of text", 48)],
        )?;
        if text > npz::MAX_JSON_BYTES {
            return Err(LimitError::OutOfRange {
                arg: "--batch × --steps".into(),
                value: entries.to_string(),
                reason: format!(
                    "a JSON batch this large (up to {text} bytes) is over the {} bytes `classify` reads: write .npz",
                    npz::MAX_JSON_BYTES
                ),
            });
        }
    }
    let mut plan = Plan::new(&format!(
        "export-batch --batch {} --steps {}",
        args.batch, args.steps
    ));
    plan.add("[B, T] entries", entries, if json { 200 } else { 40 })?;
    plan.add("[B] rows", args.batch as u64, 64)?;
    Ok(plan)
}

/// Runs `export-batch`; returns the exit code.
pub fn run(args: &ExportBatchArgs) -> u8 {
    if let Err(e) = check(args).and_then(|plan| plan.check_and_announce("lower --batch or --steps"))
    {
        eprintln!("export-batch: {e}");
        return super::EXIT_BAD_INPUT;
    }
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

//! `gradcheck`: at-scale agreement of the fused kernels (C1–C4 in floats, f32 vs f64), each
//! check with a tolerance from a derived floating-point error bound (`docs/error-bounds.md`).
//! A thin wrapper over [`crate::agreement::gradcheck::run_checks`].
//!
//! With `--spec FILE` it runs the Monte Carlo checks instead
//! ([`crate::agreement::montecarlo::run_mc`]): sample-mean logit gradients from `--samples N`
//! trajectories against the exact expectations.
use std::path::PathBuf;

use clap::Args;

use crate::agreement::gradcheck::{run_checks, Device, Dtype, GradcheckConfig};
use crate::agreement::montecarlo::{run_mc, McConfig};
use crate::input::{in_range, product, LimitError, Plan};
use crate::mutant::Mutant;

/// Arguments of `gradcheck`.
#[derive(Debug, Args)]
pub struct GradcheckArgs {
    /// Number of trajectories `B`.
    #[arg(long, default_value_t = 4096)]
    pub batch: usize,
    /// Step slots per trajectory `T` (lengths vary in `0..=T`; the rest is padding).
    #[arg(long, default_value_t = 64)]
    pub steps: usize,
    /// Float type of the main checks (the f32-vs-f64 checks run either way).
    #[arg(long, value_enum, default_value = "f32")]
    pub dtype: Dtype,
    /// Inverse temperature β > 0 (β ≠ 1 so that α and α² differ).
    #[arg(long, default_value_t = 1.5)]
    pub beta: f64,
    /// Seed of the random batch.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Where the kernels run.
    #[arg(long, value_enum, default_value = "cpu")]
    pub device: Device,
    /// Swap in a deliberately wrong variant; the affected checks must fail.
    #[arg(long, value_enum)]
    pub mutant: Option<Mutant>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Also check the f64 kernels against the exact engine on trajectories sampled from these
    /// spec files or directories (repeatable; default: `spec/` when it exists).
    #[arg(long = "exact-spec", value_name = "PATH")]
    pub exact_spec: Vec<PathBuf>,
    /// Trajectories sampled per environment for the exact-engine checks.
    #[arg(long, default_value_t = 256)]
    pub exact_samples: usize,
    /// Skip the exact-engine checks.
    #[arg(long, conflicts_with = "exact_spec")]
    pub no_exact: bool,
    /// Monte Carlo mode: sample from this spec's q and compare the sample-mean logit gradients
    /// with the exact expectations (the batch options are then unused).
    #[arg(long, value_name = "FILE")]
    pub spec: Option<PathBuf>,
    /// Monte Carlo mode: the number of sampled trajectories N.
    #[arg(long, default_value_t = 1_000_000, requires = "spec")]
    pub samples: usize,
    /// Monte Carlo mode: family-wise false-alarm probability of one check (Bonferroni over
    /// the tested logits).
    #[arg(long, default_value_t = 1e-6, requires = "spec")]
    pub family_error: f64,
}

/// Bytes `gradcheck` allocates per `[B, T]` entry of its generated batch: `log q`, `log p` in
/// the float type, their f64 or f32 twin for the precision checks, and the kernels' outputs
/// (measured: 32 bytes an entry at B = 65536, T = 64, f32 or f64; planned with room).
pub const GRADCHECK_BYTES_PER_ENTRY: u64 = 40;

/// Bytes `gradcheck` allocates per trajectory (lengths, `log r`, windows, per-row results).
pub const GRADCHECK_BYTES_PER_ROW: u64 = 256;

/// Most `--exact-samples`: 10⁷ per environment (the sampler plans its own table on top).
pub const MAX_EXACT_SAMPLES: u64 = 10_000_000;

/// Checks the arguments (before anything is read or allocated) and plans the batch-mode run.
pub fn check(args: &GradcheckArgs) -> Result<Plan, LimitError> {
    if !(args.beta.is_finite() && args.beta > 0.0) {
        return Err(LimitError::OutOfRange {
            arg: "--beta".into(),
            value: args.beta.to_string(),
            reason: "must be finite and positive".into(),
        });
    }
    // The f32 checks run in every mode: β and α = 1/β must both be normal, finite f32 values,
    // checked here on the f64 the user gave, before any rounding.
    let (lo, hi) = (f32::MIN_POSITIVE as f64, 1.0 / f32::MIN_POSITIVE as f64);
    if args.spec.is_none() && !(lo..=hi).contains(&args.beta) {
        return Err(LimitError::OutOfRange {
            arg: "--beta".into(),
            value: format!("{:e}", args.beta),
            reason: format!(
                "the f32 checks need β and 1/β to be normal f32 values: {lo:e} ≤ β ≤ {hi:e}"
            ),
        });
    }
    if let Some(spec) = &args.spec {
        in_range(
            "--samples",
            args.samples as u64,
            2,
            u64::MAX,
            "the sample variance needs two",
        )?;
        if !(args.family_error > 0.0 && args.family_error < 1.0) {
            return Err(LimitError::OutOfRange {
                arg: "--family-error".into(),
                value: args.family_error.to_string(),
                reason: "must be in (0, 1)".into(),
            });
        }
        // The memory plan needs the spec's longest path: run_mc makes it after loading.
        return Ok(Plan::new(&format!(
            "gradcheck --spec {}",
            crate::input::escape_controls(&spec.display().to_string())
        )));
    }
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
    in_range(
        "--exact-samples",
        args.exact_samples as u64,
        1,
        MAX_EXACT_SAMPLES,
        "per environment; the sampled table is planned on top",
    )?;
    let entries = product(
        "the size of the run",
        &[
            ("--batch", args.batch as u64),
            ("--steps", args.steps as u64),
        ],
    )?;
    let mut plan = Plan::new(&format!(
        "gradcheck --batch {} --steps {}",
        args.batch, args.steps
    ));
    plan.add("[B, T] entries", entries, GRADCHECK_BYTES_PER_ENTRY)?;
    plan.add("[B] rows", args.batch as u64, GRADCHECK_BYTES_PER_ROW)?;
    Ok(plan)
}

/// The largest `--batch` that fits the memory cap at `steps`.
fn largest_batch(steps: usize) -> u64 {
    let cap = crate::input::memory_cap().bytes;
    cap / (GRADCHECK_BYTES_PER_ENTRY * steps.max(1) as u64 + GRADCHECK_BYTES_PER_ROW)
}

/// Runs `gradcheck`; returns the exit code.
pub fn run(args: &GradcheckArgs) -> u8 {
    let plan = match check(args) {
        Ok(plan) => plan,
        Err(e) => {
            eprintln!("gradcheck: {e}");
            return super::EXIT_BAD_INPUT;
        }
    };
    if let Some(spec) = &args.spec {
        return run_monte_carlo(args, spec);
    }
    let hint = match largest_batch(args.steps) {
        0 => format!("--steps {} does not fit even with --batch 1", args.steps),
        b => format!("at --steps {}, at most --batch {b} fits", args.steps),
    };
    if let Err(e) = plan.check_and_announce(&hint) {
        eprintln!("gradcheck: {e}");
        return super::EXIT_BAD_INPUT;
    }
    let exact_specs = if args.no_exact {
        Vec::new()
    } else if args.exact_spec.is_empty() {
        let default = PathBuf::from("spec");
        if default.is_dir() {
            vec![default]
        } else {
            Vec::new()
        }
    } else {
        args.exact_spec.clone()
    };
    let cfg = GradcheckConfig {
        batch: args.batch,
        steps: args.steps,
        dtype: args.dtype,
        beta: args.beta,
        seed: args.seed,
        device: args.device,
        mutant: args.mutant,
        progress: !args.json,
        exact_specs,
        exact_samples: args.exact_samples,
    };
    let report = match run_checks(&cfg) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("gradcheck: {e}");
            return super::EXIT_BAD_INPUT;
        }
    };
    if args.json {
        match serde_json::to_string_pretty(&report) {
            Ok(s) => println!("{s}"),
            Err(e) => {
                eprintln!("gradcheck: {e}");
                return super::EXIT_BAD_INPUT;
            }
        }
    } else {
        println!(
            "gradcheck: B = {}, T = {}, {:?}, β = {}, device {:?}{}",
            report.batch,
            report.steps,
            report.dtype,
            cfg.beta,
            report.device,
            cfg.mutant
                .map(|m| format!(", mutant {m}"))
                .unwrap_or_default()
        );
        println!(
            "{:<28} {:>6} {:>22} {:>14}",
            "check", "holds", "max error / bound", "max |error|"
        );
        for c in &report.checks {
            println!(
                "{:<28} {:>6} {:>22.3e} {:>14.3e}",
                c.id,
                if c.holds { "yes" } else { "NO" },
                c.max_error_over_bound,
                c.max_abs_error
            );
        }
        println!(
            "{} in {:.2} s",
            if report.all_hold {
                "all checks hold"
            } else {
                "SOME CHECKS FAIL"
            },
            report.seconds
        );
    }
    if report.all_hold {
        super::EXIT_HOLDS
    } else {
        super::EXIT_FAILS
    }
}

fn run_monte_carlo(args: &GradcheckArgs, spec: &std::path::Path) -> u8 {
    let cfg = McConfig {
        spec: spec.to_path_buf(),
        samples: args.samples,
        seed: args.seed,
        mutant: args.mutant,
        family_error: args.family_error,
        ..McConfig::default()
    };
    let report = match run_mc(&cfg) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("gradcheck: {e}");
            return super::EXIT_BAD_INPUT;
        }
    };
    if args.json {
        match serde_json::to_string_pretty(&report) {
            Ok(s) => println!("{s}"),
            Err(e) => {
                eprintln!("gradcheck: {e}");
                return super::EXIT_BAD_INPUT;
            }
        }
    } else {
        println!(
            "gradcheck (Monte Carlo): {}, N = {}, T = {}, seed {}, exact route {:?}{}",
            report.spec,
            report.report.batch,
            report.report.steps,
            args.seed,
            report.route,
            cfg.mutant
                .map(|m| format!(", mutant {m}"))
                .unwrap_or_default()
        );
        println!(
            "{} logits tested ({} untested: state visited < {} times); z* = {:.3} \
             (two-sided, Bonferroni, family-wise p = {:e})",
            report.tested_parameters,
            report.untested_parameters,
            cfg.min_visits,
            report.z_threshold,
            report.family_error
        );
        println!(
            "{:<20} {:>6} {:>10} {:>14} {:>16}  worst logit",
            "check", "holds", "max |z|", "max|z| / z*", "max |m − E|"
        );
        for (c, d) in report.report.checks.iter().zip(&report.details) {
            println!(
                "{:<20} {:>6} {:>10.3} {:>14.3e} {:>16.3e}  {}",
                c.id,
                if c.holds { "yes" } else { "NO" },
                d.max_abs_z,
                c.max_error_over_bound,
                c.max_abs_error,
                d.worst_edge.as_deref().unwrap_or("-")
            );
        }
        println!(
            "{} (max |z| = {:.3}) in {:.2} s",
            if report.report.all_hold {
                "all checks hold"
            } else {
                "SOME CHECKS FAIL"
            },
            report.max_abs_z,
            report.report.seconds
        );
    }
    if report.report.all_hold {
        super::EXIT_HOLDS
    } else {
        super::EXIT_FAILS
    }
}

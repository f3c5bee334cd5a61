//! `gradcheck`: at-scale agreement of the fused kernels (C1–C4 in floats, f32 vs f64), each
//! check with a tolerance from a derived floating-point error bound (`docs/error-bounds.md`).
//! A thin wrapper over [`crate::batched::gradcheck::run_checks`].
use clap::Args;

use crate::batched::gradcheck::{run_checks, Device, Dtype, GradcheckConfig};
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
}

/// Runs `gradcheck`; returns the exit code.
pub fn run(args: &GradcheckArgs) -> u8 {
    let cfg = GradcheckConfig {
        batch: args.batch,
        steps: args.steps,
        dtype: args.dtype,
        beta: args.beta,
        seed: args.seed,
        device: args.device,
        mutant: args.mutant,
        progress: !args.json,
    };
    if cfg.batch == 0 || cfg.steps == 0 {
        eprintln!("gradcheck: --batch and --steps must be at least 1");
        return super::EXIT_BAD_INPUT;
    }
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

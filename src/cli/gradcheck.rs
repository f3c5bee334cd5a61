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

/// Runs `gradcheck`; returns the exit code.
pub fn run(args: &GradcheckArgs) -> u8 {
    if let Some(spec) = &args.spec {
        return run_monte_carlo(args, spec);
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
    if cfg.exact_samples == 0 {
        eprintln!("gradcheck: --exact-samples must be at least 1");
        return super::EXIT_BAD_INPUT;
    }
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

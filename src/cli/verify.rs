//! `verify`: every claim on every environment, as a report.
use crate::claims::{Budget, VerifyOptions};
use crate::dag::load_dir;
use crate::exact::ExactError;
use crate::input::{in_range, LimitError};
use crate::mutant::Mutant;
use crate::report::{environment_report_with, Report, Teardown};
use clap::Args;
use std::path::PathBuf;

/// Arguments of `verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Spec files or directories of `*.toml` specs (default: `spec/`).
    pub paths: Vec<PathBuf>,
    /// Print the report as one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Swap in a deliberately wrong variant; the claims it affects must then fail.
    #[arg(long, value_enum)]
    pub mutant: Option<Mutant>,
    /// Enumeration-based checks are refused above this many trajectories (structural checks
    /// still run).
    #[arg(long, default_value_t = 100_000)]
    pub max_trajectories: u64,
    /// Window enumeration is refused above this many windows.
    #[arg(long, default_value_t = 200_000)]
    pub max_windows: u64,
    /// Also write one Coq certificate per environment into this directory (see
    /// docs/proofs.md); with `--mutant` the certificates encode the mutant and must not compile.
    #[arg(long, value_name = "DIR")]
    pub emit_coq: Option<PathBuf>,
    /// Trajectories restated per Coq certificate (the first ones in depth-first order).
    #[arg(long, default_value_t = crate::coq::DEFAULT_MAX_TRAJECTORIES)]
    pub coq_max_trajectories: usize,
    /// Budget: wall-clock seconds per environment; past it the run stops with an error naming
    /// the time (exit 2).
    #[arg(long, default_value_t = 300)]
    pub budget_seconds: u64,
    /// Budget: resident memory in MB; past it the run stops with an error naming the memory
    /// (exit 2).
    #[arg(long, default_value_t = 3072)]
    pub budget_memory_mb: u64,
    /// Budget: decimal digits of any input rational (β, priors, posteriors, rewards) and of
    /// `F* = r^β` and `Z*`; above it the environment is refused (exit 2).
    #[arg(long, default_value_t = 2000)]
    pub budget_digits: u64,
    /// Budget: per-step terms the enumeration cross-checks may build (estimated by DP before
    /// any path is listed); above it they are skipped with that reason, the structural and DP
    /// routes still decide every claim.
    #[arg(long, default_value_t = 50_000)]
    pub budget_enumeration_steps: u64,
}

impl Default for VerifyArgs {
    /// The command line's own defaults (`verify` with no argument), for library callers such
    /// as the Python package.
    fn default() -> Self {
        #[derive(clap::Parser)]
        struct Wrap {
            #[command(flatten)]
            args: VerifyArgs,
        }
        <Wrap as clap::Parser>::parse_from(["verify"]).args
    }
}

/// Bytes allowed per enumerated trajectory or window when bounding `--max-trajectories` and
/// `--max-windows` by the memory cap: its edge list and the exact values computed on it.
pub const BYTES_PER_ENUMERATED_PATH: u64 = 1024;

/// Checks `--max-trajectories` and `--max-windows` against the memory cap: each enumerated
/// path is held with its exact values ([`BYTES_PER_ENUMERATED_PATH`]).
pub fn check(args: &VerifyArgs) -> Result<(), LimitError> {
    let cap = crate::input::memory_cap();
    let most = cap.bytes / BYTES_PER_ENUMERATED_PATH;
    for (arg, value) in [
        ("--max-trajectories", args.max_trajectories),
        ("--max-windows", args.max_windows),
    ] {
        in_range(
            arg,
            value,
            0,
            most,
            &format!(
                "{BYTES_PER_ENUMERATED_PATH} bytes per enumerated path under the memory cap of {} ({})",
                crate::input::human_bytes(cap.bytes),
                cap.source
            ),
        )?;
    }
    Ok(())
}

/// Loads the specs and builds the report `verify` prints (also the Python package's
/// `rtb_trustpcl.verify`); an error message on bad input (exit 2 from the CLI).
pub fn build_report(args: &VerifyArgs) -> Result<Report, String> {
    build_report_with(args, Teardown::Free)
}

/// [`build_report`]; `teardown` applies to the last environment's context and certificates
/// (the others are always freed, so memory stays bounded by one environment).
pub fn build_report_with(args: &VerifyArgs, teardown: Teardown) -> Result<Report, String> {
    check(args).map_err(|e| e.to_string())?;
    let paths = if args.paths.is_empty() {
        vec![PathBuf::from("spec")]
    } else {
        args.paths.clone()
    };
    let envs = match load_dir(&paths) {
        Ok(envs) if envs.is_empty() => {
            return Err(format!("no spec files found under {paths:?}"));
        }
        Ok(envs) => envs,
        Err(e) => return Err(e.to_string()),
    };
    if let Some(dir) = &args.emit_coq {
        let coq_options = crate::coq::CoqOptions {
            max_trajectories: args.coq_max_trajectories,
            mutant: args.mutant,
        };
        let written = crate::coq::write_certificates(&envs, dir, &coq_options)
            .map_err(|e| format!("--emit-coq: {e}"))?;
        for (path, cert) in &written {
            eprintln!(
                "coq: wrote {} ({} of {} trajectories{})",
                path.display(),
                cert.trajectories_written,
                cert.trajectories_total,
                if cert.c5_skipped.is_some() {
                    ", C5 not restated"
                } else {
                    ""
                }
            );
        }
    }
    let options = VerifyOptions {
        max_trajectories: args.max_trajectories,
        max_windows: args.max_windows,
        mutant: args.mutant,
        budget: Budget::new(
            args.budget_seconds,
            args.budget_memory_mb,
            args.budget_digits,
            args.budget_enumeration_steps,
        ),
        // The report carries each check's counts and its first failure, never the example
        // derivations a certificate keeps (those serve `derive` and the certificate tests):
        // building them was ~10 % of the work at 440 edges.
        keep: 0,
    };
    let mut environments = Vec::new();
    for (i, env) in envs.iter().enumerate() {
        let teardown = if i + 1 == envs.len() {
            teardown
        } else {
            Teardown::Free
        };
        match environment_report_with(env, &options, teardown) {
            Ok((report, certificates)) => {
                environments.push(report);
                teardown.dispose(certificates);
            }
            Err(e @ ExactError::Budget(_)) => return Err(format!("{}: {e}", env.file)),
            Err(e) => {
                return Err(format!(
                    "{}: internal exact-arithmetic error: {e}",
                    env.file
                ));
            }
        }
    }
    let all_hold = environments
        .iter()
        .all(|e| e.claims.iter().all(|c| c.holds != Some(false)));
    Ok(Report {
        all_hold,
        mutant: args.mutant.map(|m| m.to_string()),
        environments,
    })
}

/// Runs `verify`; returns the exit code.
pub fn run(args: &VerifyArgs) -> u8 {
    // The process exits once the report is printed.
    let report = match build_report_with(args, Teardown::AtExit) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return super::EXIT_BAD_INPUT;
        }
    };
    if args.json {
        match serde_json::to_string_pretty(&report) {
            Ok(text) => println!("{text}"),
            Err(e) => {
                eprintln!("error: cannot serialise the report: {e}");
                return super::EXIT_BAD_INPUT;
            }
        }
    } else {
        print!("{}", report.to_text());
    }
    report.exit_code()
}

//! `verify`: every claim on every environment, as a report.
use crate::claims::VerifyOptions;
use crate::dag::load_dir;
use crate::mutant::Mutant;
use crate::report::{environment_report, Report};
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
}

/// Loads the specs and builds the report `verify` prints (also the Python package's
/// `rtb_trustpcl.verify`); an error message on bad input.
pub fn build_report(args: &VerifyArgs) -> Result<Report, String> {
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
    let options = VerifyOptions {
        max_trajectories: args.max_trajectories,
        max_windows: args.max_windows,
        mutant: args.mutant,
        ..VerifyOptions::default()
    };
    let mut environments = Vec::new();
    for env in &envs {
        match environment_report(env, &options) {
            Ok((report, _)) => environments.push(report),
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
    let report = match build_report(args) {
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

//! `derive`: print the derivation of one claim on one environment (optionally one trajectory
//! or window).
use crate::claims::{
    c1_residual, c2_loss, c3_gradient, c4_window, c5_fixed_point, verify_environment, ClaimContext,
    VerifyOptions,
};
use crate::dag::{load_file, Environment};
use crate::exact::Derivation;
use crate::mutant::Mutant;
use clap::Args;
use std::path::PathBuf;

/// Arguments of `derive`.
#[derive(Debug, Args)]
pub struct DeriveArgs {
    /// The spec file.
    pub spec: PathBuf,
    /// The claim: C1 … C8.
    #[arg(long)]
    pub claim: String,
    /// A path as comma-separated state names (`s0,a,x1`): a complete trajectory, or for C4
    /// any window. Without it, the first derivations of every check are printed.
    #[arg(long)]
    pub trajectory: Option<String>,
    /// Swap in a deliberately wrong variant.
    #[arg(long, value_enum)]
    pub mutant: Option<Mutant>,
    /// Print the derivations as JSON.
    #[arg(long)]
    pub json: bool,
}

/// The edges of a path given by state names, or a message naming what is wrong.
pub fn parse_path(env: &Environment, text: &str) -> Result<Vec<usize>, String> {
    let names: Vec<&str> = text.split(',').map(str::trim).collect();
    if names.len() < 2 {
        return Err(format!(
            "--trajectory {}: give at least two states",
            crate::exact::quote(text)
        ));
    }
    let mut path = Vec::new();
    for pair in names.windows(2) {
        let edge = env
            .edges
            .iter()
            .position(|e| env.states[e.from] == pair[0] && env.states[e.to] == pair[1]);
        match edge {
            Some(e) => path.push(e),
            None => {
                return Err(format!(
                    "--trajectory {}: there is no edge {}->{}",
                    crate::exact::quote(text),
                    crate::input::escape_controls(pair[0]),
                    crate::input::escape_controls(pair[1])
                ))
            }
        }
    }
    Ok(path)
}

fn derivations_on_path(
    ctx: &ClaimContext,
    claim: &str,
    path: &[usize],
) -> Result<Vec<Derivation>, String> {
    let env = ctx.env;
    let complete = env.edges[path[0]].from == env.source
        && env.is_terminal(env.edges[path[path.len() - 1]].to);
    if !["C4", "C6", "C7", "C8"].contains(&claim) && !complete {
        return Err(format!(
            "{claim} is about complete trajectories: `{}` does not run from the source to a terminal",
            env.path_name(path)
        ));
    }
    Ok(match claim {
        "C1" => vec![c1_residual::trajectory_derivation(ctx, path)],
        "C2" => vec![c2_loss::trajectory_derivation(ctx, path)],
        "C3" => c3_gradient::trajectory_derivations(ctx, path).to_vec(),
        "C4" => vec![c4_window::window_derivation(ctx, path)],
        "C5" => {
            let full = c5_fixed_point::check(ctx);
            let subject = format!("trajectory {}", env.path_name(path));
            let found: Vec<Derivation> = full
                .derivations
                .into_iter()
                .filter(|d| d.subject == subject)
                .collect();
            if found.is_empty() {
                return Err(format!("C5 on {subject}: run without --trajectory (C5 derivations are per optimum, and kept for the first trajectories only)"));
            }
            found
        }
        "C6" | "C7" | "C8" => {
            return Err(format!(
                "{claim} is decided by DP over the whole DAG, not per trajectory: run without --trajectory"
            ))
        }
        other => return Err(format!("unknown claim `{other}` (expected C1 … C8)")),
    })
}

/// Runs `derive`; returns the exit code.
pub fn run(args: &DeriveArgs) -> u8 {
    let env = match load_file(&args.spec) {
        Ok(env) => env,
        Err(e) => {
            eprintln!("error: {e}");
            return super::EXIT_BAD_INPUT;
        }
    };
    let claim = args.claim.to_uppercase();
    if !["C1", "C2", "C3", "C4", "C5", "C6", "C7", "C8"].contains(&claim.as_str()) {
        eprintln!("error: --claim `{}`: expected one of C1 … C8", args.claim);
        return super::EXIT_BAD_INPUT;
    }
    let options = VerifyOptions {
        mutant: args.mutant,
        keep: 1,
        ..VerifyOptions::default()
    };
    let ctx = match ClaimContext::new(&env, options) {
        Ok(ctx) => ctx,
        Err(e) => {
            eprintln!("error: {}: {e}", env.file);
            return super::EXIT_BAD_INPUT;
        }
    };
    let derivations = match &args.trajectory {
        Some(text) => {
            match parse_path(&env, text).and_then(|p| derivations_on_path(&ctx, &claim, &p)) {
                Ok(d) => d,
                Err(message) => {
                    eprintln!("error: {message}");
                    return super::EXIT_BAD_INPUT;
                }
            }
        }
        None => {
            let certificate = verify_environment(&ctx)
                .into_iter()
                .find(|c| c.claim == claim)
                .expect("every claim id has a certificate");
            if let Some(reason) = certificate.skipped() {
                eprintln!("note: {reason}");
            }
            certificate
                .derivations
                .into_iter()
                .chain(certificate.failures)
                .collect()
        }
    };
    let rendered: Vec<_> = derivations.iter().map(|d| d.render(&env)).collect();
    if args.json {
        match serde_json::to_string_pretty(&rendered) {
            Ok(text) => println!("{text}"),
            Err(e) => {
                eprintln!("error: {e}");
                return super::EXIT_BAD_INPUT;
            }
        }
    } else {
        for d in &rendered {
            println!("{}", d.to_text());
        }
    }
    if derivations.iter().all(Derivation::holds) {
        super::EXIT_HOLDS
    } else {
        super::EXIT_FAILS
    }
}

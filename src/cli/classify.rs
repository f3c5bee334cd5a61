//! `classify`: names the loss convention of a third-party implementation from the losses (and
//! optionally gradients) it computed on a batch that `export-batch` wrote (docs/classify.md).
//! Exit 0 when a convention matches, 1 when none does, 2 on bad input.
use std::path::PathBuf;

use clap::Args;

use crate::conventions::classify::classify;
use crate::conventions::npz;
use crate::input::LimitError;

/// Arguments of `classify`.
#[derive(Debug, Args)]
pub struct ClassifyArgs {
    /// The batch (`.npz` or JSON), with the user's `loss` (and optionally `grad_log_z`,
    /// `grad_log_q`) added to it unless `--results` is given.
    #[arg(long)]
    pub batch: PathBuf,
    /// A separate file with the user's `loss`, `grad_log_z`, `grad_log_q`.
    #[arg(long)]
    pub results: Option<PathBuf>,
    /// Largest relative distance that still counts as a match (float32 implementations round
    /// at ~10⁻⁷ relative; 10⁻⁴ leaves room for cancellation).
    #[arg(long, default_value_t = 1e-4)]
    pub tol: f64,
    /// Print the classification as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Checks the arguments: `--tol` finite and positive.
pub fn check(args: &ClassifyArgs) -> Result<(), LimitError> {
    if !(args.tol.is_finite() && args.tol > 0.0) {
        return Err(LimitError::OutOfRange {
            arg: "--tol".into(),
            value: args.tol.to_string(),
            reason: "must be finite and positive (a relative distance)".into(),
        });
    }
    Ok(())
}

/// Runs `classify`; returns the exit code.
pub fn run(args: &ClassifyArgs) -> u8 {
    if let Err(e) = check(args) {
        eprintln!("classify: {e}");
        return super::EXIT_BAD_INPUT;
    }
    let (batch, in_file) = match npz::read(&args.batch) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("classify: {e}");
            return super::EXIT_BAD_INPUT;
        }
    };
    let user = match &args.results {
        Some(p) => npz::read_results_for(p, &batch).map_err(|e| e.to_string()),
        None => in_file.ok_or_else(|| {
            format!(
                "{}: no `loss` array (add the user's losses, or pass --results)",
                crate::input::escape_controls(&args.batch.display().to_string())
            )
        }),
    };
    let user = match user {
        Ok(u) => u,
        Err(e) => {
            eprintln!("classify: {e}");
            return super::EXIT_BAD_INPUT;
        }
    };
    let c = match classify(&batch, &user, args.tol) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("classify: {e}");
            return super::EXIT_BAD_INPUT;
        }
    };
    if args.json {
        match serde_json::to_string_pretty(&c) {
            Ok(s) => println!("{s}"),
            Err(e) => {
                eprintln!("classify: {e}");
                return super::EXIT_BAD_INPUT;
            }
        }
    } else {
        let red = |m: &crate::conventions::classify::Candidate| {
            if m.reduction_determined {
                format!("{:?}", m.reduction).to_lowercase()
            } else {
                "per trajectory (reduction not determined)".into()
            }
        };
        if c.matches.is_empty() {
            let best = &c.candidates[0];
            println!(
                "no convention matches (tolerance {:e}); closest: {} [{}] at relative distance {:.3e} \
                 (user loss ≈ {:.4} × it)",
                c.tolerance,
                best.name,
                red(best),
                best.distance,
                best.factor
            );
        } else {
            for m in &c.matches {
                println!(
                    "matches: {} [{}], relative distance {:.3e}",
                    m.name,
                    red(m),
                    m.distance
                );
            }
        }
    }
    if c.matches.is_empty() {
        super::EXIT_FAILS
    } else {
        super::EXIT_HOLDS
    }
}

//! The command-line interface: one module per subcommand.
//!
//! Exit codes, shared by every subcommand: 0 when every check holds, 1 when any fails, 2 on
//! bad input (arguments or files).
use clap::{Parser, Subcommand};
use std::process::ExitCode;

pub mod bench;
pub mod classify;
pub mod derive;
#[cfg(feature = "continuous")]
pub mod diffusion;
pub mod export_batch;
pub mod generate;
pub mod gradcheck;
pub mod study;
pub mod verify;

/// Exit code when every check holds.
pub const EXIT_HOLDS: u8 = 0;
/// Exit code when a check fails.
pub const EXIT_FAILS: u8 = 1;
/// Exit code on bad input (arguments or files).
pub const EXIT_BAD_INPUT: u8 = 2;

/// Top-level arguments.
#[derive(Debug, Parser)]
#[command(
    name = "rtb-trustpcl",
    version,
    about = "Verify that Relative Trajectory Balance is equivalent to Trust-PCL"
)]
pub struct Cli {
    /// The subcommand.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Verify claims C1–C8 exactly on every environment (default `spec/`).
    Verify(verify::VerifyArgs),
    /// Print the derivation of one claim on one environment.
    Derive(derive::DeriveArgs),
    /// Write a reproducible random layered DAG as a spec file.
    Generate(generate::GenerateArgs),
    /// At-scale agreement of the fused f32/f64 kernels (C2–C4 in floats).
    Gradcheck(gradcheck::GradcheckArgs),
    /// Throughput of the fused kernels beside a memory-copy reference.
    Bench(bench::BenchArgs),
    /// Write a reproducible batch (.npz or JSON) for a third-party loss implementation.
    ExportBatch(export_batch::ExportBatchArgs),
    /// Name the loss convention a third-party implementation follows on an exported batch.
    Classify(classify::ClassifyArgs),
    /// The empirical study: fine-tune a discrete diffusion prior toward a 9-mode target.
    Study(study::StudyArgs),
    /// The paper's continuous experiment: fine-tune a 2D diffusion prior (candle, CPU).
    #[cfg(feature = "continuous")]
    Diffusion(diffusion::DiffusionArgs),
}

/// Parses the arguments, runs the subcommand, and returns its exit code.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() {
                EXIT_BAD_INPUT
            } else {
                EXIT_HOLDS
            };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let code = match &cli.command {
        Command::Verify(args) => verify::run(args),
        Command::Derive(args) => derive::run(args),
        Command::Generate(args) => generate::run(args),
        Command::Gradcheck(args) => gradcheck::run(args),
        Command::Bench(args) => bench::run(args),
        Command::ExportBatch(args) => export_batch::run(args),
        Command::Classify(args) => classify::run(args),
        Command::Study(args) => study::run(args),
        #[cfg(feature = "continuous")]
        Command::Diffusion(args) => diffusion::run(args),
    };
    ExitCode::from(code)
}

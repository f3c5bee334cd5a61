//! `bench`: kernel throughput (placeholder until the batched issue lands).
use clap::Args;

/// Arguments of `bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {}

/// Runs `bench`; returns the exit code.
pub fn run(_args: &BenchArgs) -> u8 {
    eprintln!("bench: not built yet");
    super::EXIT_BAD_INPUT
}

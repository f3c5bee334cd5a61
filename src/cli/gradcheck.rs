//! `gradcheck`: at-scale agreement of the fused kernels (placeholder until the batched issue lands).
use clap::Args;

/// Arguments of `gradcheck`.
#[derive(Debug, Args)]
pub struct GradcheckArgs {}

/// Runs `gradcheck`; returns the exit code.
pub fn run(_args: &GradcheckArgs) -> u8 {
    eprintln!("gradcheck: not built yet");
    super::EXIT_BAD_INPUT
}

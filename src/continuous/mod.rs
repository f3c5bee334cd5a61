//! The paper's continuous experiment (DESIGN §8, issue 15): fine-tuning a 2D diffusion prior
//! (25 Gaussians) toward a 9-mode target with RTB, Trust-PCL and the RL baselines, measured
//! against the exact target.
//!
//! One job per file:
//! - [`target`]: the prior and target mixtures, the log-reward, exact samples, the lattice;
//! - [`gelu`]: the exact GELU as one fused custom op (forward and derivative);
//! - [`network`]: the PIS drift network (Fourier time embedding), candle `Var` parameters;
//! - [`sde`]: the Euler–Maruyama sampler, its per-step log-densities, the Brownian bridge;
//! - [`prior`]: maximum-likelihood pretraining of the prior on bridge trajectories;
//! - [`methods`]: the losses (RTB, Trust-PCL full and windowed, the RL baselines);
//! - [`metrics`]: log Z, ELBO, EUBO, mode masses, energy distance, the paper's `kl_div`;
//! - [`plots`]: samples beside the target, learning curves;
//! - [`run`]: configurations, the training loop, results.
//!
//! Gradients come from candle's autograd (`Var`, `backward`); Adam is `candle_nn::AdamW` with
//! weight decay 0. Every random number comes from a seeded ChaCha stream, so runs are
//! deterministic on CPU.

pub mod gelu;
pub mod methods;
pub mod metrics;
pub mod network;
#[cfg(feature = "plots")]
pub mod plots;
pub mod prior;
pub mod run;
pub mod sde;
pub mod target;

/// Errors of the continuous experiment.
#[derive(Debug, thiserror::Error)]
pub enum ContinuousError {
    /// A tensor operation failed (shape mismatch, out of memory).
    #[error("tensor operation failed: {0}")]
    Candle(#[from] candle_core::Error),
    /// A configuration value or input is invalid.
    #[error("invalid input: {0}")]
    BadInput(String),
    /// A value became NaN or infinite during training.
    #[error("non-finite value: {0}")]
    NonFinite(String),
    /// Reading or writing a file failed.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// Drawing a plot failed.
    #[error("plot failed: {0}")]
    Plot(String),
}

/// Result type of the continuous experiment.
pub type Result<T> = std::result::Result<T, ContinuousError>;

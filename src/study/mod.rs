//! The empirical study: fine-tuning a discrete diffusion prior toward a 9-mode target with
//! RTB, Trust-PCL and REINFORCE-KL (DESIGN §6), every metric exact by DP.
//!
//! Map of the module:
//! - [`grid`]: the square, its cells, the 25-mode prior and 9-mode target mixtures;
//! - [`diffusion`]: the layered `(time, cell)` DAG, the Bayes-rule prior and `log r`;
//! - [`metrics`]: forward occupancy, backward induction (`q*`, `log Z*`), the exact metrics,
//!   and enumeration as their cross-check;
//! - [`adam`]: the optimizer, written once;
//! - [`behaviour`]: the behaviour policies (on-policy, ε-mixtures, tempered, prior, replay),
//!   the sampler and the uniform window draw;
//! - [`expected`]: the exact expected gradient under a behaviour, by DP;
//! - [`fixed_point`]: exactly, robust losses keep `q*` stationary (spec environments);
//! - [`train`]: the per-method kernels, robust losses and the chain rule to the logits, in the
//!   sampled and the exact mode;
//! - [`run`]: the configurations, seeds × methods, aggregation and `results.json`;
//! - [`plot`]: heatmaps and learning curves (PNG and SVG).
//!
//! ```
//! use rtb_trustpcl::study::diffusion::{DiffusionDag, DiffusionSpec};
//! use rtb_trustpcl::study::metrics::{occupancy, Reference};
//! let dag = DiffusionDag::new(DiffusionSpec { half_width: 10.0, cell: 2.5, steps: 2, radius: 1 })
//!     .unwrap();
//! let prior: Vec<f64> = dag.log_p().iter().map(|l| l.exp()).collect();
//! // The prior's terminal marginal is the discretized 25-mode mixture.
//! let occ = occupancy(&dag, &prior).unwrap();
//! let err = occ.terminal.iter().zip(dag.prior_pmf()).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
//! assert!(err < 1e-15);
//! // At the prior, J(p) = E_p[log r] and the gap to α log Z* is KL(p(τ) ‖ q*(τ)) > 0.
//! let reference = Reference::new(&dag);
//! assert!(reference.metrics(&dag, &prior).unwrap().j_gap > 0.0);
//! ```
use thiserror::Error;

pub mod adam;
pub mod behaviour;
pub mod diffusion;
pub mod expected;
pub mod fixed_point;
pub mod grid;
pub mod metrics;
#[cfg(feature = "plots")]
pub mod plot;
pub mod run;
pub mod train;

pub use behaviour::Behaviour;
pub use diffusion::{DiffusionDag, DiffusionSpec};
pub use metrics::{Metrics, Reference};
pub use run::{run_study, StudyConfig, StudyResults};
pub use train::{Method, RunSpec, TrainConfig};

/// Why the study refused its input or stopped.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum StudyError {
    /// A configuration value that cannot work.
    #[error("study configuration: {0}")]
    Config(String),
    /// The batched path refused a batch (a bug or a diverged run).
    #[error("batched kernel: {0}")]
    Batch(#[from] crate::kernels::BatchError),
    /// Training produced a non-finite value.
    #[error("training diverged: {0}")]
    Diverged(String),
    /// Writing an output failed.
    #[error("output: {0}")]
    Io(String),
}

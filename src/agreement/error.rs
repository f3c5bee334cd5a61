//! Why an agreement run could not be carried out. A check that fails is a result in the
//! report, never an error; these are inputs the checks cannot run on.
use std::path::PathBuf;

use crate::dag::SpecError;
use crate::exact::ExactError;
use crate::input::LimitError;
use crate::kernels::error::BatchError;

/// An error of `gradcheck` (the kernels, `--spec`) or of the Monte Carlo checks.
#[derive(Debug, thiserror::Error)]
pub enum AgreementError {
    /// The kernels refused the batch or the configuration.
    #[error(transparent)]
    Batch(#[from] BatchError),
    /// A spec file could not be loaded.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// A size or a planned allocation over its limit (checked before allocating).
    #[error(transparent)]
    Limit(#[from] LimitError),
    /// `--spec` named no spec file.
    #[error("no spec files found under {0:?}")]
    NoSpecs(Vec<PathBuf>),
    /// An option outside its range.
    #[error("{option} must be {range}, got {value}")]
    Option {
        /// The option (`--samples`).
        option: &'static str,
        /// What it must be (`at least 2`).
        range: &'static str,
        /// The value given.
        value: String,
    },
    /// An environment the exact comparison cannot be prepared on.
    #[error("{file}: {problem}")]
    Environment {
        /// The spec file.
        file: String,
        /// What is wrong with it.
        problem: EnvironmentProblem,
    },
}

/// What keeps an environment from the float comparison with the exact engine.
#[derive(Debug, thiserror::Error)]
pub enum EnvironmentProblem {
    /// An exact number (a log-probability, `log Z`, β, a reward, an expectation) has no
    /// finite `f64` (or, for a posterior, no positive one).
    #[error("{0} does not fit in f64")]
    NotFloat(String),
    /// A terminal without a reward (the spec loader refuses these; kept for callers that
    /// build environments by hand).
    #[error("terminal {0} has no reward")]
    NoReward(String),
    /// The exact engine refused a step.
    #[error(transparent)]
    Exact(#[from] ExactError),
    /// A planned allocation over the memory cap.
    #[error(transparent)]
    Limit(#[from] LimitError),
    /// The one evaluator refused the objective or the batch.
    #[error(transparent)]
    Eval(#[from] crate::objectives::eval::EvalError),
    /// The sampled batch was refused by the kernels.
    #[error(transparent)]
    Batch(#[from] BatchError),
}

impl EnvironmentProblem {
    /// The problem in environment `file`.
    pub fn in_file(self, file: &str) -> AgreementError {
        AgreementError::Environment {
            file: file.to_string(),
            problem: self,
        }
    }
}

//! The float path's second job: evidence that the kernels are right. Each check compares two
//! computations within a bound derived from the computation (never a guessed epsilon).
//!
//! - [`error`]: why a run could not be carried out ([`AgreementError`]);
//! - [`report`]: named checks and the report (`gradcheck --json`);
//! - [`bounds`]: rigorous floating-point error bounds of each kernel's outputs;
//! - [`ball`]: ball arithmetic, how exact values reach f64 with a rigorous radius;
//! - [`gradcheck`]: the at-scale identities C1–C4 between kernels, and f32 against f64;
//! - [`spec_sample`]: seeded sampling of trajectories from a `spec/` environment's `q`;
//! - [`exact_spec`]: the f64 kernels against the exact engine on sampled trajectories;
//! - [`montecarlo`]: sample-mean logit gradients against the exact expectations (C6 at scale).

pub mod ball;
pub mod bounds;
pub mod error;
pub mod exact_spec;
pub mod gradcheck;
pub mod montecarlo;
pub mod report;
pub mod spec_sample;

pub use error::{AgreementError, EnvironmentProblem};
pub use gradcheck::{run_checks, GradcheckConfig};
pub use report::{CheckResult, Device, Dtype, GradcheckReport};

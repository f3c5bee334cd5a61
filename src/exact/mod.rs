//! Exact arithmetic: rationals, log-forms over a pairwise-coprime base, the polynomial ring in
//! which objectives live, and derivation records.
//!
//! Architecture invariant: nothing in this module uses floating point. Approximate values for
//! human readers are computed outside it (in `report`), from the exact forms, at the very end.

pub mod base;
pub mod derivation;
pub mod frac;
pub mod gcd;
pub mod logform;
pub mod poly;
pub mod rational;

pub use base::CoprimeBase;
pub use derivation::{Derivation, DerivationError, Step};
pub use frac::FracPoly;
pub use logform::LogForm;
pub use poly::{Monomial, Poly, Var, VarNames};
pub use rational::{exact_power, parse_rational, quote, Rational, RationalError};

/// An error of the exact engine: an operation that has no exact answer in the engine's terms.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExactError {
    /// The logarithm of a non-positive number was requested.
    #[error("log of a non-positive number {0}")]
    NonPositiveLog(String),
    /// A limit of the run's budget (time, memory, digits) was exceeded; the message names it.
    #[error("budget exceeded: {0}")]
    Budget(String),
    /// A number does not factor over the coprime base it was expressed in.
    #[error("{0} does not factor over the coprime base (insert it into the base first)")]
    NotInBase(String),
}

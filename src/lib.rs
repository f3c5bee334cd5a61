//! # rtb-trustpcl
//!
//! Verifies, exactly and at scale, that Relative Trajectory Balance (RTB) is equivalent to
//! Trust-PCL (Deleu, Nouri, Bengio, Precup, 2025).
#![deny(missing_docs)]

pub mod agreement;
pub mod claims;
pub mod cli;
#[cfg(feature = "continuous")]
pub mod continuous;
pub mod conventions;
pub mod coq;
pub mod dag;
pub mod exact;
pub mod expect;
pub mod input;
pub mod kernels;
pub mod mutant;
pub mod objectives;
pub mod report;
pub mod study;

//! # rtb-trustpcl
//!
//! Verifies, exactly and at scale, that Relative Trajectory Balance (RTB) is equivalent to
//! Trust-PCL (Deleu, Nouri, Bengio, Precup, 2025).
#![deny(missing_docs)]

pub mod batched;
pub mod cli;
pub mod exact;
pub mod mutant;

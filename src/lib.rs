//! # rtb-trustpcl
//!
//! Verifies, exactly and at scale, that Relative Trajectory Balance (RTB) is equivalent to
//! Trust-PCL (Deleu, Nouri, Bengio, Precup, 2025). `docs/architecture.md` maps the modules.
//!
//! ```
//! use rtb_trustpcl::claims::VerifyOptions;
//! use rtb_trustpcl::dag::spec::from_toml_str;
//! use rtb_trustpcl::mutant::Mutant;
//! use rtb_trustpcl::report::environment_report;
//!
//! let text = std::fs::read_to_string("spec/diamond.toml").unwrap();
//! let env = from_toml_str(&text, "spec/diamond.toml").unwrap();
//! // Every claim holds, decided in exact arithmetic...
//! let (report, _certificates) = environment_report(&env, &VerifyOptions::default()).unwrap();
//! assert!(report.claims.iter().all(|c| c.holds != Some(false)));
//! // ...and a deliberately wrong Trust-PCL (the loss without its ½) is caught.
//! let wrong = VerifyOptions { mutant: Some(Mutant::MissingHalf), ..VerifyOptions::default() };
//! let (report, _) = environment_report(&env, &wrong).unwrap();
//! assert!(report.claims.iter().any(|c| c.holds == Some(false)));
//! ```
//!
//! ## Features
//! - `cli` (default): the `rtb-trustpcl` binary's command line (clap), progress bars
//!   (indicatif) and pictures (`plots`). Without it the library builds alone:
//!   `rtb-trustpcl = { version = "0.1", default-features = false }`.
//! - `plots`: PNG/SVG pictures of the study and the continuous experiment (plotters, png).
//! - `continuous` (default): the continuous 2D diffusion experiment (candle).
//! - `cuda`: the fused kernels on an NVIDIA GPU (cudarc; no CUDA toolkit needed to build).
#![deny(missing_docs)]

pub mod agreement;
pub mod claims;
#[cfg(feature = "cli")]
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
pub mod progress;
pub mod report;
pub mod study;

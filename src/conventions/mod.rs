//! The float path's third job: naming the convention a third-party loss follows.
//!
//! - [`classify`]: the exported batch, the candidate conventions and the detector;
//! - [`npz`]: the batch and the user's results as `.npz` files.

pub mod classify;
pub mod npz;

pub use classify::{classify, Classification, ExportedBatch, UserResults};

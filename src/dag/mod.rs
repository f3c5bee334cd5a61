//! Environments: finite DAGs with a prior, a concrete posterior, rewards and β; their loading
//! and validation, trajectory and window enumeration, and exact dynamic programming.

pub mod dp;
pub mod env;
pub mod flow;
pub mod generate;
pub mod logs;
pub mod paths;
pub mod spec;

pub use dp::{occupancy, optimum, IrrationalOptimum, Optimum};
pub use env::{Edge, Environment};
pub use logs::{LogCombination, LogKey, LogTable, PolicyLog};
pub use paths::{trajectories, trajectory_count, window_count, windows, EnumerationRefused};
pub use spec::{load_dir, load_file, SpecError};

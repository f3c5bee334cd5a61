//! Errors of the batched path: every bad input is one of these values, never a panic.
use thiserror::Error;

/// Why a batch, a window set, a kernel call or a device request was refused.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum BatchError {
    /// Two inputs that must agree in shape do not.
    #[error("shape mismatch: {what} is {found:?}, expected {expected:?}")]
    ShapeMismatch {
        /// Which input.
        what: &'static str,
        /// Its shape (rows, columns).
        found: (usize, usize),
        /// The shape it must have.
        expected: (usize, usize),
    },
    /// A trajectory length outside `0..=T`.
    #[error("trajectory {row}: length {length} outside 0..={steps}")]
    LengthOutOfRange {
        /// Trajectory index.
        row: usize,
        /// The length given (negative lengths are reported as given).
        length: i64,
        /// `T`, the number of step slots.
        steps: usize,
    },
    /// A window that is not `start ≤ end ≤ length`.
    #[error("trajectory {row}: window {start}..{end} not inside 0..={length}")]
    WindowOutOfRange {
        /// Trajectory index.
        row: usize,
        /// Window start (state index).
        start: usize,
        /// Window end (state index).
        end: usize,
        /// The trajectory's length.
        length: usize,
    },
    /// NaN or ±∞ in a live (unmasked) entry.
    #[error("non-finite {what} at trajectory {row}, step {step:?}: {value}")]
    NonFinite {
        /// Which input.
        what: &'static str,
        /// Trajectory index.
        row: usize,
        /// Step index, for per-step inputs.
        step: Option<usize>,
        /// The offending value (widened to f64).
        value: f64,
    },
    /// A log-probability above zero by more than rounding allows.
    #[error("positive {what} = {value} at trajectory {row}, step {step} (tolerance {tolerance})")]
    PositiveLogProbability {
        /// `log q` or `log p`.
        what: &'static str,
        /// Trajectory index.
        row: usize,
        /// Step index.
        step: usize,
        /// The offending value.
        value: f64,
        /// The largest positive value accepted as rounding.
        tolerance: f64,
    },
    /// β not finite and positive.
    #[error("beta must be finite and > 0, got {0}")]
    InvalidBeta(f64),
    /// A scalar parameter (log Z, V(s0), κ) that is NaN or ±∞.
    #[error("non-finite scalar {what}: {value}")]
    NonFiniteScalar {
        /// Which scalar.
        what: &'static str,
        /// Its value.
        value: f64,
    },
    /// Every trajectory has length 0: the batch mean is undefined.
    #[error("no live trajectory (every length is 0): the batch mean is undefined")]
    NoLiveTrajectory,
    /// The result overflowed the float type (e.g. `exp(log r)` in the flawed baseline).
    #[error("{kernel}: result not finite in {dtype} ({what})")]
    Overflow {
        /// Kernel name.
        kernel: &'static str,
        /// Float type.
        dtype: &'static str,
        /// What overflowed.
        what: &'static str,
    },
    /// A softmax table or trajectory edge list that does not fit together.
    #[error("tabular softmax: {0}")]
    Softmax(String),
    /// A spec environment that could not be loaded or prepared for the exact comparison.
    #[error("spec: {0}")]
    Spec(String),
    /// A size, a product of sizes, or a planned allocation over its limit (checked before
    /// anything is allocated).
    #[error(transparent)]
    Limit(#[from] crate::input::LimitError),
    /// The CUDA backend is unavailable (not compiled in, no driver, no device) or failed.
    #[error("CUDA unavailable: {0}")]
    Cuda(String),
    /// The definitions ask for something the fused kernels do not compute.
    #[error("not computed by the fused kernels: {0}")]
    Unsupported(String),
}

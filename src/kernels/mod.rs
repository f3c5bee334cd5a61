//! Fused f32/f64 batched loss-and-gradient kernels (nalgebra, rayon; optional CUDA): the
//! float path's first job. Their agreement checks live in [`crate::agreement`], the
//! convention detector in [`crate::conventions`].
//!
//! Map of the module:
//! - [`float`]: the [`Float`] trait (`f32`, `f64`) the kernels are generic over;
//! - [`batch`]: [`TrajectoryBatch`] (validated input, step-major `T × B` layout) and
//!   [`Windows`] (one window per trajectory with learned boundary values);
//! - [`fused`]: RTB, Trust-PCL (full, windowed, surrogate), relative SubTB, REINFORCE-KL and
//!   the flawed baseline, each a fused loss-and-gradient pass ([`evaluate`]);
//! - [`softmax`]: the chain rule from per-step `log q` gradients to tabular softmax logits;
//! - [`sum`]: pairwise summation with a known rounding depth;
//! - [`simd`]: runtime dispatch of the memory-bound loops to AVX2 / AVX-512;
//! - `stream`: streaming stores of whole cache lines (the dense writer's and the copy floors');
//! - [`generate`]: reproducible random batches;
//! - [`bench`]: throughput measurement beside a memory-copy reference;
//! - [`cuda`]: the same kernels on an NVIDIA GPU (feature `cuda`; a stub returning
//!   [`BatchError::Cuda`] otherwise).
//!
//! ```
//! use rtb_trustpcl::kernels::{evaluate, GradForm, Kernel, TrajectoryBatch};
//! // Two trajectories, up to 3 steps, row-major [B, T] like a PyTorch tensor.
//! let log_q = vec![-0.5, -0.25, -1.0, /* row 2 */ -2.0, 0.0, f32::NAN];
//! let log_p = vec![-1.0, -0.5, -0.5, /* row 2 */ -1.0, -1.0, f32::NAN];
//! let batch = TrajectoryBatch::from_row_major(2, 3, log_q, log_p, vec![3, 2], vec![0.5, -1.0], 2.0)
//!     .unwrap();
//! let rtb = evaluate(&batch, &Kernel::Rtb { log_z: 0.25 }, GradForm::PerTrajectory).unwrap();
//! // δ_1 = 0.25 + (−1.75) − (−2.0) − 2·0.5 = −0.5;  δ_2 = 0.25 + (−2) − (−2) + 2 = 2.25
//! assert_eq!(rtb.residual.as_slice(), &[-0.5, 2.25]);
//! assert_eq!(rtb.g.as_slice(), &[-0.25, 1.125]); // δ_i / B
//! ```

pub mod batch;
pub mod bench;
pub mod error;
pub mod float;
pub mod fused;
pub mod generate;
pub mod simd;
pub mod softmax;
pub(crate) mod stream;
pub mod sum;

#[cfg(feature = "cuda")]
#[path = "cuda/mod.rs"]
pub mod cuda;
#[cfg(not(feature = "cuda"))]
#[path = "cuda/stub.rs"]
pub mod cuda;

pub use batch::{TrajectoryBatch, Windows};
pub use error::BatchError;
pub use float::Float;
pub use softmax::{logit_gradient_visited, TabularSoftmax};

pub use fused::{
    all_kernels, evaluate, evaluate_into, evaluate_with, AllKernelsParams, GradForm, Kernel,
    KernelId, KernelOutput, Shape,
};

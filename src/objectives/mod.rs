//! The objectives of DESIGN §2, each defined once, per trajectory, over a [`Scalar`] so the
//! same definition runs exactly (in the polynomial ring) and in `f64`.
//!
//! Architecture invariant: the Trust-PCL consistency is built from its per-step RL terms, never
//! as a multiple of the RTB residual.

pub mod flawed_fixed_point;
pub mod reinforce;
pub mod robust;
pub mod rtb;
pub mod scalar;
pub mod subtb;
pub mod trust_pcl;

pub use scalar::Scalar;

/// `½ x²`, the squared-residual loss of RTB, Trust-PCL and SubTB.
pub fn half_square<S: Scalar>(x: &S) -> S {
    x.mul(x)
        .scale(&crate::exact::Rational::new(1.into(), 2.into()))
}

/// `x²`, the variant without ½ (torchgfn's TB default, pcl_rl's raw loss).
pub fn square<S: Scalar>(x: &S) -> S {
    x.mul(x)
}

//! The objectives of DESIGN §2, each defined once: [`definition`] states each objective as a
//! value (family, ½, β placement, regularisation, reduction) and applies mutants to it;
//! [`eval`] runs a definition over any [`Scalar`] (the exact ring, rationals, `f64`, `f32`,
//! and dual numbers for gradients). The per-term modules ([`rtb`], [`trust_pcl`], [`subtb`],
//! [`reinforce`]) are the pieces both use; the exact claims call them term by term for their
//! derivations, with the parameters read from the same definition.
//!
//! Architecture invariant: the Trust-PCL consistency is built from its per-step RL terms, never
//! as a multiple of the RTB residual.

pub mod definition;
pub mod eval;
pub mod flawed_fixed_point;
pub mod reinforce;
pub mod robust;
pub mod rtb;
pub mod scalar;
pub mod subtb;
pub mod trust_pcl;

pub use definition::{AlphaPower, Definitions, Factors, Family, Objective, Reduction};
pub use eval::{
    evaluate, evaluate_with_gradients, Dual, Evaluation, Gradients, Trajectory, Window,
};
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

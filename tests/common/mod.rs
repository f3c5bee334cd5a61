//! Helpers shared by the claim tests: the shipped environments and running the claims.
#![allow(dead_code)]
use rtb_trustpcl::claims::{verify_environment, Certificate, ClaimContext, VerifyOptions};
use rtb_trustpcl::dag::{load_dir, Environment};
use rtb_trustpcl::mutant::Mutant;
use std::path::PathBuf;

/// Every environment in `spec/`.
pub fn spec_envs() -> Vec<Environment> {
    load_dir(&[PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/spec"))]).expect("spec/ loads")
}

/// Options that keep enumeration to the small environments (the generated ones are then
/// checked by the structural routes only).
pub fn quick(mutant: Option<Mutant>) -> VerifyOptions {
    VerifyOptions {
        max_trajectories: 500,
        max_windows: 3000,
        mutant,
        keep: 2,
        ..VerifyOptions::default()
    }
}

/// Every claim's certificate on one environment.
pub fn certificates(env: &Environment, options: VerifyOptions) -> Vec<Certificate> {
    let ctx = ClaimContext::new(env, options).expect("exact logs build");
    verify_environment(&ctx)
}

/// The certificate of one claim.
pub fn certificate<'a>(certs: &'a [Certificate], claim: &str) -> &'a Certificate {
    certs
        .iter()
        .find(|c| c.claim == claim)
        .expect("claim present")
}

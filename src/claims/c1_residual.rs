//! C1 (residual identity): under γ = 1, τ_H = 0, λ = α and `V(s0) = α log Z`,
//! `C_{0:T}(τ) = −α δ(τ)` for every trajectory and every `q` (the `ℓ_e` are free symbols).
//!
//! Two routes. Enumeration: both sides on every trajectory. Structural (O(|E|)): for every
//! edge, `RL(e) + α·RTB(e) = 0`, and at the source `−V(s0) + α·logZ = 0`; with γ = 1 and
//! `V(x) = 0`, `C(τ) + α δ(τ)` is exactly the sum of those certificates along τ (telescoping
//! lemma), so the identity holds on every trajectory without enumerating them.
use super::{certificate, term, Certificate, ClaimContext, Recorder};
use crate::exact::{Derivation, Poly, Step, Var};
use crate::objectives::{rtb, trust_pcl};

/// The claim's statement.
pub const STATEMENT: &str = "C_{0:T}(τ) = −α·δ(τ) for every trajectory and every q";

/// The enumeration-route derivation on one trajectory.
pub fn trajectory_derivation(ctx: &ClaimContext, path: &[usize]) -> Derivation {
    let log_z = Poly::var(Var::LogZ);
    let sides = ctx.trajectory_sides(path, &ctx.shared_v_s0(), &log_z, &ClaimContext::ell);
    let mut d = ctx.residual_identity(
        "C1",
        format!("trajectory {}", ctx.env.path_name(path)),
        sides,
    );
    d.identity = format!("{} (V(s0) := α·logZ)", d.identity);
    d
}

/// The structural certificate of one edge: `RL(e) + α·RTB(e) = 0`.
pub fn edge_derivation(ctx: &ClaimContext, e: usize) -> Derivation {
    let ell = ClaimContext::ell(e);
    let zero = Poly::zero();
    let reward = ctx.reward_on(e).unwrap_or(&zero);
    let rl = trust_pcl::step_term(reward, &ell, ctx.log_p(e), &ctx.tpcl_params());
    let rtb_step = rtb::step(
        &ell,
        ctx.log_p(e),
        ctx.reward_on(e),
        &ctx.env.beta,
        ctx.beta_placement(),
    );
    Derivation {
        check: "C1.structural".into(),
        subject: format!("edge {}", ctx.env.edge_name(e)),
        identity: format!("RL(e) + α·RTB(e) = 0{}", ctx.mutant_tag()),
        steps: vec![Step::identity(
            "per-edge step certificate",
            vec![
                term("RL(e)", rl),
                term("α·RTB(e)", rtb_step.scale(&ctx.alpha)),
            ],
        )],
    }
}

/// The structural certificate at the source: `−V(s0) + α·logZ = 0` with `V(s0) := α·logZ`.
pub fn boundary_derivation(ctx: &ClaimContext) -> Derivation {
    Derivation {
        check: "C1.structural".into(),
        subject: format!("source {}", ctx.env.states[ctx.env.source]),
        identity: "−V(s0) + α·logZ = 0 with V(s0) := α·logZ".into(),
        steps: vec![Step::identity(
            "boundary certificate",
            vec![
                term("−V(s0)", ctx.shared_v_s0().neg()),
                term("α·logZ", Poly::var(Var::LogZ).scale(&ctx.alpha)),
            ],
        )],
    }
}

/// Checks C1 by both routes.
pub fn check(ctx: &ClaimContext) -> Certificate {
    let keep = ctx.options.keep;
    let enumeration = match &ctx.trajectories {
        Ok(paths) => {
            let mut r = Recorder::new("C1.trajectories", "enumeration", keep);
            super::budget::stream(
                &ctx.options.budget,
                paths,
                |path| trajectory_derivation(ctx, path),
                |d| r.record(d),
            );
            r
        }
        Err(reason) => Recorder::skipped("C1.trajectories", "enumeration", reason.clone()),
    };
    let mut structural = Recorder::new("C1.structural", "structural", keep);
    structural.record(boundary_derivation(ctx));
    for e in 0..ctx.env.edges.len() {
        structural.record(edge_derivation(ctx, e));
    }
    certificate("C1", STATEMENT, vec![enumeration, structural])
}

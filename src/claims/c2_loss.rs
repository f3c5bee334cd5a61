//! C2 (loss identity): `L_TPCL = ½ C² = α² · ½ δ² = α² L_RTB` per trajectory (hence for any
//! batch and any sampler), with `V(s0) := α log Z` and the `ℓ_e`, `log Z` free.
//!
//! Enumeration: every trajectory. Generic: a trajectory with symbolic aggregates
//! `Σℓ`, `Σlog p` and terminal log-reward `logr` (by linearity of the per-step terms at γ = 1,
//! `Σ_t RL_t = RL(logr, Σℓ, Σlog p)`), then `logr := log r(x)` for every terminal.
use super::{certificate, term, Certificate, ClaimContext, Recorder};
use crate::exact::{Derivation, Poly, Step, Var};
use crate::objectives::{half_square, rtb, trust_pcl};

/// The claim's statement.
pub const STATEMENT: &str = "L_TPCL = α²·L_RTB per trajectory (½C² = α²·½δ²)";

/// Both sides of a generic trajectory: `(C, δ)` over `Σℓ`, `Σlog p`, `logr`, `logZ`.
pub fn generic_sides(ctx: &ClaimContext, v_s0: &Poly) -> (Poly, Poly) {
    let (sum_q, sum_p, log_r) = (
        Poly::var(Var::SumLogQ),
        Poly::var(Var::SumLogP),
        Poly::var(Var::LogR),
    );
    let params = ctx.tpcl_params();
    let rl = trust_pcl::step_term(&log_r, &sum_q, &sum_p, &params);
    let c = trust_pcl::consistency(v_s0, &Poly::zero(), &[rl], &params);
    let step = rtb::step(
        &sum_q,
        &sum_p,
        Some(&log_r),
        &ctx.env.beta,
        ctx.beta_placement(),
    );
    let delta = rtb::residual(&Poly::var(Var::LogZ), &[step]);
    (c, delta)
}

fn loss_derivation(
    ctx: &ClaimContext,
    subject: String,
    mut steps: Vec<Step>,
    c: Poly,
    delta: Poly,
) -> Derivation {
    let (factor, factor_name) = ctx.shared_factor();
    let l_tpcl = ctx.tpcl_loss(&c);
    let l_rtb = half_square(&delta);
    steps.push(Step::computed(
        "Trust-PCL loss L_TPCL = ½·C²",
        vec![term("½·C²", l_tpcl.clone())],
        l_tpcl.clone(),
    ));
    steps.push(Step::computed(
        "RTB loss L_RTB = ½·δ²",
        vec![term("½·δ²", l_rtb.clone())],
        l_rtb.clone(),
    ));
    steps.push(Step::identity(
        format!("collect L_TPCL − {factor_name}·L_RTB"),
        vec![
            term("L_TPCL", l_tpcl),
            term(format!("−{factor_name}·L_RTB"), l_rtb.scale(&-factor)),
        ],
    ));
    Derivation {
        check: "C2".into(),
        subject,
        identity: format!(
            "L_TPCL − {factor_name}·L_RTB = 0 with α = {}{}",
            ctx.alpha,
            ctx.mutant_tag()
        ),
        steps,
    }
}

/// The enumeration-route derivation on one trajectory.
pub fn trajectory_derivation(ctx: &ClaimContext, path: &[usize]) -> Derivation {
    let sides = ctx.trajectory_sides(
        path,
        &ctx.shared_v_s0(),
        &Poly::var(Var::LogZ),
        &ClaimContext::ell,
    );
    loss_derivation(
        ctx,
        format!("trajectory {}", ctx.env.path_name(path)),
        sides.steps,
        sides.consistency,
        sides.residual,
    )
}

/// The generic-trajectory derivation, optionally with `logr := log r(x)` for terminal `x`.
pub fn generic_derivation(ctx: &ClaimContext, terminal: Option<usize>) -> Derivation {
    let (mut c, mut delta) = generic_sides(ctx, &ctx.shared_v_s0());
    let mut steps = vec![
        Step::computed(
            "generic consistency C = −V(s0) + RL(logr, Σℓ, Σlog p)",
            vec![term("C", c.clone())],
            c.clone(),
        ),
        Step::computed(
            "generic RTB residual δ = logZ + Σℓ − Σlog p − β·logr",
            vec![term("δ", delta.clone())],
            delta.clone(),
        ),
    ];
    let subject = match terminal {
        Some(x) => {
            c = c.substitute(&Var::LogR, ctx.log_r(x));
            delta = delta.substitute(&Var::LogR, ctx.log_r(x));
            steps.push(Step::computed(
                format!("substitute logr := log r({})", ctx.env.states[x]),
                vec![term("C", c.clone()), term("α·δ", delta.scale(&ctx.alpha))],
                c.add(&delta.scale(&ctx.alpha)),
            ));
            format!("generic trajectory into {}", ctx.env.states[x])
        }
        None => "generic trajectory".to_string(),
    };
    loss_derivation(ctx, subject, steps, c, delta)
}

/// Checks C2 by enumeration and on the generic trajectory.
pub fn check(ctx: &ClaimContext) -> Certificate {
    let keep = ctx.options.keep;
    let enumeration = match &ctx.trajectories {
        Ok(paths) => {
            let mut r = Recorder::new("C2.trajectories", "enumeration", keep);
            super::budget::stream(
                &ctx.options.budget,
                paths,
                |path| trajectory_derivation(ctx, path),
                |d| r.record(d),
            );
            r
        }
        Err(reason) => Recorder::skipped("C2.trajectories", "enumeration", reason.clone()),
    };
    let mut generic = Recorder::new("C2.generic", "generic", keep);
    generic.record(generic_derivation(ctx, None));
    for x in ctx.env.terminals() {
        generic.record(generic_derivation(ctx, Some(x)));
    }
    certificate("C2", STATEMENT, vec![enumeration, generic])
}

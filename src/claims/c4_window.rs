//! C4 (window identity): for every window `s_i → … → s_j`, `C_{i:j} = −α δ_{i:j}` with
//! `V(s) = α log F(s)` (`V(x) = 0`, `log F(x) = β log r(x)` at terminals), the `log F(s)` and
//! `ℓ_e` free symbols.
//!
//! Enumeration: every window (every non-empty path from any state). Structural (O(|E|)):
//! every start boundary `−V(s) + α·logF(s) = 0`, every edge `RL(e) + α·(ℓ_e − log p_e) −
//! [e enters x]·log r(x) = 0`, every end boundary `V(s) − α·logF(s) = 0` (non-terminal) and
//! `V(x) − α·logF(x) + log r(x) = 0` (terminal). A window's `C + α·δ` is exactly the start
//! certificate plus its edges' plus its end's (the `log r` terms cancel because only the last
//! edge of a window can enter a terminal), so every window satisfies the identity.
use super::{certificate, term, Certificate, ClaimContext, Recorder};
use crate::exact::{Derivation, Poly, Step, Var};
use crate::objectives::trust_pcl;

/// The claim's statement.
pub const STATEMENT: &str = "C_{i:j} = −α·δ_{i:j} for every window, with V(s) = α·logF(s)";

fn log_f(s: usize) -> Poly {
    Poly::var(Var::LogF(s))
}

/// The enumeration-route derivation on one window.
pub fn window_derivation(ctx: &ClaimContext, path: &[usize]) -> Derivation {
    let value = |s: usize| log_f(s).scale(&ctx.alpha);
    let sides = ctx.window_sides(path, &value, &log_f, &ClaimContext::ell);
    let mut d = ctx.residual_identity("C4", format!("window {}", ctx.env.path_name(path)), sides);
    d.identity = format!("{} (V(s) := α·logF(s))", d.identity);
    d
}

/// The structural certificates: start and end boundaries per state, one per edge.
pub fn structural_derivations(ctx: &ClaimContext) -> Vec<Derivation> {
    let env = ctx.env;
    let alpha = &ctx.alpha;
    let tag = ctx.mutant_tag();
    let mut out = Vec::new();
    for s in 0..env.states.len() {
        let v = if env.is_terminal(s) {
            Poly::zero()
        } else {
            log_f(s).scale(alpha)
        };
        let mut steps = Vec::new();
        if !env.is_terminal(s) {
            steps.push(Step::identity(
                "start boundary −V(s) + α·logF(s)",
                vec![
                    term("−V(s)", v.neg()),
                    term("α·logF(s)", log_f(s).scale(alpha)),
                ],
            ));
        }
        if s != env.source {
            let mut terms = vec![
                term("V(s)", v.clone()),
                term(
                    "−α·logF(s)",
                    ctx.log_f_end(s, &log_f).scale(&-alpha.clone()),
                ),
            ];
            if env.is_terminal(s) {
                terms.push(term("log r(s) from the last RL term", ctx.log_r(s).clone()));
            }
            steps.push(Step::identity("end boundary", terms));
        }
        out.push(Derivation {
            check: "C4.structural".into(),
            subject: format!("state {}", env.states[s]),
            identity: format!("boundary certificates with V(s) := α·logF(s){tag}"),
            steps,
        });
    }
    let params = ctx.tpcl_params();
    let zero = Poly::zero();
    for e in 0..env.edges.len() {
        let ell = ClaimContext::ell(e);
        let reward = ctx.reward_on(e).unwrap_or(&zero);
        let rl = trust_pcl::step_term(reward, &ell, ctx.log_p(e), &params);
        let ratio = ell.sub(ctx.log_p(e)).scale(&ctx.ratio_weight());
        let mut terms = vec![
            term("RL(e)", rl),
            term("α·w·(ℓ_e − log p_e)", ratio.scale(alpha)),
        ];
        if let Some(r) = ctx.reward_on(e) {
            terms.push(term("−log r(x), moved to the end boundary", r.neg()));
        }
        out.push(Derivation {
            check: "C4.structural".into(),
            subject: format!("edge {}", env.edge_name(e)),
            identity: format!("RL(e) + α·(ℓ_e − log p_e) − [e enters x]·log r(x) = 0{tag}"),
            steps: vec![Step::identity("per-edge step certificate", terms)],
        });
    }
    out
}

/// Checks C4 by both routes.
pub fn check(ctx: &ClaimContext) -> Certificate {
    let keep = ctx.options.keep;
    let enumeration = match &ctx.windows {
        Ok(windows) => {
            let mut r = Recorder::new("C4.windows", "enumeration", keep);
            super::budget::stream(
                &ctx.options.budget,
                windows,
                |w| window_derivation(ctx, w),
                |d| r.record(d),
            );
            r
        }
        Err(reason) => Recorder::skipped("C4.windows", "enumeration", reason.clone()),
    };
    let mut structural = Recorder::new("C4.structural", "structural", keep);
    for d in structural_derivations(ctx) {
        structural.record(d);
    }
    certificate("C4", STATEMENT, vec![enumeration, structural])
}

//! C7 (negative controls): the flawed baseline (raw reward `r(x)` in the advantage where
//! `log r(x)` belongs, plus a squared log-ratio penalty `κ (log q(τ) − log p(τ))²`) does not have
//! the target `q*` as its fixed point: its expected gradient at `q*` is exactly non-zero
//! wherever the rewards are not all equal. The correct objectives (RTB, REINFORCE-KL and
//! Trust-PCL) have an exactly zero expected gradient there.
//!
//! `κ = α/2`, so that the penalty's gradient `2κ (log q − log p)·∇log q(τ)` is exactly the KL
//! term of REINFORCE-KL and the only difference left is `r` against `log r`.
//!
//! Checks: `C7.flawed.routes` computes `E_{q*}[∇_θ L_flawed]` twice, by the forward/backward
//! trajectory DP of C6 at `q*` and by a terminal-value recursion that uses
//! `log q*(τ) − log p(τ) = β log r(x) − log Z*` (so `X(τ)` depends on the terminal only);
//! `C7.flawed.nonzero` exhibits an edge whose component is provably non-zero
//! ([`Poly::refutes`]); `C7.correct.zero` shows `E_{q*}[∇L] = 0` for RTB, REINFORCE-KL and
//! Trust-PCL on every edge, by route 1 collapsed where the objective's residual is one
//! constant on every trajectory ([`route_one_constant`], decided exactly, edge by edge) and
//! by the full DP where it is not (under a mutant). The parts need `q*` and are skipped,
//! with the reason, where it is irrational. `C7.mutants.differ` runs everywhere: each of `verify`'s mutants, built
//! explicitly beside the correct objective on the generic trajectory, differs from it by a
//! provably non-zero amount (`beta-on-ratio` and `alpha-not-squared` only where β ≠ 1), so a
//! mutant that leaves a claim holding does so because the claim does not involve it, not
//! because the mutant is secretly the identity. The numerical stationary point of the flawed field (floating point) lives
//! outside the claims, in `objectives::flawed_fixed_point`, and is reported by `report`.
//!
//! Mutants: `beta-on-ratio` (β ≠ 1) breaks `C7.correct.zero` for RTB and `flipped-sign` for
//! Trust-PCL; `missing-half` doubles a zero and `alpha-not-squared` is not used here, so
//! those two leave C7 holding.
use super::c5_fixed_point::optimum_polys;
use super::c5_fixed_point::OptimumPolys;
use super::c6_expected_gradient::{
    route_one, route_one_constant, route_one_h_transform, route_two, route_two_h_transform,
    Functional, RouteOne,
};
use super::{certificate, term, Certificate, ClaimContext, Recorder, SkipReason};
use crate::exact::{Derivation, FracPoly, Poly, Rational, Step, Var};
use crate::objectives::reinforce;

/// The claim's statement.
pub const STATEMENT: &str = "the flawed baseline's E_q*[∇θ L] ≠ 0 (its fixed point is not q*) where rewards differ; RTB, REINFORCE-KL, Trust-PCL have E_q*[∇θ L] = 0";

/// The check names, in report order.
pub const CHECKS: [&str; 4] = [
    "C7.flawed.routes",
    "C7.flawed.nonzero",
    "C7.correct.zero",
    "C7.mutants.differ",
];

/// The flawed baseline's penalty weight `κ = α/2`.
pub fn kappa(ctx: &ClaimContext) -> Rational {
    &ctx.alpha / Rational::from_integer(2.into())
}

/// The flawed baseline as a trajectory functional: `∂L/∂ℓ_e = X(τ)` with
/// `X = −(r(x) − b) + 2κ(log q(τ) − log p(τ))`, read off [`reinforce::flawed_loss`] by its
/// symbolic derivative in `Σℓ` (it is affine in `Σℓ`, `Σlog p`, `r` and `b`). The baseline
/// `b` is the free symbol `V(s0)`.
pub fn flawed_functional(ctx: &ClaimContext, log_q: &dyn Fn(usize) -> Poly) -> Functional {
    let env = ctx.env;
    let k = kappa(ctx);
    let (r, b, sq, sp) = (Var::LogR, Var::V(env.source), Var::SumLogQ, Var::SumLogP);
    let loss = reinforce::flawed_loss(
        &Poly::var(r.clone()),
        &Poly::var(b.clone()),
        &Poly::var(sq.clone()),
        &Poly::var(sp.clone()),
        &k,
    );
    let x = loss.derivative(&sq);
    let at = |reward: Poly, baseline: Poly, lq: Poly, lp: Poly| {
        x.substitute_all(&|v| {
            Some(match v {
                Var::LogR => reward.clone(),
                Var::SumLogQ => lq.clone(),
                Var::SumLogP => lp.clone(),
                v if *v == Var::V(env.source) => baseline.clone(),
                _ => return None,
            })
        })
    };
    let zero = Poly::zero;
    let per_edge = (0..env.edges.len())
        .map(|e| {
            let to = env.edges[e].to;
            let reward = if env.is_terminal(to) {
                Poly::constant(env.reward(to).clone())
            } else {
                zero()
            };
            at(reward, zero(), log_q(e), ctx.log_p(e).clone())
        })
        .collect();
    Functional {
        name: "X".into(),
        loss: "L_flawed".into(),
        constant: at(zero(), Poly::var(b), zero(), zero()),
        per_edge,
        weight: vec![Rational::from_integer(1.into()); env.edges.len()],
    }
}

/// The flawed baseline's route 1 at `q*`, computed once per context, or why `q*` is not
/// rational.
pub fn flawed_route_at_optimum<'c>(ctx: &'c ClaimContext) -> Result<&'c RouteOne, SkipReason> {
    ctx.flawed_at_optimum
        .get_or_init(|| {
            let opt = optimum_polys(ctx)?;
            let log_q = |e: usize| opt.log_policy[e].clone();
            Ok(route_one_at_optimum(
                ctx,
                opt,
                flawed_functional(ctx, &log_q),
            ))
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// What the h-transform routes at `q*` need: the prior per edge and `h = F*` per state
/// (`None` where the optimum is not rational).
fn prior_and_flow<'c>(ctx: &'c ClaimContext) -> (Vec<Rational>, Option<&'c [Rational]>) {
    let prior = ctx.env.edges.iter().map(|e| e.prior.clone()).collect();
    let flow = ctx.optimum.as_ref().ok().map(|o| o.flow.as_slice());
    (prior, flow)
}

/// Route 1 at `q*`: by the h-transform of the prior with `h = F*`
/// ([`route_one_h_transform`], small denominators), or directly where that does not apply.
fn route_one_at_optimum(
    ctx: &ClaimContext,
    opt: &OptimumPolys,
    functional: Functional,
) -> RouteOne {
    let env = ctx.env;
    let budget = &ctx.options.budget;
    let (prior, flow) = prior_and_flow(ctx);
    // The functional moves into the h-transform route and comes back where it does not
    // apply, so it is never cloned.
    match flow {
        Some(h) => route_one_h_transform(env, &prior, h, &opt.policy, functional, budget),
        None => Err(functional),
    }
    .unwrap_or_else(|functional| route_one(env, &opt.policy, functional, budget))
}

/// `occ*(s)`, the occupancy of the optimum: `π(s)·F*(s)/Z*` with the prior's occupancy `π`
/// (small denominators, see [`route_one_h_transform`]), or the flows of `q*` directly where
/// `F*` is not at hand.
fn occupancy_at_optimum(ctx: &ClaimContext, policy: &[Rational]) -> Vec<Rational> {
    use super::budget::flows_of;
    use super::c6_expected_gradient::h_transform_occupancy;
    use num_traits::Zero;
    let budget = &ctx.options.budget;
    match prior_and_flow(ctx) {
        (prior, Some(h)) if !h[ctx.env.source].is_zero() => h_transform_occupancy(
            &flows_of(ctx.env, &prior, budget).state,
            h,
            &h[ctx.env.source].recip(),
        ),
        _ => flows_of(ctx.env, policy, budget).state,
    }
}

/// `E_{q*}[∂L_flawed/∂θ_b]` per edge (route 1, reduced), or why `q*` is not rational.
pub fn flawed_gradient_at_optimum(ctx: &ClaimContext) -> Result<Vec<Poly>, SkipReason> {
    Ok(flawed_route_at_optimum(ctx)?
        .gradient
        .iter()
        .map(FracPoly::to_poly)
        .collect())
}

/// True when every terminal has the same reward.
pub fn rewards_all_equal(ctx: &ClaimContext) -> bool {
    let terminals = ctx.env.terminals();
    terminals
        .iter()
        .all(|&x| ctx.env.reward(x) == ctx.env.reward(terminals[0]))
}

/// Checks C7.
pub fn check(ctx: &ClaimContext) -> Certificate {
    let env = ctx.env;
    let keep = ctx.options.keep;
    let tag = ctx.mutant_tag();
    let opt = match optimum_polys(ctx) {
        Ok(opt) => opt,
        Err(reason) => {
            let mut recorders: Vec<Recorder> = CHECKS[..3]
                .iter()
                .map(|n| Recorder::skipped(n, "dp", reason.clone()))
                .collect();
            recorders.push(mutants_differ(ctx, keep));
            return certificate("C7", STATEMENT, recorders);
        }
    };
    let policy = &opt.policy;
    let log_q = |e: usize| opt.log_policy[e].clone();
    let flawed = match flawed_route_at_optimum(ctx) {
        Ok(route) => route,
        Err(reason) => unreachable!("q* is rational here: {reason}"),
    };

    // The terminal route: at q*, X(τ) = −(r(x) − b) + 2κ(β·log r(x) − logZ*) depends on the
    // terminal only, so E[X·(n_b − q*(b)·n_s)] = occ*(s)·q*(b)·(h(s') − h(s)) with
    // h(s) = E_{q*}[X | s], the Bellman recursion of C6 with a terminal cost and no score term.
    let k2 = kappa(ctx) * Rational::from_integer(2.into());
    let baseline = Poly::var(Var::V(env.source));
    let cost: Vec<Poly> = (0..env.edges.len())
        .map(|e| {
            let to = env.edges[e].to;
            if env.is_terminal(to) {
                let ratio = ctx.log_r(to).scale(&env.beta).sub(&opt.log_z);
                Poly::constant(-env.reward(to).clone())
                    .add(&baseline)
                    .add(&ratio.scale(&k2))
            } else {
                Poly::zero()
            }
        })
        .collect();
    let no_score = vec![Rational::from_integer(0.into()); env.edges.len()];
    let (prior, flow) = prior_and_flow(ctx);
    // By the h-transform of the prior (h = F*, small denominators), directly where that does
    // not apply.
    let terminal = flow
        .and_then(|h| {
            route_two_h_transform(
                env,
                &prior,
                h,
                policy,
                "E_q*[L_flawed]",
                &cost,
                no_score.clone(),
                &ctx.options.budget,
            )
        })
        .unwrap_or_else(|| {
            route_two(
                env,
                policy,
                "E_q*[L_flawed]",
                &cost,
                no_score,
                &ctx.options.budget,
            )
        });

    let mut routes = Recorder::new(CHECKS[0], "dp", keep);
    for b in 0..env.edges.len() {
        let holds = flawed.gradient[b]
            .equals_scaled(&terminal.gradient[b], &Rational::from_integer(1.into()));
        routes.record_with(1, u64::from(!holds), || {
            let mut steps = flawed.steps(env, policy, b);
            steps.push(terminal.step(env, policy, b));
            steps.push(Step::identity(
                "trajectory DP − terminal-value recursion",
                vec![
                    term("trajectory DP", flawed.gradient[b].to_poly()),
                    term("−terminal route", terminal.gradient[b].to_poly().neg()),
                ],
            ));
            Derivation {
                check: CHECKS[0].into(),
                subject: format!("edge {} at q*", env.edge_name(b)),
                identity: format!(
                    "E_q*[∂L_flawed/∂θ] by two routes, κ = α/2 = {}, any baseline b = V(s0)",
                    kappa(ctx)
                ),
                steps,
            }
        });
    }

    let nonzero = if rewards_all_equal(ctx) {
        Recorder::skipped(CHECKS[1], "dp", SkipReason::RewardsAllEqual)
    } else {
        let mut r = Recorder::new(CHECKS[1], "dp", keep);
        let found = (0..env.edges.len()).find(|&b| flawed.gradient[b].to_poly().refutes());
        let b = found.unwrap_or(0);
        let witness = flawed.gradient[b].to_poly();
        r.record_nonzero(
            Derivation {
                check: CHECKS[1].into(),
                subject: format!("edge {} at q*", env.edge_name(b)),
                identity: "E_q*[∂L_flawed/∂θ] ≠ 0: q* is not the flawed baseline's fixed point"
                    .into(),
                steps: vec![Step::collect(
                    format!("E_q*[∂L_flawed/∂θ({})]", env.edge_name(b)),
                    vec![term("route 1", witness.clone())],
                )],
            },
            &witness,
        );
        r
    };

    let mut correct = Recorder::new(CHECKS[2], "dp", keep);
    // Each correct objective's residual is one constant on every trajectory at q* (unless a
    // mutant breaks it): route 1 then collapses to `E[X·1[e ∈ τ]] = K·occ*(s)·q*(e)`, and
    // the full DP runs only where the residual is not constant.
    let occ = occupancy_at_optimum(ctx, policy);
    let correct_route = |functional: Functional| {
        route_one_constant(env, policy, &occ, functional)
            .unwrap_or_else(|functional| route_one_at_optimum(ctx, opt, functional))
    };
    let (rtb, (reinforce, trust_pcl)) = rayon::join(
        || correct_route(Functional::rtb(ctx, &log_q)),
        || {
            rayon::join(
                || correct_route(Functional::reinforce(ctx, &log_q)),
                || correct_route(Functional::trust_pcl(ctx, &log_q)),
            )
        },
    );
    let objectives = [rtb, reinforce, trust_pcl];
    for b in 0..env.edges.len() {
        let failed = objectives
            .iter()
            .filter(|o| !o.gradient[b].is_zero())
            .count() as u64;
        correct.record_with(objectives.len() as u64, failed, || {
            let steps = objectives
                .iter()
                .map(|o| {
                    Step::identity(
                        format!("E_q*[∂{}/∂θ]", o.functional.loss),
                        vec![term("route 1", o.gradient[b].to_poly())],
                    )
                })
                .collect();
            Derivation {
                check: CHECKS[2].into(),
                subject: format!("edge {} at q*", env.edge_name(b)),
                identity: format!(
                    "E_q*[∇L] = 0 for RTB (any logZ), REINFORCE-KL (any b), Trust-PCL (any V(s0)){tag}"
                ),
                steps,
            }
        });
    }
    certificate(
        "C7",
        STATEMENT,
        vec![routes, nonzero, correct, mutants_differ(ctx, keep)],
    )
}

/// `C7.mutants.differ`: every mutant that applies is a real change of the definitions. Each
/// mutant is applied by [`Definitions::mutated`] (the one place mutants act), and both
/// definitions are evaluated by the one evaluator on the generic trajectory; the first
/// quantity that differs is recorded.
fn mutants_differ(ctx: &ClaimContext, keep: usize) -> Recorder {
    use crate::mutant::Mutant;
    use crate::objectives::{evaluate, Definitions, Trajectory};
    let env = ctx.env;
    let alpha = &ctx.alpha;
    let (sq, sp, lr, lz) = (
        Poly::var(Var::SumLogQ),
        Poly::var(Var::SumLogP),
        Poly::var(Var::LogR),
        Poly::var(Var::LogZ),
    );
    let generic = [Trajectory {
        log_q: vec![sq],
        log_p: vec![sp],
        log_r: lr.clone(),
        reward: lr,
        window: None,
    }];
    // The quantities a mutant may change, most specific first: the residuals, then the loss,
    // then the predicted factor.
    let quantities = |defs: &Definitions| -> Vec<(&'static str, Poly)> {
        let eval = |o, scalar: &Poly| {
            evaluate(o, &defs.beta, &generic, scalar).expect("the generic trajectory is valid")
        };
        let tpcl = eval(&defs.tpcl, &lz.scale(alpha));
        let rtb = eval(&defs.rtb, &lz);
        vec![
            ("the consistency C", tpcl.residuals[0].clone()),
            ("the RTB residual δ", rtb.residuals[0].clone()),
            ("the Trust-PCL loss", tpcl.loss),
            (
                "the shared-scalar factor",
                Poly::constant(defs.factors.shared_scalar.of(alpha)),
            ),
        ]
    };
    let correct = quantities(&Definitions::new(env.beta.clone()));
    let mut r = Recorder::new(CHECKS[3], "generic", keep);
    for mutant in Mutant::ALL {
        let mutated = quantities(&Definitions::new(env.beta.clone()).mutated(Some(mutant)));
        let changed = mutated
            .into_iter()
            .zip(&correct)
            .find(|((_, m), (_, c))| m != c);
        let ((what, variant), reference) = match changed {
            Some(((what, m), (_, c))) => ((what, m), c.clone()),
            // At β = 1 these mutants are the identity (documented in `mutant`): not applicable.
            None if matches!(mutant, Mutant::BetaOnRatio | Mutant::AlphaNotSquared)
                && env.beta == Rational::from_integer(1.into()) =>
            {
                continue
            }
            None => (correct[0].clone(), correct[0].1.clone()),
        };
        let difference = variant.sub(&reference);
        r.record_nonzero(
            Derivation {
                check: CHECKS[3].into(),
                subject: format!("mutant {mutant} on the generic trajectory"),
                identity: format!("{what} under the mutant differs from the definition's"),
                steps: vec![Step::collect(
                    "mutant − correct",
                    vec![term("mutant", variant), term("−correct", reference.neg())],
                )],
            },
            &difference,
        );
    }
    r
}

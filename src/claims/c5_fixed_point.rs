//! C5 (fixed point): at `q*`, `log Z*`, `V* = α log F*` every `δ`, `δ_{i:j}` and `C_{i:j}` is
//! exactly zero; `J(q*) = α log Z*`; and `KL(q ‖ q*) = log Z* − β J(q)` at the spec's `q`.
//!
//! Needs the optimum to be rational: where some `r(x)^β` is irrational every check is
//! skipped with that reason (never rounded). Routes: structural (every one-step SubTB
//! residual and one-step consistency is zero, and `log Z* = log F*(s0)`; windows and
//! trajectories are sums of one-step terms at γ = 1), enumeration (every trajectory and
//! window), DP (`J` and `KL` by occupancy measures in O(|E|)), and enumeration cross-checks
//! of `J` and `KL` as sums over trajectories.
use super::{certificate, term, Certificate, ClaimContext, Recorder, SkipReason};
use crate::dag::{dp, LogCombination, LogKey, PolicyLog};
use crate::exact::gcd::mul;
use crate::exact::{Derivation, Poly, Rational, Step};
use crate::objectives::{subtb, trust_pcl};
use num_traits::{One, Zero};

/// The claim's statement.
pub const STATEMENT: &str =
    "at q*, logZ*, V* = α·logF*: all residuals vanish; J(q*) = α·logZ*; KL(q‖q*) = logZ* − β·J(q)";

/// The check names, in report order.
pub const CHECKS: [&str; 7] = [
    "C5.optimum",
    "C5.zeros.structural",
    "C5.zeros.trajectories",
    "C5.zeros.windows",
    "C5.J.dp",
    "C5.KL.dp",
    "C5.J-KL.enumeration",
];

pub use super::context::OptimumPolys;

/// The optimum as polynomials, or why it is not rational: built once per context (C5, C6,
/// C7 and the report all read it).
pub fn optimum_polys<'c>(ctx: &'c ClaimContext) -> Result<&'c OptimumPolys, SkipReason> {
    ctx.optimum_polys
        .get_or_init(|| {
            let opt = ctx.optimum.as_ref().map_err(|e| e.clone())?;
            let logs = ctx
                .logs
                .optimum
                .as_ref()
                .ok_or(SkipReason::OptimumLogsMissing)?;
            Ok(OptimumPolys {
                log_policy: logs.log_policy.iter().map(Poly::from_logform).collect(),
                log_flow: logs.log_flow.iter().map(Poly::from_logform).collect(),
                log_z: Poly::from_logform(&logs.log_z),
                policy: opt.policy.clone(),
            })
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// The terms of a collected combination of logs, each expanded over the base.
fn expand(ctx: &ClaimContext, combination: &LogCombination) -> Vec<(String, Poly)> {
    let env = ctx.env;
    combination
        .terms()
        .map(|(key, c)| {
            let label = match *key {
                LogKey::Prior(e) => format!("log p({})", env.edge_name(e)),
                LogKey::Posterior(e) => format!("log q({})", env.edge_name(e)),
                LogKey::Flow(s) => format!("log F*({})", env.states[s]),
                LogKey::Reward(x) => format!("log r({})", env.states[x]),
            };
            let form = ctx
                .logs
                .form(*key)
                .expect("log F* is only combined when the optimum is rational");
            (format!("{c}·{label}"), Poly::from_logform(form).scale(c))
        })
        .collect()
}

/// `(E_q[log r(x)], KL(q ‖ other))` for a policy, by occupancy: the terminal marginal for the
/// first, the chain rule of KL, `Σ_s occ(s) Σ_e q(e) (log q(e) − log other(e))`, for the
/// second. Coefficients are collected per log before expansion (so `log F*` of inner states
/// cancels exactly, as flow conservation says). Returns the steps and the two values.
pub fn reward_and_kl(
    ctx: &ClaimContext,
    policy: &[Rational],
    log_policy: PolicyLog,
    other: PolicyLog,
    other_name: &str,
) -> (Vec<Step>, Poly, Poly) {
    let env = ctx.env;
    let flows = super::budget::flows_of(env, policy, &ctx.options.budget);
    let (occ, edge_flow) = (flows.state, flows.edge);
    let mut reward = LogCombination::default();
    for x in env.terminals() {
        reward.add(LogKey::Reward(x), &occ[x]);
    }
    let mut kl = LogCombination::default();
    for (e, weight) in edge_flow.iter().enumerate() {
        kl.add_policy(env, log_policy, e, weight);
        kl.add_policy(env, other, e, &-weight.clone());
    }
    let reward = Step::collect("E[log r(x)] = Σ_x occ(x)·log r(x)", expand(ctx, &reward));
    let kl = Step::collect(
        format!("KL(q ‖ {other_name}) = Σ_s occ(s)·Σ_e q(e)·(log q(e) − log {other_name}(e)), collected per log"),
        expand(ctx, &kl),
    );
    let (r, k) = (reward.result.clone(), kl.result.clone());
    (vec![reward, kl], r, k)
}

/// `J(q)` at the spec's q, computed once per context.
pub fn j_of_spec_q<'c>(ctx: &'c ClaimContext) -> &'c (Vec<Step>, Poly) {
    ctx.j_q
        .get_or_init(|| j_of(ctx, &ctx.env.posterior(), PolicyLog::Posterior))
}

/// `KL(q ‖ q*)` at the spec's q (the optimum must be rational), computed once per context.
pub fn kl_spec_q_to_optimum<'c>(ctx: &'c ClaimContext) -> &'c (Vec<Step>, Poly) {
    ctx.kl_q_qstar.get_or_init(|| {
        let (steps, _, kl) = reward_and_kl(
            ctx,
            &ctx.env.posterior(),
            PolicyLog::Posterior,
            PolicyLog::Optimal,
            "q*",
        );
        (steps, kl)
    })
}

/// `J(q) = E_q[log r] − α KL(q ‖ p)` by DP, with its steps.
pub fn j_of(ctx: &ClaimContext, policy: &[Rational], log_policy: PolicyLog) -> (Vec<Step>, Poly) {
    let (mut steps, reward, kl) = reward_and_kl(ctx, policy, log_policy, PolicyLog::Prior, "p");
    let j_step = Step::collect(
        "J = E[log r] − α·KL(q ‖ p)",
        vec![
            term("E[log r]", reward),
            term("−α·KL", kl.scale(&-ctx.alpha.clone())),
        ],
    );
    let j = j_step.result.clone();
    steps.push(j_step);
    (steps, j)
}

fn structural(ctx: &ClaimContext, opt: &OptimumPolys) -> Vec<Derivation> {
    let env = ctx.env;
    let alpha = &ctx.alpha;
    let log_f = |s: usize| opt.log_flow[s].clone();
    let value = |s: usize| {
        if env.is_terminal(s) {
            Poly::zero()
        } else {
            opt.log_flow[s].scale(alpha)
        }
    };
    let params = ctx.tpcl_params();
    let zero = Poly::zero();
    let tag = ctx.mutant_tag();
    let mut out = vec![Derivation {
        check: "C5.zeros.structural".into(),
        subject: "source".into(),
        identity: "logZ* − logF*(s0) = 0".into(),
        steps: vec![Step::identity(
            "RTB start boundary",
            vec![
                term("logZ*", opt.log_z.clone()),
                term("−logF*(s0)", log_f(env.source).neg()),
            ],
        )],
    }];
    for e in 0..env.edges.len() {
        let (from, to) = (env.edges[e].from, env.edges[e].to);
        let ell = [opt.log_policy[e].clone()];
        let log_p = [ctx.log_p(e).clone()];
        let end = ctx.log_f_end(to, &log_f);
        let delta = subtb::residual(&log_f(from), &ell, &log_p, &end, &ctx.ratio_weight());
        let reward = ctx.reward_on(e).unwrap_or(&zero);
        let rl = trust_pcl::step_term(reward, &ell[0], &log_p[0], &params);
        let c = trust_pcl::consistency(&value(from), &value(to), &[rl], &params);
        out.push(Derivation {
            check: "C5.zeros.structural".into(),
            subject: format!("edge {}", env.edge_name(e)),
            identity: format!("one-step δ and C vanish at q*, logF*, V* = α·logF*{tag}"),
            steps: vec![
                Step::identity("one-step SubTB residual δ_e", vec![term("δ_e", delta)]),
                Step::identity("one-step consistency C_e", vec![term("C_e", c)]),
            ],
        });
    }
    out
}

fn zero_sides(check: &str, subject: String, sides: super::context::Sides, tag: &str) -> Derivation {
    let mut steps = sides.steps;
    steps.push(Step::identity(
        "C at the optimum",
        vec![term("C", sides.consistency)],
    ));
    steps.push(Step::identity(
        "δ at the optimum",
        vec![term("δ", sides.residual)],
    ));
    Derivation {
        check: check.into(),
        subject,
        identity: format!("C = 0 and δ = 0 at the optimum{tag}"),
        steps,
    }
}

/// Checks C5 (skipped, with the reason, where the optimum is irrational).
pub fn check(ctx: &ClaimContext) -> Certificate {
    let opt = match optimum_polys(ctx) {
        Ok(opt) => opt,
        Err(reason) => {
            let recorders = CHECKS
                .iter()
                .map(|n| Recorder::skipped(n, "exact", reason.clone()))
                .collect();
            return certificate("C5", STATEMENT, recorders);
        }
    };
    let env = ctx.env;
    let keep = ctx.options.keep;
    let alpha = &ctx.alpha;
    let tag = ctx.mutant_tag();
    let log_q_star = |e: usize| opt.log_policy[e].clone();
    let log_f_star = |s: usize| opt.log_flow[s].clone();

    // The optimum itself, exactly in rationals: Bellman's equation makes q* a probability at
    // every state, q*(e)·F*(s) = p(e)·F*(s') (which is what makes log q* the sum of logs used
    // everywhere below), Z* = F*(s0), and F*(x)^(1/β) = r(x) at every terminal.
    let mut optimum = Recorder::new(CHECKS[0], "exact", keep);
    if let Ok(o) = &ctx.optimum {
        let rational = |label: String, difference: Rational| {
            Step::identity(label, vec![term("difference", Poly::constant(difference))])
        };
        let mut steps = Vec::new();
        for s in (0..env.states.len()).filter(|&s| !env.is_terminal(s)) {
            let mass = env.out_edges[s]
                .iter()
                .fold(Rational::zero(), |acc, &e| acc + &o.policy[e]);
            steps.push(rational(
                format!("Σ_e q*(e) − 1 at {}", env.states[s]),
                mass - Rational::one(),
            ));
        }
        for (e, edge) in env.edges.iter().enumerate() {
            steps.push(rational(
                format!("q*·F*(s) − p·F*(s') on {}", env.edge_name(e)),
                mul(&o.policy[e], &o.flow[edge.from]) - mul(&edge.prior, &o.flow[edge.to]),
            ));
        }
        steps.push(rational("Z* − F*(s0)".into(), &o.z - &o.flow[env.source]));
        for x in env.terminals() {
            // Inverting the power is independent of how F*(x) was computed.
            let difference = match crate::exact::exact_power(&o.flow[x], &env.beta.recip()) {
                Some(root) => root - env.reward(x),
                None => o.flow[x].clone(),
            };
            steps.push(rational(
                format!("F*({0})^(1/β) − r({0})", env.states[x]),
                difference,
            ));
        }
        optimum.record(Derivation {
            check: CHECKS[0].into(),
            subject: "the optimum".into(),
            identity: "q* is a policy, q*·F*(s) = p·F*(s'), Z* = F*(s0), F*(x) = r(x)^β".into(),
            steps,
        });
    }

    let mut zeros = Recorder::new(CHECKS[1], "structural", keep);
    for d in structural(ctx, opt) {
        zeros.record(d);
    }

    let trajectories = match &ctx.trajectories {
        Ok(paths) => {
            let mut r = Recorder::new(CHECKS[2], "enumeration", keep);
            let v_s0 = opt.log_z.scale(alpha);
            super::budget::stream(
                &ctx.options.budget,
                paths,
                |path| {
                    let sides = ctx.trajectory_sides(path, &v_s0, &opt.log_z, &log_q_star);
                    zero_sides(
                        CHECKS[2],
                        format!("trajectory {}", env.path_name(path)),
                        sides,
                        &tag,
                    )
                },
                |d| r.record(d),
            );
            r
        }
        Err(reason) => Recorder::skipped(CHECKS[2], "enumeration", reason.clone()),
    };

    let windows = match &ctx.windows {
        Ok(windows) => {
            let mut r = Recorder::new(CHECKS[3], "enumeration", keep);
            let value = |s: usize| opt.log_flow[s].scale(alpha);
            super::budget::stream(
                &ctx.options.budget,
                windows,
                |w| {
                    let sides = ctx.window_sides(w, &value, &log_f_star, &log_q_star);
                    zero_sides(
                        CHECKS[3],
                        format!("window {}", env.path_name(w)),
                        sides,
                        &tag,
                    )
                },
                |d| r.record(d),
            );
            r
        }
        Err(reason) => Recorder::skipped(CHECKS[3], "enumeration", reason.clone()),
    };

    // J(q*) = α·logZ*; the three DP passes (J at q*, KL and J at q) are independent.
    let mut j_rec = Recorder::new(CHECKS[4], "dp", keep);
    let ((mut steps, j_star), _) = rayon::join(
        || j_of(ctx, &opt.policy, PolicyLog::Optimal),
        || rayon::join(|| kl_spec_q_to_optimum(ctx), || j_of_spec_q(ctx)),
    );
    steps.push(Step::identity(
        "J(q*) − α·logZ*",
        vec![
            term("J(q*)", j_star),
            term("−α·logZ*", opt.log_z.scale(&-alpha.clone())),
        ],
    ));
    j_rec.record(Derivation {
        check: CHECKS[4].into(),
        subject: "optimum q*".into(),
        identity: format!("J(q*) = α·logZ* with α = {alpha}"),
        steps,
    });

    // KL(q ‖ q*) = logZ* − β·J(q) at the spec's q.
    let q = env.posterior();
    let log_q = |e: usize| ctx.log_q_concrete(e).clone();
    let mut kl_rec = Recorder::new(CHECKS[5], "dp", keep);
    let (kl_steps, kl_star) = kl_spec_q_to_optimum(ctx).clone();
    let (j_steps, j_q) = j_of_spec_q(ctx).clone();
    let mut steps = kl_steps;
    steps.extend(j_steps);
    steps.push(Step::identity(
        "KL(q ‖ q*) − logZ* + β·J(q)",
        vec![
            term("KL(q ‖ q*)", kl_star.clone()),
            term("−logZ*", opt.log_z.neg()),
            term("β·J(q)", j_q.scale(&env.beta)),
        ],
    ));
    kl_rec.record(Derivation {
        check: CHECKS[5].into(),
        subject: "the spec's q".into(),
        identity: format!("KL(q ‖ q*) = logZ* − β·J(q) with β = {}", env.beta),
        steps,
    });

    // Cross-check J and KL as sums over trajectories.
    let enumeration = match &ctx.trajectories {
        Ok(paths) => {
            let mut r = Recorder::new(CHECKS[6], "enumeration", keep);
            let (mut j_enum, mut kl_enum) = (Poly::zero(), Poly::zero());
            for path in paths {
                let prob = dp::path_probability(&q, path);
                let x = env.edges[path[path.len() - 1]].to;
                let log_ratio_p = path
                    .iter()
                    .fold(Poly::zero(), |acc, &e| acc.add(&log_q(e).sub(ctx.log_p(e))));
                let log_ratio_star = path.iter().fold(Poly::zero(), |acc, &e| {
                    acc.add(&log_q(e).sub(&log_q_star(e)))
                });
                j_enum = j_enum.add(&ctx.log_r(x).sub(&log_ratio_p.scale(alpha)).scale(&prob));
                kl_enum = kl_enum.add(&log_ratio_star.scale(&prob));
            }
            r.record(Derivation {
                check: CHECKS[6].into(),
                subject: format!("{} trajectories under the spec's q", paths.len()),
                identity: "Σ_τ q(τ)·(…) agrees with the DP values".into(),
                steps: vec![
                    Step::identity(
                        "J(q) by enumeration − J(q) by DP",
                        vec![term("Σ_τ", j_enum), term("−J_dp", j_q.neg())],
                    ),
                    Step::identity(
                        "KL(q ‖ q*) by enumeration − by DP",
                        vec![term("Σ_τ", kl_enum), term("−KL_dp", kl_star.neg())],
                    ),
                ],
            });
            r
        }
        Err(reason) => Recorder::skipped(CHECKS[6], "enumeration", reason.clone()),
    };
    certificate(
        "C5",
        STATEMENT,
        vec![
            optimum,
            zeros,
            trajectories,
            windows,
            j_rec,
            kl_rec,
            enumeration,
        ],
    )
}

//! Claims C6–C8 on every shipped environment: the expected-gradient identities hold by both
//! routes and by enumeration, symbolic `log Z` and baselines drop out, the parts that need an
//! irrational `q*` are skipped with the reason, every mutant makes C6 fail where it applies,
//! the flawed baseline's field is exactly non-zero at `q*`, and each convention check and its
//! control behave as documented. One test compares the exact `∇J` with central finite
//! differences of `J` computed in `f64` by enumeration, independently of every DP.
use num_traits::{One, ToPrimitive};
use rtb_trustpcl::claims::c6_expected_gradient::{self, enumerated_gradient, Functional};
use rtb_trustpcl::claims::c7_negative_controls;
use rtb_trustpcl::claims::{Certificate, ClaimContext, VerifyOptions};
use rtb_trustpcl::dag::Environment;
use rtb_trustpcl::exact::{Poly, Rational, Var};
use rtb_trustpcl::mutant::Mutant;
use rtb_trustpcl::objectives::flawed_fixed_point;
use rtb_trustpcl::report::approx;

mod common;
use common::{certificate as cert, certificates as certs, quick, spec_envs};

fn small_envs() -> Vec<Environment> {
    spec_envs()
        .into_iter()
        .filter(|e| e.edges.len() < 40)
        .collect()
}

fn check_failed(cert: &Certificate, check: &str) -> bool {
    let c = cert
        .checks
        .iter()
        .find(|c| c.name == check)
        .unwrap_or_else(|| panic!("{} has no check {check}", cert.claim));
    c.failed > 0
}

#[test]
fn c6_c7_c8_hold_and_recheck_on_every_environment() {
    for env in spec_envs() {
        let all = certs(&env, VerifyOptions::default());
        for claim in ["C6", "C7", "C8"] {
            let c = cert(&all, claim);
            assert_eq!(c.holds, Some(true), "{} {claim}: {:?}", env.name, c.checks);
            c.recheck().unwrap_or_else(|e| panic!("{}: {e}", env.name));
            assert!(c.checked() > 0);
        }
        // Every edge is covered by every C6 identity that ran.
        for check in &cert(&all, "C6").checks {
            if check.skipped.is_none() && check.name != "C6.enumeration" {
                assert_eq!(check.checked as usize, env.edges.len(), "{}", check.name);
            }
        }
    }
}

#[test]
fn irrational_optimum_skips_only_the_parts_that_need_it() {
    for name in ["half-irrational", "three-halves-irrational"] {
        let env = spec_envs().into_iter().find(|e| e.name == name).unwrap();
        let all = certs(&env, VerifyOptions::default());
        let c6 = cert(&all, "C6");
        assert_eq!(c6.holds, Some(true));
        for check in &c6.checks {
            let needs_qstar = ["C6.rtb.kl", "C6.kl.j"].contains(&check.name.as_str());
            assert_eq!(
                check.skipped.is_some(),
                needs_qstar,
                "{name} {}",
                check.name
            );
            if needs_qstar {
                let reason = check.skipped.as_ref().unwrap();
                assert!(
                    matches!(reason, rtb_trustpcl::claims::SkipReason::Irrational(_)),
                    "{reason:?}"
                );
                assert!(reason.to_string().contains("irrational"));
            } else {
                assert!(check.checked > 0);
            }
        }
        let c7 = cert(&all, "C7");
        assert_eq!(c7.holds, Some(true), "C7.mutants.differ still runs");
        assert!(c7.skipped().unwrap().contains("irrational"));
    }
}

#[test]
fn symbolic_log_z_and_baselines_drop_out_of_the_expected_gradients() {
    for env in small_envs() {
        let ctx = ClaimContext::new(&env, quick(None)).unwrap();
        let g = c6_expected_gradient::gradients(&ctx);
        let symbols = [Var::LogZ, Var::V(env.source)];
        for (b, edge_grads) in g
            .rtb
            .gradient
            .iter()
            .zip(&g.rkl.gradient)
            .zip(&g.tpcl.gradient)
            .enumerate()
        {
            let ((rtb, rkl), tpcl) = edge_grads;
            for p in [rtb, rkl, tpcl] {
                for v in &symbols {
                    assert!(p.to_poly().derivative(v).is_zero(), "{} edge {b}", env.name);
                }
            }
        }
        // …while the per-trajectory prefix sums of route 1 do carry them.
        assert!(!g
            .rtb
            .prefix(env.source)
            .to_poly()
            .derivative(&Var::LogZ)
            .is_zero());
    }
}

#[test]
fn dp_and_enumeration_agree_edge_by_edge() {
    for env in small_envs() {
        let ctx = ClaimContext::new(&env, quick(None)).unwrap();
        let paths = ctx.trajectories.as_ref().unwrap();
        let g = c6_expected_gradient::gradients(&ctx);
        let enumerated = enumerated_gradient(&ctx, paths, &|lq| Functional::rtb(&ctx, lq));
        let dp: Vec<_> = g.rtb.gradient.iter().map(|p| p.to_poly()).collect();
        assert_eq!(enumerated, dp, "{}", env.name);
    }
}

/// `J(q_θ)` in f64 by enumeration: `Σ_τ q(τ)·(log r(x) − α·(log q(τ) − log p(τ)))`.
fn j_f64(env: &Environment, paths: &[Vec<usize>], logits: &[f64]) -> f64 {
    let mut q = vec![0.0; env.edges.len()];
    for out in &env.out_edges {
        let total: f64 = out.iter().map(|&e| logits[e].exp()).sum();
        for &e in out {
            q[e] = logits[e].exp() / total;
        }
    }
    let alpha = env.alpha().to_f64().unwrap();
    paths
        .iter()
        .map(|path| {
            let x = env.edges[*path.last().unwrap()].to;
            let prob: f64 = path.iter().map(|&e| q[e]).product();
            let ratio: f64 = path
                .iter()
                .map(|&e| q[e].ln() - env.edges[e].prior.to_f64().unwrap().ln())
                .sum();
            prob * (env.reward(x).to_f64().unwrap().ln() - alpha * ratio)
        })
        .sum()
}

#[test]
fn exact_grad_j_matches_central_finite_differences_in_f64() {
    // Central differences with h = 1e-5 have truncation error O(h²·|J'''|) ≈ 1e-10 here and
    // rounding error O(ε·|J|/h) ≈ 1e-11; 1e-7 leaves a wide margin without hiding a wrong sign
    // or a missing term (the gradients are of order 1e-2 to 1).
    for env in small_envs() {
        let ctx = ClaimContext::new(&env, quick(None)).unwrap();
        let paths = ctx.trajectories.as_ref().unwrap();
        let q = env.posterior();
        let log_q = |e: usize| ctx.log_q_concrete(e).clone();
        let exact: Vec<_> = c6_expected_gradient::grad_j(&ctx, &q, &log_q)
            .gradient
            .iter()
            .map(|p| p.to_poly())
            .collect();
        let logits: Vec<f64> = q.iter().map(|p| p.to_f64().unwrap().ln()).collect();
        let h = 1e-5;
        for b in 0..env.edges.len() {
            let (mut up, mut down) = (logits.clone(), logits.clone());
            up[b] += h;
            down[b] -= h;
            let fd = (j_f64(&env, paths, &up) - j_f64(&env, paths, &down)) / (2.0 * h);
            let value = approx(&exact[b]).expect("no free symbol");
            assert!(
                (fd - value).abs() < 1e-7,
                "{} {}: exact {value} vs finite difference {fd}",
                env.name,
                env.edge_name(b)
            );
        }
    }
}

#[test]
fn every_mutant_makes_c6_fail_where_it_applies() {
    for env in spec_envs() {
        let beta_is_one = env.beta.is_one();
        let rational = rtb_trustpcl::dag::optimum(&env).is_ok();
        // Where no state has two children (chain) every θ-gradient is identically zero.
        let branching = env.out_edges.iter().any(|out| out.len() > 1);
        for mutant in Mutant::ALL {
            let all = certs(&env, quick(Some(mutant)));
            let c6 = cert(&all, "C6");
            c6.recheck()
                .unwrap_or_else(|e| panic!("{} {mutant}: {e}", env.name));
            let applies = branching
                && !(beta_is_one
                    && matches!(mutant, Mutant::BetaOnRatio | Mutant::AlphaNotSquared));
            assert_eq!(
                c6.holds,
                Some(!applies),
                "{} {mutant}: {:?}",
                env.name,
                c6.checks
            );
            if !applies {
                continue;
            }
            // The reference routes (Bellman, REINFORCE) are untouched by every mutant.
            assert!(!check_failed(c6, "C6.rkl.j"), "{} {mutant}", env.name);
            if rational {
                assert!(!check_failed(c6, "C6.kl.j"), "{} {mutant}", env.name);
            }
            assert!(check_failed(c6, "C6.tpcl.rtb"), "{} {mutant}", env.name);
            let rtb_changed = mutant == Mutant::BetaOnRatio;
            for check in ["C6.rtb.j", "C6.rtb.rkl"] {
                assert_eq!(
                    check_failed(c6, check),
                    rtb_changed,
                    "{} {mutant} {check}",
                    env.name
                );
            }
            if rational {
                assert_eq!(
                    check_failed(c6, "C6.rtb.kl"),
                    rtb_changed,
                    "{} {mutant}",
                    env.name
                );
            }
            // The enumeration cross-check compares two computations of the same mutated
            // expectation, so it holds whatever the mutant.
            assert!(!check_failed(c6, "C6.enumeration"), "{} {mutant}", env.name);
        }
    }
}

#[test]
fn the_flawed_baseline_is_not_stationary_at_the_target() {
    for env in spec_envs() {
        let ctx = ClaimContext::new(&env, quick(None)).unwrap();
        let Ok(grad) = c7_negative_controls::flawed_gradient_at_optimum(&ctx) else {
            continue;
        };
        let largest = grad
            .iter()
            .filter_map(approx)
            .fold(0.0f64, |m, x| m.max(x.abs()));
        if c7_negative_controls::rewards_all_equal(&ctx) {
            assert!(grad.iter().all(Poly::is_zero), "{}", env.name);
        } else {
            assert!(grad.iter().any(Poly::refutes), "{}", env.name);
            assert!(largest > 1e-4, "{}: largest component {largest}", env.name);
        }
    }
}

#[test]
fn the_flawed_stationary_point_is_found_and_matches_its_closed_form() {
    for env in spec_envs() {
        let kappa = (env.alpha() / Rational::from_integer(2.into()))
            .to_f64()
            .unwrap();
        let fp = flawed_fixed_point::search(&env, kappa, 100_000, 1e-12).unwrap();
        assert!(fp.converged, "{}: {}", env.name, fp.max_abs_gradient);
        assert!(
            fp.max_policy_difference < 1e-9,
            "{}: {}",
            env.name,
            fp.max_policy_difference
        );
        assert!(fp.kl_qstar_to_flawed >= 0.0);
        assert!((fp.kl_qstar_to_flawed - fp.kl_qstar_to_closed_form).abs() < 1e-8);
    }
    assert!(flawed_fixed_point::search(&spec_envs()[0], -1.0, 10, 1e-12).is_err());
}

#[test]
fn c7_and_c8_under_mutants_fail_exactly_where_documented() {
    for env in spec_envs().into_iter().filter(|e| e.edges.len() < 40) {
        let beta_is_one = env.beta.is_one();
        let rational = rtb_trustpcl::dag::optimum(&env).is_ok();
        let varied = {
            let t = env.terminals();
            t.iter().any(|&x| env.reward(x) != env.reward(t[0]))
        };
        for mutant in Mutant::ALL {
            let all = certs(&env, quick(Some(mutant)));
            let (c7, c8) = (cert(&all, "C7"), cert(&all, "C8"));
            c7.recheck().unwrap();
            c8.recheck().unwrap();
            let applies =
                !(beta_is_one && matches!(mutant, Mutant::BetaOnRatio | Mutant::AlphaNotSquared));
            let c7_fails = rational
                && varied
                && matches!(mutant, Mutant::BetaOnRatio | Mutant::FlippedSign)
                && applies;
            assert_eq!(
                c7.holds == Some(false),
                c7_fails,
                "{} {mutant} C7 {:?}",
                env.name,
                c7.checks
            );
            assert!(!check_failed(c7, "C7.mutants.differ"));
            let c8_failing: &[&str] = match mutant {
                _ if !applies => &[],
                // A control fails with its check where the mutant changes the reference it is
                // measured against; `C8.vargrad` holds for any residual.
                Mutant::MissingHalf => &["C8.half", "C8.cutoff", "C8.cutoff.unscaled"],
                Mutant::AlphaNotSquared => &["C8.half", "C8.half.mixed", "C8.cutoff"],
                Mutant::FlippedSign => &[
                    "C8.half",
                    "C8.half.mixed",
                    "C8.cutoff",
                    "C8.cutoff.unscaled",
                    "C8.discount",
                    "C8.entropy",
                ],
                Mutant::BetaOnRatio => &[
                    "C8.half",
                    "C8.half.mixed",
                    "C8.beta",
                    "C8.beta.on-ratio",
                    "C8.cutoff",
                    "C8.cutoff.unscaled",
                    "C8.discount",
                    "C8.entropy",
                ],
            };
            for check in &c8.checks {
                if check.skipped.is_some() {
                    continue;
                }
                assert_eq!(
                    check.failed > 0,
                    c8_failing.contains(&check.name.as_str()),
                    "{} {mutant} {}",
                    env.name,
                    check.name
                );
            }
        }
    }
}

#[test]
fn convention_controls_are_skipped_only_where_variants_coincide() {
    let env = spec_envs()
        .into_iter()
        .find(|e| e.name == "beta-one")
        .unwrap();
    let all = certs(&env, quick(None));
    let c8 = cert(&all, "C8");
    for check in &c8.checks {
        let coincide = ["C8.beta.on-ratio", "C8.cutoff.unscaled"].contains(&check.name.as_str());
        assert_eq!(check.skipped.is_some(), coincide, "{}", check.name);
    }
}

#[test]
fn a_tampered_c6_certificate_is_caught_by_recheck() {
    let env = spec_envs()
        .into_iter()
        .find(|e| e.name == "two-paths")
        .unwrap();
    let all = certs(&env, quick(None));
    let mut c6 = cert(&all, "C6").clone();
    c6.recheck().unwrap();
    let step = &mut c6.derivations[0].steps[0];
    step.result = step.result.add(&Poly::constant(Rational::one()));
    assert!(c6.recheck().is_err());
}

/// Two computations of route 1 give the same exact values: every gradient, prefix sum,
/// suffix sum and joint (reduced), and the occupancy.
fn assert_same_route(
    a: &c6_expected_gradient::RouteOne,
    b: &c6_expected_gradient::RouteOne,
    name: &str,
) {
    let reduce = |v: &[rtb_trustpcl::exact::FracPoly]| -> Vec<Poly> {
        v.iter().map(|p| p.to_poly()).collect()
    };
    assert_eq!(reduce(&a.gradient), reduce(&b.gradient), "{name}");
    assert_eq!(reduce(&a.prefix_all()), reduce(&b.prefix_all()), "{name}");
    assert_eq!(reduce(&a.suffix_all()), reduce(&b.suffix_all()), "{name}");
    assert_eq!(reduce(&a.joint_all()), reduce(&b.joint_all()), "{name}");
    assert_eq!(a.occ, b.occ, "{name}");
}

#[test]
fn h_transform_routes_equal_the_direct_routes_at_the_optimum() {
    // C7 runs routes 1 and 2 at q* under the prior (h = F*); they must give the very values of
    // the direct DPs at q*, and refuse a policy that is not the h-transform.
    use c6_expected_gradient::{
        route_one, route_one_h_transform, route_two, route_two_h_transform,
    };
    let mut compared = 0;
    for env in small_envs() {
        let ctx = ClaimContext::new(&env, quick(None)).unwrap();
        let budget = &ctx.options.budget;
        let Ok(opt) = &ctx.optimum else { continue };
        let prior: Vec<Rational> = env.edges.iter().map(|e| e.prior.clone()).collect();
        let log_q =
            |e: usize| Poly::from_logform(&ctx.logs.optimum.as_ref().unwrap().log_policy[e]);
        let reduce = |v: &[rtb_trustpcl::exact::FracPoly]| -> Vec<Poly> {
            v.iter().map(|p| p.to_poly()).collect()
        };
        for functional in [
            Functional::rtb(&ctx, &log_q),
            c7_negative_controls::flawed_functional(&ctx, &log_q),
        ] {
            let direct = route_one(&env, &opt.policy, functional.clone(), budget);
            let h = route_one_h_transform(&env, &prior, &opt.flow, &opt.policy, functional, budget)
                .expect("q* is the h-transform of the prior by F*");
            assert_same_route(&h, &direct, &env.name);
            compared += 1;
        }
        let cost: Vec<Poly> = (0..env.edges.len())
            .map(|e| log_q(e).sub(ctx.log_p(e)))
            .collect();
        let weights = vec![Rational::one(); env.edges.len()];
        let direct = route_two(&env, &opt.policy, "KL", &cost, weights.clone(), budget);
        let h = route_two_h_transform(
            &env,
            &prior,
            &opt.flow,
            &opt.policy,
            "KL",
            &cost,
            weights.clone(),
            budget,
        )
        .expect("q* is the h-transform of the prior by F*");
        assert_eq!(
            reduce(&h.gradient),
            reduce(&direct.gradient),
            "{}",
            env.name
        );
        assert_eq!(reduce(&h.value), reduce(&direct.value), "{}", env.name);
        assert_eq!(reduce(&h.action), reduce(&direct.action), "{}", env.name);
        // Negative control: the spec's q is not the h-transform by F* (unless it is q*).
        let q = env.posterior();
        if q != opt.policy {
            assert!(route_two_h_transform(
                &env, &prior, &opt.flow, &q, "KL", &cost, weights, budget
            )
            .is_none());
            let f = Functional::rtb(&ctx, &log_q);
            assert!(route_one_h_transform(&env, &prior, &opt.flow, &q, f, budget).is_err());
        }
    }
    assert!(compared > 0, "no environment with a rational optimum");
}

#[test]
fn the_constant_route_equals_the_dp_where_the_residual_is_constant_and_refuses_elsewhere() {
    // C7 collapses route 1 at q* for the correct objectives (one residual value on every
    // trajectory): every value it shows and every gradient must be the DP's, and a functional
    // that is not constant (the flawed baseline where rewards differ, RTB at the spec's q, RTB
    // with a term moved off one edge) must be handed back.
    use c6_expected_gradient::{route_one, route_one_constant};
    let (mut collapsed, mut refused) = (0, 0);
    for env in small_envs() {
        let ctx = ClaimContext::new(&env, quick(None)).unwrap();
        let budget = &ctx.options.budget;
        let Ok(opt) = &ctx.optimum else { continue };
        let log_q =
            |e: usize| Poly::from_logform(&ctx.logs.optimum.as_ref().unwrap().log_policy[e]);
        let occ = route_one(&env, &opt.policy, Functional::rtb(&ctx, &log_q), budget).occ;
        let reduce = |v: &[rtb_trustpcl::exact::FracPoly]| -> Vec<Poly> {
            v.iter().map(|p| p.to_poly()).collect()
        };
        for functional in [
            Functional::rtb(&ctx, &log_q),
            Functional::reinforce(&ctx, &log_q),
            Functional::trust_pcl(&ctx, &log_q),
        ] {
            let direct = route_one(&env, &opt.policy, functional.clone(), budget);
            let constant = route_one_constant(&env, &opt.policy, &occ, functional)
                .unwrap_or_else(|f| panic!("{}: {} is constant at q*", env.name, f.loss));
            assert_same_route(&constant, &direct, &env.name);
            assert!(
                constant.gradient.iter().all(|g| g.is_zero()),
                "{}",
                env.name
            );
            collapsed += 1;
        }
        // Non-uniform weights on a constant functional: the gradient is K·occ·q·(w_b − w̄),
        // not zero, and still the DP's.
        let mut weighted = Functional::rtb(&ctx, &log_q);
        if let Some(&e) = env
            .out_edges
            .iter()
            .find(|out| out.len() > 1)
            .map(|out| &out[0])
        {
            weighted.weight[e] = Rational::from_integer(3.into());
            let direct = route_one(&env, &opt.policy, weighted.clone(), budget);
            let constant = route_one_constant(&env, &opt.policy, &occ, weighted).unwrap();
            assert_eq!(
                reduce(&constant.gradient),
                reduce(&direct.gradient),
                "{}",
                env.name
            );
            assert!(
                constant.gradient.iter().any(|g| !g.is_zero()),
                "{}",
                env.name
            );
        }
        // Negative controls.
        let flawed = c7_negative_controls::flawed_functional(&ctx, &log_q);
        if !c7_negative_controls::rewards_all_equal(&ctx) {
            assert!(route_one_constant(&env, &opt.policy, &occ, flawed).is_err());
            refused += 1;
        }
        let mut moved = Functional::rtb(&ctx, &log_q);
        moved.per_edge[0] = moved.per_edge[0].add(&Poly::constant(Rational::one()));
        if env.edges.len() > 1 && env.terminals().len() > 1 {
            assert!(
                route_one_constant(&env, &opt.policy, &occ, moved).is_err(),
                "{}",
                env.name
            );
            refused += 1;
        }
        let q = env.posterior();
        if q != opt.policy {
            let at_q = |e: usize| ctx.log_q_concrete(e).clone();
            let occ_q = route_one(&env, &q, Functional::rtb(&ctx, &at_q), budget).occ;
            assert!(route_one_constant(&env, &q, &occ_q, Functional::rtb(&ctx, &at_q)).is_err());
            refused += 1;
        }
    }
    assert!(
        collapsed > 0 && refused > 0,
        "{collapsed} collapsed, {refused} refused"
    );
}

#[test]
fn a_spent_time_budget_stops_the_dps_with_the_budget_error() {
    // A generated DAG of issue 12 (440 edges): enumeration is refused by its cost, so before
    // the DPs had checkpoints no checkpoint ran and a spent time budget went unnoticed.
    use rtb_trustpcl::claims::{Budget, BudgetExceeded};
    use rtb_trustpcl::dag::generate::{layered, Shape};
    use rtb_trustpcl::dag::spec::validate;
    let shape = Shape::many_primes(7, 20, 3, Rational::from_integer(2.into()));
    let env = validate(&layered(&shape, 1), "generated").expect("valid");
    let ctx = ClaimContext::new(&env, VerifyOptions::default()).unwrap();
    let q = env.posterior();
    let log_q = |e: usize| ctx.log_q_concrete(e).clone();
    let functional = Functional::rtb(&ctx, &log_q);
    // A budget of 0 s is spent at its first checkpoint: the route stops in its first pass.
    let spent = Budget::new(0, 1 << 40, 2000, 50_000);
    std::thread::sleep(std::time::Duration::from_millis(5));
    let stopped = c6_expected_gradient::route_one(&env, &q, functional.clone(), &spent);
    assert!(
        matches!(
            spent.exceeded(),
            Some(BudgetExceeded::Time { limit: 0, .. })
        ),
        "{:?}",
        spent.exceeded()
    );
    // Negative control: the same route within the budget runs every pass to the end, and the
    // stopped one left most of the DAG unvisited.
    let generous = Budget::default();
    let full = c6_expected_gradient::route_one(&env, &q, functional, &generous);
    assert!(generous.exceeded().is_none());
    let nonzero = |g: &[rtb_trustpcl::exact::FracPoly]| g.iter().filter(|p| !p.is_zero()).count();
    assert!(nonzero(&stopped.suffix_all()) < nonzero(&full.suffix_all()) / 2);
    assert!(nonzero(&full.suffix_all()) > env.states.len() / 2);
    // The whole run reports the budget's error naming the quantity, never a result.
    let options = VerifyOptions {
        budget: spent.restarted(),
        ..VerifyOptions::default()
    };
    std::thread::sleep(std::time::Duration::from_millis(5));
    match rtb_trustpcl::report::environment_report(&env, &options) {
        Err(rtb_trustpcl::exact::ExactError::Budget(message)) => {
            assert!(message.starts_with("time:"), "{message}")
        }
        Err(e) => panic!("not the budget's error: {e}"),
        Ok(_) => panic!("a spent budget gave a report"),
    }
}

//! Claims C1–C5 on every shipped environment: they hold, their certificates re-check, every
//! mutant makes the claims it affects fail, and the structural and enumeration routes agree.
use num_traits::One;
use rtb_trustpcl::claims::{c1_residual, c4_window, Certificate, ClaimContext, VerifyOptions};
use rtb_trustpcl::exact::{Poly, Rational};
use rtb_trustpcl::mutant::Mutant;

mod common;
use common::{certificates as run, quick, spec_envs};
use rtb_trustpcl::dag::Environment;

fn verdict(certs: &[Certificate], claim: &str) -> Option<bool> {
    common::certificate(certs, claim).holds
}

#[test]
fn every_claim_holds_on_every_environment_and_certificates_recheck() {
    let envs = spec_envs();
    assert!(envs.len() >= 8, "at least eight environments ship in spec/");
    for env in &envs {
        for cert in run(env, VerifyOptions::default()) {
            assert_ne!(
                cert.holds,
                Some(false),
                "{} {} fails: {:?}",
                env.name,
                cert.claim,
                cert.checks
            );
            cert.recheck()
                .unwrap_or_else(|e| panic!("{}: {e}", env.name));
            if cert.claim != "C5" {
                assert_eq!(cert.holds, Some(true), "{} {}", env.name, cert.claim);
            }
            assert!(cert.checked() > 0 || cert.holds.is_none());
        }
    }
}

#[test]
fn every_mutant_fails_the_claims_it_affects() {
    for env in spec_envs() {
        let beta_is_one = env.beta.is_one();
        let optimum_is_rational = rtb_trustpcl::dag::optimum(&env).is_ok();
        for mutant in Mutant::ALL {
            let certs = run(&env, quick(Some(mutant)));
            for cert in &certs {
                cert.recheck()
                    .unwrap_or_else(|e| panic!("{} {mutant}: {e}", env.name));
            }
            // Claims each mutant must break; at β = 1 the β/α mutants are the identity.
            let must_fail: &[&str] = match (mutant, beta_is_one) {
                (Mutant::MissingHalf, _) => &["C2", "C3"],
                (Mutant::FlippedSign, _) => &["C1", "C2", "C3", "C4"],
                (Mutant::BetaOnRatio, false) => &["C1", "C2", "C3", "C4"],
                (Mutant::AlphaNotSquared, false) => &["C2", "C3"],
                (_, true) => &[],
            };
            let must_hold: &[&str] = match mutant {
                Mutant::MissingHalf | Mutant::AlphaNotSquared => &["C1", "C4", "C5"],
                _ if beta_is_one && mutant == Mutant::BetaOnRatio => {
                    &["C1", "C2", "C3", "C4", "C5"]
                }
                _ => &[],
            };
            for claim in must_fail {
                assert_eq!(
                    verdict(&certs, claim),
                    Some(false),
                    "{} {mutant}: {claim} should fail",
                    env.name
                );
            }
            for claim in must_hold {
                assert_ne!(
                    verdict(&certs, claim),
                    Some(false),
                    "{} {mutant}: {claim} should hold",
                    env.name
                );
            }
            if mutant == Mutant::BetaOnRatio && !beta_is_one && optimum_is_rational {
                assert_eq!(
                    verdict(&certs, "C5"),
                    Some(false),
                    "{} {mutant}: C5",
                    env.name
                );
            }
        }
    }
}

#[test]
fn structural_and_enumeration_routes_agree_even_under_mutants() {
    // The telescoping lemma: a trajectory's residual is the sum of its edges' certificates and
    // the boundary's, exactly, whatever variant is in force.
    let options = [None, Some(Mutant::FlippedSign), Some(Mutant::BetaOnRatio)];
    for env in spec_envs().iter().filter(|e| e.edges.len() < 40) {
        for mutant in options {
            let ctx = ClaimContext::new(env, quick(mutant)).unwrap();
            let last = |d: rtb_trustpcl::exact::Derivation| d.steps.last().unwrap().result.clone();
            let edge: Vec<Poly> = (0..env.edges.len())
                .map(|e| last(c1_residual::edge_derivation(&ctx, e)))
                .collect();
            let boundary = last(c1_residual::boundary_derivation(&ctx));
            for path in ctx.trajectories.as_ref().unwrap() {
                let enumerated = last(c1_residual::trajectory_derivation(&ctx, path));
                let structural = path
                    .iter()
                    .fold(boundary.clone(), |acc, &e| acc.add(&edge[e]));
                assert_eq!(
                    enumerated,
                    structural,
                    "{} {mutant:?} C1 on {}",
                    env.name,
                    env.path_name(path)
                );
            }
            // C4: start(s_i) + Σ edges + end(s_j).
            let structural = c4_window::structural_derivations(&ctx);
            let n = env.states.len();
            let state_step = |s: usize, name: &str| {
                structural[s]
                    .steps
                    .iter()
                    .find(|st| st.name.starts_with(name))
                    .map(|st| st.result.clone())
                    .unwrap_or_default()
            };
            for w in ctx.windows.as_ref().unwrap() {
                let start = env.edges[w[0]].from;
                let end = env.edges[*w.last().unwrap()].to;
                let sum = w.iter().fold(
                    state_step(start, "start").add(&state_step(end, "end")),
                    |acc, &e| acc.add(&last(structural[n + e].clone())),
                );
                let enumerated = last(c4_window::window_derivation(&ctx, w));
                assert_eq!(
                    enumerated,
                    sum,
                    "{} {mutant:?} C4 on {}",
                    env.name,
                    env.path_name(w)
                );
            }
        }
    }
}

#[test]
fn enumeration_over_the_limit_is_refused_and_structural_checks_still_run() {
    let env = spec_envs()
        .into_iter()
        .find(|e| e.name == "generated")
        .expect("generated spec");
    let options = VerifyOptions {
        max_trajectories: 10,
        max_windows: 10,
        ..VerifyOptions::default()
    };
    let certs = run(&env, options);
    for claim in ["C1", "C4"] {
        let cert = certs.iter().find(|c| c.claim == claim).unwrap();
        assert_eq!(cert.holds, Some(true));
        let skipped = cert.skipped().expect("enumeration refused");
        assert!(skipped.contains("over the limit of 10"), "{skipped}");
        assert!(cert
            .checks
            .iter()
            .any(|c| c.route == "structural" && c.checked as usize >= env.edges.len()));
    }
}

#[test]
fn irrational_optimum_skips_c5_with_its_reason_and_perfect_powers_are_exact() {
    let envs = spec_envs();
    let irrational = envs.iter().find(|e| e.name == "half-irrational").unwrap();
    let c5 = |env: &Environment| {
        run(env, VerifyOptions::default())
            .into_iter()
            .find(|c| c.claim == "C5")
            .unwrap()
    };
    let c5_irrational = c5(irrational);
    assert_eq!(c5_irrational.holds, None);
    assert!(c5_irrational.skipped().unwrap().contains("irrational"));
    let perfect = envs.iter().find(|e| e.name == "half-perfect").unwrap();
    assert_eq!(perfect.beta, Rational::new(1.into(), 2.into()));
    assert_eq!(c5(perfect).holds, Some(true));
}

#[test]
fn a_tampered_certificate_is_caught_by_recheck() {
    let env = spec_envs()
        .into_iter()
        .find(|e| e.name == "two-paths")
        .unwrap();
    let mut cert = run(&env, VerifyOptions::default()).remove(0);
    cert.recheck().unwrap();
    let step = &mut cert.derivations[0].steps[0];
    step.result = step.result.add(&Poly::constant(Rational::one()));
    assert!(cert.recheck().is_err());
}

#[test]
fn claims_run_as_tasks_come_back_in_report_order_with_their_follow_ups() {
    use rtb_trustpcl::claims::verify_environment_then;
    let outcomes = |c: &Certificate| serde_json::to_string(&c.checks).expect("serialisable");
    for env in spec_envs() {
        let ctx = ClaimContext::new(&env, quick(None)).expect("exact logs build");
        let seen = std::sync::Mutex::new(Vec::new());
        let results = verify_environment_then(&ctx, |c| {
            seen.lock().expect("not poisoned").push(c.claim.clone());
            c.claim.clone()
        });
        let ids: Vec<&str> = results.iter().map(|(c, _)| c.claim.as_str()).collect();
        assert_eq!(
            ids,
            ["C1", "C2", "C3", "C4", "C5", "C6", "C7", "C8"],
            "{}",
            env.name
        );
        for (c, after) in &results {
            assert_eq!(
                &c.claim, after,
                "{}: a follow-up saw another claim",
                env.name
            );
        }
        let mut seen = seen.into_inner().expect("not poisoned");
        seen.sort();
        assert_eq!(seen, ids, "{}: every follow-up ran once", env.name);
        // The same certificates as the plain run.
        for ((c, _), plain) in results.iter().zip(run(&env, quick(None))) {
            assert_eq!(c.holds, plain.holds, "{} {}", env.name, c.claim);
            assert_eq!(outcomes(c), outcomes(&plain), "{} {}", env.name, c.claim);
        }
    }
}

#[test]
fn keeping_no_derivations_decides_every_check_the_same_and_keeps_the_failures() {
    // `verify` runs with `keep: 0` (its report never shows the kept examples): every count and
    // verdict must be those of a run that keeps them, and a failing check must still carry
    // its first failure (the report's summary shows it).
    let outcomes = |c: &Certificate| serde_json::to_string(&c.checks).expect("serialisable");
    for env in spec_envs().iter().take(4) {
        for mutant in [None, Some(Mutant::FlippedSign)] {
            let kept = run(env, quick(mutant));
            let none = run(
                env,
                VerifyOptions {
                    keep: 0,
                    ..quick(mutant)
                },
            );
            for (k, n) in kept.iter().zip(&none) {
                assert_eq!(k.holds, n.holds, "{} {:?} {}", env.name, mutant, k.claim);
                assert_eq!(
                    outcomes(k),
                    outcomes(n),
                    "{} {:?} {}",
                    env.name,
                    mutant,
                    k.claim
                );
                assert_eq!(k.failures.len(), n.failures.len());
                assert!(n.derivations.len() <= k.derivations.len());
            }
            // Negative control: the run that keeps examples does keep some.
            assert!(kept.iter().any(|c| c.derivations.len() > c.failures.len()));
            if mutant.is_some() {
                assert!(none.iter().any(|c| !c.failures.is_empty()), "{}", env.name);
            }
        }
    }
}

//! The exact expected gradients, two routes: enumeration of every trajectory (with `log Z` a
//! free symbol) and the `O(|E|)` policy-gradient recursion agree exactly on every spec under
//! the enumeration limit; `log Z` drops out; the score has mean zero.
use std::path::PathBuf;

use num_traits::Zero;
use rtb_trustpcl::dag::{load_dir, trajectory_count, LogTable};
use rtb_trustpcl::exact::{LogForm, Poly, Rational};
use rtb_trustpcl::expect::{expectations, expectations_by_enumeration, grad_j_dp, j_dp, Route};

#[test]
fn enumeration_and_recursion_agree_exactly() {
    let envs = load_dir(&[PathBuf::from("spec")]).unwrap();
    let mut compared = 0;
    for env in &envs {
        let logs = LogTable::new(env, None).unwrap();
        let dp = grad_j_dp(env, &logs);
        let Ok(en) = expectations_by_enumeration(env, &logs, 20_000) else {
            continue;
        };
        compared += 1;
        assert_eq!(dp, en.grad_j, "{}", env.name);
        assert!(en.score_mean.iter().all(Zero::is_zero), "{}", env.name);
        let minus_beta = -env.beta.clone();
        for (e, g) in dp.iter().enumerate() {
            // E[∇L_RTB] = −β ∇J with log Z symbolic: it must drop out.
            let want = Poly::from_logform(&g.scale(&minus_beta));
            assert!(en.rtb[e].sub(&want).is_zero(), "{} edge {e}", env.name);
            assert_eq!(en.rkl[e], g.scale(&-Rational::from_integer(1.into())));
        }
        // Softmax invariance: the logits of one state sum to zero gradient.
        for s in 0..env.states.len() {
            let total = env.out_edges[s]
                .iter()
                .fold(LogForm::zero(), |a, &e| a.add(&dp[e]));
            assert!(total.is_zero(), "{} state {s}", env.name);
        }
        // J by the recursion equals J by enumeration.
        let paths = rtb_trustpcl::dag::trajectories(env, 20_000).unwrap();
        let q = env.posterior();
        let mut j = LogForm::zero();
        for p in &paths {
            let prob = rtb_trustpcl::dag::dp::path_probability(&q, p);
            let x = env.edges[p[p.len() - 1]].to;
            let ratio = p.iter().fold(LogForm::zero(), |a, &e| {
                a.add(&logs.log_posterior[e].sub(&logs.log_prior[e]))
            });
            j = j.add(
                &logs
                    .log_reward(x)
                    .sub(&ratio.scale(&env.alpha()))
                    .scale(&prob),
            );
        }
        assert_eq!(j, j_dp(env, &logs), "{}", env.name);
    }
    assert!(compared >= 10, "only {compared} specs under the limit");
}

#[test]
fn the_route_follows_the_limit() {
    let envs = load_dir(&[PathBuf::from("spec")]).unwrap();
    let env = envs.iter().max_by_key(|e| trajectory_count(e)).unwrap();
    let logs = LogTable::new(env, None).unwrap();
    let small = expectations(env, &logs, 1);
    assert_eq!(small.route, Route::Dp);
    let big = expectations(env, &logs, u64::MAX);
    assert_eq!(big.route, Route::Enumeration);
    for e in 0..env.edges.len() {
        assert!(small.rtb[e].sub(&big.rtb[e]).is_zero());
        assert!(small.rkl[e].sub(&big.rkl[e]).is_zero());
    }
}

//! Exact expected gradients with respect to the softmax logits, for the Monte Carlo checks of
//! `gradcheck --spec` (C6 at scale).
//!
//! With `R(τ) = log r(x) − α (log q(τ) − log p(τ))` the KL-regularized return,
//! `J(q) = E_q[R]` and, for tabular softmax logits θ (`∂ log q(a|s)/∂θ_b = 1[a = b] − q(b|s)`
//! for `b` a child edge of `s`):
//!
//! - `∇_θ J = E_q[R(τ) ∇_θ log q(τ)]` (the `∇R` term `−α E[∇ log q(τ)]` vanishes);
//! - `E_q[∇_θ L_RTB] = E_q[δ(τ) ∇_θ log q(τ)] = −β ∇_θ J`, for any `log Z` (because
//!   `E_q[∇ log q(τ)] = 0` and `δ = log Z − β R`); this is `∇_θ KL(q ‖ q*)`;
//! - `E_q[∇_θ L_RKL] = −E_q[(R − b) ∇ log q(τ)] = −∇_θ J` for any constant baseline `b`.
//!
//! Two exact routes compute them:
//! - [`grad_j_dp`], `O(|E|)` exact operations: backward, the downstream soft value
//!   `W(s) = Σ_a q(a|s) Q(s,a)` with `Q(s,a) = −α(log q(a|s) − log p(a|s)) + [s' terminal] log r(s')
//!   + W(s')` (`W(x) = 0`); forward, the occupancy `occ(s)`; then the policy-gradient
//!   theorem `∂J/∂θ_{s,b} = occ(s) q(b|s) (Q(s,b) − W(s))`. Every quantity is a rational
//!   linear combination of exact logs, so each gradient component is a [`LogForm`];
//! - [`expectations_by_enumeration`]: the sums over every trajectory of `q(τ) R(τ) ∇ log q(τ)`
//!   and `q(τ) δ(τ) ∇ log q(τ)` with `log Z` a free symbol ([`Var::LogZ`]), guarded by a limit.
//!
//! Architecture invariant: like `exact`, `dag` and `claims`, this module uses no floating
//! point; the float side is `agreement::montecarlo`.
use num_traits::{One, Zero};

use crate::dag::{self, EnumerationRefused, Environment, LogTable};
use crate::exact::{LogForm, Poly, Rational, Var};

/// The per-edge soft cost `−α(log q(e) − log p(e)) + [e enters x]·log r(x)`.
fn soft_costs(env: &Environment, logs: &LogTable) -> Vec<LogForm> {
    let alpha = env.alpha();
    env.edges
        .iter()
        .enumerate()
        .map(|(e, edge)| {
            let mut v = logs.log_posterior[e]
                .sub(&logs.log_prior[e])
                .scale(&-alpha.clone());
            if env.is_terminal(edge.to) {
                v = v.add(logs.log_reward(edge.to));
            }
            v
        })
        .collect()
}

/// `∂J/∂θ_e` for every edge `e` (environment edge order), by the policy-gradient recursion of
/// [`dag::flow`]: `W` backward over the soft costs, occupancies forward, then
/// `occ(s)·q(b)·(Q(s,b) − W(s))` (the score term of the costs vanishes: `∂cost/∂log q = −α` on
/// every sibling).
pub fn grad_j_dp(env: &Environment, logs: &LogTable) -> Vec<LogForm> {
    let q = env.posterior();
    let flows = dag::flow::forward_flows(env, &q);
    let values = dag::flow::backward(env, &q, &soft_costs(env, logs), |_| LogForm::zero());
    dag::flow::policy_gradient(env, &q, &flows, &values, None)
}

/// `J(q) = W(s0)`, the soft value of the source under `q` (by the same recursion).
pub fn j_dp(env: &Environment, logs: &LogTable) -> LogForm {
    let q = env.posterior();
    let values = dag::flow::backward(env, &q, &soft_costs(env, logs), |_| LogForm::zero());
    values.value[env.source].clone()
}

/// The score `∇_θ log q(τ)` of one trajectory, as `(edge, coefficient)` pairs (only the
/// children of visited states are non-zero).
pub fn score(env: &Environment, q: &[Rational], path: &[usize]) -> Vec<(usize, Rational)> {
    let mut out: Vec<(usize, Rational)> = Vec::new();
    for &a in path {
        let s = env.edges[a].from;
        for &b in &env.out_edges[s] {
            let mut c = -q[b].clone();
            if b == a {
                c += Rational::one();
            }
            match out.iter_mut().find(|(e, _)| *e == b) {
                Some((_, x)) => *x += c,
                None => out.push((b, c)),
            }
        }
    }
    out
}

/// The expectations by enumeration of every trajectory.
#[derive(Debug, Clone)]
pub struct EnumeratedExpectations {
    /// `Σ_τ q(τ) ∇ log q(τ)` per edge: exactly 0 (the score has mean zero).
    pub score_mean: Vec<Rational>,
    /// `∇J = Σ_τ q(τ) R(τ) ∇ log q(τ)` per edge.
    pub grad_j: Vec<LogForm>,
    /// `E[∇ L_RTB] = Σ_τ q(τ) δ(τ) ∇ log q(τ)` per edge, with `log Z` the symbol
    /// [`Var::LogZ`] (it drops out: its coefficient is `score_mean`).
    pub rtb: Vec<Poly>,
    /// `E[∇ L_RKL] = −Σ_τ q(τ) (R(τ) − b) ∇ log q(τ)` per edge with the baseline `b = 0`
    /// (any constant `b` adds `b · score_mean = 0`).
    pub rkl: Vec<LogForm>,
}

/// Enumerates every trajectory (refused above `limit`).
pub fn expectations_by_enumeration(
    env: &Environment,
    logs: &LogTable,
    limit: u64,
) -> Result<EnumeratedExpectations, EnumerationRefused> {
    let paths = dag::trajectories(env, limit)?;
    let q = env.posterior();
    let alpha = env.alpha();
    let ne = env.edges.len();
    let mut score_mean = vec![Rational::zero(); ne];
    let mut grad_j = vec![LogForm::zero(); ne];
    let mut rtb = vec![Poly::zero(); ne];
    let log_z = Poly::var(Var::LogZ);
    for path in &paths {
        let prob = dag::dp::path_probability(&q, path);
        let x = env.edges[path[path.len() - 1]].to;
        let log_ratio = path.iter().fold(LogForm::zero(), |acc, &e| {
            acc.add(&logs.log_posterior[e].sub(&logs.log_prior[e]))
        });
        let ret = logs.log_reward(x).sub(&log_ratio.scale(&alpha));
        // δ = log Z + log q(τ) − log p(τ) − β log r(x) = log Z − β R(τ).
        let delta = log_z.add(&Poly::from_logform(&ret.scale(&-env.beta.clone())));
        for (b, c) in score(env, &q, path) {
            let w = &prob * &c;
            score_mean[b] += &w;
            grad_j[b] = grad_j[b].add(&ret.scale(&w));
            rtb[b] = rtb[b].add(&delta.scale(&w));
        }
    }
    let rkl = grad_j.iter().map(|g| g.scale(&-Rational::one())).collect();
    Ok(EnumeratedExpectations {
        score_mean,
        grad_j,
        rtb,
        rkl,
    })
}

/// Which route computed [`Expectations`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Route {
    /// Enumeration of every trajectory.
    Enumeration,
    /// The `O(|E|)` policy-gradient recursion.
    Dp,
}

/// The exact expected gradients the Monte Carlo checks compare against, per edge, as
/// polynomials in the log atoms (a free symbol left in one would mean it did not drop out).
#[derive(Debug, Clone)]
pub struct Expectations {
    /// `∂J/∂θ_e`.
    pub grad_j: Vec<Poly>,
    /// `E_q[∂L_RTB/∂θ_e]` (`= −β ∂J/∂θ_e`, for any `log Z`).
    pub rtb: Vec<Poly>,
    /// `E_q[∂L_RKL/∂θ_e]` (`= −∂J/∂θ_e`, for any constant baseline).
    pub rkl: Vec<Poly>,
    /// How they were computed.
    pub route: Route,
}

/// The exact expectations: by enumeration when there are at most `limit` trajectories (the
/// RTB one then keeps `log Z` symbolic until it cancels), by the `O(|E|)` recursion otherwise
/// (`−β ∇J` and `−∇J`).
pub fn expectations(env: &Environment, logs: &LogTable, limit: u64) -> Expectations {
    let to_poly = |v: &[LogForm]| v.iter().map(Poly::from_logform).collect::<Vec<_>>();
    match expectations_by_enumeration(env, logs, limit) {
        Ok(en) => Expectations {
            grad_j: to_poly(&en.grad_j),
            rtb: en.rtb,
            rkl: to_poly(&en.rkl),
            route: Route::Enumeration,
        },
        Err(_) => {
            let grad_j = grad_j_dp(env, logs);
            let minus_beta = -env.beta.clone();
            Expectations {
                rtb: grad_j
                    .iter()
                    .map(|g| Poly::from_logform(&g.scale(&minus_beta)))
                    .collect(),
                rkl: grad_j
                    .iter()
                    .map(|g| Poly::from_logform(&g.scale(&-Rational::one())))
                    .collect(),
                grad_j: to_poly(&grad_j),
                route: Route::Dp,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_paths_by_both_routes() {
        let env = dag::load_file(std::path::Path::new("spec/two-paths.toml")).unwrap();
        let logs = LogTable::new(&env, None).unwrap();
        let dp = grad_j_dp(&env, &logs);
        let en = expectations_by_enumeration(&env, &logs, 1000).unwrap();
        assert_eq!(dp, en.grad_j);
        assert!(en.score_mean.iter().all(|c| c.is_zero()));
        for (r, g) in en.rtb.iter().zip(&dp) {
            let want = Poly::from_logform(&g.scale(&-env.beta.clone()));
            assert!(r.sub(&want).is_zero());
        }
        // The components of one state sum to zero (softmax invariance).
        let s0 = &env.out_edges[env.source];
        let total = s0.iter().fold(LogForm::zero(), |a, &e| a.add(&dp[e]));
        assert!(total.is_zero());
    }
}

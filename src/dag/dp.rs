//! Exact dynamic programming on the DAG: the optimum `F*`, `q*`, `Z*` by backward induction,
//! and occupancy measures under a concrete policy, in O(|E|) exact operations.
use super::{flow, Environment};
use crate::exact::gcd::{mul, Lehmer};
use crate::exact::{exact_power, Rational};
use num_traits::{One, Zero};

/// The optimum of the fine-tuning problem: `F*(x) = r(x)^β`, `F*(s) = Σ p(s'|s) F*(s')`,
/// `q*(s'|s) = p(s'|s) F*(s') / F*(s)`, `Z* = F*(s0)`. Soft values are `V*(s) = α log F*(s)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Optimum {
    /// `F*(s)` per state.
    pub flow: Vec<Rational>,
    /// `q*(e)` per edge.
    pub policy: Vec<Rational>,
    /// `Z* = F*(s0)`.
    pub z: Rational,
}

/// Why the optimum has no exact rational form: `r(x)^β` is irrational at a terminal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "F*({state}) = r^β = ({reward})^({beta}) is irrational, so Z* and q* have no exact rational form"
)]
pub struct IrrationalOptimum {
    /// The terminal's name.
    pub state: String,
    /// Its reward `r(x)` (boxed: keeps the error small on the `Ok` path).
    pub reward: Box<Rational>,
    /// The environment's `β`.
    pub beta: Box<Rational>,
}

/// The exact optimum, or the reason it is not rational (some `r(x)^β` irrational). The
/// backward pass of [`super::flow`] with the prior as weights and `r(x)^β` at terminals.
pub fn optimum(env: &Environment) -> Result<Optimum, IrrationalOptimum> {
    let mut terminal = vec![Rational::zero(); env.states.len()];
    for x in env.terminals() {
        let r = env.reward(x);
        terminal[x] = exact_power(r, &env.beta).ok_or_else(|| IrrationalOptimum {
            state: env.states[x].clone(),
            reward: Box::new(r.clone()),
            beta: Box::new(env.beta.clone()),
        })?;
    }
    // In Lehmer arithmetic (`exact::gcd`): `F*` has hundreds of digits on large DAGs, where
    // `num-rational`'s binary gcd dominated.
    let prior: Vec<Lehmer> = env.edges.iter().map(|e| Lehmer(e.prior.clone())).collect();
    let zeros = vec![Lehmer::zero(); env.edges.len()];
    let flow = Lehmer::unwrap_all(
        flow::backward(env, &prior, &zeros, |x| Lehmer(terminal[x].clone())).value,
    );
    let policy = env
        .edges
        .iter()
        .map(|edge| mul(&edge.prior, &mul(&flow[edge.to], &flow[edge.from].recip())))
        .collect();
    let z = flow[env.source].clone();
    Ok(Optimum { flow, policy, z })
}

/// The occupancy measure of a policy given per edge: `occ(s0) = 1`,
/// `occ(s') = Σ occ(s) q(s'|s)`; on terminals it is the terminal marginal.
pub fn occupancy(env: &Environment, policy: &[Rational]) -> Vec<Rational> {
    flow::forward_flows(env, policy).state
}

/// The occupancy of every state and the flow `occ(s)·q(e)` through every edge, in one pass.
pub fn occupancy_and_edge_flows(
    env: &Environment,
    policy: &[Rational],
) -> (Vec<Rational>, Vec<Rational>) {
    let flows = flow::forward_flows(env, policy);
    (flows.state, flows.edge)
}

/// The probability of a path under a policy given per edge.
pub fn path_probability(policy: &[Rational], path: &[usize]) -> Rational {
    path.iter()
        .fold(Rational::one(), |acc, &e| acc * &policy[e])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dag::spec::from_toml_str;

    #[test]
    fn optimum_by_backward_induction_and_occupancy() {
        let env = from_toml_str(
            r#"
name = "t"
beta = "2"
source = "s0"
[rewards]
x1 = "3"
x2 = "1/2"
[[edge]]
from = "s0"
to = "a"
prior = "1/3"
[[edge]]
from = "s0"
to = "x1"
prior = "2/3"
[[edge]]
from = "a"
to = "x1"
prior = "1/4"
[[edge]]
from = "a"
to = "x2"
prior = "3/4"
"#,
            "t",
        )
        .unwrap();
        let opt = optimum(&env).unwrap();
        let q = |n: i64, d: i64| Rational::new(n.into(), d.into());
        // F*(a) = 9/4 + 3/16 = 39/16; Z* = 13/16 + 6 = 109/16.
        assert_eq!(opt.z, q(109, 16));
        assert_eq!(opt.policy[0], q(13, 109));
        let occ = occupancy(&env, &opt.policy);
        let x1 = env.state_index["x1"];
        let x2 = env.state_index["x2"];
        assert_eq!(&occ[x1] + &occ[x2], Rational::one());
        // The terminal marginal of q* is p(x) r(x)^β / Z*.
        assert_eq!(occ[x2], q(1, 3) * q(3, 4) * q(1, 4) / q(109, 16));
    }
}

//! Counting and enumerating trajectories (source → terminal) and windows (any non-empty path),
//! guarded by a limit: counts come first, by dynamic programming, so an enumeration that would
//! explode is refused before it starts.
use super::Environment;
use num_bigint::BigUint;
use num_traits::{One, ToPrimitive, Zero};

/// An enumeration over its limit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{what}: {count} would be enumerated, over the limit of {limit} (structural checks still run)"
)]
pub struct EnumerationRefused {
    /// What was to be enumerated.
    pub what: String,
    /// How many there are.
    pub count: BigUint,
    /// The limit.
    pub limit: u64,
}

/// The number of complete trajectories, exactly (it can be astronomically large).
pub fn trajectory_count(env: &Environment) -> BigUint {
    let mut paths_to_terminal = vec![BigUint::zero(); env.states.len()];
    for &s in env.topo.iter().rev() {
        paths_to_terminal[s] = if env.is_terminal(s) {
            BigUint::one()
        } else {
            env.out_edges[s]
                .iter()
                .map(|&e| &paths_to_terminal[env.edges[e].to])
                .sum()
        };
    }
    paths_to_terminal[env.source].clone()
}

/// The number of windows: non-empty paths `s_i → … → s_j` starting anywhere.
pub fn window_count(env: &Environment) -> BigUint {
    let mut starting_at = vec![BigUint::zero(); env.states.len()];
    for &s in env.topo.iter().rev() {
        starting_at[s] = env.out_edges[s]
            .iter()
            .map(|&e| BigUint::one() + &starting_at[env.edges[e].to])
            .sum();
    }
    starting_at.iter().sum()
}

fn guard(what: &str, count: BigUint, limit: u64) -> Result<usize, EnumerationRefused> {
    match count.to_u64() {
        Some(c) if c <= limit => Ok(c as usize),
        _ => Err(EnumerationRefused {
            what: what.to_string(),
            count,
            limit,
        }),
    }
}

fn extend_paths(env: &Environment, start: usize, complete_only: bool, out: &mut Vec<Vec<usize>>) {
    // Iterative depth-first search over edge stacks.
    let mut stack: Vec<(usize, Vec<usize>)> = vec![(start, Vec::new())];
    while let Some((s, path)) = stack.pop() {
        if !path.is_empty() && (!complete_only || env.is_terminal(s)) {
            out.push(path.clone());
        }
        for &e in env.out_edges[s].iter().rev() {
            let mut next = path.clone();
            next.push(e);
            stack.push((env.edges[e].to, next));
        }
    }
}

/// Every trajectory, as its list of edges, or a refusal when there are more than `limit`.
pub fn trajectories(env: &Environment, limit: u64) -> Result<Vec<Vec<usize>>, EnumerationRefused> {
    let count = guard("trajectories", trajectory_count(env), limit)?;
    // Grows as it goes: a limit as large as u64::MAX must not reserve `count` slots up front.
    let mut out = Vec::with_capacity(count.min(1 << 16));
    extend_paths(env, env.source, true, &mut out);
    Ok(out)
}

/// Every window (non-empty path from any state), or a refusal when there are more than `limit`.
pub fn windows(env: &Environment, limit: u64) -> Result<Vec<Vec<usize>>, EnumerationRefused> {
    let count = guard("windows", window_count(env), limit)?;
    let mut out = Vec::with_capacity(count.min(1 << 16));
    for &s in &env.topo {
        extend_paths(env, s, false, &mut out);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dag::spec::from_toml_str;

    const DIAMOND: &str = r#"
name = "d"
beta = "2"
source = "s"
[rewards]
x = "2"
y = "3"
[[edge]]
from = "s"
to = "a"
prior = "1/2"
[[edge]]
from = "s"
to = "b"
prior = "1/2"
[[edge]]
from = "a"
to = "x"
prior = "1"
[[edge]]
from = "b"
to = "x"
prior = "1/3"
[[edge]]
from = "b"
to = "y"
prior = "2/3"
[[edge]]
from = "s"
to = "y"
prior = "0"
"#;

    fn diamond() -> Environment {
        // The last edge has prior 0, which is refused; drop it for the valid diamond.
        let text = DIAMOND.rsplit_once("[[edge]]").unwrap().0;
        from_toml_str(text, "diamond").unwrap()
    }

    #[test]
    fn counts_match_enumeration() {
        let env = diamond();
        assert_eq!(trajectory_count(&env), BigUint::from(3u32));
        assert_eq!(trajectories(&env, 10).unwrap().len(), 3);
        // Windows: s→a, s→a→x, s→b, s→b→x, s→b→y, a→x, b→x, b→y.
        assert_eq!(window_count(&env), BigUint::from(8u32));
        assert_eq!(windows(&env, 10).unwrap().len(), 8);
    }

    #[test]
    fn enumeration_over_the_limit_is_refused_before_it_starts() {
        let env = diamond();
        let refused = trajectories(&env, 2).unwrap_err();
        assert_eq!(refused.count, BigUint::from(3u32));
        assert!(refused.to_string().contains("over the limit of 2"));
    }

    #[test]
    fn a_zero_prior_is_refused_naming_the_edge() {
        let err = from_toml_str(DIAMOND, "diamond").unwrap_err();
        assert!(err.to_string().contains("s->y"), "{err}");
    }
}

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
    let mut out = Vec::with_capacity(count);
    extend_paths(env, env.source, true, &mut out);
    Ok(out)
}

/// Every window (non-empty path from any state), or a refusal when there are more than `limit`.
pub fn windows(env: &Environment, limit: u64) -> Result<Vec<Vec<usize>>, EnumerationRefused> {
    let count = guard("windows", window_count(env), limit)?;
    let mut out = Vec::with_capacity(count);
    for &s in &env.topo {
        extend_paths(env, s, false, &mut out);
    }
    Ok(out)
}

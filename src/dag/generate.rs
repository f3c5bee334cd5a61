//! Reproducible random environments: layered DAGs with skip edges, so that terminals are
//! reached by paths of different lengths. Used by property tests, benchmarks and `generate`.
use super::spec::{EdgeData, SpecData};
use crate::exact::Rational;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Shape of a generated environment.
#[derive(Debug, Clone)]
pub struct Shape {
    /// Number of inner layers between the source and the terminal layer.
    pub layers: usize,
    /// States per inner layer.
    pub width: usize,
    /// Terminal states.
    pub terminals: usize,
    /// Children per state (capped by what the next layers hold).
    pub fan_out: usize,
    /// Probability that a child is drawn from the layer after next (a skip edge).
    pub skip_percent: u32,
    /// β.
    pub beta: Rational,
    /// Whether to give posteriors (otherwise uniform q is used).
    pub posteriors: bool,
    /// Priors and posteriors are random integer weights `1..=max_weight`, normalised.
    pub max_weight: i64,
    /// Rewards are `n/d` with `n` in `1..=reward_numerator`, `d` in `1..=reward_denominator`.
    pub reward_numerator: i64,
    /// See `reward_numerator`.
    pub reward_denominator: i64,
    /// Children of the source (`None`: `fan_out`); the width gives the source every state of
    /// the first layer.
    pub source_fan_out: Option<usize>,
    /// Give every state of a layer a parent: the first child of the `i`-th state of a layer is
    /// the `i`-th state (mod the size) of the next layer, the others are random.
    pub cover: bool,
}

impl Shape {
    /// The layered DAGs of issue 12 (many paths, many primes): the source feeds every state of
    /// the first of `layers` inner layers of `width` states, each state has `fan_out` children
    /// in the next layer (the last feeds `width` terminals), priors and posteriors are random
    /// integer weights 1–9, rewards `n/d` with `n ≤ 40`, `d ≤ 12`, no skip edges, β given.
    /// `many_primes(7, 20, 3, 2)` has 440 edges and 43,740 trajectories.
    pub fn many_primes(layers: usize, width: usize, fan_out: usize, beta: Rational) -> Self {
        Self {
            layers,
            width,
            terminals: width,
            fan_out,
            skip_percent: 0,
            beta,
            posteriors: true,
            max_weight: 9,
            reward_numerator: 40,
            reward_denominator: 12,
            source_fan_out: Some(width),
            cover: true,
        }
    }
}

/// Random positive weights normalised to exact probabilities with small denominators.
fn probabilities(rng: &mut ChaCha8Rng, n: usize, max_weight: i64) -> Vec<Rational> {
    let weights: Vec<i64> = (0..n)
        .map(|_| rng.gen_range(1..=max_weight.max(1)))
        .collect();
    let total: i64 = weights.iter().sum();
    weights
        .into_iter()
        .map(|w| Rational::new(w.into(), total.into()))
        .collect()
}

/// A layered DAG: source → layer 1 → … → layer L → terminals, with skip edges.
pub fn layered(shape: &Shape, seed: u64) -> SpecData {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut layers: Vec<Vec<String>> = vec![vec!["s0".to_string()]];
    for l in 1..=shape.layers {
        layers.push(
            (0..shape.width.max(1))
                .map(|i| format!("s{l}_{i}"))
                .collect(),
        );
    }
    layers.push(
        (0..shape.terminals.max(1))
            .map(|i| format!("x{i}"))
            .collect(),
    );
    let last = layers.len() - 1;
    let mut edges = Vec::new();
    for l in 0..last {
        for (i, from) in layers[l].iter().enumerate() {
            let mut children: Vec<String> = Vec::new();
            let fan_out = match (l, shape.source_fan_out) {
                (0, Some(n)) => n,
                _ => shape.fan_out,
            };
            let wanted = fan_out.max(1).min(layers[l + 1].len());
            if shape.cover {
                children.push(layers[l + 1][i % layers[l + 1].len()].clone());
            }
            while children.len() < wanted {
                let skip = l + 2 <= last && rng.gen_range(0..100) < shape.skip_percent;
                let layer = if skip { &layers[l + 2] } else { &layers[l + 1] };
                let child = layer[rng.gen_range(0..layer.len())].clone();
                if !children.contains(&child) {
                    children.push(child);
                }
            }
            let priors = probabilities(&mut rng, children.len(), shape.max_weight);
            let posteriors = probabilities(&mut rng, children.len(), shape.max_weight);
            for ((to, prior), posterior) in children.into_iter().zip(priors).zip(posteriors) {
                edges.push(EdgeData {
                    from: from.clone(),
                    to,
                    prior,
                    posterior: shape.posteriors.then_some(posterior),
                });
            }
        }
    }
    // Keep only states reachable from the source, and make sure every inner state has
    // children (it does by construction) and every reached terminal has a reward.
    let reachable = reachable_states(&edges);
    edges.retain(|e| reachable.contains(&e.from));
    let rewards = layers[last]
        .iter()
        .filter(|x| reachable.contains(*x))
        .map(|x| {
            let num: i64 = rng.gen_range(1..=shape.reward_numerator.max(1));
            let den: i64 = rng.gen_range(1..=shape.reward_denominator.max(1));
            (x.clone(), Rational::new(num.into(), den.into()))
        })
        .collect();
    SpecData {
        name: format!("layered-{}x{}-seed{seed}", shape.layers, shape.width),
        beta: shape.beta.clone(),
        source: "s0".into(),
        rewards,
        edges,
    }
}

fn reachable_states(edges: &[EdgeData]) -> std::collections::HashSet<String> {
    let mut seen = std::collections::HashSet::from(["s0".to_string()]);
    let mut changed = true;
    while changed {
        changed = false;
        for e in edges {
            if seen.contains(&e.from) && seen.insert(e.to.clone()) {
                changed = true;
            }
        }
    }
    seen
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_issue_shapes_have_their_sizes_and_every_state_is_reached() {
        let beta = Rational::from_integer(2.into());
        let spec = layered(&Shape::many_primes(7, 20, 3, beta.clone()), 1);
        let env = crate::dag::spec::validate(&spec, "t").unwrap();
        assert_eq!(env.edges.len(), 440);
        assert_eq!(env.states.len(), 1 + 7 * 20 + 20);
        assert_eq!(crate::dag::trajectory_count(&env), 43_740u32.into());
        let big = layered(&Shape::many_primes(19, 100, 5, beta), 1);
        assert_eq!(big.edges.len(), 100 + 18 * 500 + 500);
        // Weights 1–9 over five children: denominators at most 45 (the source has 100).
        assert!(big
            .edges
            .iter()
            .filter(|e| e.from != "s0")
            .all(|e| *e.prior.denom() <= 45u32.into()));
    }
}

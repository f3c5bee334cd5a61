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
}

/// Random positive weights normalised to exact probabilities with small denominators.
fn probabilities(rng: &mut ChaCha8Rng, n: usize) -> Vec<Rational> {
    let weights: Vec<i64> = (0..n).map(|_| rng.gen_range(1..=4)).collect();
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
        for from in &layers[l] {
            let mut children: Vec<String> = Vec::new();
            let wanted = shape.fan_out.max(1).min(layers[l + 1].len());
            while children.len() < wanted {
                let skip = l + 2 <= last && rng.gen_range(0..100) < shape.skip_percent;
                let layer = if skip { &layers[l + 2] } else { &layers[l + 1] };
                let child = layer[rng.gen_range(0..layer.len())].clone();
                if !children.contains(&child) {
                    children.push(child);
                }
            }
            let priors = probabilities(&mut rng, children.len());
            let posteriors = probabilities(&mut rng, children.len());
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
            let num: i64 = rng.gen_range(1..=9);
            let den: i64 = rng.gen_range(1..=4);
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

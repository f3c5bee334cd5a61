//! Sampling trajectories of a `spec/` environment from its posterior `q`, reproducibly.
//!
//! The exact probabilities are converted to `f64` once, per edge; sampling walks from the
//! source, choosing each child by inverse CDF on one 53-bit uniform. Trajectories are drawn in
//! chunks of [`ROWS_PER_CHUNK`], chunk `c` from ChaCha8 stream `c` of the seed, so a sample
//! depends only on `(environment, seed, N)`, never on the thread count.
use num_traits::ToPrimitive;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::dag::Environment;
use crate::input::{memory_cap, product, LimitError, Plan};

/// Trajectories per generator chunk.
pub const ROWS_PER_CHUNK: usize = 4096;

/// An environment's posterior as per-state cumulative tables (f64, converted once).
#[derive(Debug, Clone)]
pub struct Sampler<'a> {
    env: &'a Environment,
    /// Per state: `(edge, cumulative q up to and including it)`.
    cumulative: Vec<Vec<(usize, f64)>>,
    longest: usize,
}

impl<'a> Sampler<'a> {
    /// Builds the tables. Fails if a posterior does not convert to a positive `f64`.
    pub fn new(env: &'a Environment) -> Result<Self, super::EnvironmentProblem> {
        let mut cumulative = Vec::with_capacity(env.states.len());
        for s in 0..env.states.len() {
            let mut acc = 0.0;
            let mut row = Vec::with_capacity(env.out_edges[s].len());
            for &e in &env.out_edges[s] {
                let q = env.edges[e]
                    .posterior
                    .to_f64()
                    .filter(|q| q.is_finite() && *q > 0.0)
                    .ok_or_else(|| {
                        super::EnvironmentProblem::NotFloat(format!(
                            "the posterior of {} (as a positive float)",
                            env.edge_name(e)
                        ))
                    })?;
                acc += q;
                row.push((e, acc));
            }
            cumulative.push(row);
        }
        let mut longest = vec![0usize; env.states.len()];
        for &s in env.topo.iter().rev() {
            longest[s] = env.out_edges[s]
                .iter()
                .map(|&e| 1 + longest[env.edges[e].to])
                .max()
                .unwrap_or(0);
        }
        Ok(Self {
            env,
            cumulative,
            longest: longest[env.source],
        })
    }

    /// The environment.
    pub fn env(&self) -> &'a Environment {
        self.env
    }

    /// The number of steps of the longest trajectory (the batch's `T`).
    pub fn longest(&self) -> usize {
        self.longest
    }

    /// One trajectory (its edges, in order), appended to `out`.
    pub fn sample_into(&self, rng: &mut ChaCha8Rng, out: &mut Vec<usize>) {
        let mut s = self.env.source;
        while !self.env.is_terminal(s) {
            let row = &self.cumulative[s];
            let total = row[row.len() - 1].1;
            let x = (rng.gen::<u64>() >> 11) as f64 * (1.0 / (1u64 << 53) as f64) * total;
            let e = row
                .iter()
                .find(|&&(_, c)| x < c)
                .map_or(row[row.len() - 1].0, |&(e, _)| e);
            out.push(e);
            s = self.env.edges[e].to;
        }
    }

    /// What sampling `n` trajectories allocates: the `[n, T]` edge table (4 bytes an entry)
    /// and the lengths (8 bytes a row), every product checked.
    pub fn plan(&self, n: usize, plan: &mut Plan) -> Result<(), LimitError> {
        let t = self.longest.max(1) as u64;
        let entries = product(
            "sampled trajectories",
            &[("N", n as u64), ("T (longest path)", t)],
        )?;
        plan.add("sampled edge table [N, T]", entries, 4)?;
        plan.add("sampled lengths [N]", n as u64, 8)?;
        Ok(())
    }

    /// `n` trajectories from `seed`: a flat row-major `[n, T]` table of environment edge
    /// indices (`u32::MAX` on padding, `T` = [`Sampler::longest`]) and the lengths. Refused,
    /// before anything is allocated, when the table is over the memory cap
    /// ([`crate::input::memory_cap`]); callers that allocate more per entry plan for it
    /// themselves ([`Sampler::plan`]).
    pub fn sample(&self, n: usize, seed: u64) -> Result<(Vec<u32>, Vec<usize>), LimitError> {
        let mut plan = Plan::new(&format!("sampling {n} trajectories"));
        self.plan(n, &mut plan)?;
        plan.check(
            &memory_cap(),
            &format!(
                "the longest trajectory has {} steps: lower the number of samples",
                self.longest
            ),
        )?;
        let t = self.longest.max(1);
        let mut edges = vec![u32::MAX; n * t];
        let mut lengths = vec![0usize; n];
        edges
            .par_chunks_mut(ROWS_PER_CHUNK * t)
            .zip(lengths.par_chunks_mut(ROWS_PER_CHUNK))
            .enumerate()
            .for_each(|(c, (ech, lch))| {
                let mut rng = ChaCha8Rng::seed_from_u64(seed);
                rng.set_stream(c as u64);
                let mut path = Vec::with_capacity(t);
                for (k, len) in lch.iter_mut().enumerate() {
                    path.clear();
                    self.sample_into(&mut rng, &mut path);
                    *len = path.len();
                    for (j, &e) in path.iter().enumerate() {
                        ech[k * t + j] = e as u32;
                    }
                }
            });
        Ok((edges, lengths))
    }
}

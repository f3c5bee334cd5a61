//! Behaviour policies: where an off-policy method's trajectories come from.
//!
//! Every behaviour is a named, documented choice (`--behaviour`); the off-policy methods take
//! any of them, the on-policy methods always sample from `q`. Trajectories are always scored
//! under the current policy `q` (their `log q` is recomputed), never under the behaviour.
//!
//! | name | behaviour at a state `s` with children `c_1..c_n` |
//! | --- | --- |
//! | `on-policy` | `q(·|s)` |
//! | `mix` | `(1 − ε) q(·|s) + ε/n` at every state except the source, `q` at the source |
//! | `mix-source` | `(1 − ε) q(·|s) + ε/n` at every state, the source included (the ablation) |
//! | `tempered` | `q(·|s)^{1/T} / Σ q^{1/T}` (T > 1 flattens) at every state except the source |
//! | `prior` | `p(·|s)` (the pretrained diffusion model) |
//! | `replay` | a fraction `f` of each batch fresh from `q`, the rest drawn uniformly with replacement from a FIFO buffer of the last `capacity` fresh trajectories (Trust-PCL's recipe, Nachum et al. 2018, without its reward prioritisation) |
//!
//! The source is special in the study's DAG: it has one child per grid cell (1 681 on the full
//! grid), so a uniform jump there starts a trajectory anywhere on the grid, mostly in regions
//! the target gives no mass (`log r` down to −75). `mix` and `tempered` explore at every
//! denoising step but not there; `mix-source` is the sampler the study used first, kept as the
//! ablation that shows the effect of that jump.
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use super::diffusion::DiffusionDag;
use super::StudyError;

/// A behaviour policy (see the module's table).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Behaviour {
    /// `q` itself.
    OnPolicy,
    /// `(1 − ε) q + ε · uniform(children)` at every state but the source.
    Mix {
        /// ε.
        eps: f64,
    },
    /// `(1 − ε) q + ε · uniform(children)` at every state, the source included.
    MixSource {
        /// ε.
        eps: f64,
    },
    /// `q^{1/T}`, renormalized, at every state but the source.
    Tempered {
        /// T.
        temperature: f64,
    },
    /// The prior `p`.
    Prior,
    /// Fresh on-policy samples mixed with a replay buffer of past ones.
    Replay {
        /// Fraction of each batch sampled fresh from `q`.
        fresh: f64,
        /// Buffer capacity in trajectories (FIFO).
        capacity: usize,
    },
}

/// The behaviour names, in report order.
pub const BEHAVIOUR_NAMES: [&str; 6] = [
    "on-policy",
    "mix",
    "mix-source",
    "tempered",
    "prior",
    "replay",
];

/// The parameters the named behaviours take.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct BehaviourParams {
    /// ε of `mix` and `mix-source`.
    pub eps: f64,
    /// T of `tempered`.
    pub temperature: f64,
    /// Fresh fraction of `replay`.
    pub replay_fresh: f64,
    /// Capacity of `replay`, in trajectories.
    pub replay_capacity: usize,
}

impl Behaviour {
    /// The behaviour of a name with the given parameters.
    pub fn from_name(name: &str, p: &BehaviourParams) -> Result<Self, StudyError> {
        let b = match name.trim() {
            "on-policy" => Behaviour::OnPolicy,
            "mix" => Behaviour::Mix { eps: p.eps },
            "mix-source" => Behaviour::MixSource { eps: p.eps },
            "tempered" => Behaviour::Tempered {
                temperature: p.temperature,
            },
            "prior" => Behaviour::Prior,
            "replay" => Behaviour::Replay {
                fresh: p.replay_fresh,
                capacity: p.replay_capacity,
            },
            other => {
                return Err(StudyError::Config(format!(
                    "unknown behaviour `{other}` (known: {})",
                    BEHAVIOUR_NAMES.join(", ")
                )))
            }
        };
        b.validate()?;
        Ok(b)
    }

    /// The name (see [`BEHAVIOUR_NAMES`]).
    pub fn name(&self) -> &'static str {
        match self {
            Behaviour::OnPolicy => "on-policy",
            Behaviour::Mix { .. } => "mix",
            Behaviour::MixSource { .. } => "mix-source",
            Behaviour::Tempered { .. } => "tempered",
            Behaviour::Prior => "prior",
            Behaviour::Replay { .. } => "replay",
        }
    }

    /// Refuses parameters that do not define a full-support behaviour.
    pub fn validate(&self) -> Result<(), StudyError> {
        let bad = |m: String| Err(StudyError::Config(m));
        match *self {
            Behaviour::Mix { eps } | Behaviour::MixSource { eps } if !(eps > 0.0 && eps < 1.0) => {
                bad(format!("behaviour {}: ε = {eps} must be in (0, 1)", self.name()))
            }
            Behaviour::Tempered { temperature } if !(temperature.is_finite() && temperature > 0.0) => {
                bad(format!("behaviour tempered: T = {temperature} must be > 0"))
            }
            Behaviour::Replay { fresh, capacity } if !(fresh > 0.0 && fresh <= 1.0) || capacity == 0 => {
                bad(format!(
                    "behaviour replay: fresh fraction {fresh} must be in (0, 1] and capacity {capacity} ≥ 1"
                ))
            }
            _ => Ok(()),
        }
    }

    /// The behaviour's probabilities at one state from the policy's logits and probabilities
    /// there and the prior's `log p` (cleared and written into `out`). `replay` gives `q` (its
    /// fresh samples are on-policy).
    pub fn local(
        &self,
        logits: &[f64],
        q: &[f64],
        log_p: &[f64],
        is_source: bool,
        out: &mut Vec<f64>,
    ) {
        out.clear();
        let n = q.len() as f64;
        match *self {
            Behaviour::OnPolicy | Behaviour::Replay { .. } => out.extend_from_slice(q),
            Behaviour::Mix { eps } if !is_source => {
                out.extend(q.iter().map(|&x| (1.0 - eps) * x + eps / n))
            }
            Behaviour::Mix { .. } => out.extend_from_slice(q),
            Behaviour::MixSource { eps } => {
                out.extend(q.iter().map(|&x| (1.0 - eps) * x + eps / n))
            }
            Behaviour::Tempered { temperature } if !is_source => {
                let scaled: Vec<f64> = logits.iter().map(|l| l / temperature).collect();
                local_softmax(&scaled, out);
            }
            Behaviour::Tempered { .. } => out.extend_from_slice(q),
            Behaviour::Prior => out.extend(log_p.iter().map(|l| l.exp())),
        }
    }

    /// The behaviour's probability of every edge given the policy's logits and probabilities
    /// (for the exact expected-gradient mode); refused for `replay`, whose distribution is the
    /// training history's.
    pub fn edge_probabilities(
        &self,
        dag: &DiffusionDag,
        logits: &[f64],
        q: &[f64],
    ) -> Result<Vec<f64>, StudyError> {
        if let Behaviour::Replay { .. } = self {
            return Err(StudyError::Config(
                "the replay behaviour has no fixed distribution: the exact expected-gradient \
                 mode takes on-policy, mix, mix-source, tempered or prior"
                    .into(),
            ));
        }
        let offsets = dag.offsets();
        let mut out = vec![0.0; dag.edges()];
        let mut local = Vec::new();
        for s in 0..dag.states() {
            let (lo, hi) = (offsets[s], offsets[s + 1]);
            self.local(
                &logits[lo..hi],
                &q[lo..hi],
                &dag.log_p()[lo..hi],
                s == 0,
                &mut local,
            );
            out[lo..hi].copy_from_slice(&local);
        }
        Ok(out)
    }
}

/// The softmax of one state's logits into `q` (cleared first); returns the `logsumexp`.
pub fn local_softmax(logits: &[f64], q: &mut Vec<f64>) -> f64 {
    let m = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    q.clear();
    q.extend(logits.iter().map(|x| (x - m).exp()));
    let z: f64 = q.iter().sum();
    for v in q.iter_mut() {
        *v /= z;
    }
    m + z.ln()
}

/// A batch: per step (row-major `[B, T]`) the edge, the state left, `log q` under the current
/// policy, `log p`; per trajectory `log r` and `log π(τ)` of the behaviour that drew it.
#[derive(Debug, Clone, Default)]
pub struct Sampled {
    /// Edge taken at each step.
    pub edges: Vec<u32>,
    /// State left at each step.
    pub states: Vec<u32>,
    /// `log q` of each step under the current policy.
    pub log_q: Vec<f64>,
    /// `log p` of each step.
    pub log_p: Vec<f64>,
    /// `log r(x)` per trajectory.
    pub log_r: Vec<f64>,
    /// `log π(τ)` per trajectory, under the behaviour when it was drawn.
    pub log_pi: Vec<f64>,
}

impl Sampled {
    fn with_capacity(b: usize, t: usize) -> Self {
        Self {
            edges: Vec::with_capacity(b * t),
            states: Vec::with_capacity(b * t),
            log_q: Vec::with_capacity(b * t),
            log_p: Vec::with_capacity(b * t),
            log_r: Vec::with_capacity(b),
            log_pi: Vec::with_capacity(b),
        }
    }

    /// Number of trajectories.
    pub fn len(&self) -> usize {
        self.log_r.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.log_r.is_empty()
    }

    /// `log q(τ) − log π(τ)` per trajectory (`t` steps each).
    pub fn log_weights(&self, t: usize) -> Vec<f64> {
        (0..self.len())
            .map(|i| self.log_q[i * t..(i + 1) * t].iter().sum::<f64>() - self.log_pi[i])
            .collect()
    }
}

/// Draws batches from a behaviour; holds the replay buffer.
#[derive(Debug, Clone)]
pub struct Sampler {
    behaviour: Behaviour,
    /// Stored trajectories: edges (`T` each), `log r`, `log π`.
    buffer_edges: Vec<u32>,
    buffer_log_r: Vec<f64>,
    buffer_log_pi: Vec<f64>,
    /// Next slot to overwrite once full.
    next: usize,
}

impl Sampler {
    /// A sampler for a behaviour (validated).
    pub fn new(behaviour: Behaviour) -> Result<Self, StudyError> {
        behaviour.validate()?;
        Ok(Self {
            behaviour,
            buffer_edges: Vec::new(),
            buffer_log_r: Vec::new(),
            buffer_log_pi: Vec::new(),
            next: 0,
        })
    }

    /// Trajectories in the replay buffer.
    pub fn buffered(&self) -> usize {
        self.buffer_log_r.len()
    }

    /// A batch of `batch` trajectories.
    pub fn draw(
        &mut self,
        dag: &DiffusionDag,
        logits: &[f64],
        batch: usize,
        rng: &mut ChaCha8Rng,
    ) -> Sampled {
        let t = dag.trajectory_len();
        let Behaviour::Replay { fresh, capacity } = self.behaviour else {
            return sample(dag, logits, &self.behaviour, batch, rng);
        };
        let n_fresh = if self.buffered() == 0 {
            batch
        } else {
            ((fresh * batch as f64).round() as usize).clamp(1, batch)
        };
        let n_replay = batch - n_fresh;
        // Replayed trajectories are drawn before this step's fresh ones are stored.
        let picks: Vec<usize> = (0..n_replay)
            .map(|_| rng.gen_range(0..self.buffered()))
            .collect();
        let mut out = sample(dag, logits, &Behaviour::OnPolicy, n_fresh, rng);
        for i in 0..n_fresh {
            let edges = &out.edges[i * t..(i + 1) * t];
            if self.buffered() < capacity {
                self.buffer_edges.extend_from_slice(edges);
                self.buffer_log_r.push(out.log_r[i]);
                self.buffer_log_pi.push(out.log_pi[i]);
            } else {
                let k = self.next;
                self.buffer_edges[k * t..(k + 1) * t].copy_from_slice(edges);
                self.buffer_log_r[k] = out.log_r[i];
                self.buffer_log_pi[k] = out.log_pi[i];
                self.next = (k + 1) % capacity;
            }
        }
        let mut q = Vec::new();
        for k in picks {
            let edges = &self.buffer_edges[k * t..(k + 1) * t];
            let mut state = 0usize;
            for (step, &e) in edges.iter().enumerate() {
                let (lo, hi) = (dag.offsets()[state], dag.offsets()[state + 1]);
                let lse = local_softmax(&logits[lo..hi], &mut q);
                let e = e as usize;
                out.edges.push(e as u32);
                out.states.push(state as u32);
                out.log_q.push((logits[e] - lse).min(0.0));
                out.log_p.push(dag.log_p()[e]);
                state = dag
                    .state(step + 1, dag.child_cells()[e] as usize)
                    .unwrap_or(0);
            }
            out.log_r.push(self.buffer_log_r[k]);
            out.log_pi.push(self.buffer_log_pi[k]);
        }
        out
    }
}

/// Samples `batch` trajectories from a fixed-distribution behaviour (not `replay`); `q`'s
/// softmax is computed only at the states visited (the source's once per batch).
pub fn sample(
    dag: &DiffusionDag,
    logits: &[f64],
    behaviour: &Behaviour,
    batch: usize,
    rng: &mut ChaCha8Rng,
) -> Sampled {
    let t = dag.trajectory_len();
    let (offsets, child, log_p) = (dag.offsets(), dag.child_cells(), dag.log_p());
    let mut out = Sampled::with_capacity(batch, t);
    // The source has N children: its behaviour CDF once per batch, then binary search.
    let (s_lo, s_hi) = (offsets[0], offsets[1]);
    let mut q0 = Vec::new();
    let lse0 = local_softmax(&logits[s_lo..s_hi], &mut q0);
    let mut pi0 = Vec::new();
    behaviour.local(&logits[s_lo..s_hi], &q0, &log_p[s_lo..s_hi], true, &mut pi0);
    let mut cdf = Vec::with_capacity(pi0.len());
    let mut acc = 0.0;
    for &x in &pi0 {
        acc += x;
        cdf.push(acc);
    }
    let (mut ql, mut pil) = (Vec::new(), Vec::new());
    for _ in 0..batch {
        let mut log_pi = 0.0;
        let mut state = 0usize;
        let mut cell = 0usize;
        for step in 0..t {
            let (lo, hi) = (offsets[state], offsets[state + 1]);
            let (k, lse, pk) = if step == 0 {
                let u = rng.gen::<f64>() * acc;
                let k = cdf.partition_point(|&c| c <= u).min(hi - lo - 1);
                (k, lse0, pi0[k] / acc)
            } else {
                let lse = local_softmax(&logits[lo..hi], &mut ql);
                behaviour.local(&logits[lo..hi], &ql, &log_p[lo..hi], false, &mut pil);
                let total: f64 = pil.iter().sum();
                let u = rng.gen::<f64>() * total;
                let mut c = 0.0;
                let mut k = pil.len() - 1;
                for (j, &x) in pil.iter().enumerate() {
                    c += x;
                    if u < c {
                        k = j;
                        break;
                    }
                }
                (k, lse, pil[k] / total)
            };
            let e = lo + k;
            log_pi += pk.ln();
            out.edges.push(e as u32);
            out.states.push(state as u32);
            out.log_q.push((logits[e] - lse).min(0.0));
            out.log_p.push(log_p[e]);
            cell = child[e] as usize;
            state = dag.state(step + 1, cell).unwrap_or(0);
        }
        out.log_r.push(dag.log_r()[cell]);
        out.log_pi.push(log_pi);
    }
    out
}

/// One window per trajectory, uniform over all `T(T+1)/2` windows `0 ≤ i < j ≤ T`: an index
/// `k` uniform in `0..T(T+1)/2`, mapped to the `k`-th pair in lexicographic order. (The first
/// study drew `i` uniform, then `j` uniform given `i`, which over-weights windows starting
/// late.)
pub fn uniform_window(t: usize, rng: &mut ChaCha8Rng) -> (usize, usize) {
    let mut k = rng.gen_range(0..t * (t + 1) / 2);
    for i in 0..t {
        let n = t - i; // windows starting at i: j = i+1..=t
        if k < n {
            return (i, i + 1 + k);
        }
        k -= n;
    }
    unreachable!("k < T(T+1)/2")
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn windows_are_uniform_over_all_windows() {
        let t = 4;
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut counts = std::collections::BTreeMap::new();
        let n = 100_000;
        for _ in 0..n {
            let w = uniform_window(t, &mut rng);
            assert!(w.0 < w.1 && w.1 <= t);
            *counts.entry(w).or_insert(0usize) += 1;
        }
        assert_eq!(counts.len(), 10);
        for (w, c) in counts {
            // Binomial(n, 1/10): std ≈ 95; 6 std.
            assert!((c as f64 - 10_000.0).abs() < 600.0, "{w:?}: {c}");
        }
    }

    #[test]
    fn names_round_trip_and_bad_parameters_are_errors() {
        let p = BehaviourParams {
            eps: 0.05,
            temperature: 2.0,
            replay_fresh: 0.5,
            replay_capacity: 100,
        };
        for name in BEHAVIOUR_NAMES {
            assert_eq!(Behaviour::from_name(name, &p).unwrap().name(), name);
        }
        assert!(Behaviour::from_name("uniform", &p).is_err());
        assert!(Behaviour::from_name("mix", &BehaviourParams { eps: 0.0, ..p }).is_err());
        assert!(Behaviour::from_name(
            "replay",
            &BehaviourParams {
                replay_capacity: 0,
                ..p
            }
        )
        .is_err());
    }
}

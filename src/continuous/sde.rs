//! The Euler–Maruyama sampler of the paper's `GFN.get_trajectory_fwd` (with
//! `learned_variance=False`, `t_scale = σ² = 5`): `T` steps on `[0, 1]` from `x0 = 0`,
//! `x_{t+1} = x_t + dt·f(t, x_t) + √(σ²·dt)·ε`, so the per-step density is the Gaussian
//! `N(x_t + dt·f(t, x_t), σ²·dt·I)`. With exploration std `e > 0` the behaviour adds `e²` to
//! the per-step variance (their `logaddexp` of log-variances), while the trajectory is scored
//! under the current policy. The drift is detached while sampling (their `pis=False`).
//!
//! The fixed backward process (their `get_trajectory_bwd` with `learn_pb=False`) is the
//! Brownian bridge pinned at `x0 = 0`: from time `t_k = k·dt`, `x_{k−1} ~ N(x_k·(k−1)/k,
//! σ²·dt·(k−1)/k·I)`, and `x_0 = 0`.
use super::network::PisNet;
use super::target::normal;
use super::Result;
use candle_core::{DType, Device, Tensor};
use rand_chacha::ChaCha8Rng;

const LOG_2PI: f64 = 1.837_877_066_409_345_3;

/// The discretised SDE.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sde {
    /// Number of Euler–Maruyama steps `T`.
    pub steps: usize,
    /// Diffusion coefficient `σ²` (the paper's `t_scale`, 5).
    pub sigma2: f64,
}

impl Default for Sde {
    fn default() -> Self {
        Self {
            steps: 100,
            sigma2: 5.0,
        }
    }
}

/// A batch of trajectories: states `(T+1) × B × 2`, time-major.
#[derive(Debug, Clone)]
pub struct Trajectories {
    /// Number of trajectories `B`.
    pub batch: usize,
    /// Number of steps `T`.
    pub steps: usize,
    /// States, index `(t·B + b)·2 + d`.
    pub states: Vec<f64>,
}

impl Trajectories {
    /// State `t` of trajectory `b`.
    pub fn state(&self, t: usize, b: usize) -> [f64; 2] {
        let i = (t * self.batch + b) * 2;
        [self.states[i], self.states[i + 1]]
    }

    /// Terminal states `x_T`.
    pub fn terminals(&self) -> Vec<[f64; 2]> {
        (0..self.batch).map(|b| self.state(self.steps, b)).collect()
    }

    /// The trajectories `b0..b0 + len` (a shard of the batch).
    pub fn columns(&self, b0: usize, len: usize) -> Trajectories {
        let mut states = Vec::with_capacity((self.steps + 1) * len * 2);
        for t in 0..=self.steps {
            let row = (t * self.batch + b0) * 2;
            states.extend_from_slice(&self.states[row..row + len * 2]);
        }
        Trajectories {
            batch: len,
            steps: self.steps,
            states,
        }
    }

    /// The states as a `(T+1, B, 2)` tensor.
    pub fn to_tensor(&self, dtype: DType) -> Result<Tensor> {
        Ok(Tensor::from_vec(
            self.states.clone(),
            &[self.steps + 1, self.batch, 2],
            &Device::Cpu,
        )?
        .to_dtype(dtype)?)
    }
}

/// Per-step log-densities of a batch under a network, with the drift that produced them.
#[derive(Debug, Clone)]
pub struct StepLogDensity {
    /// `log q(x_{t+1} | x_t)`, shape `(T, B)`.
    pub log_q: Tensor,
    /// The drift `f(t, x_t)`, shape `(T, B, 2)`.
    pub drift: Tensor,
}

impl Sde {
    /// The step size `dt = 1/T`.
    pub fn dt(&self) -> f64 {
        1.0 / self.steps as f64
    }

    /// The times `t·dt`, `t = 0..T`, at which the drift is evaluated.
    pub fn times(&self) -> Vec<f64> {
        (0..self.steps).map(|t| t as f64 * self.dt()).collect()
    }

    /// Samples `batch` trajectories from `net` (drift detached), with exploration std
    /// `exploration` (0 for on-policy), drawing noise from `rng`.
    pub fn sample(
        &self,
        net: &PisNet,
        batch: usize,
        exploration: f64,
        rng: &mut ChaCha8Rng,
    ) -> Result<Trajectories> {
        let dt = self.dt();
        let sd = (self.sigma2 * dt + exploration.max(0.0).powi(2)).sqrt();
        let temb = net.time_embedding(&self.times(), false)?;
        let mut states = vec![0.0f64; (self.steps + 1) * batch * 2];
        for t in 0..self.steps {
            let cur = &states[t * batch * 2..(t + 1) * batch * 2];
            let x = Tensor::from_vec(cur.to_vec(), &[1, batch, 2], &Device::Cpu)?
                .to_dtype(net.dtype())?;
            let mu = net
                .forward_grid(&x, &temb.narrow(0, t, 1)?, false)?
                .flatten_all()?
                .to_dtype(DType::F64)?
                .to_vec1::<f64>()?;
            let (head, tail) = states.split_at_mut((t + 1) * batch * 2);
            let cur = &head[t * batch * 2..];
            let next = &mut tail[..batch * 2];
            for ((n, c), m) in next.iter_mut().zip(cur).zip(&mu) {
                *n = c + dt * m + sd * normal(rng);
            }
        }
        Ok(Trajectories {
            batch,
            steps: self.steps,
            states,
        })
    }

    /// Samples backward (Brownian-bridge) trajectories ending at the given terminal states.
    pub fn bridge(&self, terminals: &[[f64; 2]], rng: &mut ChaCha8Rng) -> Trajectories {
        let batch = terminals.len();
        let t_max = self.steps;
        let dt = self.dt();
        let mut states = vec![0.0f64; (t_max + 1) * batch * 2];
        for (b, x) in terminals.iter().enumerate() {
            states[(t_max * batch + b) * 2] = x[0];
            states[(t_max * batch + b) * 2 + 1] = x[1];
        }
        for k in (2..=t_max).rev() {
            let shrink = (k - 1) as f64 / k as f64;
            let sd = (self.sigma2 * dt * shrink).sqrt();
            for b in 0..batch {
                for d in 0..2 {
                    let from = states[(k * batch + b) * 2 + d];
                    states[((k - 1) * batch + b) * 2 + d] = from * shrink + sd * normal(rng);
                }
            }
        }
        Trajectories {
            batch,
            steps: t_max,
            states,
        }
    }

    /// `log p_B(x_1..x_{T−1} | x_T)` under the bridge, per trajectory.
    pub fn bridge_log_density(&self, traj: &Trajectories) -> Vec<f64> {
        let dt = self.dt();
        (0..traj.batch)
            .map(|b| {
                let mut total = 0.0;
                for k in 2..=traj.steps {
                    let shrink = (k - 1) as f64 / k as f64;
                    let var = self.sigma2 * dt * shrink;
                    let from = traj.state(k, b);
                    let to = traj.state(k - 1, b);
                    for (y, x) in to.iter().zip(&from) {
                        let r = y - x * shrink;
                        total += -0.5 * (r * r / var + LOG_2PI + var.ln());
                    }
                }
                total
            })
            .collect()
    }

    /// The per-step log-densities `log q(x_{t+1}|x_t)` of the trajectories in `states`
    /// (`(T+1, B, 2)`) under `net`, in one batched network call; tracked by autograd iff
    /// `track`.
    pub fn step_log_density(
        &self,
        net: &PisNet,
        states: &Tensor,
        track: bool,
    ) -> Result<StepLogDensity> {
        let t = self.steps;
        let dt = self.dt();
        let xs = states.narrow(0, 0, t)?;
        let dx = (states.narrow(0, 1, t)? - &xs)?;
        let temb = net.time_embedding(&self.times(), track)?;
        let drift = net.forward_grid(&xs, &temb, track)?;
        let r = (dx - (&drift * dt)?)?;
        let var = self.sigma2 * dt;
        let log_q = r.sqr()?.sum(2)?.affine(-0.5 / var, -(LOG_2PI + var.ln()))?;
        Ok(StepLogDensity { log_q, drift })
    }

    /// `log b(τ)` of each trajectory under the exploration behaviour (drift `drift`, detached,
    /// per-step variance `σ²·dt + e²`).
    pub fn behaviour_log_density(
        &self,
        traj: &Trajectories,
        drift: &Tensor,
        exploration: f64,
    ) -> Result<Vec<f64>> {
        let dt = self.dt();
        let var = self.sigma2 * dt + exploration.max(0.0).powi(2);
        let mu = drift
            .detach()
            .flatten_all()?
            .to_dtype(DType::F64)?
            .to_vec1::<f64>()?;
        let b_n = traj.batch;
        let mut out = vec![0.0; b_n];
        for t in 0..traj.steps {
            for (b, o) in out.iter_mut().enumerate() {
                let from = traj.state(t, b);
                let to = traj.state(t + 1, b);
                let m = &mu[(t * b_n + b) * 2..(t * b_n + b) * 2 + 2];
                for ((y, x), m) in to.iter().zip(&from).zip(m) {
                    let r = y - x - dt * m;
                    *o += -0.5 * (r * r / var + LOG_2PI + var.ln());
                }
            }
        }
        Ok(out)
    }
}

/// The paper's exploration schedule (`get_exploration_std` with `exploration_wd=True`),
/// rescaled to `total` iterations: `factor` until `0.1·total`, then
/// `factor·max(0, 1 − it/(0.9·total))` (at 5000 iterations: constant to 500, zero at 4500).
pub fn exploration_std(it: usize, total: usize, factor: f64) -> f64 {
    let until = 0.1 * total as f64;
    let zero_at = 0.9 * total as f64;
    let it = it as f64;
    if it < until {
        factor
    } else {
        factor * (1.0 - it / zero_at).max(0.0)
    }
}

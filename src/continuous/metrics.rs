//! Metrics against the exact target (the paper logs only its `kl_div` statistic).
//!
//! With `log w(τ) = log p(τ) + β log r(x) − log q(τ)` and the exact `log Z = 0`:
//! - `ELBO = E_q[log w] ≤ log Z = 0`; the path-space `KL(q ‖ q*) = log Z − ELBO = −ELBO`;
//! - `log Ẑ_IS = log mean exp(log w)` (importance-sampling estimate of `log Z`, a stochastic
//!   lower bound in expectation);
//! - EUBO, by the standard estimator of the diffusion-sampler benchmarks: exact target samples
//!   pushed through the fixed backward (Brownian-bridge) process `p_B`,
//!   `EUBO = E_{x∼target, τ∼p_B(·|x)}[log target(x) + log p_B(τ|x) − log q(τ)]
//!   = KL(target·p_B ‖ q) ≥ KL(target ‖ q_X) ≥ 0` (it uses the bridge in place of the prior's
//!   own backward process, so it bounds the terminal-marginal KL, not the path KL to `q*`);
//! - mode masses: each sample to its nearest of the 25 lattice points, total variation to the
//!   target weights, beside the same statistic for an exact target sample of the same size;
//! - energy distance to exact target samples beside its value between two independent exact
//!   samples (the noise floor);
//! - the paper's `kl_div` (batch mean of `Σ log q − Σ log p`), on on-policy samples.
use super::methods::{kl_div_statistic, sum_steps};
use super::network::PisNet;
use super::sde::{Sde, Trajectories};
use super::target::{log_sum_exp, nearest_lattice, target_lattice_masses, Reward};
use super::Result;
use candle_core::{DType, Tensor};
use rand_chacha::ChaCha8Rng;

/// One evaluation of a policy.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Evaluation {
    /// Number of samples.
    pub samples: usize,
    /// `E_q[log w]`, a lower bound on `log Z = 0`.
    pub elbo: f64,
    /// Path-space `KL(q ‖ q*) = −ELBO`.
    pub path_kl: f64,
    /// `log mean exp(log w)`.
    pub log_z_is: f64,
    /// The bridge EUBO (an upper bound on `KL(target ‖ q_X)`, ≥ 0).
    pub eubo: f64,
    /// Mass of the samples at each of the 25 lattice points (row-major over x, then y).
    pub mode_masses: Vec<f64>,
    /// Total variation between [`Evaluation::mode_masses`] and the target weights.
    pub mode_tv: f64,
    /// The same total variation for an exact target sample of the same size (noise floor).
    pub mode_tv_floor: f64,
    /// Largest absolute error of a lattice mass.
    pub mode_max_error: f64,
    /// Energy distance between the samples and exact target samples.
    pub energy_distance: f64,
    /// Energy distance between two independent exact target samples (noise floor).
    pub energy_floor: f64,
    /// The paper's `kl_div` statistic on these on-policy samples.
    pub kl_div: f64,
    /// The terminal samples (for plots; not serialised).
    #[serde(skip)]
    pub terminals: Vec<[f64; 2]>,
}

fn per_trajectory(log_steps: &Tensor) -> Result<Vec<f64>> {
    Ok(sum_steps(log_steps)?
        .to_dtype(DType::F64)?
        .to_vec1::<f64>()?)
}

/// Evaluates `policy` against the exact target with `n` samples.
pub fn evaluate(
    policy: &PisNet,
    prior: &PisNet,
    sde: &Sde,
    reward: &Reward,
    n: usize,
    rng: &mut ChaCha8Rng,
) -> Result<Evaluation> {
    let traj = sde.sample(policy, n, 0.0, rng)?;
    let states = traj.to_tensor(policy.dtype())?;
    let lq = sde.step_log_density(policy, &states, false)?.log_q;
    let lp = sde.step_log_density(prior, &states, false)?.log_q;
    let kl_div = kl_div_statistic(&lq, &lp, None)?;
    let log_q = per_trajectory(&lq)?;
    let log_p = per_trajectory(&lp)?;
    let terminals = traj.terminals();
    let log_w: Vec<f64> = terminals
        .iter()
        .zip(log_q.iter().zip(&log_p))
        .map(|(x, (q, p))| p + reward.log_reward(*x) - q)
        .collect();
    let elbo = log_w.iter().sum::<f64>() / n as f64;
    let log_z_is = log_sum_exp(&log_w) - (n as f64).ln();

    let exact = reward.target.sample(n, rng);
    let eubo = bridge_eubo(policy, sde, reward, &exact, rng)?;
    let masses = lattice_masses(&terminals);
    let target = target_lattice_masses();
    let tv = total_variation(&masses, &target);
    let exact2 = reward.target.sample(n, rng);
    let tv_floor = total_variation(&lattice_masses(&exact2), &target);
    let max_err = masses
        .iter()
        .zip(&target)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    Ok(Evaluation {
        samples: n,
        elbo,
        path_kl: -elbo,
        log_z_is,
        eubo,
        mode_masses: masses.to_vec(),
        mode_tv: tv,
        mode_tv_floor: tv_floor,
        mode_max_error: max_err,
        energy_distance: energy_distance(&terminals, &exact),
        energy_floor: energy_distance(&exact2, &exact),
        kl_div,
        terminals,
    })
}

/// The bridge EUBO of `policy` on exact target samples `exact`.
pub fn bridge_eubo(
    policy: &PisNet,
    sde: &Sde,
    reward: &Reward,
    exact: &[[f64; 2]],
    rng: &mut ChaCha8Rng,
) -> Result<f64> {
    let back: Trajectories = sde.bridge(exact, rng);
    let lq = per_trajectory(
        &sde.step_log_density(policy, &back.to_tensor(policy.dtype())?, false)?
            .log_q,
    )?;
    let lb = sde.bridge_log_density(&back);
    let total: f64 = exact
        .iter()
        .zip(lq.iter().zip(&lb))
        .map(|(x, (q, b))| reward.target.log_prob(*x) + b - q)
        .sum();
    Ok(total / exact.len() as f64)
}

/// Fraction of the points nearest to each lattice point.
pub fn lattice_masses(xs: &[[f64; 2]]) -> [f64; 25] {
    let mut m = [0.0; 25];
    for x in xs {
        m[nearest_lattice(*x)] += 1.0;
    }
    let n = xs.len().max(1) as f64;
    m.iter_mut().for_each(|v| *v /= n);
    m
}

/// `½ Σ |a − b|`.
pub fn total_variation(a: &[f64], b: &[f64]) -> f64 {
    0.5 * a.iter().zip(b).map(|(x, y)| (x - y).abs()).sum::<f64>()
}

/// Energy distance `2 E|X−Y| − E|X−X'| − E|Y−Y'|` (within-sample terms as U-statistics).
pub fn energy_distance(xs: &[[f64; 2]], ys: &[[f64; 2]]) -> f64 {
    let d = |a: &[f64; 2], b: &[f64; 2]| ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)).sqrt();
    let cross: f64 = xs
        .iter()
        .map(|a| ys.iter().map(|b| d(a, b)).sum::<f64>())
        .sum::<f64>()
        / (xs.len() * ys.len()) as f64;
    let within = |zs: &[[f64; 2]]| -> f64 {
        let n = zs.len();
        if n < 2 {
            return 0.0;
        }
        let mut s = 0.0;
        for (i, a) in zs.iter().enumerate() {
            for b in &zs[i + 1..] {
                s += d(a, b);
            }
        }
        2.0 * s / (n * (n - 1)) as f64
    };
    2.0 * cross - within(xs) - within(ys)
}

//! Maximum-likelihood pretraining of the prior, as in the paper's `pretrain_prior.py`
//! (`bwd_mle`): exact samples of the 25-mode mixture are pushed through the fixed backward
//! (Brownian-bridge) process, and the forward policy maximises `Σ_t log p(x_{t+1}|x_t)` of
//! those trajectories (Adam, lr 1e-3, batch 500; the paper trains 10 000 iterations).
use super::network::PisNet;
use super::sde::Sde;
use super::target::Mixture;
use super::{ContinuousError, Result};
use candle_core::DType;
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Settings of the prior pretraining.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PriorConfig {
    /// Adam iterations.
    pub iterations: usize,
    /// Samples per iteration.
    pub batch: usize,
    /// Learning rate.
    pub lr: f64,
    /// Hidden width.
    pub hidden: usize,
    /// Seed (initialisation, samples, bridge noise).
    pub seed: u64,
}

/// Trains a prior; `progress` is called after each iteration with `(iteration, loss)`.
pub fn pretrain(
    cfg: &PriorConfig,
    sde: &Sde,
    dtype: DType,
    mut progress: impl FnMut(usize, f64),
) -> Result<(PisNet, Vec<f64>)> {
    super::run::tune_allocator();
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let net = PisNet::new(cfg.hidden, 2, dtype, &mut rng)?;
    let mut opt = AdamW::new(
        net.vars.clone(),
        ParamsAdamW {
            lr: cfg.lr,
            weight_decay: 0.0,
            ..ParamsAdamW::default()
        },
    )?;
    let data = Mixture::prior25();
    let mut losses = Vec::with_capacity(cfg.iterations);
    for it in 0..cfg.iterations {
        let x = data.sample(cfg.batch, &mut rng);
        let traj = sde.bridge(&x, &mut rng);
        let states = traj.to_tensor(dtype)?;
        let lq = sde.step_log_density(&net, &states, true)?.log_q;
        let loss = (lq.sum(0)?.mean_all()?.neg())?;
        let v = loss.to_dtype(DType::F64)?.to_scalar::<f64>()?;
        if !v.is_finite() {
            return Err(ContinuousError::NonFinite(format!(
                "prior pretraining loss at iteration {it}"
            )));
        }
        opt.backward_step(&loss)?;
        losses.push(v);
        progress(it, v);
    }
    Ok((net, losses))
}

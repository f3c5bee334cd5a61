//! The fine-tuning objectives on a batch of continuous trajectories, as candle tensors.
//!
//! Per-step inputs: `log q` `(T, B)` (tracked: the policy's parameters get gradients through
//! it), `log p` `(T, B)` under the frozen prior, `log r(x)` `(B)`. The Trust-PCL consistency is
//! built from its per-step RL terms `r_t − α log q + α log p` (with `r_t = log r(x)` on the last
//! step and 0 elsewhere), never as a multiple of the RTB residual; C1/C2 are then checked, not
//! assumed (`tests/continuous.rs`).
//!
//! Definitions follow the paper's `gflownet_losses.py` (`fwd_rtb`, `fwd_rl`,
//! `fwd_rl_corrected`, `fwd_rl_corrected_off_policy`) and DESIGN §2 for Trust-PCL.
use super::{ContinuousError, Result};
use candle_core::{DType, Device, Tensor, D};

/// A fine-tuning method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Method {
    /// RTB `½(log Z + Σ log q − Σ log p − β log r)²` with a learned `log Z`, off-policy
    /// (exploration schedule).
    Rtb,
    /// Trust-PCL on the full trajectory with a learned scalar `V(s0)`, same behaviour as RTB.
    TrustPcl,
    /// Trust-PCL on windows of `d` steps with a learned value network `V(t, x)`.
    TrustPclWindowed,
    /// The flawed baseline: REINFORCE on `exp(log r)` with a mean baseline plus
    /// `κ (Σ log q − Σ log p)²`, on-policy.
    Rl,
    /// REINFORCE with the KL-regularised reward `log r − α (log q − log p)`, mean baseline,
    /// on-policy.
    RlCorrected,
    /// The same under the exploration behaviour with self-normalised importance weights.
    RlCorrectedOffpolicy,
}

impl Method {
    /// Every method, in table order.
    pub const ALL: [Method; 6] = [
        Method::Rtb,
        Method::TrustPcl,
        Method::TrustPclWindowed,
        Method::Rl,
        Method::RlCorrected,
        Method::RlCorrectedOffpolicy,
    ];

    /// The command-line name.
    pub fn name(self) -> &'static str {
        match self {
            Method::Rtb => "rtb",
            Method::TrustPcl => "trust-pcl",
            Method::TrustPclWindowed => "trust-pcl-window",
            Method::Rl => "rl",
            Method::RlCorrected => "rl-corrected",
            Method::RlCorrectedOffpolicy => "rl-corrected-offpolicy",
        }
    }

    /// Parses a command-line name.
    pub fn parse(s: &str) -> Result<Self> {
        Method::ALL
            .iter()
            .copied()
            .find(|m| m.name() == s.trim())
            .ok_or_else(|| {
                let names: Vec<&str> = Method::ALL.iter().map(|m| m.name()).collect();
                ContinuousError::BadInput(format!(
                    "unknown method `{s}` (expected one of: {})",
                    names.join(", ")
                ))
            })
    }

    /// Whether the method samples with the exploration schedule (the paper's choice per
    /// method: RTB and the off-policy REINFORCE explore; `rl` and `rl-corrected` do not;
    /// Trust-PCL uses RTB's behaviour so the two are compared on equal terms).
    pub fn explores(self) -> bool {
        matches!(
            self,
            Method::Rtb
                | Method::TrustPcl
                | Method::TrustPclWindowed
                | Method::RlCorrectedOffpolicy
        )
    }
}

/// Per-trajectory sums over steps: `(T, B) → (B)`.
pub fn sum_steps(per_step: &Tensor) -> Result<Tensor> {
    Ok(per_step.sum(0)?)
}

/// The RTB residual `δ = log Z + Σ log q − Σ log p − β log r`, per trajectory `(B)`.
pub fn rtb_residual(
    log_z: &Tensor,
    log_q: &Tensor,
    log_p: &Tensor,
    log_r: &Tensor,
    beta: f64,
) -> Result<Tensor> {
    let ratio = (sum_steps(log_q)? - sum_steps(log_p)?)?;
    Ok((ratio - (log_r * beta)?)?.broadcast_add(log_z)?)
}

/// The Trust-PCL per-step RL terms `r_t − α log q_t + α log p_t`, `(T, B)`, with
/// `r_{T−1} = log r(x)` and `r_t = 0` before.
pub fn trust_pcl_step_terms(
    log_q: &Tensor,
    log_p: &Tensor,
    log_r: &Tensor,
    alpha: f64,
) -> Result<Tensor> {
    let (t, b) = log_q.dims2()?;
    let rewards = Tensor::cat(
        &[
            Tensor::zeros((t - 1, b), log_q.dtype(), &Device::Cpu)?,
            log_r.unsqueeze(0)?,
        ],
        0,
    )?;
    Ok(((rewards - (log_q * alpha)?)? + (log_p * alpha)?)?)
}

/// The full-trajectory consistency `C = −V(s0) + Σ_t terms_t` (`V(x) = 0`), per trajectory.
pub fn trust_pcl_full(v0: &Tensor, terms: &Tensor) -> Result<Tensor> {
    Ok(sum_steps(terms)?.broadcast_sub(v0)?)
}

/// Window consistencies `C_w = −V(s_{wd}) + V(s_{(w+1)d}) + Σ_{t in window} terms_t`, shape
/// `(T/d, B)`, from `v_start` `(T/d, B)` (the value at each window's first state) and the
/// per-step terms; the value after the last window is the terminal's, 0.
pub fn trust_pcl_windows(v_start: &Tensor, terms: &Tensor, window: usize) -> Result<Tensor> {
    let (t, b) = terms.dims2()?;
    if window == 0 || !t.is_multiple_of(window) {
        return Err(ContinuousError::BadInput(format!(
            "window {window} must divide the number of steps {t}"
        )));
    }
    let w = t / window;
    let sums = terms.reshape((w, window, b))?.sum(1)?;
    let v_end = Tensor::cat(
        &[
            v_start.narrow(0, 1, w - 1)?,
            Tensor::zeros((1, b), terms.dtype(), &Device::Cpu)?,
        ],
        0,
    )?;
    Ok(((sums - v_start)? + v_end)?)
}

/// `½ mean(x²)`.
pub fn half_mean_square(x: &Tensor) -> Result<Tensor> {
    Ok((x.sqr()?.mean_all()? * 0.5)?)
}

/// The flawed baseline's loss `mean(−(R − mean R)·Σ log q + κ (Σ log q − Σ log p)²)` with
/// `R = exp(log r)` (held constant).
pub fn rl_flawed_loss(
    log_q: &Tensor,
    log_p: &Tensor,
    log_r: &Tensor,
    kappa: f64,
) -> Result<Tensor> {
    let sq = sum_steps(log_q)?;
    let ratio = (&sq - sum_steps(log_p)?)?;
    let reward = log_r.detach().exp()?;
    let adv = reward.broadcast_sub(&reward.mean_all()?)?;
    let reinforce = (adv * &sq)?.neg()?;
    Ok((reinforce + (ratio.sqr()? * kappa)?)?.mean_all()?)
}

/// The centred KL-regularised advantage `A = log r − α(Σ log q − Σ log p)`, minus its batch
/// mean, held constant.
pub fn kl_advantage(log_q: &Tensor, log_p: &Tensor, log_r: &Tensor, alpha: f64) -> Result<Tensor> {
    let ratio = (sum_steps(&log_q.detach())? - sum_steps(log_p)?)?;
    let adv = (log_r.detach() - (ratio * alpha)?)?;
    Ok(adv.broadcast_sub(&adv.mean_all()?)?.detach())
}

/// On-policy REINFORCE-KL surrogate `−mean(A · Σ log q)`.
pub fn rl_corrected_loss(
    log_q: &Tensor,
    log_p: &Tensor,
    log_r: &Tensor,
    alpha: f64,
) -> Result<Tensor> {
    let adv = kl_advantage(log_q, log_p, log_r, alpha)?;
    Ok((adv * sum_steps(log_q)?)?.mean_all()?.neg()?)
}

/// Self-normalised importance weights of the paper's off-policy REINFORCE:
/// `softmax((Σ log q − log b) / T)` over the batch (their code tempers the log-ratio by the
/// number of steps), held constant.
pub fn snis_weights(log_q: &Tensor, log_b: &[f64]) -> Result<Tensor> {
    let (t, b) = log_q.dims2()?;
    if log_b.len() != b {
        return Err(ContinuousError::BadInput(format!(
            "{} behaviour log-densities for a batch of {b}",
            log_b.len()
        )));
    }
    let sq = sum_steps(&log_q.detach())?
        .to_dtype(DType::F64)?
        .to_vec1::<f64>()?;
    let z: Vec<f64> = sq
        .iter()
        .zip(log_b)
        .map(|(q, lb)| (q - lb) / t as f64)
        .collect();
    let m = z.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = z.iter().map(|v| (v - m).exp()).collect();
    let s: f64 = e.iter().sum();
    let w: Vec<f64> = e.iter().map(|v| v / s).collect();
    Ok(Tensor::from_vec(w, b, &Device::Cpu)?.to_dtype(log_q.dtype())?)
}

/// Off-policy REINFORCE-KL surrogate `−Σ_b w_b A_b Σ log q_b` with [`snis_weights`].
pub fn rl_corrected_offpolicy_loss(
    log_q: &Tensor,
    log_p: &Tensor,
    log_r: &Tensor,
    log_b: &[f64],
    alpha: f64,
) -> Result<Tensor> {
    let w = snis_weights(log_q, log_b)?;
    let adv = kl_advantage(log_q, log_p, log_r, alpha)?;
    Ok(((w * adv)? * sum_steps(log_q)?)?.sum_all()?.neg()?)
}

/// The paper's logged statistic `kl_div`: the batch mean of `Σ log q − Σ log p` (weighted by
/// the importance weights for the off-policy REINFORCE).
pub fn kl_div_statistic(log_q: &Tensor, log_p: &Tensor, weights: Option<&Tensor>) -> Result<f64> {
    let ratio = (sum_steps(&log_q.detach())? - sum_steps(log_p)?)?;
    let v = match weights {
        Some(w) => (ratio * w)?.sum_all()?,
        None => ratio.mean_all()?,
    };
    Ok(v.to_dtype(DType::F64)?.to_scalar::<f64>()?)
}

/// A scalar tensor of the given dtype.
pub fn scalar(v: f64, dtype: DType) -> Result<Tensor> {
    Ok(Tensor::new(v, &Device::Cpu)?.to_dtype(dtype)?)
}

/// The last-dimension squeeze of a `(n, B, 1)` value-network output.
pub fn squeeze_value(v: &Tensor) -> Result<Tensor> {
    Ok(v.squeeze(D::Minus1)?)
}

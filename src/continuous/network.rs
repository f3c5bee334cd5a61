//! The PIS network of the paper's code (`models/architectures.py`, `pis_architectures=True`):
//!
//! - time: `e(t) = [sin(t·c + φ), cos(t·c + φ)]` with `c = linspace(0.1, 100, H)` and a learned
//!   phase `φ`, then `Linear(2H→H) → GELU → Linear(H→H)`;
//! - state: `Linear(2→H)`;
//! - joint: `GELU(state + time) → [Linear(H→H) → GELU] × 2 → Linear(H→out)`, the last layer
//!   zero-initialised.
//!
//! The paper's network outputs `2·dim` values (mean and an unused log-variance, since
//! `learned_variance=False`) and carries an unused Langevin-scaling network; we output the
//! drift only, which gives the same dynamics. Weights use PyTorch's default `nn.Linear`
//! initialisation `U(−1/√fan_in, 1/√fan_in)`, phases `N(0, 1)`, from a seeded ChaCha stream.
//!
//! The time embedding depends on `t` only, so it is computed once for all time steps and
//! broadcast across the batch: [`PisNet::forward_grid`] evaluates the network on a whole
//! `(n_t, B)` grid of states in one batched pass.
use super::gelu::{bias_gelu, first_layer};
use super::target::normal;
use super::Result;
use candle_core::{DType, Device, Tensor, Var};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// The PIS network with its parameters as candle `Var`s.
#[derive(Debug, Clone)]
pub struct PisNet {
    /// Parameters, in the order of [`PARAM_NAMES`].
    pub vars: Vec<Var>,
    /// The fixed Fourier frequencies `linspace(0.1, 100, H)`, shape `(1, H)`.
    pe: Tensor,
    /// Hidden width `H`.
    pub hidden: usize,
    /// Output width (2 for the drift, 1 for a value network).
    pub out: usize,
}

/// Names of the parameters, in storage order.
pub const PARAM_NAMES: [&str; 13] = [
    "t.phase", "t.l1.w", "t.l1.b", "t.l2.w", "t.l2.b", "s.w", "s.b", "j.l1.w", "j.l1.b", "j.l2.w",
    "j.l2.b", "j.out.w", "j.out.b",
];

/// The parameters as plain tensors (tracked for autograd or detached).
struct Weights<'a> {
    t: &'a [Tensor],
}

impl PisNet {
    /// A freshly initialised network of width `hidden` and output width `out` (`dtype` F32 or
    /// F64), drawing from `rng`.
    pub fn new(hidden: usize, out: usize, dtype: DType, rng: &mut ChaCha8Rng) -> Result<Self> {
        let dev = Device::Cpu;
        let uniform = |rng: &mut ChaCha8Rng, n: usize, fan_in: usize| -> Vec<f64> {
            let bound = 1.0 / (fan_in as f64).sqrt();
            (0..n).map(|_| rng.gen_range(-bound..bound)).collect()
        };
        let mk = |v: Vec<f64>, shape: &[usize]| -> Result<Var> {
            Ok(Var::from_tensor(
                &Tensor::from_vec(v, shape, &dev)?.to_dtype(dtype)?,
            )?)
        };
        let h = hidden;
        let phase: Vec<f64> = (0..h).map(|_| normal(rng)).collect();
        let vars = vec![
            mk(phase, &[1, h])?,
            mk(uniform(rng, 2 * h * h, 2 * h), &[2 * h, h])?,
            mk(uniform(rng, h, 2 * h), &[h])?,
            mk(uniform(rng, h * h, h), &[h, h])?,
            mk(uniform(rng, h, h), &[h])?,
            mk(uniform(rng, 2 * h, 2), &[2, h])?,
            mk(uniform(rng, h, 2), &[h])?,
            mk(uniform(rng, h * h, h), &[h, h])?,
            mk(uniform(rng, h, h), &[h])?,
            mk(uniform(rng, h * h, h), &[h, h])?,
            mk(uniform(rng, h, h), &[h])?,
            mk(vec![0.0; h * out], &[h, out])?,
            mk(vec![0.0; out], &[out])?,
        ];
        let pe: Vec<f64> = (0..h)
            .map(|i| {
                if h == 1 {
                    0.1
                } else {
                    0.1 + (100.0 - 0.1) * i as f64 / (h - 1) as f64
                }
            })
            .collect();
        let pe = Tensor::from_vec(pe, &[1, h], &dev)?.to_dtype(dtype)?;
        Ok(Self {
            vars,
            pe,
            hidden,
            out,
        })
    }

    /// A deep copy whose parameters are new `Var`s with the same values (a frozen prior, or the
    /// starting point of fine-tuning).
    pub fn deep_clone(&self) -> Result<Self> {
        let vars = self
            .vars
            .iter()
            .map(|v| Ok(Var::from_tensor(&v.as_tensor().copy()?)?))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            vars,
            pe: self.pe.clone(),
            hidden: self.hidden,
            out: self.out,
        })
    }

    /// Number of scalar parameters.
    pub fn num_params(&self) -> usize {
        self.vars.iter().map(|v| v.elem_count()).sum()
    }

    /// The dtype of the parameters.
    pub fn dtype(&self) -> DType {
        self.pe.dtype()
    }

    fn tensors(&self, track: bool) -> Vec<Tensor> {
        self.vars
            .iter()
            .map(|v| {
                if track {
                    v.as_tensor().clone()
                } else {
                    v.as_tensor().detach()
                }
            })
            .collect()
    }

    /// The time embedding `(n_t, H)` at the given times; tracked by autograd iff `track`.
    pub fn time_embedding(&self, times: &[f64], track: bool) -> Result<Tensor> {
        let t = self.tensors(track);
        self.time_embedding_with(&Weights { t: &t }, times)
    }

    fn time_embedding_with(&self, w: &Weights, times: &[f64]) -> Result<Tensor> {
        let n = times.len();
        let tt = Tensor::from_vec(times.to_vec(), &[n, 1], &Device::Cpu)?.to_dtype(self.dtype())?;
        let arg = tt.broadcast_mul(&self.pe)?.broadcast_add(&w.t[0])?;
        let emb = Tensor::cat(&[arg.sin()?, arg.cos()?], 1)?;
        let h = bias_gelu(&emb.matmul(&w.t[1])?, &w.t[2])?;
        Ok(h.matmul(&w.t[3])?.broadcast_add(&w.t[4])?)
    }

    /// The network on a grid of states `x` of shape `(n_t, B, 2)` whose row `i` is at the time
    /// of row `i` of `temb` (`(n_t, H)`, from [`PisNet::time_embedding`]); returns
    /// `(n_t, B, out)`. Tracked by autograd iff `track` (the embedding must be tracked too for
    /// its parameters to get gradients).
    pub fn forward_grid(&self, x: &Tensor, temb: &Tensor, track: bool) -> Result<Tensor> {
        let t = self.tensors(track);
        let w = Weights { t: &t };
        let (nt, b, _) = x.dims3()?;
        // The state layer's bias is folded into the (small) time embedding; the state layer,
        // the broadcast add and the first GELU are one fused op.
        let tb = temb.broadcast_add(&w.t[6])?;
        let z = first_layer(x, &w.t[5], &tb)?;
        let z = bias_gelu(&z.matmul(&w.t[7])?, &w.t[8])?;
        let z = bias_gelu(&z.matmul(&w.t[9])?, &w.t[10])?;
        let o = z.matmul(&w.t[11])?.broadcast_add(&w.t[12])?;
        Ok(o.reshape((nt, b, self.out))?)
    }

    /// All parameter values as one flat `f64` vector (for checks and serialisation).
    pub fn flat_params(&self) -> Result<Vec<f64>> {
        let mut out = Vec::with_capacity(self.num_params());
        for v in &self.vars {
            out.extend(
                v.as_tensor()
                    .flatten_all()?
                    .to_dtype(DType::F64)?
                    .to_vec1::<f64>()?,
            );
        }
        Ok(out)
    }

    /// Saves the parameters as a safetensors file.
    pub fn save(&self, path: &std::path::Path) -> Result<()> {
        let map: std::collections::HashMap<String, Tensor> = PARAM_NAMES
            .iter()
            .zip(&self.vars)
            .map(|(n, v)| (n.to_string(), v.as_tensor().clone()))
            .collect();
        candle_core::safetensors::save(&map, path)?;
        Ok(())
    }

    /// Loads parameters saved by [`PisNet::save`] into this network (shapes must match).
    pub fn load(&self, path: &std::path::Path) -> Result<()> {
        let map = candle_core::safetensors::load(path, &Device::Cpu)?;
        for (n, v) in PARAM_NAMES.iter().zip(&self.vars) {
            let t = map.get(*n).ok_or_else(|| {
                super::ContinuousError::BadInput(format!("{}: no tensor {n}", path.display()))
            })?;
            if t.dims() != v.dims() {
                return Err(super::ContinuousError::BadInput(format!(
                    "{}: tensor {n} has shape {:?}, expected {:?}",
                    path.display(),
                    t.dims(),
                    v.dims()
                )));
            }
            v.set(&t.to_dtype(v.dtype())?)?;
        }
        Ok(())
    }

    /// Loads the paper's PyTorch checkpoint (`rtb_diffusion/pretrained/prior.pt`, a `GFN` with
    /// `pis_architectures=True`) into this network (width 64, output 2): the time, state and
    /// joint layers, transposed to our `(in, out)` layout; of the joint output layer only the
    /// mean rows (the first two) are kept, the log-variance rows being unused with
    /// `learned_variance=False`. The unused Langevin-scaling network and `flow_model` are
    /// ignored.
    pub fn load_torch(&self, path: &std::path::Path) -> Result<()> {
        use super::ContinuousError;
        let bad = |m: String| ContinuousError::BadInput(format!("{}: {m}", path.display()));
        let tensors = candle_core::pickle::read_all_with_key(path, Some("model_state_dict"))
            .or_else(|_| candle_core::pickle::read_all(path))
            .map_err(|e| bad(format!("not a readable PyTorch checkpoint ({e})")))?;
        let get = |name: &str| -> Result<Tensor> {
            tensors
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, t)| t.clone())
                .ok_or_else(|| bad(format!("no tensor `{name}`")))
        };
        let lin_w = |name: &str| -> Result<Tensor> { Ok(get(name)?.t()?.contiguous()?) };
        let pieces: Vec<Tensor> = vec![
            get("t_model.timestep_phase")?,
            lin_w("t_model.t_model.0.weight")?,
            get("t_model.t_model.0.bias")?,
            lin_w("t_model.t_model.2.weight")?,
            get("t_model.t_model.2.bias")?,
            lin_w("s_model.x_model.weight")?,
            get("s_model.x_model.bias")?,
            lin_w("joint_model.model.1.0.weight")?,
            get("joint_model.model.1.0.bias")?,
            lin_w("joint_model.model.2.0.weight")?,
            get("joint_model.model.2.0.bias")?,
            get("joint_model.model.3.weight")?
                .narrow(0, 0, self.out)?
                .t()?
                .contiguous()?,
            get("joint_model.model.3.bias")?.narrow(0, 0, self.out)?,
        ];
        if let Ok(pe) = get("t_model.pe") {
            let diff = (pe.to_dtype(DType::F64)? - self.pe.to_dtype(DType::F64)?)?
                .abs()?
                .max_all()?
                .to_scalar::<f64>()?;
            if diff > 1e-4 {
                return Err(bad(format!(
                    "Fourier frequencies differ from linspace(0.1, 100, {})",
                    self.hidden
                )));
            }
        }
        for ((name, var), t) in PARAM_NAMES.iter().zip(&self.vars).zip(&pieces) {
            if t.dims() != var.dims() {
                return Err(bad(format!(
                    "tensor {name} has shape {:?}, expected {:?} (width {} needed)",
                    t.dims(),
                    var.dims(),
                    self.hidden
                )));
            }
            var.set(&t.to_dtype(var.dtype())?)?;
        }
        Ok(())
    }
}

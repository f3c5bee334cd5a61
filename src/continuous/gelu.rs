//! GELU (the exact, erf form of PyTorch's `nn.GELU()`) as one fused candle custom op.
//!
//! candle's own `gelu_erf` runs single-threaded, and its backward is composed of a dozen
//! element-wise passes with the constant `1/√(2π)` rounded to `0.398942` (a relative gradient
//! error near 1e-6). Here the forward is one parallel pass, and the backward one parallel pass
//! computing `grad · (Φ(x) + x·φ(x))` with exact constants. It is a custom operation inside
//! candle's autograd (candle still builds the graph and chains the gradients); the derivative
//! is checked against finite differences in `tests/continuous.rs`. [`bias_gelu`] fuses the
//! bias of the preceding linear layer: `GELU(x + b)` in one pass, its backward in one pass
//! plus the bias's column sum. In f32, `erf` is a Chebyshev fit at f32 precision; in f64 it is
//! libm's.
use candle_core::{CpuStorage, CustomOp1, CustomOp2, CustomOp3, Layout, Shape, Tensor};
use rayon::prelude::*;

const CHUNK: usize = 8192;
const FRAC_1_SQRT_2PI: f64 = 0.398_942_280_401_432_7;

#[inline(always)]
fn gelu64(x: f64) -> f64 {
    0.5 * x * (1.0 + candle_core::cpu::erf::erf_f64(x * std::f64::consts::FRAC_1_SQRT_2))
}

/// `erf(x)` in f32 by the rational minimax fit of Eigen's `generic_fast_erf_float` (the one
/// PyTorch's vectorised CPU kernels use): no `exp`, maximum absolute error 2.8e-7 on
/// `[−6, 6]` (checked against a quadrature of `erf` in `tests/continuous.rs`).
#[inline(always)]
pub fn erf32(x: f32) -> f32 {
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let mut p = -2.726_142_3e-10_f32;
    p = p * x2 + 2.770_681_4e-8;
    p = p * x2 - 2.101_024e-6;
    p = p * x2 - 5.692_506_4e-5;
    p = p * x2 - 7.349_906_3e-4;
    p = p * x2 - 2.954_6e-3;
    p = p * x2 - 1.609_603_3e-2;
    p *= x;
    let mut q = -1.456_607_2e-5_f32;
    q = q * x2 - 2.133_740_6e-4;
    q = q * x2 - 1.682_827e-3;
    q = q * x2 - 7.373_329e-3;
    q = q * x2 - 1.426_473_9e-2;
    p / q
}

#[inline(always)]
fn gelu32(x: f32) -> f32 {
    0.5 * x * (1.0 + erf32(x * std::f32::consts::FRAC_1_SQRT_2))
}

#[inline(always)]
fn dgelu64(x: f64) -> f64 {
    0.5 * (1.0 + candle_core::cpu::erf::erf_f64(x * std::f64::consts::FRAC_1_SQRT_2))
        + x * FRAC_1_SQRT_2PI * (-0.5 * x * x).exp()
}

#[inline(always)]
fn dgelu32(x: f32) -> f32 {
    0.5 * (1.0 + erf32(x * std::f32::consts::FRAC_1_SQRT_2))
        + x * (FRAC_1_SQRT_2PI as f32) * (-0.5 * x * x).exp()
}

fn contiguous<'a, T>(v: &'a [T], l: &Layout) -> candle_core::Result<&'a [T]> {
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&v[a..b]),
        None => Err(candle_core::Error::Msg(
            "fused gelu: non-contiguous input".into(),
        )),
    }
}

fn map1<T: Copy + Send + Sync + Default>(src: &[T], f: impl Fn(T) -> T + Sync) -> Vec<T> {
    let mut out = vec![T::default(); src.len()];
    out.par_chunks_mut(CHUNK)
        .zip(src.par_chunks(CHUNK))
        .for_each(|(o, i)| {
            for (a, b) in o.iter_mut().zip(i) {
                *a = f(*b);
            }
        });
    out
}

fn map2<T: Copy + Send + Sync + Default>(x: &[T], g: &[T], f: impl Fn(T, T) -> T + Sync) -> Vec<T> {
    let mut out = vec![T::default(); x.len()];
    out.par_chunks_mut(CHUNK)
        .zip(x.par_chunks(CHUNK).zip(g.par_chunks(CHUNK)))
        .for_each(|(o, (xs, gs))| {
            for ((a, b), c) in o.iter_mut().zip(xs).zip(gs) {
                *a = f(*b, *c);
            }
        });
    out
}

/// The forward op.
struct GeluErf;

/// The backward op: `(x, grad) ↦ grad · gelu'(x)`.
struct GeluErfGrad;

impl CustomOp1 for GeluErf {
    fn name(&self) -> &'static str {
        "fused-gelu-erf"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let out = match s {
            CpuStorage::F32(v) => CpuStorage::F32(map1(contiguous(v, l)?, gelu32)),
            CpuStorage::F64(v) => CpuStorage::F64(map1(contiguous(v, l)?, gelu64)),
            _ => {
                return Err(candle_core::Error::Msg(
                    "fused gelu: f32 or f64 only".into(),
                ))
            }
        };
        Ok((out, l.shape().clone()))
    }

    fn bwd(
        &self,
        arg: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        let arg = arg.contiguous()?;
        let grad = grad.contiguous()?;
        Ok(Some(arg.apply_op2_no_bwd(&grad, &GeluErfGrad)?))
    }
}

impl CustomOp2 for GeluErfGrad {
    fn name(&self) -> &'static str {
        "fused-gelu-erf-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let out = match (s1, s2) {
            (CpuStorage::F32(x), CpuStorage::F32(g)) => {
                CpuStorage::F32(map2(contiguous(x, l1)?, contiguous(g, l2)?, |x, g| {
                    g * dgelu32(x)
                }))
            }
            (CpuStorage::F64(x), CpuStorage::F64(g)) => {
                CpuStorage::F64(map2(contiguous(x, l1)?, contiguous(g, l2)?, |x, g| {
                    g * dgelu64(x)
                }))
            }
            _ => {
                return Err(candle_core::Error::Msg(
                    "fused gelu grad: matching f32 or f64 inputs only".into(),
                ))
            }
        };
        Ok((out, l1.shape().clone()))
    }
}

/// `GELU(x) = x·Φ(x)`, fused, with its exact derivative for autograd.
pub fn gelu(x: &Tensor) -> candle_core::Result<Tensor> {
    x.contiguous()?.apply_op1(GeluErf)
}

fn rows_cols(l: &Layout) -> candle_core::Result<(usize, usize)> {
    match l.dims() {
        [r, c] => Ok((*r, *c)),
        d => Err(candle_core::Error::Msg(format!(
            "fused bias-gelu: expected a matrix, got shape {d:?}"
        ))),
    }
}

fn map_bias<T: Copy + Send + Sync + Default + std::ops::Add<Output = T>>(
    x: &[T],
    b: &[T],
    cols: usize,
    f: impl Fn(T) -> T + Sync,
) -> Vec<T> {
    let mut out = vec![T::default(); x.len()];
    let rows_per = (CHUNK / cols.max(1)).max(1) * cols;
    out.par_chunks_mut(rows_per)
        .zip(x.par_chunks(rows_per))
        .for_each(|(o, xs)| {
            for (orow, xrow) in o.chunks_mut(cols).zip(xs.chunks(cols)) {
                for ((a, v), bias) in orow.iter_mut().zip(xrow).zip(b) {
                    *a = f(*v + *bias);
                }
            }
        });
    out
}

fn map_bias_grad<
    T: Copy + Send + Sync + Default + std::ops::Add<Output = T> + std::ops::Mul<Output = T>,
>(
    x: &[T],
    b: &[T],
    g: &[T],
    cols: usize,
    df: impl Fn(T) -> T + Sync,
) -> Vec<T> {
    let mut out = vec![T::default(); x.len()];
    let rows_per = (CHUNK / cols.max(1)).max(1) * cols;
    out.par_chunks_mut(rows_per)
        .zip(x.par_chunks(rows_per).zip(g.par_chunks(rows_per)))
        .for_each(|(o, (xs, gs))| {
            for ((orow, xrow), grow) in o.chunks_mut(cols).zip(xs.chunks(cols)).zip(gs.chunks(cols))
            {
                for (((a, v), bias), gv) in orow.iter_mut().zip(xrow).zip(b).zip(grow) {
                    *a = *gv * df(*v + *bias);
                }
            }
        });
    out
}

/// Forward of `GELU(x + b)` (`x` `(N, H)`, `b` `(H)`).
struct BiasGelu;

/// Backward: `(x, b, grad) ↦ grad · GELU'(x + b)`.
struct BiasGeluGrad;

impl CustomOp2 for BiasGelu {
    fn name(&self) -> &'static str {
        "fused-bias-gelu"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (_, cols) = rows_cols(l1)?;
        if l2.dims() != [cols] {
            return Err(candle_core::Error::Msg(format!(
                "fused bias-gelu: bias of shape {:?} for {cols} columns",
                l2.dims()
            )));
        }
        let out = match (s1, s2) {
            (CpuStorage::F32(x), CpuStorage::F32(b)) => CpuStorage::F32(map_bias(
                contiguous(x, l1)?,
                contiguous(b, l2)?,
                cols,
                gelu32,
            )),
            (CpuStorage::F64(x), CpuStorage::F64(b)) => CpuStorage::F64(map_bias(
                contiguous(x, l1)?,
                contiguous(b, l2)?,
                cols,
                gelu64,
            )),
            _ => {
                return Err(candle_core::Error::Msg(
                    "fused bias-gelu: matching f32 or f64 inputs only".into(),
                ))
            }
        };
        Ok((out, l1.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        b: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let x = x.contiguous()?;
        let b = b.contiguous()?;
        let grad = grad.contiguous()?;
        let dz = x.apply_op3_no_bwd(&b, &grad, &BiasGeluGrad)?;
        let db = dz.sum(0)?;
        Ok((Some(dz), Some(db)))
    }
}

impl CustomOp3 for BiasGeluGrad {
    fn name(&self) -> &'static str {
        "fused-bias-gelu-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (_, cols) = rows_cols(l1)?;
        let out = match (s1, s2, s3) {
            (CpuStorage::F32(x), CpuStorage::F32(b), CpuStorage::F32(g)) => {
                CpuStorage::F32(map_bias_grad(
                    contiguous(x, l1)?,
                    contiguous(b, l2)?,
                    contiguous(g, l3)?,
                    cols,
                    dgelu32,
                ))
            }
            (CpuStorage::F64(x), CpuStorage::F64(b), CpuStorage::F64(g)) => {
                CpuStorage::F64(map_bias_grad(
                    contiguous(x, l1)?,
                    contiguous(b, l2)?,
                    contiguous(g, l3)?,
                    cols,
                    dgelu64,
                ))
            }
            _ => {
                return Err(candle_core::Error::Msg(
                    "fused bias-gelu grad: matching f32 or f64 inputs only".into(),
                ))
            }
        };
        Ok((out, l1.shape().clone()))
    }
}

/// `GELU(x + b)` for `x` `(N, H)` and a bias `b` `(H)`, fused, with its exact derivative.
pub fn bias_gelu(x: &Tensor, b: &Tensor) -> candle_core::Result<Tensor> {
    x.contiguous()?.apply_op2(&b.contiguous()?, BiasGelu)
}

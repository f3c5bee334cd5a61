//! GELU (the exact, erf form of PyTorch's `nn.GELU()`) as one fused candle custom op.
//!
//! candle's own `gelu_erf` runs single-threaded, and its backward is composed of a dozen
//! element-wise passes with the constant `1/√(2π)` rounded to `0.398942` (a relative gradient
//! error near 1e-6). Here the forward is one parallel pass, and the backward one parallel pass
//! computing `grad · (Φ(x) + x·φ(x))` with exact constants. It is a custom operation inside
//! candle's autograd (candle still builds the graph and chains the gradients); the derivative
//! is checked against finite differences in `tests/continuous.rs`. [`bias_gelu`] fuses the
//! bias of the preceding linear layer: `GELU(x + b)` in one pass, its backward in one pass
//! that also sums the bias gradient; [`first_layer`] fuses the network's state layer, time
//! rows and first GELU. The loops run under `kernels::simd`'s runtime dispatch. In f32, `erf`
//! is Eigen's rational fit and the derivative's `exp` a polynomial ([`exp32_nonpositive`]);
//! in f64 both are libm's.
use crate::kernels::simd::{dispatch, Task};
use candle_core::{CpuStorage, CustomOp1, CustomOp2, CustomOp3, Layout, Shape, Tensor};
use rayon::prelude::*;
use std::mem::MaybeUninit;

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
        + x * (FRAC_1_SQRT_2PI as f32) * exp32_nonpositive(-0.5 * x * x)
}

fn contiguous<'a, T>(v: &'a [T], l: &Layout) -> candle_core::Result<&'a [T]> {
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&v[a..b]),
        None => Err(candle_core::Error::Msg(
            "fused gelu: non-contiguous input".into(),
        )),
    }
}

/// `exp(x)` in f32 for `x ≤ 0` without a libm call, so that the GELU derivative vectorises:
/// `2^n · P(r)`, `x = n·ln 2 + r`, `|r| ≤ ln 2 / 2`, with Cephes' `expf` polynomial (relative
/// error below 2 ulp; checked against `f32::exp` in the tests); 0 below `−87`.
#[inline(always)]
pub fn exp32_nonpositive(x: f32) -> f32 {
    let x = x.clamp(-87.0, 0.0);
    let n = (x * std::f32::consts::LOG2_E).round();
    // ln 2 split in two so that `n·ln 2` is exact enough.
    let r = x - n * 0.693_359_4 + n * 2.121_944_4e-4;
    let mut p = 1.987_569_1e-4_f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 5e-1;
    let e = p * r * r + r + 1.0;
    e * f32::from_bits((((n as i32) + 127) as u32) << 23)
}

/// The element types of the fused ops, with GELU and its derivative (inlined into the
/// dispatched loops).
pub trait Float:
    Copy
    + Send
    + Sync
    + Default
    + std::ops::Add<Output = Self>
    + std::ops::Mul<Output = Self>
    + std::ops::AddAssign
{
    /// `GELU(x) = x·Φ(x)`.
    fn gelu(self) -> Self;
    /// `GELU'(x) = Φ(x) + x·φ(x)`.
    fn dgelu(self) -> Self;
}

impl Float for f32 {
    #[inline(always)]
    fn gelu(self) -> f32 {
        gelu32(self)
    }
    #[inline(always)]
    fn dgelu(self) -> f32 {
        dgelu32(self)
    }
}

impl Float for f64 {
    #[inline(always)]
    fn gelu(self) -> f64 {
        gelu64(self)
    }
    #[inline(always)]
    fn dgelu(self) -> f64 {
        dgelu64(self)
    }
}

/// A parallel chunk's loop that writes every element of its chunk; run under the best
/// instruction set of the CPU (AVX2 / AVX-512, `kernels::simd`). Implementations are
/// `#[inline(always)]` all the way down, so the loop is compiled inside the target-feature
/// function (a closure would be a separate function built for the baseline, as measured).
trait Fill<T>: Sync {
    /// Writes `out`, the chunk starting at element `start`.
    fn fill(&self, start: usize, out: &mut [MaybeUninit<T>]);
}

struct FillTask<'a, T, F> {
    filler: &'a F,
    start: usize,
    out: &'a mut [MaybeUninit<T>],
}

impl<T, F: Fill<T>> Task for FillTask<'_, T, F> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        self.filler.fill(self.start, self.out)
    }
}

/// A vector of `n` elements written chunk by chunk in parallel by `filler`: the output is not
/// zeroed first (zeroing a 50 000 × 64 buffer costs as much as a GELU pass over it).
fn par_filled<T: Float, F: Fill<T>>(n: usize, chunk: usize, filler: &F) -> Vec<T> {
    let chunk = chunk.max(1);
    let mut out: Vec<T> = Vec::with_capacity(n);
    out.spare_capacity_mut()[..n]
        .par_chunks_mut(chunk)
        .enumerate()
        .for_each(|(i, o)| {
            dispatch(FillTask {
                filler,
                start: i * chunk,
                out: o,
            })
        });
    // SAFETY: every chunk of the first `n` slots was written (each `Fill` writes every
    // element of the chunk it is given), and `T: Copy` has no drop glue.
    unsafe { out.set_len(n) };
    out
}

/// `GELU(x)` element-wise.
struct GeluFill<'a, T> {
    x: &'a [T],
}

impl<T: Float> Fill<T> for GeluFill<'_, T> {
    #[inline(always)]
    fn fill(&self, start: usize, out: &mut [MaybeUninit<T>]) {
        for (a, v) in out.iter_mut().zip(&self.x[start..]) {
            a.write(v.gelu());
        }
    }
}

/// `g · GELU'(x)` element-wise.
struct GeluGradFill<'a, T> {
    x: &'a [T],
    g: &'a [T],
}

impl<T: Float> Fill<T> for GeluGradFill<'_, T> {
    #[inline(always)]
    fn fill(&self, start: usize, out: &mut [MaybeUninit<T>]) {
        for ((a, v), g) in out.iter_mut().zip(&self.x[start..]).zip(&self.g[start..]) {
            a.write(*g * v.dgelu());
        }
    }
}

/// `GELU(x + b)` row by row (`start` is a multiple of the row length).
struct BiasGeluFill<'a, T> {
    x: &'a [T],
    b: &'a [T],
}

impl<T: Float> Fill<T> for BiasGeluFill<'_, T> {
    #[inline(always)]
    fn fill(&self, start: usize, out: &mut [MaybeUninit<T>]) {
        let cols = self.b.len();
        for (orow, xrow) in out.chunks_mut(cols).zip(self.x[start..].chunks(cols)) {
            for ((a, v), bias) in orow.iter_mut().zip(xrow).zip(self.b) {
                a.write((*v + *bias).gelu());
            }
        }
    }
}

fn map1<T: Float>(x: &[T]) -> Vec<T> {
    par_filled(x.len(), CHUNK, &GeluFill { x })
}

fn map2<T: Float>(x: &[T], g: &[T]) -> Vec<T> {
    par_filled(x.len(), CHUNK, &GeluGradFill { x, g })
}

fn rows_per_chunk(cols: usize) -> usize {
    (CHUNK / cols.max(1)).max(1) * cols
}

fn map_bias<T: Float>(x: &[T], b: &[T]) -> Vec<T> {
    par_filled(x.len(), rows_per_chunk(b.len()), &BiasGeluFill { x, b })
}

/// One chunk of rows of [`map_bias_grad`]: writes `dz` and returns its column sums.
struct BiasGradChunk<'a, T> {
    x: &'a [T],
    b: &'a [T],
    g: &'a [T],
    out: &'a mut [MaybeUninit<T>],
}

impl<T: Float> Task for BiasGradChunk<'_, T> {
    type Output = Vec<T>;
    #[inline(always)]
    fn run(self) -> Vec<T> {
        let cols = self.b.len();
        let mut colsum = vec![T::default(); cols];
        for ((orow, xrow), grow) in self
            .out
            .chunks_mut(cols)
            .zip(self.x.chunks(cols))
            .zip(self.g.chunks(cols))
        {
            for ((((a, v), bias), gv), s) in orow
                .iter_mut()
                .zip(xrow)
                .zip(self.b)
                .zip(grow)
                .zip(&mut colsum)
            {
                let d = *gv * (*v + *bias).dgelu();
                a.write(d);
                *s += d;
            }
        }
        colsum
    }
}

/// `dz = g · GELU'(x + b)` (`N × cols`) followed by one more row, the bias gradient
/// `Σ_rows dz`: one pass instead of a gradient pass and candle's strided column reduction.
fn map_bias_grad<T: Float>(x: &[T], b: &[T], g: &[T]) -> Vec<T> {
    let cols = b.len();
    let rows_per = rows_per_chunk(cols);
    let n = x.len();
    let mut out: Vec<T> = Vec::with_capacity(n + cols);
    let partials: Vec<Vec<T>> = out.spare_capacity_mut()[..n]
        .par_chunks_mut(rows_per)
        .enumerate()
        .map(|(i, o)| {
            let at = i * rows_per;
            let len = o.len();
            dispatch(BiasGradChunk {
                x: &x[at..at + len],
                b,
                g: &g[at..at + len],
                out: o,
            })
        })
        .collect();
    let mut total = vec![T::default(); cols];
    for p in &partials {
        for (t, v) in total.iter_mut().zip(p) {
            *t += *v;
        }
    }
    // SAFETY: the parallel pass wrote all `n` leading slots (every chunk, every element).
    unsafe { out.set_len(n) };
    out.extend_from_slice(&total);
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
        let out = on_storages(self.name(), self, &[(s, l)])?;
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
        let out = on_storages(self.name(), self, &[(s1, l1), (s2, l2)])?;
        Ok((out, l1.shape().clone()))
    }
}

/// A fused op's CPU work, written once over the element type.
trait Kernel {
    /// The output from the operands (contiguous, all of one type).
    fn run<T: Float>(&self, operands: &[&[T]]) -> Vec<T>;
}

/// Runs `kernel` on the operands if they are all contiguous f32 or all contiguous f64.
fn on_storages<K: Kernel>(
    name: &str,
    kernel: &K,
    operands: &[(&CpuStorage, &Layout)],
) -> candle_core::Result<CpuStorage> {
    let f32s: Option<Vec<&[f32]>> = operands
        .iter()
        .map(|(s, l)| match s {
            CpuStorage::F32(v) => contiguous(v, l).ok(),
            _ => None,
        })
        .collect();
    if let Some(v) = f32s {
        return Ok(CpuStorage::F32(kernel.run(&v)));
    }
    let f64s: Option<Vec<&[f64]>> = operands
        .iter()
        .map(|(s, l)| match s {
            CpuStorage::F64(v) => contiguous(v, l).ok(),
            _ => None,
        })
        .collect();
    match f64s {
        Some(v) => Ok(CpuStorage::F64(kernel.run(&v))),
        None => Err(candle_core::Error::Msg(format!(
            "{name}: contiguous operands, all f32 or all f64, only"
        ))),
    }
}

impl Kernel for GeluErf {
    fn run<T: Float>(&self, o: &[&[T]]) -> Vec<T> {
        map1(o[0])
    }
}

impl Kernel for GeluErfGrad {
    fn run<T: Float>(&self, o: &[&[T]]) -> Vec<T> {
        map2(o[0], o[1])
    }
}

impl Kernel for BiasGelu {
    fn run<T: Float>(&self, o: &[&[T]]) -> Vec<T> {
        map_bias(o[0], o[1])
    }
}

impl Kernel for BiasGeluGrad {
    fn run<T: Float>(&self, o: &[&[T]]) -> Vec<T> {
        map_bias_grad(o[0], o[1], o[2])
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
        let out = on_storages(self.name(), self, &[(s1, l1), (s2, l2)])?;
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
        // One pass gives dz and, as one extra row, the bias gradient.
        let (rows, _) = x.dims2()?;
        let packed = x.apply_op3_no_bwd(&b, &grad, &BiasGeluGrad)?;
        let dz = packed.narrow(0, 0, rows)?;
        let db = packed.narrow(0, rows, 1)?.squeeze(0)?;
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
        let (rows, cols) = rows_cols(l1)?;
        let out = on_storages(self.name(), self, &[(s1, l1), (s2, l2), (s3, l3)])?;
        Ok((out, Shape::from((rows + 1, cols))))
    }
}

/// `GELU(x + b)` for `x` `(N, H)` and a bias `b` `(H)`, fused, with its exact derivative.
pub fn bias_gelu(x: &Tensor, b: &Tensor) -> candle_core::Result<Tensor> {
    x.contiguous()?.apply_op2(&b.contiguous()?, BiasGelu)
}

/// The network's first layer, `GELU(x·W + e[t])`, as one op: states `x` `(n_t·B, d)` in
/// time-major order (row `t·B + b`), the state layer `W` `(d, H)` and per-time rows `e`
/// `(n_t, H)` (the time embedding with the state layer's bias folded in) packed as one
/// `(d + n_t, H)` operand. Composed from candle ops this is a `K = d = 2` matrix product, a
/// broadcast add and a GELU, three `(n_t·B) × H` buffers, and a backward pass with a strided
/// reduction over the batch; here the forward is one pass, and the backward one pass that
/// never materialises the pre-activation gradient.
struct FirstLayer {
    /// Trajectories per time `B`.
    batch: usize,
    /// State dimension `d`.
    dim: usize,
}

/// Backward of [`FirstLayer`]: `(x, [W; e], grad)` ↦ the gradient of `[W; e]`, `(d + n_t, H)`,
/// or, with `wrt_x`, the gradient of `x`, `(n_t·B, d)`.
struct FirstLayerGrad {
    batch: usize,
    dim: usize,
    wrt_x: bool,
}

/// Checks the operands of the first layer; returns `(rows, n_t, hidden)`.
fn first_layer_dims(
    l_x: &Layout,
    l_we: &Layout,
    batch: usize,
    dim: usize,
) -> candle_core::Result<(usize, usize, usize)> {
    let (rows, d) = rows_cols(l_x)?;
    let (we_rows, hidden) = rows_cols(l_we)?;
    if d != dim || batch == 0 || !rows.is_multiple_of(batch) || we_rows != dim + rows / batch {
        return Err(candle_core::Error::Msg(format!(
            "fused first layer: states {:?}, weights {:?}, batch {batch}, dimension {dim}",
            l_x.dims(),
            l_we.dims()
        )));
    }
    Ok((rows, rows / batch, hidden))
}

/// `pre = e_t + Σ_k x_k · W[k, ·]` for one row, column-wise (vectorisable).
#[inline(always)]
fn pre_activation<T: Float>(xr: &[T], w: &[T], er: &[T], pre: &mut [T]) {
    let hidden = pre.len();
    pre.copy_from_slice(er);
    for (k, xk) in xr.iter().enumerate() {
        for (p, wk) in pre.iter_mut().zip(&w[k * hidden..(k + 1) * hidden]) {
            *p += *xk * *wk;
        }
    }
}

/// The pre-activation gradient `dpre = g · GELU'(pre)` of one row, into `dpre`.
#[inline(always)]
fn first_layer_row_grad<T: Float>(xr: &[T], w: &[T], er: &[T], gr: &[T], dpre: &mut [T]) {
    pre_activation(xr, w, er, dpre);
    for (d, g) in dpre.iter_mut().zip(gr) {
        *d = *g * d.dgelu();
    }
}

/// The operands of the first layer and its backward pass.
struct FirstLayerData<'a, T> {
    x: &'a [T],
    w: &'a [T],
    e: &'a [T],
    /// The incoming gradient (backward only).
    g: &'a [T],
    batch: usize,
    dim: usize,
    hidden: usize,
}

impl<'a, T: Float> FirstLayerData<'a, T> {
    fn new(x: &'a [T], we: &'a [T], g: &'a [T], batch: usize, dim: usize, hidden: usize) -> Self {
        let (w, e) = we.split_at(dim * hidden);
        Self {
            x,
            w,
            e,
            g,
            batch,
            dim,
            hidden,
        }
    }

    #[inline(always)]
    fn x_row(&self, r: usize) -> &'a [T] {
        &self.x[r * self.dim..(r + 1) * self.dim]
    }

    #[inline(always)]
    fn e_row(&self, r: usize) -> &'a [T] {
        let t = r / self.batch;
        &self.e[t * self.hidden..(t + 1) * self.hidden]
    }
}

/// The forward: rows of `GELU(x·W + e[t])` (`start` is a multiple of `H`).
struct FirstLayerFill<'a, T>(FirstLayerData<'a, T>);

impl<T: Float> Fill<T> for FirstLayerFill<'_, T> {
    #[inline(always)]
    fn fill(&self, start: usize, out: &mut [MaybeUninit<T>]) {
        let d = &self.0;
        let first_row = start / d.hidden;
        let mut pre = vec![T::default(); d.hidden];
        for (i, orow) in out.chunks_mut(d.hidden).enumerate() {
            let r = first_row + i;
            pre_activation(d.x_row(r), d.w, d.e_row(r), &mut pre);
            // A separate loop over the row so that GELU vectorises.
            for (a, p) in orow.iter_mut().zip(&pre) {
                a.write(p.gelu());
            }
        }
    }
}

/// The gradient of the states, `dx[r, k] = Σ_h dpre[r, h] · W[k, h]` (`start` is a multiple
/// of `d`).
struct FirstLayerGradXFill<'a, T>(FirstLayerData<'a, T>);

impl<T: Float> Fill<T> for FirstLayerGradXFill<'_, T> {
    #[inline(always)]
    fn fill(&self, start: usize, out: &mut [MaybeUninit<T>]) {
        let d = &self.0;
        let first_row = start / d.dim;
        let mut dpre = vec![T::default(); d.hidden];
        for (i, orow) in out.chunks_mut(d.dim).enumerate() {
            let r = first_row + i;
            let gr = &d.g[r * d.hidden..(r + 1) * d.hidden];
            first_layer_row_grad(d.x_row(r), d.w, d.e_row(r), gr, &mut dpre);
            for (k, a) in orow.iter_mut().enumerate() {
                let mut acc = T::default();
                for (p, wk) in dpre.iter().zip(&d.w[k * d.hidden..(k + 1) * d.hidden]) {
                    acc += *p * *wk;
                }
                a.write(acc);
            }
        }
    }
}

/// The gradients of `W` (partial sums) and of `e` (rows `t_lo..t_hi`) over whole times.
struct FirstLayerGradChunk<'a, 'b, T> {
    data: &'b FirstLayerData<'a, T>,
    t_lo: usize,
    t_hi: usize,
}

impl<T: Float> Task for FirstLayerGradChunk<'_, '_, T> {
    type Output = (Vec<T>, Vec<T>);
    #[inline(always)]
    fn run(self) -> (Vec<T>, Vec<T>) {
        let d = self.data;
        let h = d.hidden;
        let mut dw = vec![T::default(); d.dim * h];
        let mut de = vec![T::default(); (self.t_hi - self.t_lo) * h];
        let mut dpre = vec![T::default(); h];
        for t in self.t_lo..self.t_hi {
            let de_t = &mut de[(t - self.t_lo) * h..(t - self.t_lo + 1) * h];
            for r in t * d.batch..(t + 1) * d.batch {
                let xr = d.x_row(r);
                let gr = &d.g[r * h..(r + 1) * h];
                first_layer_row_grad(xr, d.w, d.e_row(r), gr, &mut dpre);
                for (a, p) in de_t.iter_mut().zip(&dpre) {
                    *a += *p;
                }
                for (k, xk) in xr.iter().enumerate() {
                    for (a, p) in dw[k * h..(k + 1) * h].iter_mut().zip(&dpre) {
                        *a += *xk * *p;
                    }
                }
            }
        }
        (dw, de)
    }
}

fn first_layer_fwd<T: Float>(x: &[T], we: &[T], batch: usize, dim: usize, hidden: usize) -> Vec<T> {
    let data = FirstLayerData::new(x, we, &[], batch, dim, hidden);
    par_filled(
        x.len() / dim * hidden,
        rows_per_chunk(hidden),
        &FirstLayerFill(data),
    )
}

/// The gradient of `[W; e]` (`(d + n_t) × H`), or with `wrt_x` of `x` (`(n_t·B) × d`).
#[allow(clippy::too_many_arguments)]
fn first_layer_bwd<T: Float>(
    x: &[T],
    we: &[T],
    g: &[T],
    batch: usize,
    dim: usize,
    hidden: usize,
    wrt_x: bool,
) -> Vec<T> {
    let data = FirstLayerData::new(x, we, g, batch, dim, hidden);
    let rows = x.len() / dim;
    if wrt_x {
        return par_filled(rows * dim, 1024 * dim, &FirstLayerGradXFill(data));
    }
    let times = rows / batch;
    // Chunks of whole times: each time's row of `de` belongs to one chunk; `dW` is summed
    // from per-chunk partials.
    let times_per = (CHUNK * 4 / (batch * hidden).max(1)).max(1);
    let parts: Vec<(Vec<T>, Vec<T>)> = (0..times.div_ceil(times_per))
        .into_par_iter()
        .map(|c| {
            dispatch(FirstLayerGradChunk {
                data: &data,
                t_lo: c * times_per,
                t_hi: ((c + 1) * times_per).min(times),
            })
        })
        .collect();
    let mut out = vec![T::default(); (dim + times) * hidden];
    for (dw, _) in &parts {
        for (o, v) in out[..dim * hidden].iter_mut().zip(dw) {
            *o += *v;
        }
    }
    let mut at = dim * hidden;
    for (_, de) in parts {
        out[at..at + de.len()].copy_from_slice(&de);
        at += de.len();
    }
    out
}

/// The first layer's forward (two operands) or backward (three) as a [`Kernel`].
struct FirstLayerKernel {
    batch: usize,
    dim: usize,
    hidden: usize,
    wrt_x: bool,
}

impl Kernel for FirstLayerKernel {
    fn run<T: Float>(&self, o: &[&[T]]) -> Vec<T> {
        let (b, d, h) = (self.batch, self.dim, self.hidden);
        match o {
            [x, we] => first_layer_fwd(x, we, b, d, h),
            [x, we, g] => first_layer_bwd(x, we, g, b, d, h, self.wrt_x),
            _ => unreachable!("the first layer has two operands forward, three backward"),
        }
    }
}

impl CustomOp2 for FirstLayer {
    fn name(&self) -> &'static str {
        "fused-first-layer"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (rows, _, hidden) = first_layer_dims(l1, l2, self.batch, self.dim)?;
        let kernel = FirstLayerKernel {
            batch: self.batch,
            dim: self.dim,
            hidden,
            wrt_x: false,
        };
        let out = on_storages(self.name(), &kernel, &[(s1, l1), (s2, l2)])?;
        Ok((out, Shape::from((rows, hidden))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        we: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let grad = grad.contiguous()?;
        let op = |wrt_x| FirstLayerGrad {
            batch: self.batch,
            dim: self.dim,
            wrt_x,
        };
        let dwe = x.apply_op3_no_bwd(we, &grad, &op(false))?;
        // The states are data (never tracked in training); their gradient only when asked.
        let dx = if x.track_op() {
            Some(x.apply_op3_no_bwd(we, &grad, &op(true))?)
        } else {
            None
        };
        Ok((dx, Some(dwe)))
    }
}

impl CustomOp3 for FirstLayerGrad {
    fn name(&self) -> &'static str {
        "fused-first-layer-grad"
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
        let (rows, times, hidden) = first_layer_dims(l1, l2, self.batch, self.dim)?;
        if l3.dims() != [rows, hidden] {
            return Err(candle_core::Error::Msg(format!(
                "fused first layer grad: gradient of shape {:?} for {rows} × {hidden}",
                l3.dims()
            )));
        }
        let kernel = FirstLayerKernel {
            batch: self.batch,
            dim: self.dim,
            hidden,
            wrt_x: self.wrt_x,
        };
        let out = on_storages(self.name(), &kernel, &[(s1, l1), (s2, l2), (s3, l3)])?;
        let (d, wx) = (self.dim, self.wrt_x);
        let shape = if wx {
            Shape::from((rows, d))
        } else {
            Shape::from((d + times, hidden))
        };
        Ok((out, shape))
    }
}

/// `GELU(x·W + e[t])` for states `x` `(n_t, B, d)`, a state layer `W` `(d, H)` and per-time
/// rows `e` `(n_t, H)`; returns `(n_t·B, H)`. Fused forward and backward (module docs);
/// gradients reach `W`, `e` and, when tracked, `x`.
pub fn first_layer(x: &Tensor, w: &Tensor, e: &Tensor) -> candle_core::Result<Tensor> {
    let (nt, batch, dim) = x.dims3()?;
    let we = Tensor::cat(&[w, e], 0)?.contiguous()?;
    x.reshape((nt * batch, dim))?
        .contiguous()?
        .apply_op2(&we, FirstLayer { batch, dim })
}

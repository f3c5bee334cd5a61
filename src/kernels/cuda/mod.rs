//! The batched kernels on an NVIDIA GPU (feature `cuda`): cudarc with NVRTC and dynamic
//! loading, so building needs no CUDA toolkit and a machine without a driver gets an error
//! value, never a panic.
//!
//! Phase 1 (the memory-bound per-trajectory sums) and phase 3 (the dense gradient write) run
//! as fused CUDA kernels (`kernels.cu`: one warp per trajectory with warp-shuffle reductions;
//! a grid-stride fill); phase 2 (`O(B)`) is the CPU code itself, so both backends share every
//! formula. Each backend's error bounds use its own summation depth (`sum::Summation`).
use std::sync::Arc;

use cudarc::driver::{
    CudaContext, CudaFunction, CudaSlice, CudaStream, DeviceRepr, LaunchConfig, PushKernelArg,
    ValidAsZeroBits,
};
use cudarc::nvrtc::{compile_ptx_with_opts, CompileOptions};
use nalgebra::DMatrix;

use crate::kernels::batch::{TrajectoryBatch, Windows};
use crate::kernels::error::BatchError;
use crate::kernels::float::Float;
use crate::kernels::fused::{
    check_windows, compute, per_row_sums, GradForm, Kernel, KernelOutput, RowPass, Rows, Term,
};
use crate::objectives::Definitions;

const SOURCE: &str = include_str!("kernels.cu");

/// Float types the CUDA kernels exist for (`f32`, `f64`).
pub trait CudaFloat: Float + DeviceRepr + ValidAsZeroBits + Unpin {
    /// Kernel name suffix.
    const SUFFIX: &'static str;
}
impl CudaFloat for f32 {
    const SUFFIX: &'static str = "f32";
}
impl CudaFloat for f64 {
    const SUFFIX: &'static str = "f64";
}

/// Whether the CUDA driver and NVRTC libraries can be loaded (checked before any call that
/// would otherwise panic inside the dynamic loader).
pub fn available() -> bool {
    // SAFETY: these only try to open the shared libraries.
    unsafe { cudarc::driver::sys::is_culib_present() && cudarc::nvrtc::sys::is_culib_present() }
}

fn err(what: &str, e: impl std::fmt::Debug) -> BatchError {
    BatchError::Cuda(format!("{what}: {e:?}"))
}

/// A CUDA context with the compiled kernels.
#[derive(Debug)]
pub struct CudaBackend {
    ctx: Arc<CudaContext>,
    stream: Arc<CudaStream>,
    functions: std::collections::HashMap<String, CudaFunction>,
}

impl CudaBackend {
    /// Opens device `ordinal` and compiles the kernels; an error (not a panic) when no driver,
    /// no device, or NVRTC fails.
    pub fn new(ordinal: usize) -> Result<Self, BatchError> {
        if !available() {
            return Err(BatchError::Cuda(
                "no CUDA driver / NVRTC library found on this machine".into(),
            ));
        }
        let ctx = CudaContext::new(ordinal).map_err(|e| err("creating a context", e))?;
        let stream = ctx.default_stream();
        let opts = CompileOptions {
            fmad: Some(false),
            ..Default::default()
        };
        let ptx = compile_ptx_with_opts(SOURCE, opts).map_err(|e| err("NVRTC", e))?;
        let module = ctx
            .load_module(ptx)
            .map_err(|e| err("loading the module", e))?;
        let mut functions = std::collections::HashMap::new();
        for name in [
            "row_sums_f32",
            "row_sums_f64",
            "fill_dense_f32",
            "fill_dense_f64",
        ] {
            let f = module
                .load_function(name)
                .map_err(|e| err("loading a kernel", e))?;
            functions.insert(name.to_string(), f);
        }
        Ok(Self {
            ctx,
            stream,
            functions,
        })
    }

    /// The device's name.
    pub fn device_name(&self) -> String {
        self.ctx.name().unwrap_or_else(|e| format!("{e:?}"))
    }

    fn function(&self, name: &str) -> Result<&CudaFunction, BatchError> {
        self.functions
            .get(name)
            .ok_or_else(|| BatchError::Cuda(format!("kernel {name} missing")))
    }

    /// Uploads a batch's per-step inputs.
    pub fn upload<F: CudaFloat>(
        &self,
        batch: &TrajectoryBatch<F>,
    ) -> Result<DeviceBatch<F>, BatchError> {
        let q = self
            .stream
            .memcpy_stod(batch.log_q().as_slice())
            .map_err(|e| err("upload", e))?;
        let p = self
            .stream
            .memcpy_stod(batch.log_p().as_slice())
            .map_err(|e| err("upload", e))?;
        Ok(DeviceBatch {
            q,
            p,
            batch: batch.batch(),
            steps: batch.steps(),
        })
    }

    fn ranges<F: Float>(
        &self,
        batch: &TrajectoryBatch<F>,
        windows: Option<&Windows<F>>,
    ) -> Result<(CudaSlice<i32>, CudaSlice<i32>), BatchError> {
        let (s, e): (Vec<i32>, Vec<i32>) = match windows {
            Some(w) => (
                w.start().iter().map(|&x| x as i32).collect(),
                w.end().iter().map(|&x| x as i32).collect(),
            ),
            None => (
                vec![0; batch.batch()],
                batch.lengths().iter().map(|&x| x as i32).collect(),
            ),
        };
        let s = self.stream.memcpy_stod(&s).map_err(|e| err("upload", e))?;
        let e = self.stream.memcpy_stod(&e).map_err(|e| err("upload", e))?;
        Ok((s, e))
    }

    /// Phase 1 on the device: per-row sums of one or two terms.
    #[allow(clippy::too_many_arguments)]
    fn row_sums<F: CudaFloat>(
        &self,
        dev: &DeviceBatch<F>,
        start: &CudaSlice<i32>,
        end: &CudaSlice<i32>,
        t1: Term<F>,
        t2: Option<Term<F>>,
    ) -> Result<(CudaSlice<F>, CudaSlice<F>), BatchError> {
        let b = dev.batch;
        let mut out1 = self
            .stream
            .alloc_zeros::<F>(b.max(1))
            .map_err(|e| err("alloc", e))?;
        let mut out2 = self
            .stream
            .alloc_zeros::<F>(b.max(1))
            .map_err(|e| err("alloc", e))?;
        let f = self.function(&format!("row_sums_{}", F::SUFFIX))?;
        let t2v = t2.unwrap_or(Term {
            a: F::ZERO,
            b: F::ZERO,
        });
        let (bi, ti, two) = (b as i32, dev.steps as i32, t2.is_some() as i32);
        let threads = 256u32;
        let blocks = (b.div_ceil(threads as usize / 32)).clamp(1, 65_535) as u32;
        let cfg = LaunchConfig {
            grid_dim: (blocks, 1, 1),
            block_dim: (threads, 1, 1),
            shared_mem_bytes: 0,
        };
        let mut launch = self.stream.launch_builder(f);
        launch
            .arg(&dev.q)
            .arg(&dev.p)
            .arg(start)
            .arg(end)
            .arg(&bi)
            .arg(&ti)
            .arg(&t1.a)
            .arg(&t1.b)
            .arg(&t2v.a)
            .arg(&t2v.b)
            .arg(&two)
            .arg(&mut out1)
            .arg(&mut out2);
        // SAFETY: the argument list matches `row_sums_<T>` in kernels.cu; every index the
        // kernel reads is < batch·steps (ranges validated on the host).
        unsafe { launch.launch(cfg) }.map_err(|e| err("launch row_sums", e))?;
        Ok((out1, out2))
    }

    fn fill_dense<F: CudaFloat>(
        &self,
        g: &[F],
        start: &CudaSlice<i32>,
        end: &CudaSlice<i32>,
        b: usize,
        t: usize,
    ) -> Result<CudaSlice<F>, BatchError> {
        let gd = self.stream.memcpy_stod(g).map_err(|e| err("upload", e))?;
        let mut dense = self
            .stream
            .alloc_zeros::<F>((b * t).max(1))
            .map_err(|e| err("alloc", e))?;
        let f = self.function(&format!("fill_dense_{}", F::SUFFIX))?;
        let (bi, ti) = (b as i32, t as i32);
        let cfg = LaunchConfig {
            grid_dim: (((b * t).div_ceil(256)).clamp(1, 1 << 20) as u32, 1, 1),
            block_dim: (256, 1, 1),
            shared_mem_bytes: 0,
        };
        let mut launch = self.stream.launch_builder(f);
        launch
            .arg(&gd)
            .arg(start)
            .arg(end)
            .arg(&bi)
            .arg(&ti)
            .arg(&mut dense);
        // SAFETY: matches `fill_dense_<T>`; writes only indices < batch·steps.
        unsafe { launch.launch(cfg) }.map_err(|e| err("launch fill_dense", e))?;
        Ok(dense)
    }

    /// Evaluates one kernel on the GPU (the same result type and meaning as
    /// [`crate::kernels::evaluate_with`]); the dense gradient, if asked for, is copied back.
    pub fn evaluate_with<F: CudaFloat>(
        &self,
        batch: &TrajectoryBatch<F>,
        kernel: &Kernel<'_, F>,
        form: GradForm,
        defs: Option<&Definitions>,
    ) -> Result<KernelOutput<F>, BatchError> {
        if batch.batch() > i32::MAX as usize || batch.steps() > i32::MAX as usize {
            return Err(BatchError::Cuda(
                "batch too large for 32-bit row indices".into(),
            ));
        }
        let shape = crate::kernels::fused::Shape::for_batch(batch, defs)?;
        let dev = self.upload(batch)?;
        let pass = CudaPass {
            backend: self,
            dev: &dev,
            batch,
        };
        let mut out = compute(batch, kernel, &shape, &pass, None)?;
        if form == GradForm::Dense {
            let windows = kernel.windows();
            let (s, e) = self.ranges(batch, windows)?;
            let d = self.fill_dense(out.g.as_slice(), &s, &e, batch.batch(), batch.steps())?;
            let mut host = self
                .stream
                .memcpy_dtov(&d)
                .map_err(|e| err("download", e))?;
            host.truncate(batch.batch() * batch.steps());
            out.dense = Some(DMatrix::from_vec(batch.steps(), batch.batch(), host));
        }
        Ok(out)
    }

    /// Median seconds of `repeats` runs of the device phase 1 (one or two sums) on an uploaded
    /// batch, timed with CUDA events (for `bench`): the memory-bound part, inputs already on
    /// the device.
    pub fn time_row_sums<F: CudaFloat>(
        &self,
        batch: &TrajectoryBatch<F>,
        two: bool,
        repeats: usize,
    ) -> Result<f64, BatchError> {
        let dev = self.upload(batch)?;
        let (s, e) = self.ranges(batch, None)?;
        let t1 = Term {
            a: F::ONE,
            b: -F::ONE,
        };
        let t2 = two.then_some(Term {
            a: F::ONE,
            b: F::ZERO,
        });
        let mut times = Vec::with_capacity(repeats);
        for _ in 0..repeats.max(1) + 1 {
            let a = self.ctx.new_event(None).map_err(|e| err("event", e))?;
            let b = self.ctx.new_event(None).map_err(|e| err("event", e))?;
            a.record(&self.stream).map_err(|e| err("event", e))?;
            self.row_sums(&dev, &s, &e, t1, t2)?;
            b.record(&self.stream).map_err(|e| err("event", e))?;
            b.synchronize().map_err(|e| err("sync", e))?;
            times.push(a.elapsed_ms(&b).map_err(|e| err("event", e))? as f64 / 1e3);
        }
        times.remove(0); // warm-up
        times.sort_by(|x, y| x.total_cmp(y));
        Ok(times[times.len() / 2])
    }
}

/// A batch's per-step inputs resident on the device.
#[derive(Debug)]
pub struct DeviceBatch<F: CudaFloat> {
    q: CudaSlice<F>,
    p: CudaSlice<F>,
    batch: usize,
    steps: usize,
}

/// The GPU's phase 1: the per-row sums on the device, downloaded, then each row finished on
/// the host by the same closure the CPU pass runs (one definition of the per-row arithmetic).
struct CudaPass<'a, F: CudaFloat> {
    backend: &'a CudaBackend,
    dev: &'a DeviceBatch<F>,
    batch: &'a TrajectoryBatch<F>,
}

impl<F: CudaFloat> RowPass<F> for CudaPass<'_, F> {
    fn rows<const N: usize, const M: usize, Fin>(
        &self,
        windows: Option<&Windows<F>>,
        t1: Term<F>,
        t2: Option<Term<F>>,
        finish: Fin,
        _dense: Option<(&mut DMatrix<F>, usize)>,
    ) -> Result<Rows<F, N, M>, BatchError>
    where
        Fin: Fn(usize, F, F) -> ([F; N], [F; M]) + Sync + Copy,
    {
        let (batch, backend) = (self.batch, self.backend);
        if let Some(w) = windows {
            check_windows(batch, w)?;
        }
        let (s, e) = backend.ranges(batch, windows)?;
        let (o1, o2) = backend.row_sums(self.dev, &s, &e, t1, t2)?;
        let download = |o: &CudaSlice<F>| {
            let mut v = backend
                .stream
                .memcpy_dtov(o)
                .map_err(|e| err("download", e))?;
            v.truncate(batch.batch());
            Ok::<_, BatchError>(v)
        };
        let s1 = download(&o1)?;
        let s2 = if t2.is_some() {
            download(&o2)?
        } else {
            vec![F::ZERO; batch.batch()]
        };
        // The dense gradient is filled on the device afterwards (`evaluate_with`).
        let (outs, sums) = per_row_sums(batch, |i| finish(i, s1[i], s2[i]));
        Ok(Rows {
            outs,
            sums,
            wrote_dense: false,
        })
    }
}

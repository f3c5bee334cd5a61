//! The batched kernels on an NVIDIA GPU (feature `cuda`): cudarc with NVRTC and dynamic
//! loading, so building needs no CUDA toolkit and a machine without a driver gets an error
//! value, never a panic.
//!
//! Phase 1 (the memory-bound per-trajectory sums) and phase 3 (the dense gradient write) run
//! as fused CUDA kernels (`kernels.cu`: each warp walks a share of the rows, one row at a time
//! with the next chunk's loads in flight, and reduces each row with warp shuffles; the fill
//! writes each row whole in 16-byte streaming stores); phase 2 (`O(B)`) is the CPU code
//! itself, so both backends share every formula. Each backend's error bounds use its own
//! summation depth (`sum::Summation`). Measured on an H200: docs/performance.md, "CUDA".
use std::cell::Cell;
use std::sync::Arc;

use cudarc::driver::sys::CUevent_flags;
use cudarc::driver::{
    CudaContext, CudaFunction, CudaSlice, CudaStream, DeviceRepr, LaunchConfig, PushKernelArg,
    ValidAsZeroBits,
};
use cudarc::nvrtc::{compile_ptx_with_opts, CompileOptions, Ptx};
use nalgebra::DMatrix;

use crate::kernels::batch::{TrajectoryBatch, Windows};
use crate::kernels::bench::{DeviceKernelTiming, DeviceReferences, Timing};
use crate::kernels::error::BatchError;
use crate::kernels::float::Float;
use crate::kernels::fused::{
    check_windows, compute, per_row_sums, Finish, GradForm, Kernel, KernelOutput, RowPass, Rows,
    Term,
};
use crate::objectives::Definitions;

const SOURCE: &str = include_str!("kernels.cu");

/// Environment variable with extra NVRTC definitions (`-DNAME=DIGITS ...`) for measuring the
/// variants kernels.cu names; the grid of the row kernels is chosen by [`GRID_ENV`].
pub const OPTIONS_ENV: &str = "RTB_TRUSTPCL_CUDA_OPTIONS";

/// Environment variable choosing the row sums' grid: `resident` (default: the blocks that
/// stay resident, each warp a balanced share of the rows) or `full` (one warp per 32 rows,
/// the dense fill's grid always: it was the faster there, the resident one for the sums).
pub const GRID_ENV: &str = "RTB_TRUSTPCL_CUDA_GRID";

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

/// Compiles `kernels.cu` with NVRTC (`--fmad=false`: `a·q + b·p` rounds as on the CPU).
/// Needs only the NVRTC library, no GPU: an error value where it cannot be loaded.
pub fn compile_kernels() -> Result<Ptx, BatchError> {
    // SAFETY: only tries to open the shared library.
    if !unsafe { cudarc::nvrtc::sys::is_culib_present() } {
        return Err(BatchError::Cuda(
            "no NVRTC library found on this machine".into(),
        ));
    }
    // Measuring knob: extra `-D` definitions for the macros of kernels.cu (variants of the
    // same arithmetic: unrolling, stores, launch bounds); anything else is refused.
    let mut options = Vec::new();
    if let Ok(v) = std::env::var(OPTIONS_ENV) {
        for o in v.split_whitespace() {
            let ok = o.strip_prefix("-D").is_some_and(|d| {
                let (name, value) = d.split_once('=').unwrap_or((d, ""));
                !name.is_empty()
                    && name
                        .chars()
                        .all(|c| c.is_ascii_uppercase() || c == '_' || c.is_ascii_digit())
                    && value.chars().all(|c| c.is_ascii_digit())
            });
            if !ok {
                return Err(BatchError::Cuda(format!(
                    "{OPTIONS_ENV}: {o:?} is not a definition -DNAME=DIGITS"
                )));
            }
            options.push(o.to_string());
        }
    }
    let opts = CompileOptions {
        fmad: Some(false),
        options,
        ..Default::default()
    };
    compile_ptx_with_opts(SOURCE, opts).map_err(|e| err("NVRTC", e))
}

/// A CUDA context with the compiled kernels.
#[derive(Debug)]
pub struct CudaBackend {
    ctx: Arc<CudaContext>,
    stream: Arc<CudaStream>,
    /// Each kernel with the blocks of 256 threads of it that stay resident on one
    /// multiprocessor (sizes the resident grid; asked once, not at every launch).
    functions: std::collections::HashMap<String, (CudaFunction, usize)>,
    /// Streaming multiprocessors (sizes the references' grids).
    sms: usize,
    /// Whether the row sums run on the one-warp-per-32-rows grid ([`GRID_ENV`], read once).
    sums_full_grid: bool,
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
        let ptx = compile_kernels()?;
        let module = ctx
            .load_module(ptx)
            .map_err(|e| err("loading the module", e))?;
        let mut functions = std::collections::HashMap::new();
        let mut names = Vec::new();
        for kernel in ["row_sums", "fill_dense", "read_ref", "copy_ref"] {
            for suffix in ["f32", "f64"] {
                names.push(format!("{kernel}_{suffix}"));
            }
        }
        for name in names {
            let f = module
                .load_function(&name)
                .map_err(|e| err("loading a kernel", e))?;
            let resident = f
                .occupancy_max_active_blocks_per_multiprocessor(256, 0, None)
                .map_err(|e| err("occupancy", e))? as usize;
            functions.insert(name, (f, resident));
        }
        let sms = ctx
            .attribute(
                cudarc::driver::sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT,
            )
            .map_err(|e| err("attribute", e))?
            .max(1) as usize;
        Ok(Self {
            ctx,
            stream,
            functions,
            sms,
            sums_full_grid: std::env::var(GRID_ENV).is_ok_and(|v| v == "full"),
        })
    }

    /// The device's name.
    pub fn device_name(&self) -> String {
        self.ctx.name().unwrap_or_else(|e| format!("{e:?}"))
    }

    /// Kernel `name` and its resident blocks per multiprocessor.
    fn function(&self, name: &str) -> Result<(&CudaFunction, usize), BatchError> {
        self.functions
            .get(name)
            .map(|(f, resident)| (f, *resident))
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

    /// Phase 1 on the device into preallocated outputs: per-row sums of one or two terms.
    #[allow(clippy::too_many_arguments)]
    fn launch_row_sums<F: CudaFloat>(
        &self,
        dev: &DeviceBatch<F>,
        start: &CudaSlice<i32>,
        end: &CudaSlice<i32>,
        t1: Term<F>,
        t2: Option<Term<F>>,
        out1: &mut CudaSlice<F>,
        out2: &mut CudaSlice<F>,
    ) -> Result<(), BatchError> {
        let b = dev.batch;
        let (f, resident) = self.function(&format!("row_sums_{}", F::SUFFIX))?;
        let t2v = t2.unwrap_or(Term {
            a: F::ZERO,
            b: F::ZERO,
        });
        let (bi, ti, two) = (b as i32, dev.steps as i32, t2.is_some() as i32);
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
            .arg(out1)
            .arg(out2);
        // SAFETY: the argument list matches `row_sums_<T>` in kernels.cu; every index the
        // kernel reads is < batch·steps (ranges validated on the host), every row it writes
        // is < batch ≤ the outputs' length.
        let cfg = row_grid(b, self.sms, resident, self.sums_full_grid);
        unsafe { launch.launch(cfg) }.map_err(|e| err("launch row_sums", e))?;
        Ok(())
    }

    /// The two row-sum outputs (`B` long each; never read before the kernel writes them).
    fn row_outputs<F: CudaFloat>(
        &self,
        b: usize,
    ) -> Result<(CudaSlice<F>, CudaSlice<F>), BatchError> {
        let alloc = || {
            self.stream
                .alloc_zeros::<F>(b.max(1))
                .map_err(|e| err("alloc", e))
        };
        Ok((alloc()?, alloc()?))
    }

    /// Phase 3 on the device into a preallocated `B·T` buffer (every element written).
    fn launch_fill_dense<F: CudaFloat>(
        &self,
        g: &CudaSlice<F>,
        start: &CudaSlice<i32>,
        end: &CudaSlice<i32>,
        (b, t): (usize, usize),
        dense: &mut CudaSlice<F>,
    ) -> Result<(), BatchError> {
        let (f, resident) = self.function(&format!("fill_dense_{}", F::SUFFIX))?;
        let (bi, ti) = (b as i32, t as i32);
        let mut launch = self.stream.launch_builder(f);
        launch
            .arg(g)
            .arg(start)
            .arg(end)
            .arg(&bi)
            .arg(&ti)
            .arg(dense);
        // SAFETY: matches `fill_dense_<T>`; writes only indices < batch·steps ≤ the buffer.
        let cfg = row_grid(b, self.sms, resident, true);
        unsafe { launch.launch(cfg) }.map_err(|e| err("launch fill_dense", e))?;
        Ok(())
    }

    /// An uninitialised device buffer for the dense gradient, which `fill_dense` writes whole
    /// (no clearing pass: it would double the bytes written).
    fn dense_buffer<F: CudaFloat>(&self, n: usize) -> Result<CudaSlice<F>, BatchError> {
        // SAFETY: every element is written by `fill_dense_<T>` before it is read.
        unsafe { self.stream.alloc::<F>(n.max(1)) }.map_err(|e| err("alloc", e))
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
        let mut dense = self.dense_buffer::<F>(b * t)?;
        self.launch_fill_dense(&gd, start, end, (b, t), &mut dense)?;
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
        check_size(batch)?;
        let shape = crate::kernels::fused::Shape::for_batch(batch, defs)?;
        let dev = self.upload(batch)?;
        let pass = CudaPass {
            backend: self,
            dev: &dev,
            batch,
            timing: None,
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

    /// Seconds of `repeats` calls of `work` (after one warm-up call), each between two CUDA
    /// events on the stream: device time, launch gaps excluded.
    fn time_events(
        &self,
        repeats: usize,
        mut work: impl FnMut() -> Result<(), BatchError>,
    ) -> Result<Timing, BatchError> {
        let event = || {
            self.ctx
                .new_event(Some(CUevent_flags::CU_EVENT_DEFAULT))
                .map_err(|e| err("event", e))
        };
        let (a, b) = (event()?, event()?);
        work()?;
        let mut seconds = Vec::with_capacity(repeats.max(1));
        for _ in 0..repeats.max(1) {
            a.record(&self.stream).map_err(|e| err("event", e))?;
            work()?;
            b.record(&self.stream).map_err(|e| err("event", e))?;
            b.synchronize().map_err(|e| err("sync", e))?;
            seconds.push(a.elapsed_ms(&b).map_err(|e| err("event", e))? as f64 / 1e3);
        }
        Ok(Timing::of(seconds))
    }

    /// Device time of one kernel's two device phases on an uploaded batch (for
    /// `bench --device cuda`): its row sums, timed inside [`compute`] with the kernel's own
    /// terms and windows, and the dense fill of its `g`. The `O(B)` phase 2 runs on the host
    /// and is not timed.
    pub fn time_kernel<F: CudaFloat>(
        &self,
        dev: &DeviceBatch<F>,
        batch: &TrajectoryBatch<F>,
        kernel: &Kernel<'_, F>,
        repeats: usize,
    ) -> Result<DeviceKernelTiming, BatchError> {
        check_size(batch)?;
        if (dev.batch, dev.steps) != (batch.batch(), batch.steps()) {
            // The device copy fixes the kernels' row length: another batch's bounds could
            // index past it.
            return Err(BatchError::Cuda(format!(
                "time_kernel: the uploaded batch is {} x {} but the batch given is {} x {}",
                dev.batch,
                dev.steps,
                batch.batch(),
                batch.steps()
            )));
        }
        let shape = crate::kernels::fused::Shape::for_batch(batch, None)?;
        let timing = Cell::new(None);
        let pass = CudaPass {
            backend: self,
            dev,
            batch,
            timing: Some((repeats, &timing)),
        };
        let out = compute(batch, kernel, &shape, &pass, None)?;
        let (rows, sums) = timing
            .get()
            .ok_or_else(|| BatchError::Cuda("the kernel ran no device pass".into()))?;
        let (s, e) = self.ranges(batch, kernel.windows())?;
        let g = self
            .stream
            .memcpy_stod(out.g.as_slice())
            .map_err(|e| err("upload", e))?;
        let (b, t) = (batch.batch(), batch.steps());
        let mut dense = self.dense_buffer::<F>(b * t)?;
        let fill = self.time_events(repeats, || {
            self.launch_fill_dense(&g, &s, &e, (b, t), &mut dense)
        })?;
        Ok(DeviceKernelTiming { rows, fill, sums })
    }

    /// The device's bandwidth references on an uploaded batch: the copy of both inputs by a
    /// kernel and by the driver (`cuMemcpyDtoD`), the driver's write of one (`cuMemsetD8`),
    /// and the read of both (for
    /// `bench --device cuda`).
    pub fn time_references<F: CudaFloat>(
        &self,
        dev: &DeviceBatch<F>,
        repeats: usize,
    ) -> Result<DeviceReferences, BatchError> {
        let n = dev.batch * dev.steps;
        // The vector kernels move whole 16-byte vectors; a remainder of < 16 bytes is left.
        let per_vector = 16 / F::BYTES;
        let nv = (n / per_vector) as i64;
        let moved = (nv as usize * per_vector * F::BYTES) as f64;
        let mut dq = self.dense_buffer::<F>(n)?;
        let mut dp = self.dense_buffer::<F>(n)?;
        let grid = self.sms as u32 * 32;
        let cfg = LaunchConfig {
            grid_dim: (grid, 1, 1),
            block_dim: (256, 1, 1),
            shared_mem_bytes: 0,
        };
        let (copy_kernel, _) = self.function(&format!("copy_ref_{}", F::SUFFIX))?;
        let copy = self.time_events(repeats, || {
            for (src, dst) in [(&dev.q, &mut dq), (&dev.p, &mut dp)] {
                let mut launch = self.stream.launch_builder(copy_kernel);
                launch.arg(src).arg(&nv).arg(dst);
                // SAFETY: matches `copy_ref_<T>`; `nv` whole vectors lie inside both buffers
                // (device allocations are at least 256-byte aligned).
                unsafe { launch.launch(cfg) }.map_err(|e| err("launch copy_ref", e))?;
            }
            Ok(())
        })?;
        let copy_driver = self.time_events(repeats, || {
            self.stream
                .memcpy_dtod(&dev.q, &mut dq)
                .map_err(|e| err("copy", e))?;
            self.stream
                .memcpy_dtod(&dev.p, &mut dp)
                .map_err(|e| err("copy", e))
        })?;
        let write_driver = self.time_events(repeats, || {
            self.stream
                .memset_zeros(&mut dq)
                .map_err(|e| err("memset", e))
        })?;
        let mut partial = self
            .stream
            .alloc_zeros::<F>(grid as usize * 256)
            .map_err(|e| err("alloc", e))?;
        let (read_kernel, _) = self.function(&format!("read_ref_{}", F::SUFFIX))?;
        let read = self.time_events(repeats, || {
            let mut launch = self.stream.launch_builder(read_kernel);
            launch.arg(&dev.q).arg(&dev.p).arg(&nv).arg(&mut partial);
            // SAFETY: matches `read_ref_<T>`; reads `nv` whole vectors of each input, writes
            // one value per thread of the grid into `partial` (grid × 256 long).
            unsafe { launch.launch(cfg) }.map_err(|e| err("launch read_ref", e))?;
            Ok(())
        })?;
        Ok(DeviceReferences {
            copy,
            copy_driver,
            write_driver,
            read,
            copy_bytes: 4.0 * moved,
            copy_driver_bytes: (4 * n * F::BYTES) as f64,
            write_driver_bytes: (n * F::BYTES) as f64,
            read_bytes: 2.0 * moved,
        })
    }

    /// The card's peak memory bandwidth in GB/s from its attributes: the memory clock (kHz,
    /// two transfers per clock) times the bus width.
    pub fn peak_gbps(&self) -> Result<f64, BatchError> {
        use cudarc::driver::sys::CUdevice_attribute as A;
        let clock_khz = self
            .ctx
            .attribute(A::CU_DEVICE_ATTRIBUTE_MEMORY_CLOCK_RATE)
            .map_err(|e| err("attribute", e))?;
        let bus_bits = self
            .ctx
            .attribute(A::CU_DEVICE_ATTRIBUTE_GLOBAL_MEMORY_BUS_WIDTH)
            .map_err(|e| err("attribute", e))?;
        if clock_khz <= 0 || bus_bits <= 0 {
            return Err(BatchError::Cuda(format!(
                "the device reports memory clock {clock_khz} kHz and bus width {bus_bits} bits"
            )));
        }
        Ok(2.0 * clock_khz as f64 * 1e3 * (bus_bits as f64 / 8.0) / 1e9)
    }
}

/// The row kernels' grid, blocks of 8 warps: with `full`, one warp per 32 rows; else as many
/// blocks as stay resident on the device at once (`resident` blocks per multiprocessor), each
/// warp taking a contiguous share of the rows balanced to one row, so no partly filled last
/// wave; fewer where there are fewer rows than warps.
fn row_grid(rows: usize, sms: usize, resident: usize, full: bool) -> LaunchConfig {
    let blocks = if full {
        rows.div_ceil(256).max(1)
    } else {
        (sms * resident.max(1)).min(rows.div_ceil(8)).max(1)
    };
    LaunchConfig {
        grid_dim: (blocks as u32, 1, 1),
        block_dim: (256, 1, 1),
        shared_mem_bytes: 0,
    }
}

/// Row and step indices are 32-bit on the device.
fn check_size<F: Float>(batch: &TrajectoryBatch<F>) -> Result<(), BatchError> {
    if batch.batch() > i32::MAX as usize || batch.steps() > i32::MAX as usize {
        return Err(BatchError::Cuda(
            "batch too large for 32-bit row indices".into(),
        ));
    }
    Ok(())
}

/// A batch's per-step inputs resident on the device.
#[derive(Debug)]
pub struct DeviceBatch<F: CudaFloat> {
    q: CudaSlice<F>,
    p: CudaSlice<F>,
    batch: usize,
    steps: usize,
}

/// Where [`CudaPass`] stores the device sums' timing and how many sums per row it wrote.
type TimedSums = Cell<Option<(Timing, usize)>>;

/// The GPU's phase 1: the per-row sums on the device, downloaded, then each row finished on
/// the host by the same closure the CPU pass runs (one definition of the per-row arithmetic).
/// With `timing`, the device sums are also timed `repeats` times (the kernel's own terms and
/// windows) and the timing and the number of sums stored.
struct CudaPass<'a, F: CudaFloat> {
    backend: &'a CudaBackend,
    dev: &'a DeviceBatch<F>,
    batch: &'a TrajectoryBatch<F>,
    timing: Option<(usize, &'a TimedSums)>,
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
        Fin: Finish<F, N, M>,
    {
        let (batch, backend, dev) = (self.batch, self.backend, self.dev);
        if let Some(w) = windows {
            check_windows(batch, w)?;
        }
        let (s, e) = backend.ranges(batch, windows)?;
        let (mut o1, mut o2) = backend.row_outputs::<F>(batch.batch())?;
        backend.launch_row_sums(dev, &s, &e, t1, t2, &mut o1, &mut o2)?;
        if let Some((repeats, cell)) = self.timing {
            let t = backend.time_events(repeats, || {
                backend.launch_row_sums(dev, &s, &e, t1, t2, &mut o1, &mut o2)
            })?;
            cell.set(Some((t, 1 + t2.is_some() as usize)));
        }
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
        let (outs, sums) = per_row_sums(batch, |i| finish.row(i, s1[i], s2[i]));
        Ok(Rows {
            outs,
            sums,
            wrote_dense: false,
        })
    }
}

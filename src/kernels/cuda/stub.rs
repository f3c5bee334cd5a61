//! Stub twin of the CUDA backend (built without the `cuda` feature): the same API, every
//! constructor returns [`BatchError::Cuda`] ("not compiled with CUDA").
use crate::kernels::batch::TrajectoryBatch;
use crate::kernels::bench::{DeviceKernelTiming, DeviceReferences};
use crate::kernels::error::BatchError;
use crate::kernels::float::Float;
use crate::kernels::fused::{GradForm, Kernel, KernelOutput};
use crate::objectives::Definitions;

/// Float types the CUDA kernels exist for (`f32`, `f64`).
pub trait CudaFloat: Float {
    /// Kernel name suffix.
    const SUFFIX: &'static str;
}
impl CudaFloat for f32 {
    const SUFFIX: &'static str = "f32";
}
impl CudaFloat for f64 {
    const SUFFIX: &'static str = "f64";
}

/// A batch's per-step inputs resident on the device (uninhabited without the feature).
#[derive(Debug)]
pub struct DeviceBatch<F: CudaFloat> {
    // Makes the type uninhabited (as `CudaBackend`); never read, as no value exists.
    #[allow(dead_code)]
    never: std::convert::Infallible,
    _float: std::marker::PhantomData<F>,
}

/// Whether a CUDA driver can be used (always `false` without the feature).
pub fn available() -> bool {
    false
}

/// The CUDA backend (uninhabited without the feature).
#[derive(Debug)]
pub struct CudaBackend {
    never: std::convert::Infallible,
}

impl CudaBackend {
    /// Always an error: this build has no CUDA support.
    pub fn new(_ordinal: usize) -> Result<Self, BatchError> {
        Err(BatchError::Cuda(
            "this build has no CUDA support (rebuild with `--features cuda`)".into(),
        ))
    }

    /// Same signature as the real backend; unreachable (no value of this type exists).
    pub fn upload<F: CudaFloat>(
        &self,
        _batch: &TrajectoryBatch<F>,
    ) -> Result<DeviceBatch<F>, BatchError> {
        match self.never {}
    }

    /// Same signature as the real backend; unreachable.
    pub fn evaluate_with<F: CudaFloat>(
        &self,
        _batch: &TrajectoryBatch<F>,
        _kernel: &Kernel<'_, F>,
        _form: GradForm,
        _defs: Option<&Definitions>,
    ) -> Result<KernelOutput<F>, BatchError> {
        match self.never {}
    }

    /// Same signature as the real backend; unreachable.
    pub fn time_kernel<F: CudaFloat>(
        &self,
        _dev: &DeviceBatch<F>,
        _batch: &TrajectoryBatch<F>,
        _kernel: &Kernel<'_, F>,
        _repeats: usize,
    ) -> Result<DeviceKernelTiming, BatchError> {
        match self.never {}
    }

    /// Same signature as the real backend; unreachable.
    pub fn time_references<F: CudaFloat>(
        &self,
        _dev: &DeviceBatch<F>,
        _repeats: usize,
    ) -> Result<DeviceReferences, BatchError> {
        match self.never {}
    }

    /// Same signature as the real backend; unreachable.
    pub fn peak_gbps(&self) -> Result<f64, BatchError> {
        match self.never {}
    }

    /// Same signature as the real backend; unreachable.
    pub fn device_name(&self) -> String {
        match self.never {}
    }
}

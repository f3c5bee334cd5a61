//! The outcome of an agreement run: named checks, each with its worst error over its bound.
use serde::{Serialize, Serializer};

/// The float type a gradcheck runs its main checks in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum Dtype {
    /// `f32`.
    F32,
    /// `f64`.
    F64,
}

/// Where the kernels run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum Device {
    /// rayon on the CPU cores.
    Cpu,
    /// An NVIDIA GPU (feature `cuda`).
    Cuda,
}

/// The outcome of one named check.
#[derive(Debug, Clone, Serialize)]
pub struct CheckResult {
    /// Name, e.g. `c2-loss`, `f32-vs-f64/rtb`.
    pub id: String,
    /// Whether every compared value is within its bound.
    pub holds: bool,
    /// `max |â − f b̂| / bound` over the compared values (∞, as JSON `null`, when an
    /// exactly-zero value was not zero).
    #[serde(serialize_with = "finite_or_null")]
    pub max_error_over_bound: f64,
    /// `max |â − f b̂|`.
    #[serde(serialize_with = "finite_or_null")]
    pub max_abs_error: f64,
}

fn finite_or_null<S: Serializer>(x: &f64, s: S) -> Result<S::Ok, S::Error> {
    if x.is_finite() {
        s.serialize_f64(*x)
    } else {
        s.serialize_none()
    }
}

/// The whole gradcheck result (the `--json` schema).
#[derive(Debug, Clone, Serialize)]
pub struct GradcheckReport {
    /// `"f32"` or `"f64"`.
    pub dtype: Dtype,
    /// `B`.
    pub batch: usize,
    /// `T`.
    pub steps: usize,
    /// `"cpu"` or `"cuda"`.
    pub device: Device,
    /// Whether every check holds.
    pub all_hold: bool,
    /// The checks, in order.
    pub checks: Vec<CheckResult>,
    /// Wall-clock seconds (generation included).
    pub seconds: f64,
}

impl GradcheckReport {
    /// Appends a check and updates `all_hold`.
    pub fn push(&mut self, check: CheckResult) {
        self.all_hold &= check.holds;
        self.checks.push(check);
    }
}

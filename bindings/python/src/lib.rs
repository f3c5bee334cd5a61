//! `rtb_trustpcl._native`: the thin PyO3 glue between the Python package `rtb_trustpcl` and the
//! core crate. Every function here converts its arguments, calls one public API of the core
//! crate with the GIL released, and converts the result back; the Python layer
//! (`python/rtb_trustpcl/`) holds the user-facing API.
//!
//! - [`export_batch`]: the batch `rtb-trustpcl export-batch` writes
//!   (`cli::export_batch::make_batch`), as numpy arrays;
//! - [`classify`]: `conventions::classify` on a batch and the user's results (JSON text);
//! - [`kernel`]: one fused kernel (`kernels::evaluate`) on f32 or f64 numpy arrays;
//! - [`verify`]: the `verify --json` report (`cli::verify::build_report`);
//! - [`gradcheck`]: the `gradcheck --json` report (`agreement::gradcheck::run_checks`).
//!
//! Bad input raises `rtb_trustpcl.InputError` (a `ValueError`) or `TypeError` with the core's
//! message; nothing here panics on user input.
#![deny(missing_docs)]

use std::path::PathBuf;

use nalgebra::DVector;
use numpy::ndarray::Dimension;
use numpy::{
    Element, IntoPyArray, PyArrayMethods, PyReadonlyArray, PyReadonlyArray1, PyReadonlyArray2,
    PyUntypedArrayMethods,
};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use rtb_trustpcl::agreement::gradcheck::{run_checks, Device, Dtype, GradcheckConfig};
use rtb_trustpcl::cli::export_batch::{make_batch, ExportBatchArgs};
use rtb_trustpcl::cli::verify::{build_report, VerifyArgs};
use rtb_trustpcl::conventions::{ExportedBatch, UserResults};
use rtb_trustpcl::kernels::{evaluate, Float, GradForm, Kernel, TrajectoryBatch, Windows};
use rtb_trustpcl::mutant::Mutant;

pyo3::create_exception!(
    rtb_trustpcl,
    InputError,
    PyValueError,
    "Bad input to rtb_trustpcl: a shape, a value or a parameter the core crate refused."
);

fn input_error(e: impl std::fmt::Display) -> PyErr {
    InputError::new_err(e.to_string())
}

fn json_text(value: &impl serde::Serialize) -> PyResult<String> {
    serde_json::to_string(value)
        .map_err(|e| PyValueError::new_err(format!("cannot serialise: {e}")))
}

fn parse_mutant(name: Option<&str>) -> PyResult<Option<Mutant>> {
    match name {
        None => Ok(None),
        Some(n) => Mutant::ALL
            .iter()
            .copied()
            .find(|m| m.name() == n)
            .map(Some)
            .ok_or_else(|| {
                let names: Vec<&str> = Mutant::ALL.iter().map(|m| m.name()).collect();
                input_error(format!("mutant: unknown name {n:?} (one of {names:?})"))
            }),
    }
}

/// The array's entries in row-major (C) order: one `memcpy` when it is C-contiguous, an
/// element-wise copy otherwise. The core's batch owns its buffers, so this is the one copy.
/// (`as_slice` alone would also accept a Fortran-ordered array, in memory order: wrong here.)
fn to_vec<T: Element + Copy, D: Dimension>(a: &PyReadonlyArray<'_, T, D>) -> Vec<T> {
    match a.as_slice() {
        Ok(s) if a.is_c_contiguous() => s.to_vec(),
        _ => a.as_array().iter().copied().collect(),
    }
}

/// A 2-D array argument of the given float type, or a `TypeError` naming it.
fn array2<'py, F: Element>(
    what: &str,
    ob: &Bound<'py, PyAny>,
) -> PyResult<PyReadonlyArray2<'py, F>> {
    ob.extract::<PyReadonlyArray2<'py, F>>().map_err(|_| {
        PyTypeError::new_err(format!(
            "{what} must be a 2-D numpy array of {} (shape [B, T]), got {}",
            std::any::type_name::<F>(),
            describe(ob)
        ))
    })
}

fn array1<'py, T: Element>(
    what: &str,
    ob: &Bound<'py, PyAny>,
) -> PyResult<PyReadonlyArray1<'py, T>> {
    ob.extract::<PyReadonlyArray1<'py, T>>().map_err(|_| {
        PyTypeError::new_err(format!(
            "{what} must be a 1-D numpy array of {} (shape [B]), got {}",
            std::any::type_name::<T>(),
            describe(ob)
        ))
    })
}

fn describe(ob: &Bound<'_, PyAny>) -> String {
    let shape = ob
        .getattr("shape")
        .map(|s| s.to_string())
        .unwrap_or_else(|_| "no shape".into());
    let dtype = ob
        .getattr("dtype")
        .map(|s| s.to_string())
        .unwrap_or_else(|_| "no dtype".into());
    let ty = ob
        .get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".into());
    format!("{ty} with shape {shape} and dtype {dtype}")
}

/// The batch `export-batch` writes, as a dict of numpy arrays: `log_q`, `log_p` (`[B, T]`
/// float64, 0 past each length), `lengths` (`[B]` int64), `log_r` (`[B]`), `beta`, `log_z`.
#[pyfunction]
#[pyo3(signature = (seed=0, batch=64, steps=12, beta=1.5, log_z=0.7))]
fn export_batch<'py>(
    py: Python<'py>,
    seed: u64,
    batch: usize,
    steps: usize,
    beta: f64,
    log_z: f64,
) -> PyResult<Bound<'py, PyDict>> {
    let args = ExportBatchArgs {
        out: PathBuf::new(),
        seed,
        batch,
        steps,
        beta,
        log_z,
    };
    let b = py.detach(|| {
        let b = make_batch(&args);
        b.validate().map(|()| b)
    });
    let b = b.map_err(|e| input_error(format!("export_batch: {e}")))?;
    let d = PyDict::new(py);
    let (bs, t) = (b.batch, b.steps);
    // Row-major [B, T] buffers: handed to numpy without a copy, then viewed as [B, T].
    d.set_item("log_q", b.log_q.into_pyarray(py).reshape([bs, t])?)?;
    d.set_item("log_p", b.log_p.into_pyarray(py).reshape([bs, t])?)?;
    let lengths: Vec<i64> = b.lengths.iter().map(|&l| l as i64).collect();
    d.set_item("lengths", lengths.into_pyarray(py))?;
    d.set_item("log_r", b.log_r.into_pyarray(py))?;
    d.set_item("beta", b.beta)?;
    d.set_item("log_z", b.log_z)?;
    Ok(d)
}

/// `conventions::classify` on a batch (float64 arrays as `export_batch` returns) and the
/// user's `loss` (`[B]` or one value), optional `grad_log_z` and `grad_log_q` (`[B, T]`);
/// returns the classification as JSON text.
#[pyfunction]
#[pyo3(signature = (log_q, log_p, lengths, log_r, beta, log_z, loss, grad_log_z=None, grad_log_q=None, tol=1e-4))]
#[allow(clippy::too_many_arguments)]
fn classify(
    py: Python<'_>,
    log_q: &Bound<'_, PyAny>,
    log_p: &Bound<'_, PyAny>,
    lengths: &Bound<'_, PyAny>,
    log_r: &Bound<'_, PyAny>,
    beta: f64,
    log_z: f64,
    loss: &Bound<'_, PyAny>,
    grad_log_z: Option<f64>,
    grad_log_q: Option<&Bound<'_, PyAny>>,
    tol: f64,
) -> PyResult<String> {
    let q = array2::<f64>("log_q", log_q)?;
    let (b, t) = (q.shape()[0], q.shape()[1]);
    let batch = ExportedBatch {
        batch: b,
        steps: t,
        log_q: to_vec(&q),
        log_p: to_vec(&array2::<f64>("log_p", log_p)?),
        lengths: lengths_vec(&array1::<i64>("lengths", lengths)?, t)?,
        log_r: to_vec(&array1::<f64>("log_r", log_r)?),
        beta,
        log_z,
    };
    let user = UserResults {
        loss: to_vec(&array1::<f64>("loss", loss)?),
        grad_log_z,
        grad_log_q: match grad_log_q {
            Some(g) => Some(to_vec(&array2::<f64>("grad_log_q", g)?)),
            None => None,
        },
    };
    let c = py
        .detach(|| rtb_trustpcl::conventions::classify(&batch, &user, tol))
        .map_err(|e| input_error(format!("classify: {e}")))?;
    json_text(&c)
}

fn lengths_vec(l: &PyReadonlyArray1<'_, i64>, steps: usize) -> PyResult<Vec<usize>> {
    TrajectoryBatch::<f64>::lengths_from_signed(&to_vec(l), steps).map_err(input_error)
}

/// Windows for the windowed kernels: start and end state indices, and the learned values at
/// them.
struct WindowArgs<F> {
    start: Vec<usize>,
    end: Vec<usize>,
    value_start: Vec<F>,
    value_end: Vec<F>,
}

/// The four window arguments as given: start, end, value at start, value at end.
type WindowObjects<'a, 'py> = (
    &'a Bound<'py, PyAny>,
    &'a Bound<'py, PyAny>,
    &'a Bound<'py, PyAny>,
    &'a Bound<'py, PyAny>,
);

#[allow(clippy::too_many_arguments)]
fn run_kernel<'py, F: Float + Element>(
    py: Python<'py>,
    name: &str,
    log_q: &Bound<'py, PyAny>,
    log_p: &Bound<'py, PyAny>,
    lengths: &Bound<'py, PyAny>,
    log_r: &Bound<'py, PyAny>,
    beta: f64,
    scalar: f64,
    windows: Option<WindowObjects<'_, 'py>>,
    dense: bool,
) -> PyResult<Bound<'py, PyDict>> {
    let q = array2::<F>("log_q", log_q)?;
    let p = array2::<F>("log_p", log_p)?;
    let (b, t) = (q.shape()[0], q.shape()[1]);
    if p.shape() != q.shape() {
        return Err(input_error(format!(
            "log_p has shape {:?}, expected {:?} (the shape of log_q)",
            p.shape(),
            q.shape()
        )));
    }
    let lengths = lengths_vec(&array1::<i64>("lengths", lengths)?, t)?;
    let r = array1::<F>("log_r", log_r)?;
    let w = match windows {
        None => None,
        Some((s, e, vs, ve)) => {
            let idx = |what: &str, ob| -> PyResult<Vec<usize>> {
                to_vec(&array1::<i64>(what, ob)?)
                    .into_iter()
                    .enumerate()
                    .map(|(i, x)| {
                        usize::try_from(x)
                            .map_err(|_| input_error(format!("{what}[{i}] = {x} is negative")))
                    })
                    .collect()
            };
            Some(WindowArgs {
                start: idx("window_start", s)?,
                end: idx("window_end", e)?,
                value_start: to_vec(&array1::<F>("value_start", vs)?),
                value_end: to_vec(&array1::<F>("value_end", ve)?),
            })
        }
    };
    let (qv, pv, rv) = (to_vec(&q), to_vec(&p), to_vec(&r));
    let form = if dense {
        GradForm::Dense
    } else {
        GradForm::PerTrajectory
    };
    let name = name.to_string();
    let out = py.detach(move || -> Result<_, String> {
        let batch = TrajectoryBatch::from_row_major(b, t, qv, pv, lengths, rv, F::from_f64(beta))
            .map_err(|e| e.to_string())?;
        let windows = match w {
            Some(w) => Some(
                Windows::new(
                    &batch,
                    w.start,
                    w.end,
                    DVector::from_vec(w.value_start),
                    DVector::from_vec(w.value_end),
                )
                .map_err(|e| e.to_string())?,
            ),
            None => None,
        };
        let s = F::from_f64(scalar);
        let need =
            |k: &str| format!("kernel {k} needs window_start, window_end, value_start, value_end");
        let kernel = match name.as_str() {
            "rtb" => Kernel::Rtb { log_z: s },
            "tpcl" => Kernel::Tpcl { v0: s },
            "tpcl-surrogate" => Kernel::TpclSurrogate { v0: s },
            "reinforce-kl" => Kernel::ReinforceKl,
            "flawed" => Kernel::Flawed { kappa: s },
            "tpcl-windowed" => Kernel::TpclWindowed {
                windows: windows.as_ref().ok_or_else(|| need("tpcl-windowed"))?,
            },
            "subtb" => Kernel::SubTb {
                windows: windows.as_ref().ok_or_else(|| need("subtb"))?,
            },
            other => {
                return Err(format!(
                    "unknown kernel {other:?} (one of rtb, tpcl, tpcl-windowed, subtb, \
                     tpcl-surrogate, reinforce-kl, flawed)"
                ))
            }
        };
        evaluate(&batch, &kernel, form).map_err(|e| e.to_string())
    });
    let out = out.map_err(input_error)?;
    let d = PyDict::new(py);
    d.set_item("kernel", out.kernel.name())?;
    d.set_item("loss", out.loss.to_f64())?;
    d.set_item(
        "residual",
        out.residual.data.as_vec().clone().into_pyarray(py),
    )?;
    d.set_item("g", out.g.data.as_vec().clone().into_pyarray(py))?;
    d.set_item("grad_scalar", out.grad_scalar.to_f64())?;
    if let Some(m) = out.dense {
        // Step-major T × B column-major is exactly row-major [B, T]: no copy, no transpose.
        let v: Vec<F> = m.data.into();
        d.set_item("dense", v.into_pyarray(py).reshape([b, t])?)?;
    }
    for (key, v) in [("grad_start", out.grad_start), ("grad_end", out.grad_end)] {
        if let Some(v) = v {
            let v: Vec<F> = v.data.into();
            d.set_item(key, v.into_pyarray(py))?;
        }
    }
    Ok(d)
}

/// One fused kernel (`rtb`, `tpcl`, `tpcl-windowed`, `subtb`, `tpcl-surrogate`,
/// `reinforce-kl`, `flawed`) on row-major `[B, T]` arrays of float32 or float64 (`log_p` and
/// `log_r` of the same type), lengths int64. `scalar` is `log Z` (rtb), `V(s0)` (tpcl,
/// surrogate) or κ (flawed). Returns a dict: `loss` (batch mean), `residual`, `g` (per
/// trajectory), `grad_scalar`, and `dense` (`[B, T]`) when asked for.
#[pyfunction]
#[pyo3(signature = (name, log_q, log_p, lengths, log_r, beta, scalar=0.0, dense=true, window_start=None, window_end=None, value_start=None, value_end=None))]
#[allow(clippy::too_many_arguments)]
fn kernel<'py>(
    py: Python<'py>,
    name: &str,
    log_q: &Bound<'py, PyAny>,
    log_p: &Bound<'py, PyAny>,
    lengths: &Bound<'py, PyAny>,
    log_r: &Bound<'py, PyAny>,
    beta: f64,
    scalar: f64,
    dense: bool,
    window_start: Option<Bound<'py, PyAny>>,
    window_end: Option<Bound<'py, PyAny>>,
    value_start: Option<Bound<'py, PyAny>>,
    value_end: Option<Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    let windows = match (&window_start, &window_end, &value_start, &value_end) {
        (Some(s), Some(e), Some(vs), Some(ve)) => Some((s, e, vs, ve)),
        (None, None, None, None) => None,
        _ => {
            return Err(input_error(
                "give all of window_start, window_end, value_start, value_end, or none",
            ))
        }
    };
    if log_q.extract::<PyReadonlyArray2<'py, f64>>().is_ok() {
        run_kernel::<f64>(
            py, name, log_q, log_p, lengths, log_r, beta, scalar, windows, dense,
        )
    } else if log_q.extract::<PyReadonlyArray2<'py, f32>>().is_ok() {
        run_kernel::<f32>(
            py, name, log_q, log_p, lengths, log_r, beta, scalar, windows, dense,
        )
    } else {
        Err(PyTypeError::new_err(format!(
            "log_q must be a 2-D numpy array of float32 or float64 (shape [B, T]), got {}",
            describe(log_q)
        )))
    }
}

/// The `verify --json` report on spec files or directories, as JSON text.
#[pyfunction]
#[pyo3(signature = (paths, mutant=None, max_trajectories=100_000, max_windows=200_000))]
fn verify(
    py: Python<'_>,
    paths: Vec<PathBuf>,
    mutant: Option<&str>,
    max_trajectories: u64,
    max_windows: u64,
) -> PyResult<String> {
    let args = VerifyArgs {
        paths,
        json: true,
        mutant: parse_mutant(mutant)?,
        max_trajectories,
        max_windows,
        ..VerifyArgs::default()
    };
    let report = py.detach(|| build_report(&args)).map_err(input_error)?;
    json_text(&report)
}

/// The `gradcheck --json` report (fused kernels at scale within derived rounding bounds), as
/// JSON text.
#[pyfunction]
#[pyo3(signature = (batch=4096, steps=64, dtype="f32", beta=1.5, seed=0, mutant=None, exact_spec=Vec::new(), exact_samples=256))]
#[allow(clippy::too_many_arguments)]
fn gradcheck(
    py: Python<'_>,
    batch: usize,
    steps: usize,
    dtype: &str,
    beta: f64,
    seed: u64,
    mutant: Option<&str>,
    exact_spec: Vec<PathBuf>,
    exact_samples: usize,
) -> PyResult<String> {
    let dtype = match dtype {
        "f32" | "float32" => Dtype::F32,
        "f64" | "float64" => Dtype::F64,
        other => {
            return Err(input_error(format!(
                "dtype: {other:?} is not one of f32, f64"
            )))
        }
    };
    if batch == 0 || steps == 0 || exact_samples == 0 {
        return Err(input_error(
            "batch, steps and exact_samples must be at least 1",
        ));
    }
    let cfg = GradcheckConfig {
        batch,
        steps,
        dtype,
        beta,
        seed,
        device: Device::Cpu,
        mutant: parse_mutant(mutant)?,
        progress: false,
        exact_specs: exact_spec,
        exact_samples,
    };
    let report = py
        .detach(|| run_checks(&cfg))
        .map_err(|e| input_error(format!("gradcheck: {e}")))?;
    json_text(&report)
}

/// The native module.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("InputError", m.py().get_type::<InputError>())?;
    m.add_function(wrap_pyfunction!(export_batch, m)?)?;
    m.add_function(wrap_pyfunction!(classify, m)?)?;
    m.add_function(wrap_pyfunction!(kernel, m)?)?;
    m.add_function(wrap_pyfunction!(verify, m)?)?;
    m.add_function(wrap_pyfunction!(gradcheck, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}

//! Reading and writing exported batches (and the user's results) as `.npz` (NumPy, via
//! `npyz` and `zip`) or JSON.
//!
//! Arrays (names shared by both formats): `log_q`, `log_p` `[B, T]` float64; `lengths` `[B]`
//! int64; `log_r` `[B]`; `beta`, `log_z` scalars (0-d). The user's results, in the same file or
//! in a separate one: `loss` (`[B]` per trajectory, or one value), optional `grad_log_z`
//! (scalar) and `grad_log_q` (`[B, T]`). On reading, float32 and integer arrays are accepted
//! and widened, `.npz` members may be stored or deflated (`np.savez`, `np.savez_compressed`).
use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::Path;

use npyz::WriterBuilder;
use serde_json::{json, Value};

use super::classify::{ExportedBatch, UserResults};

/// An array read from a file: its shape and its values widened to f64.
type Array = (Vec<u64>, Vec<f64>);

fn npy_bytes(shape: &[u64], data: &[f64]) -> std::io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    let mut w = npyz::WriteOptions::new()
        .default_dtype()
        .shape(shape)
        .writer(&mut buf)
        .begin_nd()?;
    w.extend(data.iter().copied())?;
    w.finish()?;
    Ok(buf)
}

fn npy_bytes_i64(shape: &[u64], data: &[i64]) -> std::io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    let mut w = npyz::WriteOptions::new()
        .default_dtype()
        .shape(shape)
        .writer(&mut buf)
        .begin_nd()?;
    w.extend(data.iter().copied())?;
    w.finish()?;
    Ok(buf)
}

fn parse_npy(bytes: &[u8]) -> Result<Array, String> {
    let err = |e: std::io::Error| e.to_string();
    let shape = npyz::NpyFile::new(bytes).map_err(err)?.shape().to_vec();
    macro_rules! try_as {
        ($t:ty) => {
            if let Ok(v) = npyz::NpyFile::new(bytes).map_err(err)?.into_vec::<$t>() {
                return Ok((shape, v.into_iter().map(|x| x as f64).collect()));
            }
        };
    }
    try_as!(f64);
    try_as!(f32);
    try_as!(i64);
    try_as!(i32);
    try_as!(u8);
    Err("unsupported dtype (want float64, float32 or an integer type)".into())
}

/// Writes the batch (and the results, if any) as `.npz` or JSON, by the file's extension.
pub fn write(path: &Path, batch: &ExportedBatch, user: Option<&UserResults>) -> Result<(), String> {
    let (b, t) = (batch.batch as u64, batch.steps as u64);
    let lengths: Vec<i64> = batch.lengths.iter().map(|&l| l as i64).collect();
    if is_npz(path) {
        let mut members: Vec<(&str, Vec<u8>)> = vec![
            ("log_q", npy_bytes(&[b, t], &batch.log_q)),
            ("log_p", npy_bytes(&[b, t], &batch.log_p)),
            ("lengths", npy_bytes_i64(&[b], &lengths)),
            ("log_r", npy_bytes(&[b], &batch.log_r)),
            ("beta", npy_bytes(&[], &[batch.beta])),
            ("log_z", npy_bytes(&[], &[batch.log_z])),
        ]
        .into_iter()
        .map(|(n, r)| r.map(|v| (n, v)))
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;
        if let Some(u) = user {
            let n = u.loss.len() as u64;
            members.push(("loss", npy_bytes(&[n], &u.loss).map_err(|e| e.to_string())?));
            if let Some(g) = u.grad_log_z {
                members.push((
                    "grad_log_z",
                    npy_bytes(&[], &[g]).map_err(|e| e.to_string())?,
                ));
            }
            if let Some(g) = &u.grad_log_q {
                members.push((
                    "grad_log_q",
                    npy_bytes(&[b, t], g).map_err(|e| e.to_string())?,
                ));
            }
        }
        let file = std::fs::File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut zip = zip::ZipWriter::new(file);
        let opts =
            zip::write::FileOptions::default().compression_method(zip::CompressionMethod::Stored);
        for (name, bytes) in members {
            zip.start_file(format!("{name}.npy"), opts)
                .map_err(|e| e.to_string())?;
            zip.write_all(&bytes).map_err(|e| e.to_string())?;
        }
        zip.finish().map_err(|e| e.to_string())?;
        Ok(())
    } else {
        let rows =
            |v: &[f64]| -> Vec<Vec<f64>> { v.chunks(batch.steps).map(<[f64]>::to_vec).collect() };
        let mut obj = json!({
            "batch": batch.batch,
            "steps": batch.steps,
            "log_q": rows(&batch.log_q),
            "log_p": rows(&batch.log_p),
            "lengths": lengths,
            "log_r": batch.log_r,
            "beta": batch.beta,
            "log_z": batch.log_z,
        });
        if let Some(u) = user {
            obj["loss"] = json!(u.loss);
            if let Some(g) = u.grad_log_z {
                obj["grad_log_z"] = json!(g);
            }
            if let Some(g) = &u.grad_log_q {
                obj["grad_log_q"] = json!(rows(g));
            }
        }
        let text = serde_json::to_string(&obj).map_err(|e| e.to_string())?;
        std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
    }
}

fn is_npz(path: &Path) -> bool {
    path.extension().and_then(|e| e.to_str()) == Some("npz")
}

/// Reads every array of a file (`.npz` or JSON).
fn read_arrays(path: &Path) -> Result<HashMap<String, Array>, String> {
    let ctx = |e: String| format!("{}: {e}", path.display());
    let mut out = HashMap::new();
    if is_npz(path) {
        let file = std::fs::File::open(path).map_err(|e| ctx(e.to_string()))?;
        let mut zip = zip::ZipArchive::new(file).map_err(|e| ctx(e.to_string()))?;
        for i in 0..zip.len() {
            let mut member = zip.by_index(i).map_err(|e| ctx(e.to_string()))?;
            let name = member.name().trim_end_matches(".npy").to_string();
            let mut bytes = Vec::new();
            member
                .read_to_end(&mut bytes)
                .map_err(|e| ctx(e.to_string()))?;
            let arr = parse_npy(&bytes).map_err(|e| ctx(format!("{name}: {e}")))?;
            out.insert(name, arr);
        }
    } else {
        let text = std::fs::read_to_string(path).map_err(|e| ctx(e.to_string()))?;
        let v: Value = serde_json::from_str(&text).map_err(|e| ctx(e.to_string()))?;
        let obj = v
            .as_object()
            .ok_or_else(|| ctx("not a JSON object".into()))?;
        for (name, val) in obj {
            if let Some(arr) = json_array(val) {
                out.insert(name.clone(), arr);
            }
        }
    }
    Ok(out)
}

/// A JSON number, list of numbers or list of equally long lists, as an array.
fn json_array(v: &Value) -> Option<Array> {
    if let Some(x) = v.as_f64() {
        return Some((vec![], vec![x]));
    }
    let list = v.as_array()?;
    if list.iter().all(Value::is_number) {
        let vals: Option<Vec<f64>> = list.iter().map(Value::as_f64).collect();
        return Some((vec![list.len() as u64], vals?));
    }
    let rows: Option<Vec<Vec<f64>>> = list
        .iter()
        .map(|r| r.as_array()?.iter().map(Value::as_f64).collect())
        .collect();
    let rows = rows?;
    let width = rows.first().map_or(0, Vec::len);
    if rows.iter().any(|r| r.len() != width) {
        return None;
    }
    Some((
        vec![rows.len() as u64, width as u64],
        rows.into_iter().flatten().collect(),
    ))
}

fn take(arrays: &HashMap<String, Array>, name: &str) -> Result<Array, String> {
    arrays
        .get(name)
        .cloned()
        .ok_or_else(|| format!("missing array `{name}`"))
}

fn scalar(arrays: &HashMap<String, Array>, name: &str) -> Result<f64, String> {
    let (_, v) = take(arrays, name)?;
    match v.as_slice() {
        [x] => Ok(*x),
        _ => Err(format!("`{name}` must hold one value, has {}", v.len())),
    }
}

/// Reads a batch, and the user's results if the file holds a `loss` array.
pub fn read(path: &Path) -> Result<(ExportedBatch, Option<UserResults>), String> {
    let arrays = read_arrays(path)?;
    let ctx = |e: String| format!("{}: {e}", path.display());
    let (shape, log_q) = take(&arrays, "log_q").map_err(ctx)?;
    let [b, t] = shape[..] else {
        return Err(ctx(format!("log_q must be [B, T], is {shape:?}")));
    };
    let (b, t) = (b as usize, t as usize);
    let (_, log_p) = take(&arrays, "log_p").map_err(ctx)?;
    let (_, lengths) = take(&arrays, "lengths").map_err(ctx)?;
    let lengths = lengths
        .iter()
        .map(|&l| {
            if l >= 0.0 && l.fract() == 0.0 && l <= t as f64 {
                Ok(l as usize)
            } else {
                Err(ctx(format!("length {l} outside 0..={t}")))
            }
        })
        .collect::<Result<_, _>>()?;
    let (_, log_r) = take(&arrays, "log_r").map_err(ctx)?;
    let batch = ExportedBatch {
        batch: b,
        steps: t,
        log_q,
        log_p,
        lengths,
        log_r,
        beta: scalar(&arrays, "beta").map_err(ctx)?,
        log_z: scalar(&arrays, "log_z").map_err(ctx)?,
    };
    batch.validate().map_err(ctx)?;
    let user = read_results_from(&arrays).map_err(ctx)?;
    Ok((batch, user))
}

fn read_results_from(arrays: &HashMap<String, Array>) -> Result<Option<UserResults>, String> {
    let Some((_, loss)) = arrays.get("loss").cloned() else {
        return Ok(None);
    };
    let grad_log_z = if arrays.contains_key("grad_log_z") {
        Some(scalar(arrays, "grad_log_z")?)
    } else {
        None
    };
    let grad_log_q = arrays.get("grad_log_q").map(|(_, v)| v.clone());
    Ok(Some(UserResults {
        loss,
        grad_log_z,
        grad_log_q,
    }))
}

/// Reads only the user's results (`loss`, optional `grad_log_z`, `grad_log_q`) from a file.
pub fn read_results(path: &Path) -> Result<UserResults, String> {
    let arrays = read_arrays(path)?;
    read_results_from(&arrays)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .ok_or_else(|| format!("{}: missing array `loss`", path.display()))
}

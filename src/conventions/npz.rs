//! Reading and writing exported batches (and the user's results) as `.npz` (NumPy, via
//! `npyz` and `zip`) or JSON.
//!
//! Arrays (names shared by both formats): `log_q`, `log_p` `[B, T]` float64; `lengths` `[B]`
//! int64; `log_r` `[B]`; `beta`, `log_z` scalars (0-d). The user's results, in the same file or
//! in a separate one: `loss` (`[B]` per trajectory, or one value), optional `grad_log_z`
//! (scalar) and `grad_log_q` (`[B, T]`). On reading, float32 and integer arrays are accepted
//! and widened, `.npz` members may be stored or deflated (`np.savez`, `np.savez_compressed`).
//!
//! Reading is defensive (docs/robustness.md): the file must be a regular file under a size
//! cap; every member's npy preamble is checked before `npyz` parses its header (header length
//! at most [`MAX_NPY_HEADER`], nesting bounded, one `shape`); the shape and dtype of every array
//! are checked against the batch (`log_q` fixes `B` and `T`) before its data is read, with
//! every product checked; exactly the declared number of data bytes is decompressed (so a zip
//! bomb stops at the declared size, and a member that ends early is reported as truncated);
//! duplicate or unknown members are refused; the user's results must be finite.
use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::path::Path;

use npyz::WriterBuilder;
use serde_json::{json, Value};

use super::classify::{ExportedBatch, UserResults};

use crate::input::{escape_controls, memory_cap, read_bounded, FileError, LimitError, Plan};

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

/// Why a batch file could not be written.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// Creating or writing the file failed.
    #[error("{}: {source}", escape_controls(.file))]
    Io {
        /// The file.
        file: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The zip container could not be written.
    #[error("{}: {source}", escape_controls(.file))]
    Zip {
        /// The file.
        file: String,
        /// The cause.
        source: zip::result::ZipError,
    },
    /// The JSON text could not be made.
    #[error("{}: {source}", escape_controls(.file))]
    Json {
        /// The file.
        file: String,
        /// The cause.
        source: serde_json::Error,
    },
}

/// Writes the batch (and the results, if any) as `.npz` or JSON, by the file's extension.
pub fn write(
    path: &Path,
    batch: &ExportedBatch,
    user: Option<&UserResults>,
) -> Result<(), WriteError> {
    let file = path.display().to_string();
    let io = |source: std::io::Error| WriteError::Io {
        file: file.clone(),
        source,
    };
    let zip_error = |source: zip::result::ZipError| WriteError::Zip {
        file: file.clone(),
        source,
    };
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
        .map_err(io)?;
        if let Some(u) = user {
            let n = u.loss.len() as u64;
            members.push(("loss", npy_bytes(&[n], &u.loss).map_err(io)?));
            if let Some(g) = u.grad_log_z {
                members.push(("grad_log_z", npy_bytes(&[], &[g]).map_err(io)?));
            }
            if let Some(g) = &u.grad_log_q {
                members.push(("grad_log_q", npy_bytes(&[b, t], g).map_err(io)?));
            }
        }
        let out = std::fs::File::create(path).map_err(io)?;
        let mut zip = zip::ZipWriter::new(out);
        let opts =
            zip::write::FileOptions::default().compression_method(zip::CompressionMethod::Stored);
        for (name, bytes) in members {
            zip.start_file(format!("{name}.npy"), opts)
                .map_err(zip_error)?;
            zip.write_all(&bytes).map_err(io)?;
        }
        zip.finish().map_err(zip_error)?;
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
        let text = serde_json::to_string(&obj).map_err(|source| WriteError::Json {
            file: file.clone(),
            source,
        })?;
        std::fs::write(path, text).map_err(io)
    }
}

fn is_npz(path: &Path) -> bool {
    path.extension().and_then(|e| e.to_str()) == Some("npz")
}

/// Largest npy header accepted: 64 KiB (NumPy itself refuses headers over 10,000 bytes unless
/// told otherwise; ours are under 128 bytes).
pub const MAX_NPY_HEADER: usize = 65_536;

/// Deepest bracket nesting accepted in an npy header (a plain dtype needs 2).
pub const MAX_NPY_HEADER_NESTING: usize = 8;

/// Most array data a batch (or results) file may declare, counted as f64 values: 512 MiB
/// (2²⁶ values, e.g. `log_q`, `log_p` and `grad_log_q` of B = 2¹⁹, T = 32 would not fit, B = 2¹⁸
/// would). The detector needs a few thousand trajectories, not millions; the cap keeps a
/// `classify` run, arrays and working copies together, well under 1.5 GB whatever a file
/// declares, and decompression stops at the declared size (zip bombs).
pub const MAX_BATCH_DATA_BYTES: u64 = 512 << 20;

/// Largest JSON batch read: 64 MiB (about 3 million numbers; parsed JSON takes several times
/// its size in memory, so larger batches should be `.npz`).
pub const MAX_JSON_BYTES: u64 = 64 << 20;

/// Why a batch or results file was refused. Every message names the file, and the array
/// (member) and the value where there is one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchFileError {
    /// Not a readable regular file of bounded size.
    #[error(transparent)]
    File(#[from] FileError),
    /// The container itself (zip, JSON) is malformed.
    #[error("{}: {}", escape_controls(.file), escape_controls(.message))]
    Format {
        /// The file.
        file: String,
        /// What is wrong.
        message: String,
    },
    /// One array (npz member or JSON key) is malformed, of the wrong dtype or shape,
    /// truncated, or holds a bad value.
    #[error("{}: `{}`: {}", escape_controls(.file), escape_controls(.array), escape_controls(.message))]
    Array {
        /// The file.
        file: String,
        /// The array.
        array: String,
        /// What is wrong.
        message: String,
    },
    /// A size or memory limit.
    #[error("{}: {source}", escape_controls(.file))]
    Limit {
        /// The file.
        file: String,
        /// The limit.
        source: LimitError,
    },
}

/// An array read from a file: its shape and its values widened to f64 (row-major).
#[derive(Debug, Clone, PartialEq)]
struct Array {
    shape: Vec<u64>,
    values: Vec<f64>,
}

/// The shape an array must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Want {
    /// `[B, T]`.
    Matrix,
    /// `[B]`.
    Vector,
    /// 0-d.
    Scalar,
    /// `[B]` (per trajectory) or 0-d (reduced).
    Loss,
}

/// Every array a file may hold, and its shape.
const MEMBERS: [(&str, Want); 11] = [
    ("log_q", Want::Matrix),
    ("log_p", Want::Matrix),
    ("lengths", Want::Vector),
    ("log_r", Want::Vector),
    ("beta", Want::Scalar),
    ("log_z", Want::Scalar),
    ("loss", Want::Loss),
    ("grad_log_z", Want::Scalar),
    ("grad_log_q", Want::Matrix),
    // JSON only (written by `write`): B and T.
    ("batch", Want::Scalar),
    ("steps", Want::Scalar),
];

fn want_of(name: &str) -> Option<Want> {
    MEMBERS.iter().find(|(n, _)| *n == name).map(|&(_, w)| w)
}

fn known_names() -> String {
    MEMBERS.map(|(n, _)| n).join(", ")
}

fn show_shape(shape: &[u64]) -> String {
    format!(
        "[{}]",
        shape
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// Reading state: the file, `[B, T]` once known, and the memory spent so far.
struct Reader {
    file: String,
    dims: Option<(u64, u64)>,
    plan: Plan,
}

impl Reader {
    fn new(path: &Path, dims: Option<(u64, u64)>) -> Self {
        let file = path.display().to_string();
        Self {
            plan: Plan::new(&format!("reading {file}")),
            file,
            dims,
        }
    }

    fn array(&self, array: &str, message: impl Into<String>) -> BatchFileError {
        BatchFileError::Array {
            file: self.file.clone(),
            array: array.to_string(),
            message: message.into(),
        }
    }

    fn limit(&self, source: LimitError) -> BatchFileError {
        BatchFileError::Limit {
            file: self.file.clone(),
            source,
        }
    }

    /// Checks a shape against what `name` must be, fixing `[B, T]` on the first matrix.
    fn check_shape(&mut self, name: &str, shape: &[u64]) -> Result<(), BatchFileError> {
        let want = want_of(name).ok_or_else(|| self.array(name, "not a known array"))?;
        let bad = |expected: String| {
            self.array(
                name,
                format!("shape {} but expected {expected}", show_shape(shape)),
            )
        };
        match want {
            Want::Scalar => {
                if !shape.is_empty() {
                    return Err(bad("a 0-d scalar []".into()));
                }
            }
            Want::Matrix => {
                let [b, t] = shape[..] else {
                    return Err(bad(match self.dims {
                        Some((b, t)) => format!("[B, T] = [{b}, {t}]"),
                        None => "[B, T]".into(),
                    }));
                };
                match self.dims {
                    None => {
                        if b == 0 || t == 0 {
                            return Err(bad("[B, T] with B, T ≥ 1".into()));
                        }
                        self.dims = Some((b, t));
                    }
                    Some((eb, et)) if (b, t) != (eb, et) => {
                        let transposed = (b, t) == (et, eb);
                        return Err(self.array(
                            name,
                            format!(
                                "shape {} but expected [B, T] = [{eb}, {et}]{}",
                                show_shape(shape),
                                if transposed {
                                    " (transposed? arrays are [B, T], one row per trajectory)"
                                } else {
                                    ""
                                }
                            ),
                        ));
                    }
                    Some(_) => {}
                }
            }
            Want::Vector | Want::Loss => {
                let scalar_ok = want == Want::Loss && shape.is_empty();
                let b = self.dims.map(|(b, _)| b);
                let ok = scalar_ok
                    || match (shape, b) {
                        ([n], Some(b)) => *n == b,
                        ([_], None) => true,
                        _ => false,
                    };
                if !ok {
                    let vector = match b {
                        Some(b) => format!("[B] = [{b}]"),
                        None => "[B]".into(),
                    };
                    return Err(bad(if want == Want::Loss {
                        format!("{vector} (per trajectory) or a 0-d scalar [] (reduced)")
                    } else {
                        vector
                    }));
                }
            }
        }
        Ok(())
    }

    /// Accounts for `count` values (decoded to f64) before they are read: the total over the
    /// file must stay under [`MAX_BATCH_DATA_BYTES`] (and the memory cap).
    fn reserve(&mut self, name: &str, count: u64) -> Result<(), BatchFileError> {
        let label = format!("`{name}`");
        if let Err(e) = self.plan.add(&label, count, 8) {
            return Err(self.limit(e));
        }
        let system = memory_cap();
        let cap = crate::input::MemoryCap {
            bytes: system.bytes.min(MAX_BATCH_DATA_BYTES),
            source: format!(
                "at most {} of array data in a batch file: classify a sub-batch",
                crate::input::human_bytes(MAX_BATCH_DATA_BYTES)
            ),
        };
        self.plan.check(&cap, "").map_err(|e| self.limit(e))
    }
}

/// The shape declared in an npy header dict, read without evaluating anything: exactly one
/// `'shape'` key, a tuple of non-negative integers.
fn header_shape(header: &str) -> Result<Vec<u64>, String> {
    let keys = header.matches("'shape'").count() + header.matches("\"shape\"").count();
    if keys != 1 {
        return Err(format!("the header names `shape` {keys} times (want once)"));
    }
    let at = header
        .find("'shape'")
        .or_else(|| header.find("\"shape\""))
        .map_or(0, |i| i + 7);
    let rest = header[at..].trim_start();
    let rest = rest
        .strip_prefix(':')
        .ok_or("`shape` is not followed by `:`")?
        .trim_start();
    let rest = rest.strip_prefix('(').ok_or("`shape` is not a tuple")?;
    let end = rest.find(')').ok_or("`shape` tuple is not closed")?;
    let mut shape = Vec::new();
    for part in rest[..end].split(',') {
        let part = part.trim();
        let part = part.strip_suffix('L').unwrap_or(part);
        if part.is_empty() {
            continue;
        }
        if part.len() > 20 || !part.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!(
                "`shape` holds {}, not a non-negative integer",
                crate::exact::quote(part)
            ));
        }
        shape.push(
            part.parse::<u64>()
                .map_err(|_| format!("`shape` entry {part} does not fit in 64 bits"))?,
        );
    }
    if shape.len() > 8 {
        return Err(format!("`shape` has {} dimensions", shape.len()));
    }
    Ok(shape)
}

fn nesting(text: &str) -> usize {
    let (mut depth, mut max) = (0usize, 0usize);
    for c in text.chars() {
        match c {
            '(' | '[' | '{' => {
                depth += 1;
                max = max.max(depth);
            }
            ')' | ']' | '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

/// Reads one npy array from `r` (an npz member), checked against what `name` must be.
fn read_npy(reader: &mut Reader, name: &str, r: &mut dyn Read) -> Result<Array, BatchFileError> {
    let truncated = |what: &str| format!("truncated: the member ends inside the {what}");
    let mut pre = [0u8; 12];
    r.read_exact(&mut pre[..10]).map_err(|e| {
        reader.array(
            name,
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                truncated("npy preamble (not an npy array?)")
            } else {
                e.to_string()
            },
        )
    })?;
    if &pre[..6] != b"\x93NUMPY" {
        return Err(reader.array(name, "not an npy array (no \\x93NUMPY magic)"));
    }
    let (start, header_len) = match pre[6] {
        1 => (10, u16::from_le_bytes([pre[8], pre[9]]) as usize),
        2 | 3 => {
            r.read_exact(&mut pre[10..12])
                .map_err(|_| reader.array(name, truncated("npy preamble")))?;
            (
                12,
                u32::from_le_bytes([pre[8], pre[9], pre[10], pre[11]]) as usize,
            )
        }
        v => return Err(reader.array(name, format!("npy format version {v} is not supported"))),
    };
    if header_len > MAX_NPY_HEADER {
        return Err(reader.array(
            name,
            format!(
                "the npy header declares {header_len} bytes, over the limit of {MAX_NPY_HEADER}"
            ),
        ));
    }
    let mut head = pre[..start].to_vec();
    head.resize(start + header_len, 0);
    r.read_exact(&mut head[start..])
        .map_err(|_| reader.array(name, truncated("npy header")))?;
    let text = std::str::from_utf8(&head[start..])
        .map_err(|_| reader.array(name, "the npy header is not UTF-8"))?;
    if nesting(text) > MAX_NPY_HEADER_NESTING {
        return Err(reader.array(name, "the npy header is nested too deeply"));
    }
    let shape = header_shape(text).map_err(|m| reader.array(name, m))?;
    reader.check_shape(name, &shape)?;
    // The product of the dimensions (and of the non-zero ones: npyz computes strides from
    // them), checked before npyz sees the header.
    let factors: Vec<(&str, u64)> = shape.iter().map(|&d| ("dimension", d)).collect();
    let count = crate::input::product(name, &factors).map_err(|e| reader.limit(e))?;
    let nonzero: Vec<(&str, u64)> = shape.iter().map(|&d| ("dimension", d.max(1))).collect();
    crate::input::product(name, &nonzero).map_err(|e| reader.limit(e))?;
    let npy = npyz::NpyFile::new(std::io::Cursor::new(&head[..])).map_err(|e| {
        // The parser's message quotes the header over several lines: keep its gist.
        let text = e.to_string();
        let gist: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| l.starts_with('=') || l.starts_with("could not"))
            .collect();
        reader.array(name, format!("bad npy header: {}", gist.join(" ")))
    })?;
    let header = npy.header().clone();
    if header.shape() != &shape[..] {
        return Err(reader.array(name, "ambiguous npy header (shape read two ways)"));
    }
    let npyz::DType::Plain(ty) = header.dtype() else {
        return Err(reader.array(
            name,
            format!(
                "dtype {} is a structured or sub-array dtype; want float64, float32 or an integer type",
                crate::exact::quote(&header.dtype().descr())
            ),
        ));
    };
    use npyz::TypeChar;
    let size = ty.size_field();
    let supported = match ty.type_char() {
        TypeChar::Float => matches!(size, 4 | 8),
        TypeChar::Int | TypeChar::Uint => matches!(size, 1 | 2 | 4 | 8),
        _ => false,
    };
    if !supported || header.uses_pickled_array() {
        return Err(reader.array(
            name,
            format!(
                "unsupported dtype {} (want float64, float32 or an integer type)",
                crate::exact::quote(&ty.to_string())
            ),
        ));
    }
    reader.reserve(name, count)?;
    let bytes = crate::input::product(name, &[("values", count), ("bytes each", size)])
        .map_err(|e| reader.limit(e))?;
    // Decoded as it is decompressed (no copy of the raw bytes), never past the declared size.
    let mut values: Vec<f64> = Vec::with_capacity(count as usize);
    {
        let mut limited = std::io::BufReader::new((&mut *r).take(bytes));
        let file = npyz::NpyFile::with_header(header.clone(), &mut limited);
        let mut pull = |item: std::io::Result<f64>| -> Result<(), BatchFileError> {
            match item {
                Ok(x) => {
                    values.push(x);
                    Ok(())
                }
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Err(reader.array(
                    name,
                    format!(
                        "truncated: the header declares {count} values ({bytes} bytes of data), the member ends after {} whole values",
                        values.len()
                    ),
                )),
                Err(e) => Err(reader.array(name, format!("cannot read the data: {e}"))),
            }
        };
        let bad_dtype =
            |e: npyz::DTypeError| reader.array(name, format!("cannot decode the data: {e}"));
        macro_rules! decode {
            ($t:ty) => {
                for item in file.data::<$t>().map_err(bad_dtype)? {
                    pull(item.map(|x| x as f64))?;
                }
            };
        }
        match (ty.type_char(), size) {
            (TypeChar::Float, 8) => decode!(f64),
            (TypeChar::Float, _) => decode!(f32),
            (TypeChar::Int, 8) => decode!(i64),
            (TypeChar::Int, 4) => decode!(i32),
            (TypeChar::Int, 2) => decode!(i16),
            (TypeChar::Int, _) => decode!(i8),
            (TypeChar::Uint, 8) => decode!(u64),
            (TypeChar::Uint, 4) => decode!(u32),
            (TypeChar::Uint, 2) => decode!(u16),
            (_, _) => decode!(u8),
        }
    }
    let mut extra = [0u8; 1];
    match r.read(&mut extra) {
        Ok(0) => {}
        Ok(_) => {
            return Err(reader.array(
                name,
                format!("{bytes} bytes of data are declared, but more follow"),
            ))
        }
        Err(e) => return Err(reader.array(name, format!("corrupt member: {e}"))),
    }
    if values.len() as u64 != count {
        return Err(reader.array(name, "the data does not match the declared shape"));
    }
    if header.order() == npyz::Order::Fortran && shape.len() == 2 {
        // Column-major on disk (`np.save` of a transposed view): back to row-major.
        let (b, t) = (shape[0] as usize, shape[1] as usize);
        let mut row_major = vec![0.0; values.len()];
        for i in 0..b {
            for k in 0..t {
                row_major[i * t + k] = values[k * b + i];
            }
        }
        values = row_major;
    }
    Ok(Array { shape, values })
}

/// Which arrays a file is read for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// The batch, and the user's results if present.
    Batch,
    /// Only the user's results (batch arrays in the file are skipped).
    Results,
}

fn is_result(name: &str) -> bool {
    matches!(name, "loss" | "grad_log_z" | "grad_log_q")
}

fn read_npz_arrays(
    path: &Path,
    reader: &mut Reader,
    role: Role,
) -> Result<HashMap<String, Array>, BatchFileError> {
    let cap = memory_cap();
    let file = crate::input::open_regular(path, cap.bytes, "an .npz batch")?;
    let label = reader.file.clone();
    let format = |message: String| BatchFileError::Format {
        file: label.clone(),
        message,
    };
    let mut zip = zip::ZipArchive::new(file)
        .map_err(|e| format(format!("not a readable .npz (zip) file: {e}")))?;
    // Names first (no decompression): unknown or duplicate members are refused.
    let mut names = Vec::with_capacity(zip.len());
    let mut seen = HashSet::new();
    for i in 0..zip.len() {
        let member = zip
            .by_index_raw(i)
            .map_err(|e| format(format!("member #{i}: {e}")))?;
        let raw = member.name().to_string();
        let Some(name) = raw.strip_suffix(".npy").filter(|n| want_of(n).is_some()) else {
            return Err(format(format!(
                "unknown member {} (known: {}, each as NAME.npy)",
                crate::exact::quote(&raw),
                known_names()
            )));
        };
        if !seen.insert(name.to_string()) {
            return Err(format(format!(
                "duplicate member `{name}.npy` (refused: which one is meant?)"
            )));
        }
        names.push((i, name.to_string()));
    }
    // `log_q` first: it fixes B and T for every other array.
    names.sort_by_key(|(_, n)| n != "log_q");
    let mut out = HashMap::new();
    for (i, name) in names {
        if role == Role::Results && !is_result(&name) {
            continue;
        }
        let mut member = zip
            .by_index(i)
            .map_err(|e| format(format!("member `{name}.npy`: {e}")))?;
        let array = read_npy(reader, &name, &mut member)?;
        out.insert(name, array);
    }
    Ok(out)
}

/// A JSON object's members in file order, duplicates kept (so they can be refused).
struct Members(Vec<(String, Value)>);

impl<'de> serde::Deserialize<'de> for Members {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Members;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Members, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, Value>()? {
                    out.push((k, v));
                }
                Ok(Members(out))
            }
        }
        d.deserialize_map(Visit)
    }
}

/// A JSON number, list of numbers or list of equally long lists of numbers, as an array.
fn json_array(reader: &Reader, name: &str, v: &Value) -> Result<Array, BatchFileError> {
    let number = |x: &Value, at: String| {
        x.as_f64().ok_or_else(|| {
            let kind = match x {
                Value::Null => "null",
                Value::Bool(_) => "a boolean",
                Value::String(_) => "a string",
                Value::Array(_) => "a list (nested deeper than [B, T])",
                Value::Object(_) => "an object",
                Value::Number(_) => "a number out of range",
            };
            reader.array(name, format!("{at} is {kind}, not a number"))
        })
    };
    match v {
        Value::Array(list) if list.iter().any(Value::is_array) => {
            let mut values = Vec::new();
            let width = match list.first() {
                Some(Value::Array(r)) => r.len(),
                _ => 0,
            };
            for (i, row) in list.iter().enumerate() {
                let Value::Array(row) = row else {
                    return Err(reader.array(name, format!("row {i} is not a list")));
                };
                if row.len() != width {
                    return Err(reader.array(
                        name,
                        format!("row {i} has {} entries, row 0 has {width}", row.len()),
                    ));
                }
                for (k, x) in row.iter().enumerate() {
                    values.push(number(x, format!("entry [{i}, {k}]"))?);
                }
            }
            Ok(Array {
                shape: vec![list.len() as u64, width as u64],
                values,
            })
        }
        Value::Array(list) => Ok(Array {
            shape: vec![list.len() as u64],
            values: list
                .iter()
                .enumerate()
                .map(|(i, x)| number(x, format!("entry [{i}]")))
                .collect::<Result<_, _>>()?,
        }),
        other => Ok(Array {
            shape: vec![],
            values: vec![number(other, "the value".into())?],
        }),
    }
}

fn read_json_arrays(
    path: &Path,
    reader: &mut Reader,
    role: Role,
) -> Result<HashMap<String, Array>, BatchFileError> {
    let bytes = read_bounded(path, MAX_JSON_BYTES, "a JSON batch")?;
    let label = reader.file.clone();
    let format = |message: String| BatchFileError::Format {
        file: label.clone(),
        message,
    };
    let Members(members) = serde_json::from_slice(&bytes)
        .map_err(|e| format(format!("not a JSON object of arrays: {e}")))?;
    drop(bytes);
    let mut seen = HashSet::new();
    for (name, _) in &members {
        if want_of(name).is_none() {
            return Err(format(format!(
                "unknown key {} (known: {})",
                crate::exact::quote(name),
                known_names()
            )));
        }
        if !seen.insert(name.clone()) {
            return Err(format(format!(
                "duplicate key `{name}` (refused: which one is meant?)"
            )));
        }
    }
    let mut members = members;
    members.sort_by_key(|(n, _)| n != "log_q");
    let mut out = HashMap::new();
    for (name, value) in members {
        if role == Role::Results && !is_result(&name) {
            continue;
        }
        let array = json_array(reader, &name, &value)?;
        reader.check_shape(&name, &array.shape)?;
        out.insert(name, array);
    }
    // `batch` and `steps`, when given, must agree with the arrays.
    for (name, index) in [("batch", 0), ("steps", 1)] {
        if let (Some(a), Some((b, t))) = (out.get(name), reader.dims) {
            let want = [b, t][index] as f64;
            if a.values[0] != want {
                return Err(reader.array(
                    name,
                    format!("is {} but `log_q` is [{b}, {t}]", a.values[0]),
                ));
            }
        }
    }
    Ok(out)
}

/// Reads every array of a file (`.npz` or JSON) for `role`, `[B, T]` fixed by `dims` when
/// known.
fn read_arrays(
    path: &Path,
    dims: Option<(u64, u64)>,
    role: Role,
) -> Result<(HashMap<String, Array>, Reader), BatchFileError> {
    let mut reader = Reader::new(path, dims);
    let arrays = if is_npz(path) {
        read_npz_arrays(path, &mut reader, role)?
    } else {
        read_json_arrays(path, &mut reader, role)?
    };
    Ok((arrays, reader))
}

fn take(
    reader: &Reader,
    arrays: &mut HashMap<String, Array>,
    name: &str,
) -> Result<Array, BatchFileError> {
    arrays
        .remove(name)
        .ok_or_else(|| reader.array(name, "missing array"))
}

/// Reads a batch, and the user's results if the file holds a `loss` array.
pub fn read(path: &Path) -> Result<(ExportedBatch, Option<UserResults>), BatchFileError> {
    let (mut arrays, reader) = read_arrays(path, None, Role::Batch)?;
    let log_q = take(&reader, &mut arrays, "log_q")?;
    let (b, t) = (log_q.shape[0] as usize, log_q.shape[1] as usize);
    let log_p = take(&reader, &mut arrays, "log_p")?;
    let lengths = take(&reader, &mut arrays, "lengths")?
        .values
        .iter()
        .enumerate()
        .map(|(i, &l)| {
            if l >= 1.0 && l.fract() == 0.0 && l <= t as f64 {
                Ok(l as usize)
            } else {
                Err(reader.array(
                    "lengths",
                    format!("entry [{i}] = {l} is not an integer in 1..={t}"),
                ))
            }
        })
        .collect::<Result<_, _>>()?;
    let log_r = take(&reader, &mut arrays, "log_r")?;
    let beta = take(&reader, &mut arrays, "beta")?.values[0];
    let log_z = take(&reader, &mut arrays, "log_z")?.values[0];
    let batch = ExportedBatch {
        batch: b,
        steps: t,
        log_q: log_q.values,
        log_p: log_p.values,
        lengths,
        log_r: log_r.values,
        beta,
        log_z,
    };
    batch.validate().map_err(|e| BatchFileError::Format {
        file: reader.file.clone(),
        message: e.to_string(),
    })?;
    let user = results_from(&reader, arrays)?;
    Ok((batch, user))
}

/// The user's results among the arrays, every value finite.
fn results_from(
    reader: &Reader,
    mut arrays: HashMap<String, Array>,
) -> Result<Option<UserResults>, BatchFileError> {
    let Some(loss) = arrays.remove("loss") else {
        if let Some(name) = ["grad_log_z", "grad_log_q"]
            .into_iter()
            .find(|n| arrays.contains_key(*n))
        {
            return Err(reader.array(name, "given without a `loss` array"));
        }
        return Ok(None);
    };
    let grad_log_z = arrays.remove("grad_log_z");
    let grad_log_q = arrays.remove("grad_log_q");
    for (name, array) in [
        ("loss", Some(&loss)),
        ("grad_log_z", grad_log_z.as_ref()),
        ("grad_log_q", grad_log_q.as_ref()),
    ] {
        let Some(array) = array else { continue };
        if let Some(j) = array.values.iter().position(|x| !x.is_finite()) {
            let at = match array.shape[..] {
                [_, t] => format!("[{}, {}]", j as u64 / t, j as u64 % t),
                [_] => format!("[{j}]"),
                _ => String::new(),
            };
            return Err(reader.array(
                name,
                format!(
                    "non-finite value {}{} in the user's results (a NaN or infinity cannot be classified)",
                    array.values[j],
                    if at.is_empty() { String::new() } else { format!(" at {at}") }
                ),
            ));
        }
    }
    Ok(Some(UserResults {
        loss: loss.values,
        grad_log_z: grad_log_z.map(|a| a.values[0]),
        grad_log_q: grad_log_q.map(|a| a.values),
    }))
}

/// Reads only the user's results (`loss`, optional `grad_log_z`, `grad_log_q`) from a file,
/// without a batch to check their shapes against (`grad_log_q` must still be 2-D, `loss`
/// `[B]` or 0-d). Prefer [`read_results_for`].
pub fn read_results(path: &Path) -> Result<UserResults, BatchFileError> {
    let (arrays, reader) = read_arrays(path, None, Role::Results)?;
    if let (Some(loss), Some(g)) = (arrays.get("loss"), arrays.get("grad_log_q")) {
        if loss.shape.len() == 1 && loss.shape[0] != g.shape[0] {
            return Err(reader.array(
                "grad_log_q",
                format!(
                    "shape {} but `loss` has {} entries",
                    show_shape(&g.shape),
                    loss.shape[0]
                ),
            ));
        }
    }
    results_from(&reader, arrays)?.ok_or_else(|| reader.array("loss", "missing array"))
}

/// Reads only the user's results from a file, every shape checked against `batch`
/// (`grad_log_q` `[B, T]`, `loss` `[B]` or 0-d); batch arrays in the file are skipped.
pub fn read_results_for(path: &Path, batch: &ExportedBatch) -> Result<UserResults, BatchFileError> {
    let dims = Some((batch.batch as u64, batch.steps as u64));
    let (arrays, reader) = read_arrays(path, dims, Role::Results)?;
    results_from(&reader, arrays)?.ok_or_else(|| reader.array("loss", "missing array"))
}

//! Every class of bad input in issue 13, end to end through the binary: each gets exit 2 and a
//! message naming the argument, file, array or value (or, for a legitimate input, an answer),
//! under an address-space limit of 1.5 GiB (`ulimit -v`), never a panic (exit 101) or an abort
//! (exit 134). A run still going after [`HANG_GUARD`] is killed and fails the test: that is a
//! guard against hangs (a FIFO that blocks), not a speed assertion; the times of these cases
//! are measured in docs/robustness.md. docs/robustness.md lists the classes and the campaign
//! that fuzzes them.
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rtb_trustpcl::cli::export_batch::{make_batch, ExportBatchArgs};
use rtb_trustpcl::conventions::{npz, ExportedBatch, UserResults};

const BIN: &str = env!("CARGO_BIN_EXE_rtb-trustpcl");

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rtb-bad-input-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A run still going after this long is a hang (generous: the machine may be loaded).
const HANG_GUARD: Duration = Duration::from_secs(90);

/// Runs the binary under `ulimit -v` 1.5 GiB, killed after [`HANG_GUARD`]; returns (exit
/// code, stderr).
fn run(args: &[&str]) -> (Option<i32>, String) {
    let mut script = String::from("ulimit -v 1572864; exec \"$0\"");
    for i in 1..=args.len() {
        script.push_str(&format!(" \"${i}\""));
    }
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg(BIN)
        .args(args)
        .current_dir(root())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            use std::io::Read;
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            return (status.code(), err);
        }
        if start.elapsed() > HANG_GUARD {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{args:?} still running after {HANG_GUARD:?}: a hang");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Exit 2, the message contains `needle`, and no raw escape character reached stderr.
fn refused(args: &[&str], needle: &str) {
    let (code, err) = run(args);
    assert_eq!(code, Some(2), "{args:?}: exit {code:?}: {err}");
    assert!(err.contains(needle), "{args:?}: `{needle}` not in: {err}");
    assert!(!err.contains('\u{1b}'), "{args:?}: raw ESC in: {err:?}");
    assert!(!err.contains("panicked"), "{args:?}: {err}");
}

#[test]
fn size_arguments_that_used_to_panic_or_abort_are_refused() {
    let max = "18446744073709551615";
    let out = std::env::temp_dir().join("rtb-never-written.npz");
    let out = out.to_str().unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["export-batch", "--out", out, "--steps", "0"],
            "--steps = 0",
        ),
        (
            vec!["export-batch", "--out", out, "--batch", "0"],
            "--batch = 0",
        ),
        (
            vec!["gradcheck", "--batch", max, "--steps", "2"],
            "overflows",
        ),
        (vec!["bench", "--batch", max, "--steps", "2"], "overflows"),
        (
            vec!["export-batch", "--out", out, "--batch", max, "--steps", "2"],
            "overflows",
        ),
        (
            vec!["gradcheck", "--batch", "1000000000000"],
            "at most --batch",
        ),
        (vec!["gradcheck", "--steps", "1000000000"], "would allocate"),
        (
            vec!["gradcheck", "--exact-samples", "1000000000000"],
            "--exact-samples",
        ),
        (
            vec![
                "gradcheck",
                "--spec",
                "spec/chain.toml",
                "--samples",
                "1000000000000",
            ],
            "at most --samples",
        ),
        (vec!["bench", "--batch", "1000000000000"], "would allocate"),
        (vec!["bench", "--steps", "1000000000000"], "would allocate"),
        (vec!["bench", "--repeats", "1000000000000"], "--repeats"),
        (vec!["bench", "--repeats", "0"], "--repeats"),
        (
            vec!["export-batch", "--out", out, "--batch", "1000000000000"],
            "--batch × --steps",
        ),
        (
            vec!["export-batch", "--out", out, "--steps", "1000000000"],
            "--batch × --steps",
        ),
        (
            vec!["export-batch", "--out", "x.json", "--batch", "1000000"],
            "write .npz",
        ),
        (
            vec!["export-batch", "--out", out, "--beta", "nan"],
            "--beta",
        ),
        (vec!["generate", "--width", "1000000000"], "--width"),
        (vec!["generate", "--fan-out", "1000000000"], "--fan-out"),
        (
            vec!["generate", "--layers", "1000", "--width", "1000"],
            "edges",
        ),
        (vec!["generate", "--skip-percent", "101"], "--skip-percent"),
        (vec!["generate", "--beta", "+-2.5"], "--beta"),
        (
            vec!["verify", "--max-trajectories", max, "spec/chain.toml"],
            "--max-trajectories",
        ),
        (
            vec!["verify", "--max-windows", max, "spec/chain.toml"],
            "--max-windows",
        ),
        (vec!["gradcheck", "--beta", "1e-300"], "1e-300"),
        (vec!["gradcheck", "--beta", "1e300"], "1e300"),
        (vec!["gradcheck", "--beta", "inf"], "--beta"),
        (vec!["gradcheck", "--beta", "0"], "--beta"),
        (
            vec!["gradcheck", "--spec", "spec/chain.toml", "--samples", "1"],
            "--samples",
        ),
        (
            vec![
                "gradcheck",
                "--spec",
                "spec/chain.toml",
                "--family-error",
                "1",
            ],
            "--family-error",
        ),
    ];
    for (args, needle) in cases {
        refused(&args, needle);
    }
    assert!(!Path::new(out).exists(), "nothing was written");
}

#[test]
fn a_beta_that_rounds_to_zero_in_f32_is_named_as_given() {
    let (code, err) = run(&["gradcheck", "--beta", "1e-300", "--no-exact"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("1e-300") && !err.contains("got 0"), "{err}");
}

/// A chain of `n` states (every prior 1): legitimate, with a longest path of `n` steps.
fn chain(n: usize) -> String {
    let mut s = String::from(
        "name = \"long-chain\"\nbeta = \"2\"\nsource = \"s0\"\n\n[rewards]\nx = \"3\"\n",
    );
    for i in 0..n {
        let to = if i + 1 == n {
            "x".to_string()
        } else {
            format!("s{}", i + 1)
        };
        s.push_str(&format!(
            "\n[[edge]]\nfrom = \"s{i}\"\nto = \"{to}\"\nprior = \"1\"\n"
        ));
    }
    s
}

#[test]
fn a_long_chain_is_refused_at_default_samples_and_answered_at_few() {
    let dir = scratch("chain");
    let spec = dir.join("chain2000.toml");
    std::fs::write(&spec, chain(2000)).unwrap();
    let spec = spec.to_str().unwrap();
    // 10⁶ samples × 2000 steps: refused before sampling, saying how many samples fit.
    refused(&["gradcheck", "--spec", spec], "at most --samples");
    // A legitimate size gets an answer.
    let (code, err) = run(&["gradcheck", "--spec", spec, "--samples", "1000"]);
    assert_eq!(code, Some(0), "{err}");
}

/// A DAG of `k` diamonds in a row: 2^k trajectories on 3k + 1 states.
fn diamonds(k: usize) -> String {
    let mut s = String::from("name = \"diamonds\"\nbeta = \"2\"\nsource = \"d0\"\n\n[rewards]\n");
    s.push_str(&format!("d{k} = \"2\"\n"));
    for i in 0..k {
        for side in ["a", "b"] {
            s.push_str(&format!(
                "\n[[edge]]\nfrom = \"d{i}\"\nto = \"{side}{i}\"\nprior = \"1/2\"\n\n[[edge]]\nfrom = \"{side}{i}\"\nto = \"d{}\"\nprior = \"1\"\n",
                i + 1
            ));
        }
    }
    s
}

#[test]
fn two_to_the_forty_paths_with_the_largest_limit_does_not_reserve_them() {
    let dir = scratch("diamonds");
    let spec = dir.join("diamonds.toml");
    std::fs::write(&spec, diamonds(40)).unwrap();
    let small = dir.join("diamonds-20.toml");
    std::fs::write(&small, diamonds(20)).unwrap();
    let spec = spec.to_str().unwrap();
    refused(
        &["verify", "--max-trajectories", "18446744073709551615", spec],
        "--max-trajectories",
    );
    // A limit that is accepted but smaller than the count (2^20 here): enumeration is refused
    // before it starts, nothing is reserved, and the structural checks answer.
    let (code, err) = run(&[
        "verify",
        "--max-trajectories",
        "1000000",
        "--max-windows",
        "1000",
        small.to_str().unwrap(),
    ]);
    assert!(
        err.contains("would be enumerated") || code == Some(0),
        "{err}"
    );
    assert!(code == Some(0) || code == Some(1), "exit {code:?}: {err}");
}

#[test]
fn special_files_are_refused_without_blocking() {
    refused(&["verify", "/dev/zero"], "not a regular file");
    refused(
        &["derive", "/dev/zero", "--claim", "C1"],
        "not a regular file",
    );
    refused(&["classify", "--batch", "/dev/zero"], "not a regular file");
    refused(&["classify", "--batch", "/dev/zero.npz"], "cannot read");
    let dir = scratch("fifo");
    let fifo = dir.join("spec.toml");
    let made = Command::new("mkfifo").arg(&fifo).status();
    if made.map(|s| s.success()).unwrap_or(false) {
        refused(&["verify", fifo.to_str().unwrap()], "a FIFO");
        let npz_fifo = dir.join("batch.npz");
        if Command::new("mkfifo")
            .arg(&npz_fifo)
            .status()
            .unwrap()
            .success()
        {
            refused(
                &["classify", "--batch", npz_fifo.to_str().unwrap()],
                "a FIFO",
            );
        }
    }
    refused(&["verify", "/"], "no spec files");
}

// ---- batch files ----------------------------------------------------------------------

fn small_batch() -> ExportedBatch {
    make_batch(&ExportBatchArgs {
        out: PathBuf::from("unused.npz"),
        seed: 3,
        batch: 5,
        steps: 4,
        beta: 1.5,
        log_z: 0.7,
    })
}

/// RTB's per-trajectory `½δ²` (batch mean) and its gradients: a convention that matches.
fn rtb_results(b: &ExportedBatch) -> UserResults {
    let d = b.log_ratio();
    let r: Vec<f64> = (0..b.batch)
        .map(|i| b.log_z + d[i] - b.beta * b.log_r[i])
        .collect();
    let n = b.batch as f64;
    let mut g = vec![0.0; b.batch * b.steps];
    for i in 0..b.batch {
        for k in 0..b.lengths[i] {
            g[i * b.steps + k] = r[i] / n;
        }
    }
    UserResults {
        loss: r.iter().map(|x| 0.5 * x * x).collect(),
        grad_log_z: Some(r.iter().sum::<f64>() / n),
        grad_log_q: Some(g),
    }
}

/// An npy member by hand: any dtype string, shape, order and raw data.
fn npy(descr: &str, shape: &[u64], fortran: bool, data: &[u8]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(u64::to_string).collect();
    let shape = match dims.len() {
        1 => format!("({},)", dims[0]),
        _ => format!("({})", dims.join(", ")),
    };
    let mut header = format!(
        "{{'descr': '{descr}', 'fortran_order': {}, 'shape': {shape}, }}",
        if fortran { "True" } else { "False" }
    );
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend((header.len() as u16).to_le_bytes());
    out.extend(header.as_bytes());
    out.extend(data);
    out
}

fn f8(values: &[f64]) -> Vec<u8> {
    values.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// The members of a valid batch (with results), as (name, npy bytes).
fn members(b: &ExportedBatch, u: &UserResults) -> Vec<(String, Vec<u8>)> {
    let (bb, t) = (b.batch as u64, b.steps as u64);
    let lengths: Vec<u8> = b
        .lengths
        .iter()
        .flat_map(|&l| (l as i64).to_le_bytes())
        .collect();
    vec![
        (
            "log_q.npy".into(),
            npy("<f8", &[bb, t], false, &f8(&b.log_q)),
        ),
        (
            "log_p.npy".into(),
            npy("<f8", &[bb, t], false, &f8(&b.log_p)),
        ),
        ("lengths.npy".into(), npy("<i8", &[bb], false, &lengths)),
        ("log_r.npy".into(), npy("<f8", &[bb], false, &f8(&b.log_r))),
        ("beta.npy".into(), npy("<f8", &[], false, &f8(&[b.beta]))),
        ("log_z.npy".into(), npy("<f8", &[], false, &f8(&[b.log_z]))),
        ("loss.npy".into(), npy("<f8", &[bb], false, &f8(&u.loss))),
        (
            "grad_log_z.npy".into(),
            npy("<f8", &[], false, &f8(&[u.grad_log_z.unwrap()])),
        ),
        (
            "grad_log_q.npy".into(),
            npy("<f8", &[bb, t], false, &f8(u.grad_log_q.as_ref().unwrap())),
        ),
    ]
}

fn write_npz(path: &Path, members: &[(String, Vec<u8>)], method: zip::CompressionMethod) {
    let file = std::fs::File::create(path).unwrap();
    let mut zip = zip::ZipWriter::new(file);
    let opts = zip::write::FileOptions::default().compression_method(method);
    for (name, bytes) in members {
        zip.start_file(name.as_str(), opts).unwrap();
        zip.write_all(bytes).unwrap();
    }
    zip.finish().unwrap();
}

fn replace(members: &mut [(String, Vec<u8>)], name: &str, bytes: Vec<u8>) {
    let m = members.iter_mut().find(|(n, _)| n == name).unwrap();
    m.1 = bytes;
}

#[test]
fn the_hand_made_npz_of_a_valid_batch_classifies() {
    // The control for every malformed variant below: the same construction, unmodified,
    // matches RTB (exit 0); also in Fortran order and float32.
    let dir = scratch("valid-npz");
    let b = small_batch();
    let u = rtb_results(&b);
    let path = dir.join("valid.npz");
    write_npz(&path, &members(&b, &u), zip::CompressionMethod::Stored);
    let (code, err) = run(&["classify", "--batch", path.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{err}");
    // grad_log_q stored column-major (np.save of a transposed view): same answer.
    let mut m = members(&b, &u);
    let (bb, t) = (b.batch, b.steps);
    let g = u.grad_log_q.as_ref().unwrap();
    let col: Vec<f64> = (0..bb * t).map(|j| g[(j % bb) * t + j / bb]).collect();
    replace(
        &mut m,
        "grad_log_q.npy",
        npy("<f8", &[bb as u64, t as u64], true, &f8(&col)),
    );
    let path = dir.join("fortran.npz");
    write_npz(&path, &m, zip::CompressionMethod::Deflated);
    let (code, err) = run(&["classify", "--batch", path.to_str().unwrap()]);
    assert_eq!(code, Some(0), "fortran order: {err}");
}

#[test]
fn malformed_npz_batches_are_refused_naming_the_array() {
    let dir = scratch("npz");
    let b = small_batch();
    let u = rtb_results(&b);
    let (bb, t) = (b.batch as u64, b.steps as u64);
    let g = u.grad_log_q.clone().unwrap();
    let transposed: Vec<f64> = (0..(bb * t) as usize)
        .map(|j| g[(j % bb as usize) * t as usize + j / bb as usize])
        .collect();
    let mut nan_loss = u.loss.clone();
    nan_loss[2] = f64::NAN;
    let mut inf_grad = g.clone();
    inf_grad[3] = f64::INFINITY;
    type Edit = Box<dyn Fn(&mut Vec<(String, Vec<u8>)>)>;
    let cases: Vec<(&str, Edit, &str)> = vec![
        (
            "huge-shape",
            Box::new(|m| replace(m, "log_q.npy", npy("<f8", &[16, 1 << 60], false, &[]))),
            "log_q",
        ),
        (
            "huge-header",
            Box::new(|m| {
                let mut v = b"\x93NUMPY\x02\x00".to_vec();
                v.extend(0xFFFF_FFF0u32.to_le_bytes());
                v.extend(b"{'descr': '<f8'");
                replace(m, "log_q.npy", v)
            }),
            "over the limit",
        ),
        (
            "transposed-grad",
            Box::new(move |m| {
                replace(
                    m,
                    "grad_log_q.npy",
                    npy("<f8", &[t, bb], false, &f8(&transposed)),
                )
            }),
            "transposed",
        ),
        (
            "one-d-log-p",
            Box::new(|m| {
                let v = vec![-0.5; 20];
                replace(m, "log_p.npy", npy("<f8", &[20], false, &f8(&v)))
            }),
            "log_p",
        ),
        (
            "lengths-column",
            Box::new(move |m| {
                let v: Vec<u8> = [1i64, 2, 3, 4, 1]
                    .iter()
                    .flat_map(|l| l.to_le_bytes())
                    .collect();
                replace(m, "lengths.npy", npy("<i8", &[bb, 1], false, &v))
            }),
            "lengths",
        ),
        (
            "nested-loss",
            Box::new(move |m| replace(m, "loss.npy", npy("<f8", &[bb, 1], false, &f8(&[1.0; 5])))),
            "loss",
        ),
        (
            "duplicate-member",
            Box::new(|m| {
                let again = m[6].clone();
                m.push(again)
            }),
            "duplicate member",
        ),
        (
            "unknown-member",
            Box::new(|m| m.push(("losses.npy".into(), npy("<f8", &[], false, &f8(&[1.0]))))),
            "unknown member",
        ),
        (
            "nan-loss",
            Box::new(move |m| replace(m, "loss.npy", npy("<f8", &[bb], false, &f8(&nan_loss)))),
            "NaN",
        ),
        (
            "inf-grad",
            Box::new(move |m| {
                replace(
                    m,
                    "grad_log_q.npy",
                    npy("<f8", &[bb, t], false, &f8(&inf_grad)),
                )
            }),
            "inf",
        ),
        (
            "truncated-data",
            Box::new(move |m| {
                let v = f8(&[-0.5; 7]);
                replace(m, "log_q.npy", npy("<f8", &[bb, t], false, &v))
            }),
            "truncated",
        ),
        (
            "trailing-data",
            Box::new(move |m| {
                let v = f8(&vec![-0.5; (bb * t + 1) as usize]);
                replace(m, "log_q.npy", npy("<f8", &[bb, t], false, &v))
            }),
            "more follow",
        ),
        (
            "complex-dtype",
            Box::new(move |m| {
                replace(
                    m,
                    "log_r.npy",
                    npy("<c16", &[bb], false, &vec![0; 16 * bb as usize]),
                )
            }),
            "unsupported dtype",
        ),
        (
            "object-dtype",
            Box::new(move |m| replace(m, "log_r.npy", npy("|O", &[bb], false, &[0; 40]))),
            "log_r",
        ),
        (
            "not-npy",
            Box::new(|m| replace(m, "beta.npy", b"1.5".to_vec())),
            "beta",
        ),
        (
            "deep-header",
            Box::new(|m| {
                let descr = format!("{}<f8{}", "[".repeat(5000), "]".repeat(5000));
                replace(m, "beta.npy", npy(&descr, &[], false, &[]))
            }),
            "nested too deeply",
        ),
    ];
    for (name, edit, needle) in cases {
        let mut m = members(&b, &u);
        edit(&mut m);
        let path = dir.join(format!("{name}.npz"));
        write_npz(&path, &m, zip::CompressionMethod::Stored);
        refused(&["classify", "--batch", path.to_str().unwrap()], needle);
    }
}

#[test]
fn zip_bombs_stop_at_the_declared_size() {
    let dir = scratch("bomb");
    let b = small_batch();
    let u = rtb_results(&b);
    let (bb, t) = (b.batch as u64, b.steps as u64);
    // A small declared shape followed by 64 MiB of zeros (deflated to ~64 KiB): refused after
    // reading the declared bytes and one more.
    let mut m = members(&b, &u);
    let mut bomb = npy("<f8", &[bb, t], false, &f8(&b.log_q));
    bomb.resize(bomb.len() + (64 << 20), 0);
    replace(&mut m, "log_q.npy", bomb);
    let path = dir.join("bomb-small-header.npz");
    write_npz(&path, &m, zip::CompressionMethod::Deflated);
    assert!(std::fs::metadata(&path).unwrap().len() < 1 << 20);
    refused(
        &["classify", "--batch", path.to_str().unwrap()],
        "more follow",
    );
    // A header that declares 2^27 × 2^4 float64 (16 GiB): refused before anything is read.
    let mut m = members(&b, &u);
    let mut bomb = npy("<f8", &[1 << 27, 16], false, &[]);
    bomb.resize(bomb.len() + (16 << 20), 0);
    replace(&mut m, "log_q.npy", bomb);
    let path = dir.join("bomb-big-header.npz");
    write_npz(&path, &m, zip::CompressionMethod::Deflated);
    refused(
        &["classify", "--batch", path.to_str().unwrap()],
        "would allocate",
    );
}

#[test]
fn separate_results_are_checked_against_the_batch() {
    let dir = scratch("results");
    let b = small_batch();
    let u = rtb_results(&b);
    let batch = dir.join("batch.npz");
    npz::write(&batch, &b, None).unwrap();
    let (bb, t) = (b.batch as u64, b.steps as u64);
    let g = u.grad_log_q.clone().unwrap();
    let good = vec![
        (
            "loss.npy".to_string(),
            npy("<f8", &[bb], false, &f8(&u.loss)),
        ),
        (
            "grad_log_q.npy".to_string(),
            npy("<f8", &[bb, t], false, &f8(&g)),
        ),
    ];
    let results = dir.join("results.npz");
    write_npz(&results, &good, zip::CompressionMethod::Stored);
    let (code, err) = run(&[
        "classify",
        "--batch",
        batch.to_str().unwrap(),
        "--results",
        results.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0), "{err}");
    // The same gradient transposed, in a separate file: refused, not misread.
    let transposed: Vec<f64> = (0..(bb * t) as usize)
        .map(|j| g[(j % bb as usize) * t as usize + j / bb as usize])
        .collect();
    let bad = vec![
        (
            "loss.npy".to_string(),
            npy("<f8", &[bb], false, &f8(&u.loss)),
        ),
        (
            "grad_log_q.npy".to_string(),
            npy("<f8", &[t, bb], false, &f8(&transposed)),
        ),
    ];
    write_npz(&results, &bad, zip::CompressionMethod::Stored);
    refused(
        &[
            "classify",
            "--batch",
            batch.to_str().unwrap(),
            "--results",
            results.to_str().unwrap(),
        ],
        "transposed",
    );
}

#[test]
fn malformed_json_batches_and_bad_tolerances_are_refused() {
    let dir = scratch("json");
    let b = small_batch();
    let u = rtb_results(&b);
    let path = dir.join("ok.json");
    npz::write(&path, &b, Some(&u)).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let (code, err) = run(&["classify", "--batch", path.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{err}");
    for tol in ["--tol=inf", "--tol=NaN", "--tol=0", "--tol=-1"] {
        refused(
            &["classify", "--batch", path.to_str().unwrap(), tol],
            "--tol",
        );
    }
    let variants: Vec<(&str, String, &str)> = vec![
        (
            "duplicate",
            text.replacen("{", "{\"loss\": [1, 2, 3, 4, 5], ", 1),
            "duplicate key",
        ),
        (
            "nan",
            text.replacen("\"loss\":[", "\"loss\":[NaN,", 1),
            "not a JSON object",
        ),
        (
            "huge",
            text.replacen("\"loss\":[", "\"loss\":[1e999,", 1),
            "not a JSON object",
        ),
        (
            "nested",
            text.replacen("\"loss\":[", "\"loss\":[[1],", 1),
            "loss",
        ),
        (
            "string",
            text.replacen("\"loss\":[", "\"loss\":[\"1\",", 1),
            "string",
        ),
        (
            "unknown",
            text.replacen("{", "{\"extra\": 1, ", 1),
            "unknown key",
        ),
        (
            "deep",
            format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)),
            "not a JSON object",
        ),
    ];
    for (name, body, needle) in variants {
        let p = dir.join(format!("{name}.json"));
        std::fs::write(&p, body).unwrap();
        refused(&["classify", "--batch", p.to_str().unwrap()], needle);
    }
}

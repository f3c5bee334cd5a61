//! The three fuzz targets (docs/robustness.md), shared by the in-repo mutation fuzzer
//! (`fuzz/main.rs`, `cargo run --release --example fuzz`) and the regression test
//! (`tests/fuzz_regressions.rs`, which replays `fuzz/corpus/` and `fuzz/regressions/`).
//!
//! A target returns normally on every input, whatever it is; a panic, an abort, an allocation
//! over the driver's cap or a run over its time limit is a finding. Targets also check
//! properties that must hold on every input (messages free of raw control characters, exit
//! codes in {0, 1, 2}), by panicking when they fail.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Parser;
use rtb_trustpcl::claims::budget::Budget;
use rtb_trustpcl::claims::VerifyOptions;
use rtb_trustpcl::cli::{self, Cli, Command};
use rtb_trustpcl::conventions::{classify, npz};
use rtb_trustpcl::dag::spec::from_toml_str;
use rtb_trustpcl::report::environment_report;

/// The targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// Spec loader (TOML → validation) and, on a valid spec, `verify`'s report.
    Spec,
    /// Batch reader (`.npz` raw, `.npz` assembled from members, JSON) and `classify`.
    Batch,
    /// The command-line parser and every subcommand's argument checks.
    Cli,
}

impl Target {
    /// All three.
    pub const ALL: [Target; 3] = [Target::Spec, Target::Batch, Target::Cli];

    /// Its name (the corpus and regression subdirectory).
    pub fn name(self) -> &'static str {
        match self {
            Target::Spec => "spec",
            Target::Batch => "batch",
            Target::Cli => "cli",
        }
    }

    /// Runs the target on one input; returns a signature of the outcome (the kind of refusal,
    /// digits and quoted values stripped), which the fuzzer uses as cheap feedback.
    pub fn run(self, data: &[u8], scratch: &Path) -> String {
        match self {
            Target::Spec => spec(data),
            Target::Batch => batch(data, scratch),
            Target::Cli => cli_args(data),
        }
    }
}

/// The outcome signature of a message: digits and quoted or backticked values removed,
/// shortened.
pub fn signature(message: &str) -> String {
    let mut out = String::new();
    let mut quoted = None;
    for c in message.chars() {
        match quoted {
            Some(q) if c == q => quoted = None,
            Some(_) => {}
            None if c == '`' || c == '"' => quoted = Some(c),
            None if c.is_ascii_digit() => {}
            None => out.push(c),
        }
        if out.len() >= 90 {
            break;
        }
    }
    out
}

/// Panics when a message that reaches the terminal holds a raw control character (other than
/// the newlines of a multi-line message) or a bidirectional override.
pub fn assert_printable(message: &str) {
    if let Some(c) = message
        .chars()
        .find(|&c| (c.is_control() && c != '\n') || rtb_trustpcl::input::is_bidi_control(c))
    {
        panic!(
            "raw control character U+{:04X} in a message: {message:?}",
            c as u32
        );
    }
    assert!(!message.trim().is_empty(), "empty message");
}

/// Valid specs with more edges are loaded and round-tripped but not verified (the exact
/// engine's running time on large DAGs is the work budget's business, not the parser's).
pub const MAX_VERIFIED_EDGES: usize = 48;

/// Spec loader + verify.
pub fn spec(data: &[u8]) -> String {
    let Ok(text) = std::str::from_utf8(data) else {
        return "not utf-8".into();
    };
    match from_toml_str(text, "fuzz.toml") {
        Err(e) => {
            let message = e.to_string();
            assert_printable(&message);
            assert!(
                !e.message.trim().is_empty(),
                "a refusal without a message: {message}"
            );
            signature(&format!("{}: {}", e.field, e.message))
        }
        Ok(env) if env.edges.len() > MAX_VERIFIED_EDGES => {
            let again = from_toml_str(&env.to_toml(), "again.toml");
            assert!(again.is_ok(), "{:?}", again.err());
            "valid, large: loaded only".into()
        }
        Ok(env) => {
            // Small enumeration limits: the fuzzer looks for crashes, not for big DAGs. The
            // exact engine's default budget (digits, time, memory) is what bounds huge β and
            // huge rationals here: every valid spec is verified or refused by it.
            // Time and memory below the harness's own limits (10 s of CPU, 1.5 GiB), so a
            // slow or large run is stopped by the budget with its message, not by the watchdog.
            let options = VerifyOptions {
                max_trajectories: 2_000,
                max_windows: 5_000,
                budget: Budget::new(5, 1024, 2000, 50_000),
                ..VerifyOptions::default()
            };
            // A valid spec round-trips through its own TOML.
            let again = from_toml_str(&env.to_toml(), "again.toml");
            assert!(again.is_ok(), "{:?}", again.err());
            match environment_report(&env, &options) {
                Ok((report, _)) => {
                    let holds: Vec<String> = report
                        .claims
                        .iter()
                        .map(|c| format!("{:?}", c.holds))
                        .collect();
                    format!("valid: {}", holds.join(","))
                }
                Err(e) => signature(&format!("exact error: {e}")),
            }
        }
    }
}

/// The seed batch the batch target's corpus starts from (also used by the tests).
pub fn seed_batch() -> (classify::ExportedBatch, classify::UserResults) {
    static SEED: std::sync::OnceLock<(classify::ExportedBatch, classify::UserResults)> =
        std::sync::OnceLock::new();
    SEED.get_or_init(make_seed_batch).clone()
}

fn make_seed_batch() -> (classify::ExportedBatch, classify::UserResults) {
    let args = rtb_trustpcl::cli::export_batch::ExportBatchArgs {
        out: PathBuf::from("seed.npz"),
        seed: 7,
        batch: 3,
        steps: 4,
        beta: 1.5,
        log_z: 0.7,
    };
    let b = rtb_trustpcl::cli::export_batch::make_batch(&args);
    // RTB's ½δ² with a batch mean, and its exact gradients: the seed classifies (a match).
    let d = b.log_ratio();
    let r: Vec<f64> = (0..b.batch)
        .map(|i| b.log_z + d[i] - b.beta * b.log_r[i])
        .collect();
    let n = b.batch as f64;
    let mut grad = vec![0.0; b.batch * b.steps];
    for i in 0..b.batch {
        for k in 0..b.lengths[i] {
            grad[i * b.steps + k] = r[i] / n;
        }
    }
    let user = classify::UserResults {
        loss: r.iter().map(|x| 0.5 * x * x).collect(),
        grad_log_z: Some(r.iter().sum::<f64>() / n),
        grad_log_q: Some(grad),
    };
    (b, user)
}

/// Separator of the members in the "assembled" batch mode.
pub const MEMBER_SEPARATOR: &[u8] = b"\n@@member@@ ";

/// Builds a stored zip from `(name, bytes)` members (so that mutations of npy headers and data
/// reach the npy reader past the zip CRC).
pub fn assemble_npz(members: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut buf = std::io::Cursor::new(Vec::new());
    {
        let mut zip = zip::ZipWriter::new(&mut buf);
        let opts =
            zip::write::FileOptions::default().compression_method(zip::CompressionMethod::Stored);
        for (name, bytes) in members {
            if zip.start_file(name.as_str(), opts).is_err() || zip.write_all(bytes).is_err() {
                return Vec::new();
            }
        }
        if zip.finish().is_err() {
            return Vec::new();
        }
    }
    buf.into_inner()
}

/// Splits "assembled" input into members: `name SEP bytes SEP name SEP bytes …`, with the
/// name running up to the first newline of each chunk.
pub fn split_members(data: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut rest = data;
    loop {
        let (chunk, next) = match find(rest, MEMBER_SEPARATOR) {
            Some(i) => (&rest[..i], Some(&rest[i + MEMBER_SEPARATOR.len()..])),
            None => (rest, None),
        };
        if !chunk.is_empty() {
            let nl = chunk
                .iter()
                .position(|&b| b == b'\n')
                .unwrap_or(chunk.len());
            let name = String::from_utf8_lossy(&chunk[..nl]).into_owned();
            let body = chunk.get(nl + 1..).unwrap_or_default().to_vec();
            out.push((name, body));
        }
        match next {
            Some(n) => rest = n,
            None => break,
        }
    }
    out
}

/// Joins members into the "assembled" input form (for seeds).
pub fn join_members(members: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, body) in members {
        out.extend_from_slice(MEMBER_SEPARATOR);
        out.extend_from_slice(name.as_bytes());
        out.push(b'\n');
        out.extend_from_slice(body);
    }
    out
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Batch reader + classify. The first byte selects the form: `n` raw `.npz`, `j` JSON,
/// `m` members assembled into a stored `.npz` (see [`split_members`]); anything else raw
/// `.npz`.
pub fn batch(data: &[u8], scratch: &Path) -> String {
    let (mode, body) = match data.split_first() {
        Some((&m, rest)) => (m, rest),
        None => (b'n', data),
    };
    let (ext, bytes) = match mode {
        b'j' => ("json", body.to_vec()),
        b'm' => ("npz", assemble_npz(&split_members(body))),
        _ => ("npz", body.to_vec()),
    };
    let path = scratch.join(format!("input.{ext}"));
    if std::fs::write(&path, &bytes).is_err() {
        return "unwritable".into();
    }
    let first = match npz::read(&path) {
        Err(e) => {
            let m = e.to_string();
            assert_printable(&m);
            signature(&m.replace(&path.display().to_string(), ""))
        }
        Ok((b, user)) => {
            assert!(b.validate().is_ok());
            let user = user.unwrap_or_else(|| classify::UserResults {
                loss: vec![1.0],
                ..Default::default()
            });
            match classify::classify(&b, &user, 1e-4) {
                Ok(c) => {
                    assert!(!c.candidates.is_empty());
                    format!("classified: {} matches", c.matches.len().min(1))
                }
                Err(e) => {
                    let m = e.to_string();
                    assert_printable(&m);
                    signature(&m)
                }
            }
        }
    };
    // The same file as a separate results file for the seed batch.
    let (seed, _) = seed_batch();
    let second = match npz::read_results_for(&path, &seed) {
        Err(e) => {
            let m = e.to_string();
            assert_printable(&m);
            "results refused".to_string()
        }
        Ok(user) => match classify::classify(&seed, &user, 1e-4) {
            Ok(_) => "results classified".to_string(),
            Err(e) => {
                assert_printable(&e.to_string());
                "results: classify refused".to_string()
            }
        },
    };
    format!("{ext} {first} / {second}")
}

/// Splits input into arguments at NUL bytes or newlines.
pub fn split_args(data: &[u8]) -> Vec<String> {
    data.split(|&b| b == 0 || b == b'\n')
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect()
}

/// The command-line parser and every subcommand's argument checks (nothing is run, read or
/// written: the checks are what stands between arguments and allocation).
pub fn cli_args(data: &[u8]) -> String {
    let args = split_args(data);
    let parsed = Cli::try_parse_from(std::iter::once("rtb-trustpcl".to_string()).chain(args));
    let cli = match parsed {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.render().to_string();
            return format!("clap: {:?}", e.kind());
        }
    };
    let message = match &cli.command {
        Command::Verify(a) => cli::verify::check(a).err().map(|e| e.to_string()),
        Command::Gradcheck(a) => cli::gradcheck::check(a).err().map(|e| e.to_string()),
        Command::Bench(a) => cli::bench::check(a).err().map(|e| e.to_string()),
        Command::ExportBatch(a) => cli::export_batch::check(a).err().map(|e| e.to_string()),
        Command::Generate(a) => cli::generate::check(a).err().map(|e| e.to_string()),
        Command::Classify(a) => cli::classify::check(a).err().map(|e| e.to_string()),
        Command::Study(a) => cli::study::config(a).err(),
        Command::Derive(_) => None,
        #[cfg(feature = "continuous")]
        Command::Diffusion(a) => cli::diffusion::config(a).err(),
    };
    let command = format!("{:?}", cli.command);
    let command = command
        .split(['(', ' '])
        .next()
        .unwrap_or_default()
        .to_string();
    match message {
        Some(m) => {
            assert_printable(&m);
            format!("{command}: {}", signature(&m))
        }
        None => format!("{command}: accepted"),
    }
}

/// Seeds for the CLI target: one argument line per subcommand and flag family.
pub const CLI_SEEDS: &[&str] = &[
    "verify\nspec/chain.toml\n--max-trajectories\n100",
    "verify\n--json\n--max-windows\n5000\n--mutant\nalpha-not-squared",
    "derive\nspec/chain.toml\n--claim\nC2\n--trajectory\ns0,s1,s2,s3,x",
    "generate\n--layers\n3\n--width\n4\n--fan-out\n2\n--terminals\n3\n--beta\n3/2",
    "gradcheck\n--batch\n64\n--steps\n8\n--beta\n1.5\n--dtype\nf64\n--no-exact",
    "gradcheck\n--spec\nspec/chain.toml\n--samples\n1000\n--family-error\n1e-6",
    "gradcheck\n--exact-spec\nspec\n--exact-samples\n16\n--seed\n3",
    "bench\n--batch\n1024\n--steps\n16\n--repeats\n3\n--dtype\nf32",
    "export-batch\n--out\nx.npz\n--batch\n8\n--steps\n4\n--beta\n2\n--log-z\n0.5",
    "export-batch\n--out\nx.json\n--batch\n100000\n--steps\n100",
    "classify\n--batch\nx.npz\n--results\ny.json\n--tol\n1e-4\n--json",
    "study\n--quick\n--seeds\n2\n--methods\nrtb,tpcl\n--iterations\n10\n--batch\n64",
    "study\n--radius\n3\n--lr\n0.1\n--out\nstudy-out",
    "gradcheck\n--batch\n18446744073709551615\n--steps\n2",
    "gradcheck\n--beta\n1e-300",
    "classify\n--batch\nx.npz\n--tol\ninf",
];

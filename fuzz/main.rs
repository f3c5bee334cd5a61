//! The in-repo mutation fuzzer (docs/robustness.md): drives the three targets of
//! `fuzz/targets.rs` in process, on stable Rust.
//!
//! ```text
//! cargo run --release --example fuzz -- [--target spec|batch|cli|all] [--execs N] [--seed S]
//!                                       [--artifacts DIR] [--scratch DIR]
//! ```
//!
//! Inputs start from the seed corpus (`spec/`, `tests/invalid/`, `fuzz/corpus/<target>/`,
//! `fuzz/regressions/<target>/` and built-in seeds) and are mutated by byte-level operators
//! (bit flips, interesting integers, dictionary tokens, deletions, duplications, splices).
//! Without compiler instrumentation there is no coverage feedback; instead an input whose
//! outcome signature (the kind of refusal, see `targets::signature`) is new joins the corpus.
//!
//! Per-input limits, in process: a counting global allocator aborts the run when the live heap
//! passes `RTB_FUZZ_MEMORY` (default 1.5 GiB), and a watchdog aborts it when one input has
//! used more than `RTB_FUZZ_SECONDS` (default 10) seconds of process CPU time. Before every
//! input, the input is written to `<scratch>/current-<target>`, so that a run that aborts
//! leaves it behind (`fuzz/campaign.sh` collects it as a finding). A panic is caught, its input
//! saved under `<artifacts>/`, and the campaign goes on. The summary is printed as one JSON
//! line.
use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

#[path = "targets.rs"]
mod targets;
use targets::Target;

// ---- per-input memory limit -------------------------------------------------------------

static LIVE: AtomicU64 = AtomicU64::new(0);
static PEAK: AtomicU64 = AtomicU64::new(0);
static CAP: AtomicU64 = AtomicU64::new(u64::MAX);

struct Counting;

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let size = layout.size() as u64;
        let live = LIVE.fetch_add(size, Ordering::Relaxed) + size;
        if live > CAP.load(Ordering::Relaxed) {
            let _ = std::io::stderr()
                .write_all(b"fuzz: FINDING: an input passed the memory cap; aborting\n");
            std::process::abort();
        }
        PEAK.fetch_max(live, Ordering::Relaxed);
        let p = System.alloc(layout);
        if p.is_null() {
            LIVE.fetch_sub(size, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as u64, Ordering::Relaxed);
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

// ---- per-input time limit ---------------------------------------------------------------

/// Process CPU time (user + system) in seconds, from /proc/self/stat.
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = stat.rsplit(')').next().unwrap_or_default();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the whole line: 11 and 12 after the state.
    (ticks(11) + ticks(12)) / 100.0
}

static INPUT_CPU_START: Mutex<Option<f64>> = Mutex::new(None);
static RUNNING: AtomicBool = AtomicBool::new(true);

fn watchdog(limit: f64) {
    std::thread::spawn(move || {
        while RUNNING.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(250));
            let start = *INPUT_CPU_START.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(start) = start {
                if cpu_seconds() - start > limit {
                    let _ = std::io::stderr()
                        .write_all(b"fuzz: FINDING: an input ran over the time limit; aborting\n");
                    std::process::abort();
                }
            }
        }
    });
}

// ---- mutation ---------------------------------------------------------------------------

const INTERESTING: &[&str] = &[
    "0",
    "-0",
    "1",
    "-1",
    "2",
    "255",
    "256",
    "65535",
    "65536",
    "2147483647",
    "2147483648",
    "4294967295",
    "4294967296",
    "9007199254740993",
    "9223372036854775807",
    "9223372036854775808",
    "18446744073709551615",
    "18446744073709551616",
    "1152921504606846976",
    "1e308",
    "1e309",
    "-1e309",
    "1e-300",
    "5e-324",
    "NaN",
    "nan",
    "inf",
    "-inf",
    "infinity",
    "0x10",
    "1_0",
    "+-2.5",
    "+--0.5",
    "--1",
    "1/0",
    "0/0",
    "3/-2",
    ".5",
    "5.",
    "1e3",
    " 1/2",
    "\u{1b}[2J",
    "\u{202e}",
    "\u{0}",
    "\u{7}",
    "\u{ff}",
    "é",
    "",
];

const SPEC_TOKENS: &[&str] = &[
    "[[edge]]\n",
    "[rewards]\n",
    "from = \"",
    "to = \"",
    "prior = \"",
    "posterior = \"",
    "beta = \"",
    "name = \"",
    "source = \"",
    "\"\n",
    " = ",
    "\"1/2\"",
    "\"1\"",
    "\"0\"",
    "'",
    "[",
    "]",
    "{",
    "}",
    "#",
    "\n",
    "\"\"\"",
    "x = \"3/2\"\n",
    "[[edge]]\nfrom = \"s0\"\nto = \"s0\"\nprior = \"1\"\n",
    "= [[[[[[[[[[[[[[[[",
    "\t",
    "\r\n",
    "\\u0000",
    "\\e",
];

const BATCH_TOKENS: &[&str] = &[
    "\u{93}NUMPY",
    "{'descr': '<f8', 'fortran_order': False, 'shape': (",
    "), }",
    "'shape': (16, 1152921504606846976)",
    "'shape': ()",
    "'shape': (3,)",
    "'shape': (4, 3)",
    "'shape': (3, 4)",
    "'shape': (3, 1)",
    "'descr': '<f4'",
    "'descr': '>f8'",
    "'descr': '|u1'",
    "'descr': '<i8'",
    "'descr': '<c16'",
    "'descr': '|O'",
    "'descr': [('a', '<f8')]",
    "'fortran_order': True",
    "log_q.npy",
    "log_p.npy",
    "lengths.npy",
    "loss.npy",
    "grad_log_q.npy",
    "grad_log_z.npy",
    "beta.npy",
    "\"log_q\":",
    "\"loss\":",
    "[[",
    "]]",
    "[1.0, 2.0]",
    "null",
    "true",
    "{}",
    "\"grad_log_q\": [[0,0,0],[0,0,0],[0,0,0],[0,0,0]]",
    "\n@@member@@ ",
    "PK\u{3}\u{4}",
    "PK\u{1}\u{2}",
    "PK\u{5}\u{6}",
];

const CLI_TOKENS: &[&str] = &[
    "\nverify",
    "\nderive",
    "\ngenerate",
    "\ngradcheck",
    "\nbench",
    "\nexport-batch",
    "\nclassify",
    "\nstudy",
    "\n--batch\n",
    "\n--steps\n",
    "\n--repeats\n",
    "\n--samples\n",
    "\n--exact-samples\n",
    "\n--beta\n",
    "\n--tol\n",
    "\n--width\n",
    "\n--layers\n",
    "\n--fan-out\n",
    "\n--terminals\n",
    "\n--skip-percent\n",
    "\n--max-trajectories\n",
    "\n--max-windows\n",
    "\n--family-error\n",
    "\n--log-z\n",
    "\n--seeds\n",
    "\n--iterations\n",
    "\n--lr\n",
    "\n--radius\n",
    "\n--methods\n",
    "\n--dtype\n",
    "\n--device\n",
    "\n--mutant\n",
    "\n--json",
    "\n--no-exact",
    "\n--spec\n",
    "\n--help",
    "\n--version",
    "\n--",
    "\0",
    "=",
];

fn tokens(target: Target) -> &'static [&'static str] {
    match target {
        Target::Spec => SPEC_TOKENS,
        Target::Batch => BATCH_TOKENS,
        Target::Cli => CLI_TOKENS,
    }
}

/// The most bytes a mutated input may have.
const MAX_INPUT: usize = 1 << 16;

fn mutate(rng: &mut ChaCha8Rng, input: &[u8], corpus: &[Vec<u8>], target: Target) -> Vec<u8> {
    let mut data = input.to_vec();
    let rounds = 1 + rng.gen_range(0..6);
    for _ in 0..rounds {
        let len = data.len();
        let at = if len == 0 { 0 } else { rng.gen_range(0..=len) };
        match rng.gen_range(0..11) {
            0 if len > 0 => {
                let i = rng.gen_range(0..len);
                data[i] ^= 1 << rng.gen_range(0..8);
            }
            1 if len > 0 => {
                let i = rng.gen_range(0..len);
                data[i] = rng.gen();
            }
            2 => data.insert(at, rng.gen()),
            3 if len > 0 => {
                let n = rng.gen_range(1..=len.min(64));
                let i = rng.gen_range(0..=len - n);
                data.drain(i..i + n);
            }
            4 if len > 0 => {
                let n = rng.gen_range(1..=len.min(256));
                let i = rng.gen_range(0..=len - n);
                let chunk = data[i..i + n].to_vec();
                data.splice(at..at, chunk);
            }
            5 | 6 => {
                let t = INTERESTING[rng.gen_range(0..INTERESTING.len())];
                // Replace a run of digits at a random place, or insert.
                let start = (at..len).find(|&i| data[i].is_ascii_digit());
                match start {
                    Some(s) if rng.gen_bool(0.7) => {
                        let e = (s..len).find(|&i| !data[i].is_ascii_digit()).unwrap_or(len);
                        data.splice(s..e, t.bytes());
                    }
                    _ => {
                        data.splice(at..at, t.bytes());
                    }
                }
            }
            7 | 8 => {
                let t = tokens(target);
                let t = t[rng.gen_range(0..t.len())];
                data.splice(at..at, t.bytes());
            }
            9 if len >= 4 => {
                // A binary interesting integer (npy header lengths, zip sizes, counts).
                let values: [u64; 6] = [0, 0xFFFF, 0xFFFF_FFF0, 0xFFFF_FFFF, 1 << 40, u64::MAX];
                let v = values[rng.gen_range(0..values.len())];
                let width = [2usize, 4, 8][rng.gen_range(0..3)].min(len);
                let i = rng.gen_range(0..=len - width);
                data[i..i + width].copy_from_slice(&v.to_le_bytes()[..width]);
            }
            _ if !corpus.is_empty() => {
                let other = &corpus[rng.gen_range(0..corpus.len())];
                if !other.is_empty() {
                    let i = rng.gen_range(0..other.len());
                    let n = rng.gen_range(1..=(other.len() - i).min(512));
                    let cut = if rng.gen_bool(0.5) { len } else { at };
                    data.truncate(cut.max(at).min(data.len()));
                    data.extend_from_slice(&other[i..i + n]);
                }
            }
            _ => {}
        }
        data.truncate(MAX_INPUT);
    }
    data
}

// ---- seeds ------------------------------------------------------------------------------

fn files_in(dir: &Path) -> Vec<Vec<u8>> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    paths.sort();
    paths
        .into_iter()
        .filter(|p| p.is_file())
        .filter_map(|p| std::fs::read(p).ok())
        .collect()
}

fn seeds(target: Target, root: &Path, scratch: &Path) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    match target {
        Target::Spec => {
            out.extend(files_in(&root.join("spec")));
            out.extend(files_in(&root.join("tests/invalid")));
            if let Ok(b) = std::fs::read(root.join("tests/invalid-base.toml")) {
                out.push(b);
            }
        }
        Target::Batch => {
            let (b, user) = targets::seed_batch();
            for (ext, tag) in [("npz", b'n'), ("json", b'j')] {
                for with_user in [false, true] {
                    let path = scratch.join(format!("seed.{ext}"));
                    let u = with_user.then_some(&user);
                    if rtb_trustpcl::conventions::npz::write(&path, &b, u).is_ok() {
                        if let Ok(bytes) = std::fs::read(&path) {
                            let mut v = vec![tag];
                            v.extend(bytes);
                            out.push(v);
                        }
                    }
                }
            }
            // The npz with user results, split into its members (the assembled form).
            let path = scratch.join("seed.npz");
            if rtb_trustpcl::conventions::npz::write(&path, &b, Some(&user)).is_ok() {
                if let Ok(file) = std::fs::File::open(&path) {
                    if let Ok(mut zip) = zip::ZipArchive::new(file) {
                        let mut members = Vec::new();
                        for i in 0..zip.len() {
                            if let Ok(mut m) = zip.by_index(i) {
                                let name = m.name().to_string();
                                let mut bytes = Vec::new();
                                if std::io::Read::read_to_end(&mut m, &mut bytes).is_ok() {
                                    members.push((name, bytes));
                                }
                            }
                        }
                        let mut v = vec![b'm'];
                        v.extend(targets::join_members(&members));
                        out.push(v);
                    }
                }
            }
        }
        Target::Cli => out.extend(targets::CLI_SEEDS.iter().map(|s| s.as_bytes().to_vec())),
    }
    out.extend(files_in(&root.join("fuzz/corpus").join(target.name())));
    out.extend(files_in(&root.join("fuzz/regressions").join(target.name())));
    out
}

// ---- the campaign -----------------------------------------------------------------------

#[derive(Default)]
struct Stats {
    execs: u64,
    findings: u64,
    max_ms: f64,
    max_cpu_s: f64,
    slowest: Vec<u8>,
    signatures: HashSet<String>,
    seconds: f64,
}

fn hash(data: &[u8]) -> u64 {
    // FNV-1a: names artifacts reproducibly.
    data.iter().fold(0xcbf29ce484222325u64, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x100000001b3)
    })
}

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root =
        PathBuf::from(arg(&args, "--root").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into()));
    let execs: u64 = arg(&args, "--execs")
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let seed: u64 = arg(&args, "--seed")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let which = arg(&args, "--target").unwrap_or_else(|| "all".into());
    let artifacts = PathBuf::from(
        arg(&args, "--artifacts")
            .unwrap_or_else(|| root.join("fuzz/artifacts").display().to_string()),
    );
    let scratch = PathBuf::from(arg(&args, "--scratch").unwrap_or_else(|| {
        std::env::temp_dir()
            .join(format!("rtb-fuzz-{}", std::process::id()))
            .display()
            .to_string()
    }));
    let memory: u64 = std::env::var("RTB_FUZZ_MEMORY")
        .ok()
        .and_then(|v| rtb_trustpcl::input::parse_bytes(&v))
        .unwrap_or(1536 << 20);
    let seconds: f64 = std::env::var("RTB_FUZZ_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10.0);
    let chosen: Vec<Target> = Target::ALL
        .into_iter()
        .filter(|t| which == "all" || which == t.name())
        .collect();
    if chosen.is_empty() {
        eprintln!("fuzz: --target must be spec, batch, cli or all");
        std::process::exit(2);
    }
    if std::fs::create_dir_all(&scratch).is_err() || std::fs::create_dir_all(&artifacts).is_err() {
        eprintln!(
            "fuzz: cannot create {} or {}",
            scratch.display(),
            artifacts.display()
        );
        std::process::exit(2);
    }
    // Panics are findings: keep the message, print nothing.
    static PANIC: Mutex<String> = Mutex::new(String::new());
    std::panic::set_hook(Box::new(|info| {
        let at = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        *PANIC.lock().unwrap_or_else(|e| e.into_inner()) = format!("{at}: {message}");
    }));
    watchdog(seconds);

    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut corpora: HashMap<&str, Vec<Vec<u8>>> = HashMap::new();
    for &t in &chosen {
        corpora.insert(t.name(), seeds(t, &root, &scratch));
    }
    let mut stats: HashMap<&str, Stats> = HashMap::new();
    let start = Instant::now();
    CAP.store(memory, Ordering::Relaxed);
    for i in 0..execs {
        let target = chosen[(i % chosen.len() as u64) as usize];
        // Every 50th input is a corpus entry as is; the rest are mutations.
        let input = {
            let corpus = corpora.get(target.name()).map_or(&[][..], Vec::as_slice);
            if corpus.is_empty() {
                Vec::new()
            } else {
                let base = &corpus[rng.gen_range(0..corpus.len())];
                if i % 50 == 0 {
                    base.clone()
                } else {
                    mutate(&mut rng, base, corpus, target)
                }
            }
        };
        let current = scratch.join(format!("current-{}", target.name()));
        let _ = std::fs::write(&current, &input);
        let work = scratch.join(target.name());
        let _ = std::fs::create_dir_all(&work);
        let cpu0 = cpu_seconds();
        *INPUT_CPU_START.lock().unwrap_or_else(|e| e.into_inner()) = Some(cpu0);
        let t0 = Instant::now();
        let outcome =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| target.run(&input, &work)));
        let ms = t0.elapsed().as_secs_f64() * 1e3;
        let cpu = cpu_seconds() - cpu0;
        *INPUT_CPU_START.lock().unwrap_or_else(|e| e.into_inner()) = None;
        let s = stats.entry(target.name()).or_default();
        s.execs += 1;
        s.seconds += ms / 1e3;
        s.max_ms = s.max_ms.max(ms);
        if cpu > s.max_cpu_s {
            s.max_cpu_s = cpu;
            s.slowest = input.clone();
        }
        match outcome {
            Ok(sig) => {
                if s.signatures.insert(sig) {
                    if let Some(c) = corpora.get_mut(target.name()) {
                        if c.len() < 4000 {
                            c.push(input);
                        }
                    }
                }
            }
            Err(_) => {
                s.findings += 1;
                let message = PANIC.lock().map(|m| m.clone()).unwrap_or_default();
                let name = format!("{}-panic-{:016x}", target.name(), hash(&input));
                let _ = std::fs::write(artifacts.join(&name), &input);
                let _ = std::fs::write(artifacts.join(format!("{name}.txt")), &message);
                eprintln!("fuzz: FINDING {name}: {message}");
            }
        }
        if (i + 1) % 20_000 == 0 {
            eprintln!(
                "fuzz: {} executions, {:.0} s, peak heap {} MiB",
                i + 1,
                start.elapsed().as_secs_f64(),
                PEAK.load(Ordering::Relaxed) >> 20
            );
        }
    }
    RUNNING.store(false, Ordering::Relaxed);
    for &t in &chosen {
        let _ = std::fs::remove_file(scratch.join(format!("current-{}", t.name())));
        if let Some(s) = stats.get(t.name()) {
            let _ = std::fs::write(
                artifacts.join(format!("slowest-{}-seed{seed}", t.name())),
                &s.slowest,
            );
        }
    }
    let summary: Vec<String> = chosen
        .iter()
        .filter_map(|t| stats.get(t.name()).map(|s| (t, s)))
        .map(|(t, s)| {
            format!(
                "\"{}\": {{\"execs\": {}, \"findings\": {}, \"max_wall_ms\": {:.1}, \"max_cpu_s\": {:.2}, \"mean_wall_ms\": {:.3}, \"outcome_kinds\": {}, \"corpus\": {}}}",
                t.name(),
                s.execs,
                s.findings,
                s.max_ms,
                s.max_cpu_s,
                1e3 * s.seconds / s.execs.max(1) as f64,
                s.signatures.len(),
                corpora.get(t.name()).map_or(0, Vec::len)
            )
        })
        .collect();
    println!(
        "{{\"seed\": {seed}, \"seconds\": {:.1}, \"cpu_seconds\": {:.1}, \"peak_heap_bytes\": {}, \"memory_cap\": {memory}, \"cpu_limit_s\": {seconds}, {}}}",
        start.elapsed().as_secs_f64(),
        cpu_seconds(),
        PEAK.load(Ordering::Relaxed),
        summary.join(", ")
    );
    let _ = std::fs::remove_dir_all(&scratch);
    let total: u64 = stats.values().map(|s| s.findings).sum();
    std::process::exit(if total == 0 { 0 } else { 1 });
}

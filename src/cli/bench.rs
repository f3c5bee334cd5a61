//! `bench`: throughput of the fused kernels beside the read and copy references measured in
//! the same run (best and median of K runs, bytes moved, GB/s, % of each kernel's floor
//! timed alternately with it), in f32 and f64. For scripts; criterion benches live in `benches/kernels.rs`.
use clap::{Args, ValueEnum};
use serde::Serialize;

use crate::agreement::report::Device;
use crate::input::{in_range, product, LimitError, Plan};
use crate::kernels::bench::{run_bench, run_device_bench, BenchReport};
use crate::kernels::cuda::CudaBackend;
use crate::kernels::BatchError;

/// Float types to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BenchDtype {
    /// f32 only.
    F32,
    /// f64 only.
    F64,
    /// f32, then f64.
    Both,
}

/// The `--json` output: one report per float type measured ([`BenchReport`] on the CPU,
/// [`crate::kernels::bench::DeviceBenchReport`] with `--device cuda`).
#[derive(Debug, Serialize)]
pub struct BenchRuns<R> {
    /// The reports, f32 first.
    pub runs: Vec<R>,
}

/// Measures each float type asked for (f32 first) and, with `--json`, prints the reports.
/// `Ok`: the reports, for the caller's table; `Err`: the exit code, when the run failed
/// (`prefix` leads the message) or the JSON is printed.
fn measure<R: Serialize>(
    args: &BenchArgs,
    prefix: &str,
    run_f32: impl FnOnce() -> Result<R, BatchError>,
    run_f64: impl FnOnce() -> Result<R, BatchError>,
) -> Result<Vec<R>, u8> {
    let mut runs = Vec::new();
    if matches!(args.dtype, BenchDtype::F32 | BenchDtype::Both) {
        runs.push(run_f32());
    }
    if matches!(args.dtype, BenchDtype::F64 | BenchDtype::Both) {
        runs.push(run_f64());
    }
    let runs = match runs.into_iter().collect::<Result<Vec<R>, _>>() {
        Ok(r) => BenchRuns { runs: r },
        Err(e) => {
            eprintln!("{prefix}: {e}");
            return Err(super::EXIT_BAD_INPUT);
        }
    };
    if !args.json {
        return Ok(runs.runs);
    }
    match serde_json::to_string_pretty(&runs) {
        Ok(s) => {
            println!("{s}");
            Err(super::EXIT_HOLDS)
        }
        Err(e) => {
            eprintln!("bench: {e}");
            Err(super::EXIT_BAD_INPUT)
        }
    }
}

/// Arguments of `bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Number of trajectories `B`.
    #[arg(long, default_value_t = 65536)]
    pub batch: usize,
    /// Steps per trajectory `T` (every trajectory full length).
    #[arg(long, default_value_t = 100)]
    pub steps: usize,
    /// Float type(s).
    #[arg(long, value_enum, default_value = "both")]
    pub dtype: BenchDtype,
    /// Runs per measurement; the best (used for GB/s) and the median are reported.
    #[arg(long, default_value_t = 21)]
    pub repeats: usize,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Where the kernels run: the CPU (against the host's read and copy references), or the
    /// GPU (feature `cuda`: the device phases against the card's peak and its own copy).
    #[arg(long, value_enum, default_value = "cpu")]
    pub device: Device,
}

/// Most `--repeats`: 10,000 (every repeat reads the whole batch once per kernel; the bound
/// keeps a run's length proportional to what the user asked for, not unbounded).
pub const MAX_REPEATS: u64 = 10_000;

/// Checks the arguments and plans the run: per `[B, T]` entry, the batch (`log q`, `log p`),
/// the copy reference's destination, and two entries of kernel output, all in the float type
/// (measured: 18 bytes an entry in f32 at B = 65536, T = 64); per row 128 bytes.
pub fn check(args: &BenchArgs) -> Result<Plan, LimitError> {
    in_range(
        "--batch",
        args.batch as u64,
        1,
        u64::MAX,
        "at least one trajectory",
    )?;
    in_range(
        "--steps",
        args.steps as u64,
        1,
        u64::MAX,
        "at least one step",
    )?;
    in_range(
        "--repeats",
        args.repeats as u64,
        1,
        MAX_REPEATS,
        "runs per measurement",
    )?;
    let size = match args.dtype {
        BenchDtype::F32 => 4,
        BenchDtype::F64 | BenchDtype::Both => 8,
    };
    let entries = product(
        "the size of the run",
        &[
            ("--batch", args.batch as u64),
            ("--steps", args.steps as u64),
        ],
    )?;
    let mut plan = Plan::new(&format!(
        "bench --batch {} --steps {}",
        args.batch, args.steps
    ));
    plan.add("[B, T] entries", entries, 6 * size)?;
    plan.add("[B] rows", args.batch as u64, 128)?;
    Ok(plan)
}

/// Runs `bench`; returns the exit code.
pub fn run(args: &BenchArgs) -> u8 {
    if let Err(e) = check(args).and_then(|plan| plan.check_and_announce("lower --batch or --steps"))
    {
        eprintln!("bench: {e}");
        return super::EXIT_BAD_INPUT;
    }
    if args.device == Device::Cuda {
        return run_device(args);
    }
    let runs = match measure(
        args,
        "bench",
        || run_bench::<f32>(args.batch, args.steps, args.repeats),
        || run_bench::<f64>(args.batch, args.steps, args.repeats),
    ) {
        Ok(runs) => BenchRuns { runs },
        Err(code) => return code,
    };
    for report in &runs.runs {
        print_table(report);
    }
    println!(
        "every kernel's % of its floor, both timed alternately: the best of the repeats over \
         the floor's best, then the median over the repeats of the two calls of one round \
         (per-trajectory: read reference; dense: copy reference; the windowed kernels: the \
         same references over the windows' lines; REINFORCE-KL dense, which can only write \
         after every row is read: the read reference, then the dense write):"
    );
    println!(
        "{:<16} {:<15} {:>13} {:>13}",
        "kernel", "gradient", "f32 best/pair", "f64 best/pair"
    );
    let find = |dtype: &str, name: &str, form: &str| {
        runs.runs
            .iter()
            .filter(|r| r.dtype == dtype)
            .flat_map(|r| &r.measurements)
            .find(|m| m.name == name && m.form == form)
            .map_or("-".to_string(), |m| {
                let paired = m
                    .paired_fraction_of_floor
                    .map_or("-".to_string(), |p| format!("{:.0}%", 100.0 * p));
                format!("{:.0}%/{paired}", 100.0 * m.fraction_of_floor)
            })
    };
    for id in crate::kernels::KernelId::ALL {
        for form in ["per-trajectory", "dense"] {
            println!(
                "{:<16} {:<15} {:>13} {:>13}",
                id.name(),
                form,
                find("f32", id.name(), form),
                find("f64", id.name(), form)
            );
        }
    }
    super::EXIT_HOLDS
}

/// `bench --device cuda`: an input error (exit 2) where the build or the machine has no GPU.
fn run_device(args: &BenchArgs) -> u8 {
    let backend = match CudaBackend::new(0) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("bench: --device cuda: {e}");
            return super::EXIT_BAD_INPUT;
        }
    };
    let (b, t, k) = (args.batch, args.steps, args.repeats);
    let runs = match measure(
        args,
        "bench: --device cuda",
        || run_device_bench::<f32>(&backend, b, t, k),
        || run_device_bench::<f64>(&backend, b, t, k),
    ) {
        Ok(runs) => runs,
        Err(code) => return code,
    };
    for r in &runs {
        println!(
            "bench --device cuda: {}, B = {}, T = {}, {}, median and best of {} runs \
             (device time between events; phase 2 runs on the host, untimed); peak {:.0} GB/s \
             (memory clock x bus width), copy {:.0} GB/s, read {:.0} GB/s",
            r.device, r.batch, r.steps, r.dtype, r.repeats, r.peak_gbps, r.copy_gbps, r.read_gbps
        );
        println!(
            "{:<16} {:<15} {:>10} {:>9} {:>10} {:>8} {:>8} {:>8}",
            "kernel", "gradient", "median ms", "best ms", "MB moved", "GB/s", "of peak", "of copy"
        );
        for m in &r.measurements {
            println!(
                "{:<16} {:<15} {:>10.4} {:>9.4} {:>10.1} {:>8.0} {:>7.0}% {:>7.0}%",
                m.name,
                m.form,
                m.median_seconds * 1e3,
                m.best_seconds * 1e3,
                m.bytes / 1e6,
                m.gbps,
                100.0 * m.fraction_of_peak,
                100.0 * m.fraction_of_copy
            );
        }
        println!();
    }
    super::EXIT_HOLDS
}

fn print_table(report: &BenchReport) {
    println!(
        "bench: B = {}, T = {}, {}, best and median of {} runs, {} threads, simd {}",
        report.batch, report.steps, report.dtype, report.repeats, report.threads, report.simd
    );
    println!(
        "{:<16} {:<17} {:>9} {:>10} {:>10} {:>8} {:>8} {:>10} {:>9} {:>7} {:>7} {:>7}",
        "kernel",
        "gradient",
        "best ms",
        "median ms",
        "MB moved",
        "GB/s",
        "floor",
        "floor GB/s",
        "of floor",
        "paired",
        "of read",
        "of copy"
    );
    for m in &report.measurements {
        let paired = m
            .paired_fraction_of_floor
            .map_or("-".to_string(), |p| format!("{:.0}%", 100.0 * p));
        println!(
            "{:<16} {:<17} {:>9.3} {:>10.3} {:>10.1} {:>8.2} {:>8} {:>10.2} {:>8.0}% {:>7} {:>6.0}% {:>6.0}%",
            m.name,
            m.form,
            m.best_seconds * 1e3,
            m.median_seconds * 1e3,
            m.bytes / 1e6,
            m.gbps,
            m.floor,
            m.floor_gbps,
            100.0 * m.fraction_of_floor,
            paired,
            100.0 * m.fraction_of_read,
            100.0 * m.fraction_of_copy
        );
    }
    println!();
}

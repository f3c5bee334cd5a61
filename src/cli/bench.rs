//! `bench`: throughput of the fused kernels beside a memory-copy reference measured in the same
//! run (median of K runs, bytes moved, GB/s). For scripts; criterion benches live in
//! `benches/kernels.rs`.
use clap::Args;

use crate::agreement::gradcheck::Dtype;
use crate::input::{in_range, product, LimitError, Plan};
use crate::kernels::bench::{run_bench, BenchReport};

/// Arguments of `bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Number of trajectories `B`.
    #[arg(long, default_value_t = 65536)]
    pub batch: usize,
    /// Steps per trajectory `T` (every trajectory full length).
    #[arg(long, default_value_t = 100)]
    pub steps: usize,
    /// Float type.
    #[arg(long, value_enum, default_value = "f32")]
    pub dtype: Dtype,
    /// Runs per measurement; the median is reported.
    #[arg(long, default_value_t = 21)]
    pub repeats: usize,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
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
        Dtype::F32 => 4,
        Dtype::F64 => 8,
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
    let report: Result<BenchReport, _> = match args.dtype {
        Dtype::F32 => run_bench::<f32>(args.batch, args.steps, args.repeats),
        Dtype::F64 => run_bench::<f64>(args.batch, args.steps, args.repeats),
    };
    let report = match report {
        Ok(r) => r,
        Err(e) => {
            eprintln!("bench: {e}");
            return super::EXIT_BAD_INPUT;
        }
    };
    if args.json {
        match serde_json::to_string_pretty(&report) {
            Ok(s) => println!("{s}"),
            Err(e) => {
                eprintln!("bench: {e}");
                return super::EXIT_BAD_INPUT;
            }
        }
    } else {
        println!(
            "bench: B = {}, T = {}, {}, median of {} runs, {} threads",
            report.batch, report.steps, report.dtype, report.repeats, report.threads
        );
        println!(
            "{:<16} {:<15} {:>12} {:>12} {:>9} {:>8}",
            "kernel", "gradient", "median ms", "MB moved", "GB/s", "of copy"
        );
        for m in &report.measurements {
            println!(
                "{:<16} {:<15} {:>12.3} {:>12.1} {:>9.2} {:>7.0}%",
                m.name,
                m.form,
                m.median_seconds * 1e3,
                m.bytes / 1e6,
                m.gbps,
                100.0 * m.fraction_of_copy
            );
        }
    }
    super::EXIT_HOLDS
}

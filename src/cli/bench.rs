//! `bench`: throughput of the fused kernels beside a memory-copy reference measured in the same
//! run (median of K runs, bytes moved, GB/s). For scripts; criterion benches live in
//! `benches/kernels.rs`.
use clap::Args;

use crate::agreement::gradcheck::Dtype;
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

/// Runs `bench`; returns the exit code.
pub fn run(args: &BenchArgs) -> u8 {
    if args.batch == 0 || args.steps == 0 || args.repeats == 0 {
        eprintln!("bench: --batch, --steps and --repeats must be at least 1");
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

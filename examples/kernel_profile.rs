//! Runs one kernel of `bench` many times on its generated batch, for `perf record` / `perf
//! stat` (the `bench` command times every kernel once per repeat; a profile of one kernel needs
//! it alone). It allocates with mimalloc, as the `rtb-trustpcl` binary does; run it with
//! `MIMALLOC_PURGE_DELAY=10000` to keep the binary's purge delay (the kernels' fresh outputs
//! then stay with the allocator between calls instead of being faulted in again as zeroed pages:
//! `docs/performance.md`, session 13).
//!
//! ```sh
//! cargo build --release --example kernel_profile
//! MIMALLOC_PURGE_DELAY=10000 perf stat -e page-faults target/release/examples/kernel_profile subtb per-trajectory 1048576 100 f32 15
//! ```
use std::process::ExitCode;
use std::time::Instant;

use rtb_trustpcl::kernels::bench::BenchSetup;
use rtb_trustpcl::kernels::{Float, GradForm, KernelId};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const USAGE: &str = "usage: kernel_profile KERNEL per-trajectory|dense BATCH STEPS f32|f64 CALLS";

fn run<F: Float>(
    id: KernelId,
    form: GradForm,
    batch: usize,
    steps: usize,
    calls: usize,
) -> Result<(), String> {
    let mut setup = BenchSetup::<F>::new(batch, steps).map_err(|e| e.to_string())?;
    setup.run(id, form).map_err(|e| e.to_string())?;
    let mut times = Vec::with_capacity(calls);
    for _ in 0..calls {
        let start = Instant::now();
        std::hint::black_box(setup.run(id, form).map_err(|e| e.to_string())?);
        times.push(start.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    println!(
        "{} {form:?} {}: best {:.3} ms, median {:.3} ms over {calls} calls (B = {batch}, T = {steps})",
        id.name(),
        F::NAME,
        times[0],
        times[times.len() / 2]
    );
    Ok(())
}

fn parse(args: &[String]) -> Result<(), String> {
    let [kernel, form, batch, steps, dtype, calls] = args else {
        return Err(USAGE.into());
    };
    let id = KernelId::ALL
        .into_iter()
        .find(|k| k.name() == kernel)
        .ok_or_else(|| {
            let names: Vec<_> = KernelId::ALL.iter().map(|k| k.name()).collect();
            format!("unknown kernel {kernel:?}: one of {}", names.join(", "))
        })?;
    let form = match form.as_str() {
        "per-trajectory" => GradForm::PerTrajectory,
        "dense" => GradForm::Dense,
        other => return Err(format!("unknown form {other:?}: per-trajectory or dense")),
    };
    let number = |what: &str, text: &str| {
        text.parse::<usize>()
            .ok()
            .filter(|&n| n > 0)
            .ok_or_else(|| format!("{what} must be a positive integer, got {text:?}"))
    };
    let (batch, steps, calls) = (
        number("BATCH", batch)?,
        number("STEPS", steps)?,
        number("CALLS", calls)?,
    );
    match dtype.as_str() {
        "f32" => run::<f32>(id, form, batch, steps, calls),
        "f64" => run::<f64>(id, form, batch, steps, calls),
        other => Err(format!("unknown dtype {other:?}: f32 or f64")),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match parse(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kernel_profile: {e}");
            ExitCode::from(2)
        }
    }
}

//! Times the dense gradient's write alone (`fill_dense_with`) with each kind of stores, over
//! whole rows and around SubTB's windows, for several row lengths at one total size: the
//! measurement behind the column-length bounds of [`dense_stores`]'s choice
//! (`docs/performance.md`, session 17; its cache bound comes from `bench`'s read-then-write
//! reference, session 18). Each of
//! the four writes is called `CALLS` times in a row; the figure is the best call's.
//!
//! ```sh
//! cargo build --release --example dense_stores
//! target/release/examples/dense_stores 67108864 9 8,37,64,100,200,400,1000,3000
//! ```
//! The arguments: the elements of the dense gradient (`B·T`; `B` is that over `T`, rounded
//! down), the calls of each write, and the row lengths `T`.
use std::process::ExitCode;
use std::time::Instant;

use rtb_trustpcl::kernels::bench::BenchSetup;
use rtb_trustpcl::kernels::fused::{dense_stores, fill_dense_with, Stores};
use rtb_trustpcl::kernels::Float;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const USAGE: &str = "usage: dense_stores ELEMENTS CALLS T[,T...]";

fn run<F: Float>(elements: usize, calls: usize, steps: usize) -> Result<(), String> {
    if steps == 0 {
        return Err(format!("T = 0: a row needs a step\n{USAGE}"));
    }
    let batch = elements / steps;
    if batch == 0 {
        return Err(format!("T = {steps} exceeds ELEMENTS = {elements}"));
    }
    let BenchSetup { generated, dense } =
        BenchSetup::<F>::new(batch, steps).map_err(|e| e.to_string())?;
    let mut dense = dense;
    let g: Vec<F> = (0..batch).map(|i| F::from_f64(i as f64 + 0.5)).collect();
    // SubTB's windows (random starts and ends), as `bench`'s `dense-write-win` rows.
    let windows = Some(&generated.windows_log_f);
    let cases = [
        (None, Stores::Regular),
        (None, Stores::NonTemporal),
        (windows, Stores::Regular),
        (windows, Stores::NonTemporal),
    ];
    let mut best = [f64::MAX; 4];
    // Each case's calls in a row, not interleaved: a streaming store evicts its line, so a
    // regular write timed after a streaming one would find a buffer that fits the cache cold.
    for (k, (w, stores)) in cases.iter().enumerate() {
        for _ in 0..calls {
            let start = Instant::now();
            fill_dense_with(&generated.batch, *w, &g, dense.as_mut_slice(), *stores);
            best[k] = best[k].min(start.elapsed().as_secs_f64());
        }
    }
    let gbps = best.map(|s| (batch * steps * F::BYTES) as f64 / s / 1e9);
    let choice = |w| match dense_stores(&generated.batch, w) {
        Stores::Regular => "regular",
        Stores::NonTemporal => "streaming",
    };
    println!(
        "{} B {batch} T {steps}: rows regular {:.1} streaming {:.1} GB/s (chosen: {}); \
         windows regular {:.1} streaming {:.1} GB/s (chosen: {})",
        F::NAME,
        gbps[0],
        gbps[1],
        choice(None),
        gbps[2],
        gbps[3],
        choice(windows),
    );
    Ok(())
}

fn parse(args: &[String]) -> Result<(), String> {
    let [elements, calls, steps] = args else {
        return Err(USAGE.into());
    };
    let number = |what: &str, s: &str| {
        s.parse::<usize>()
            .map_err(|e| format!("{what} {s:?}: {e}\n{USAGE}"))
    };
    let elements = number("ELEMENTS", elements)?;
    let calls = number("CALLS", calls)?.max(1);
    for t in steps.split(',') {
        let t = number("T", t)?;
        run::<f32>(elements, calls, t)?;
        run::<f64>(elements, calls, t)?;
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match parse(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

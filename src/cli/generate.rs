//! `generate`: write a reproducible random layered DAG as a spec (for benchmarks and the
//! sympy reference).
use crate::dag::generate::{layered, Shape};
use crate::dag::spec::{validate, MAX_SPEC_BYTES};
use crate::exact::parse_rational;
use crate::input::{in_range, product, LimitError};
use clap::Args;
use std::path::PathBuf;

/// Arguments of `generate`.
#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Inner layers between the source and the terminals.
    #[arg(long, default_value_t = 10)]
    pub layers: usize,
    /// States per inner layer.
    #[arg(long, default_value_t = 100)]
    pub width: usize,
    /// Children per state.
    #[arg(long, default_value_t = 10)]
    pub fan_out: usize,
    /// Terminal states.
    #[arg(long, default_value_t = 50)]
    pub terminals: usize,
    /// Percentage of children drawn from the layer after next (skip edges).
    #[arg(long, default_value_t = 20)]
    pub skip_percent: u32,
    /// β as a rational string.
    #[arg(long, default_value = "2")]
    pub beta: String,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Priors and posteriors: random integer weights `1..=max-weight`, normalised.
    #[arg(long, default_value_t = 4)]
    pub max_weight: i64,
    /// Rewards `n/d`: `n` in `1..=reward-numerator`.
    #[arg(long, default_value_t = 9)]
    pub reward_numerator: i64,
    /// Rewards `n/d`: `d` in `1..=reward-denominator`.
    #[arg(long, default_value_t = 4)]
    pub reward_denominator: i64,
    /// Children of the source (default: `--fan-out`).
    #[arg(long)]
    pub source_fan_out: Option<usize>,
    /// Give every state a parent in the previous layer (no state dropped as unreachable).
    #[arg(long)]
    pub cover: bool,
    /// The DAGs of issue 12 (many paths, many primes): the source feeds the whole first
    /// layer, `--terminals` = `--width`, weights 1–9, rewards n/d with n ≤ 40, d ≤ 12, no skip
    /// edges, every state covered; `--layers 7 --width 20 --fan-out 3` has 440 edges. Overrides
    /// the options above.
    #[arg(long)]
    pub many_primes: bool,
    /// Output file (default: standard output).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Most edges `generate` writes: what a spec file of [`MAX_SPEC_BYTES`] holds at 100 bytes
/// of TOML an edge (so that `verify` reads whatever `generate` writes).
pub const MAX_GENERATED_EDGES: u64 = MAX_SPEC_BYTES / 100;

/// Most children per state: choosing distinct children is quadratic in the fan-out.
pub const MAX_FAN_OUT: u64 = 1_000;

/// Checks the arguments before anything is generated: counts of states and edges computed with
/// checked products, the edges bounded by [`MAX_GENERATED_EDGES`].
pub fn check(args: &GenerateArgs) -> Result<u64, LimitError> {
    in_range(
        "--width",
        args.width as u64,
        1,
        MAX_GENERATED_EDGES,
        "states per layer",
    )?;
    in_range(
        "--terminals",
        args.terminals as u64,
        1,
        MAX_GENERATED_EDGES,
        "terminal states",
    )?;
    in_range(
        "--fan-out",
        args.fan_out as u64,
        1,
        MAX_FAN_OUT,
        "children per state",
    )?;
    in_range(
        "--layers",
        args.layers as u64,
        0,
        MAX_GENERATED_EDGES,
        "inner layers",
    )?;
    in_range(
        "--skip-percent",
        args.skip_percent as u64,
        0,
        100,
        "a percentage",
    )?;
    let (layers, width) = (args.layers as u64, args.width as u64);
    let inner = product(
        "the size of the DAG",
        &[("--layers", layers), ("--width", width)],
    )?;
    let children = (args.fan_out as u64).min(width.max(args.terminals as u64));
    let edges = product(
        "the size of the DAG",
        &[
            ("states with children", inner + 1),
            ("children each", children),
        ],
    )?;
    if edges > MAX_GENERATED_EDGES {
        return Err(LimitError::OutOfRange {
            arg: "--layers × --width × --fan-out".into(),
            value: format!("{edges} edges"),
            reason: format!(
                "at most {MAX_GENERATED_EDGES} edges (what a {} MiB spec file holds)",
                MAX_SPEC_BYTES >> 20
            ),
        });
    }
    Ok(edges)
}

/// Runs `generate`; returns the exit code.
pub fn run(args: &GenerateArgs) -> u8 {
    if let Err(e) = check(args) {
        eprintln!("error: {e}");
        return super::EXIT_BAD_INPUT;
    }
    let beta = match parse_rational(&args.beta) {
        Ok(b) => b,
        Err(m) => {
            eprintln!("error: --beta: {m}");
            return super::EXIT_BAD_INPUT;
        }
    };
    let shape = if args.many_primes {
        Shape::many_primes(args.layers, args.width, args.fan_out, beta)
    } else {
        Shape {
            layers: args.layers,
            width: args.width,
            terminals: args.terminals,
            fan_out: args.fan_out,
            skip_percent: args.skip_percent,
            beta,
            posteriors: true,
            max_weight: args.max_weight,
            reward_numerator: args.reward_numerator,
            reward_denominator: args.reward_denominator,
            source_fan_out: args.source_fan_out,
            cover: args.cover,
        }
    };
    let spec = layered(&shape, args.seed);
    let env = match validate(&spec, "generated") {
        Ok(env) => env,
        Err(e) => {
            eprintln!("error: {e}");
            return super::EXIT_BAD_INPUT;
        }
    };
    let text = env.to_toml();
    match &args.out {
        Some(path) => {
            if let Err(e) = std::fs::write(path, text) {
                eprintln!("error: {}: cannot write: {e}", path.display());
                return super::EXIT_BAD_INPUT;
            }
            eprintln!(
                "wrote {}: {} states, {} edges, {} terminals",
                path.display(),
                env.states.len(),
                env.edges.len(),
                env.terminals().len()
            );
        }
        None => print!("{text}"),
    }
    super::EXIT_HOLDS
}

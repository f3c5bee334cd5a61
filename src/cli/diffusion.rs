//! `diffusion`: the paper's continuous experiment (DESIGN §8, issue 15): fine-tune a 2D
//! diffusion prior (25 Gaussians) toward the 9-mode target with RTB, Trust-PCL and the RL
//! baselines, every metric against the exact target.
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use std::path::{Path, PathBuf};

use crate::continuous::methods::Method;
use crate::continuous::network::PisNet;
use crate::continuous::prior::pretrain;
use crate::continuous::run::{markdown_table, summarise, train, Config, RunResult, Summary};
use crate::continuous::target::Mixture;
use crate::continuous::{metrics, ContinuousError};
use rand::SeedableRng;

/// Arguments of `diffusion`.
#[derive(Debug, Args)]
pub struct DiffusionArgs {
    /// The quick preset (the paper's model and batch, 600 iterations, a prior trained 1500
    /// iterations): minutes per method on 2 cores.
    #[arg(long)]
    pub quick: bool,
    /// Number of seeds (0, 1, …; default 5, or 1 with `--quick`).
    #[arg(long)]
    pub seeds: Option<u64>,
    /// Comma-separated methods (default: all): rtb, trust-pcl, trust-pcl-window, rl,
    /// rl-corrected, rl-corrected-offpolicy.
    #[arg(long, value_delimiter = ',')]
    pub methods: Option<Vec<String>>,
    /// Override the fine-tuning iterations (the exploration schedule is rescaled).
    #[arg(long)]
    pub iterations: Option<usize>,
    /// Override the batch size.
    #[arg(long)]
    pub batch: Option<usize>,
    /// Override the number of Euler–Maruyama steps (default 100; for tests and timing).
    #[arg(long)]
    pub steps: Option<usize>,
    /// Override the hidden width of the networks (default 64; for tests and timing).
    #[arg(long)]
    pub hidden: Option<usize>,
    /// Override the prior's pretraining iterations.
    #[arg(long)]
    pub prior_iterations: Option<usize>,
    /// Use the paper's own prior: its PyTorch checkpoint `rtb_diffusion/pretrained/prior.pt`
    /// (width 64, 100 steps).
    #[arg(long, conflicts_with = "prior")]
    pub torch_prior: Option<PathBuf>,
    /// Override the prior's pretraining batch size.
    #[arg(long)]
    pub prior_batch: Option<usize>,
    /// Override the prior's pretraining learning rate.
    #[arg(long)]
    pub prior_lr: Option<f64>,
    /// Override the policy's Adam learning rate.
    #[arg(long)]
    pub lr: Option<f64>,
    /// Load the prior from this safetensors file instead of training (or reusing the cached
    /// one in `--out`).
    #[arg(long)]
    pub prior: Option<PathBuf>,
    /// κ of the flawed `rl` baseline.
    #[arg(long)]
    pub kappa: Option<f64>,
    /// Window length of `trust-pcl-window` (must divide the number of steps).
    #[arg(long)]
    pub window: Option<usize>,
    /// Evaluate along training every this many iterations (0: final only).
    #[arg(long)]
    pub eval_every: Option<usize>,
    /// Samples of the final evaluation and the plots.
    #[arg(long)]
    pub eval_samples: Option<usize>,
    /// Compute in f64 (default f32, as the paper's PyTorch code).
    #[arg(long)]
    pub f64: bool,
    /// Split each batch into this many shards, sampled and differentiated in parallel
    /// (default 2; results depend on it, not on the number of threads).
    #[arg(long)]
    pub shards: Option<usize>,
    /// Output directory (results.json, table.md, samples.png, curves.png, the prior).
    #[arg(long, default_value = "diffusion-out")]
    pub out: PathBuf,
    /// Print the summary as JSON (no progress bar).
    #[arg(long)]
    pub json: bool,
}

/// The configuration, methods and seeds from the arguments.
pub fn config(args: &DiffusionArgs) -> Result<(Config, Vec<Method>, u64), String> {
    let mut cfg = if args.quick {
        Config::quick()
    } else {
        Config::full()
    };
    if let Some(v) = args.iterations {
        if v == 0 {
            return Err("--iterations must be positive".into());
        }
        cfg.iterations = v;
        if args.eval_every.is_none() {
            cfg.eval_every = (v / 6).max(1);
        }
    }
    if let Some(v) = args.batch {
        cfg.batch = v;
    }
    if let Some(v) = args.steps {
        cfg.steps = v;
    }
    if let Some(v) = args.hidden {
        cfg.hidden = v;
        cfg.prior.hidden = v;
    }
    if let Some(v) = args.prior_iterations {
        cfg.prior.iterations = v;
    }
    if let Some(v) = args.prior_batch {
        cfg.prior.batch = v;
    }
    if let Some(v) = args.prior_lr {
        cfg.prior.lr = v;
    }
    if let Some(v) = args.lr {
        cfg.lr = v;
    }
    if let Some(v) = args.kappa {
        cfg.kappa = v;
    }
    if let Some(v) = args.window {
        cfg.window = v;
    }
    if let Some(v) = args.eval_every {
        cfg.eval_every = v;
    }
    if let Some(v) = args.eval_samples {
        cfg.eval_samples = v;
    }
    cfg.f64 = args.f64;
    if let Some(v) = args.shards {
        cfg.shards = v;
    }
    cfg.validate().map_err(|e| e.to_string())?;
    let seeds = args.seeds.unwrap_or(if args.quick { 1 } else { 5 });
    if seeds == 0 {
        return Err("--seeds must be at least 1".into());
    }
    let methods = match &args.methods {
        None => Method::ALL.to_vec(),
        Some(list) => {
            let mut out = Vec::new();
            for name in list {
                let m = Method::parse(name).map_err(|e| e.to_string())?;
                if !out.contains(&m) {
                    out.push(m);
                }
            }
            out
        }
    };
    Ok((cfg, methods, seeds))
}

/// The prior: loaded from `--prior`, or from the cache in `out`, or trained (and cached).
fn obtain_prior(
    cfg: &Config,
    args: &DiffusionArgs,
) -> Result<(PisNet, Option<Vec<f64>>, PathBuf), ContinuousError> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(cfg.prior.seed);
    let shell = PisNet::new(cfg.hidden, 2, cfg.dtype(), &mut rng)?;
    if let Some(p) = &args.torch_prior {
        if !p.is_file() {
            return Err(ContinuousError::BadInput(format!(
                "--torch-prior {}: no such file",
                p.display()
            )));
        }
        shell.load_torch(p)?;
        return Ok((shell, None, p.clone()));
    }
    if let Some(p) = &args.prior {
        if !p.is_file() {
            return Err(ContinuousError::BadInput(format!(
                "--prior {}: no such file",
                p.display()
            )));
        }
        shell.load(p)?;
        return Ok((shell, None, p.clone()));
    }
    let cache = args.out.join(format!(
        "prior-T{}-H{}-it{}-b{}-lr{}-seed{}.safetensors",
        cfg.steps, cfg.hidden, cfg.prior.iterations, cfg.prior.batch, cfg.prior.lr, cfg.prior.seed
    ));
    if cache.is_file() {
        shell.load(&cache)?;
        return Ok((shell, None, cache));
    }
    let bar = bar(args.json, cfg.prior.iterations as u64, "prior (ML)");
    let (net, losses) = pretrain(&cfg.prior, &cfg.sde(), cfg.dtype(), |_, loss| {
        bar.set_message(format!("prior (ML) −log p = {loss:.2}"));
        bar.inc(1);
    })?;
    bar.finish_and_clear();
    net.save(&cache)?;
    Ok((net, Some(losses), cache))
}

fn bar(hidden: bool, len: u64, msg: &str) -> ProgressBar {
    if hidden {
        return ProgressBar::hidden();
    }
    let b = ProgressBar::new(len);
    if let Ok(style) =
        ProgressStyle::with_template("{msg:40} [{bar:30}] {pos}/{len} {per_sec} eta {eta}")
    {
        b.set_style(style.progress_chars("=> "));
    }
    b.set_message(msg.to_string());
    b
}

/// What `results.json` holds.
#[derive(serde::Serialize)]
struct Output<'a> {
    config: &'a Config,
    methods: Vec<&'static str>,
    seeds: u64,
    prior_file: String,
    prior_losses_tail: Option<Vec<f64>>,
    prior_quality: PriorQuality,
    summary: &'a [Summary],
    runs: &'a [RunResult],
    threads: usize,
}

/// How well the pretrained prior matches the 25-mode mixture.
#[derive(Debug, Clone, serde::Serialize)]
struct PriorQuality {
    samples: usize,
    mode_tv_to_uniform: f64,
    mode_tv_floor: f64,
    energy_distance: f64,
    energy_floor: f64,
}

fn prior_quality(
    cfg: &Config,
    prior: &PisNet,
) -> Result<(PriorQuality, Vec<[f64; 2]>), ContinuousError> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0xB1A5);
    let n = cfg.eval_samples;
    let xs = cfg.sde().sample(prior, n, 0.0, &mut rng)?.terminals();
    let mix = Mixture::prior25();
    let exact = mix.sample(n, &mut rng);
    let exact2 = mix.sample(n, &mut rng);
    let uniform = [1.0 / 25.0; 25];
    Ok((
        PriorQuality {
            samples: n,
            mode_tv_to_uniform: metrics::total_variation(&metrics::lattice_masses(&xs), &uniform),
            mode_tv_floor: metrics::total_variation(&metrics::lattice_masses(&exact2), &uniform),
            energy_distance: metrics::energy_distance(&xs, &exact),
            energy_floor: metrics::energy_distance(&exact2, &exact),
        },
        xs,
    ))
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Runs `diffusion`; returns the exit code.
pub fn run(args: &DiffusionArgs) -> u8 {
    let (cfg, methods, seeds) = match config(args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("diffusion: {e}");
            return super::EXIT_BAD_INPUT;
        }
    };
    if let Err(e) = std::fs::create_dir_all(&args.out) {
        eprintln!("diffusion: cannot create {}: {e}", args.out.display());
        return super::EXIT_BAD_INPUT;
    }
    let (prior, prior_losses, prior_file) = match obtain_prior(&cfg, args) {
        Ok(p) => p,
        Err(e @ ContinuousError::BadInput(_)) => {
            eprintln!("diffusion: {e}");
            return super::EXIT_BAD_INPUT;
        }
        Err(e) => {
            eprintln!("diffusion: {e}");
            return super::EXIT_FAILS;
        }
    };
    let (quality, prior_samples) = match prior_quality(&cfg, &prior) {
        Ok(q) => q,
        Err(e) => {
            eprintln!("diffusion: {e}");
            return super::EXIT_FAILS;
        }
    };
    let mut runs = Vec::new();
    for &m in &methods {
        for seed in 0..seeds {
            let b = bar(
                args.json,
                cfg.iterations as u64,
                &format!("{} seed {seed}", m.name()),
            );
            let r = train(&cfg, &prior, m, seed, |_| b.inc(1));
            b.finish_and_clear();
            match r {
                Ok(r) => {
                    if !args.json {
                        eprintln!(
                            "{} seed {seed}: {:.3} s/iter ({} CPU s/iter, load {}), ELBO {:.3}, mode TV {:.3}, log Z {}",
                            m.name(),
                            r.seconds_per_iteration,
                            r.cpu_seconds_per_iteration
                                .map(|c| format!("{c:.3}"))
                                .unwrap_or_else(|| "—".into()),
                            r.load_average
                                .map(|c| format!("{c:.1}"))
                                .unwrap_or_else(|| "—".into()),
                            r.final_eval.elbo,
                            r.final_eval.mode_tv,
                            r.log_z_learned
                                .map(|z| format!("{z:.3}"))
                                .unwrap_or_else(|| "—".into())
                        );
                    }
                    runs.push(r)
                }
                Err(e) => {
                    eprintln!("diffusion: {} seed {seed}: {e}", m.name());
                    return super::EXIT_FAILS;
                }
            }
        }
    }
    let summary = summarise(&runs);
    let table = markdown_table(&summary);
    let out = Output {
        config: &cfg,
        methods: methods.iter().map(|m| m.name()).collect(),
        seeds,
        prior_file: prior_file.display().to_string(),
        prior_losses_tail: prior_losses.map(|l| l[l.len().saturating_sub(20)..].to_vec()),
        prior_quality: quality.clone(),
        summary: &summary,
        runs: &runs,
        threads: std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
    };
    let json = match serde_json::to_string_pretty(&out) {
        Ok(j) => j,
        Err(e) => {
            eprintln!("diffusion: {e}");
            return super::EXIT_FAILS;
        }
    };
    for (name, text) in [
        ("results.json", json.as_str()),
        ("table.md", table.as_str()),
    ] {
        if let Err(e) = write(&args.out.join(name), text) {
            eprintln!("diffusion: {e}");
            return super::EXIT_BAD_INPUT;
        }
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0x7A6);
    let exact = Mixture::target9().sample(cfg.eval_samples, &mut rng);
    let firsts: Vec<&RunResult> = runs.iter().filter(|r| r.seed == 0).collect();
    let mut pictures = Vec::new();
    for p in [
        crate::continuous::plots::write_samples(&args.out, &exact, &prior_samples, &firsts),
        crate::continuous::plots::write_curves(&args.out, &runs),
    ] {
        match p {
            Ok(f) => pictures.push(f),
            Err(e) => eprintln!("diffusion: warning: {e}"),
        }
    }
    if args.json {
        let s = serde_json::json!({
            "config": &cfg,
            "prior_quality": &quality,
            "summary": &summary,
            "out": args.out.display().to_string(),
        });
        println!("{s}");
    } else {
        println!(
            "prior: mode TV to uniform {:.3} (exact-sample floor {:.3}), energy distance {:.4} (floor {:.4})",
            quality.mode_tv_to_uniform,
            quality.mode_tv_floor,
            quality.energy_distance,
            quality.energy_floor
        );
        print!("{table}");
        println!(
            "results in {} ({} pictures)",
            args.out.display(),
            pictures.len()
        );
    }
    super::EXIT_HOLDS
}

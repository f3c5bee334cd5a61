//! `study`: the empirical study (DESIGN §6): fine-tuning a discrete diffusion prior toward a
//! 9-mode target with RTB, Trust-PCL and REINFORCE-KL, every metric exact by DP.
use clap::Args;
use std::path::PathBuf;

use crate::study::behaviour::BEHAVIOUR_NAMES;
use crate::study::run::{json_summary, run_study, StudyConfig, Table};
use crate::study::Method;

/// Arguments of `study`.
#[derive(Debug, Args)]
pub struct StudyArgs {
    /// The small preset (a coarser grid, a smaller budget, 2 seeds): a few minutes on 2 cores.
    #[arg(long)]
    pub quick: bool,
    /// Number of seeds (default: 5, or 2 with `--quick`).
    #[arg(long)]
    pub seeds: Option<usize>,
    /// Comma-separated methods (default: all): rtb, rtb-offpolicy, tpcl, tpcl-windowed,
    /// tpcl-replay, tpcl-replay-windowed, reinforce-kl, reinforce-kl-offpolicy,
    /// flawed-baseline.
    #[arg(long, value_delimiter = ',')]
    pub methods: Option<Vec<String>>,
    /// Behaviour of the main table's off-policy methods (default: mix for rtb-offpolicy and
    /// reinforce-kl-offpolicy, replay for tpcl-replay*): on-policy, mix, mix-source,
    /// tempered, prior, replay (see docs/study.md).
    #[arg(long)]
    pub behaviour: Option<String>,
    /// Loss of the main table's squared-residual methods: square (default), huber:<c>,
    /// cutoff:<c> (relu(½X² − c), the C8 cut-off).
    #[arg(long)]
    pub loss: Option<String>,
    /// Comma-separated tables besides `main` (default: all): behaviours, losses, lr-sweep,
    /// exact; `none` for the main table only.
    #[arg(long, value_delimiter = ',')]
    pub tables: Option<Vec<String>>,
    /// Override the Adam learning rate of log Z / V(s0).
    #[arg(long)]
    pub lr_scalar: Option<f64>,
    /// Override the number of optimizer steps of the preset (sampled and exact runs alike).
    #[arg(long)]
    pub iterations: Option<usize>,
    /// Override the trajectories per optimizer step of the preset.
    #[arg(long)]
    pub batch: Option<usize>,
    /// Override the Adam learning rate of the logits.
    #[arg(long)]
    pub lr: Option<f64>,
    /// Override the Adam learning rate of the windowed methods' V(s).
    #[arg(long)]
    pub lr_values: Option<f64>,
    /// Override the noising stencil radius (in cells) of the preset.
    #[arg(long)]
    pub radius: Option<usize>,
    /// Output directory (results.json, heatmaps, learning curves).
    #[arg(long, default_value = "study-out")]
    pub out: PathBuf,
    /// Print the summary as JSON (no progress bar).
    #[arg(long)]
    pub json: bool,
}

/// Builds the configuration from the arguments.
pub fn config(args: &StudyArgs) -> Result<StudyConfig, String> {
    let mut cfg = if args.quick {
        StudyConfig::quick()
    } else {
        StudyConfig::full()
    };
    if let Some(s) = args.seeds {
        cfg.seeds = s;
    }
    if let Some(i) = args.iterations {
        cfg.train.iterations = i;
        cfg.train.exact_iterations = i;
    }
    if let Some(r) = args.radius {
        cfg.spec.radius = r;
    }
    if let Some(b) = args.batch {
        cfg.train.batch = b;
    }
    if let Some(lr) = args.lr {
        cfg.train.lr = lr;
    }
    if let Some(lr) = args.lr_scalar {
        cfg.train.lr_scalar = lr;
    }
    if let Some(lr) = args.lr_values {
        cfg.train.lr_values = lr;
    }
    if let Some(b) = &args.behaviour {
        if !BEHAVIOUR_NAMES.contains(&b.trim()) {
            return Err(format!(
                "unknown behaviour `{b}` (known: {})",
                BEHAVIOUR_NAMES.join(", ")
            ));
        }
        cfg.behaviour = Some(b.trim().to_string());
    }
    if let Some(l) = &args.loss {
        cfg.loss = Some(l.trim().to_string());
    }
    if let Some(list) = &args.tables {
        let mut tables = vec![Table::Main];
        for name in list {
            let name = name.trim();
            if name == "none" {
                continue;
            }
            let t = Table::from_name(name).ok_or_else(|| {
                format!(
                    "unknown table `{name}` (known: {}, none)",
                    Table::ALL.map(|t| t.name()).join(", ")
                )
            })?;
            if !tables.contains(&t) {
                tables.push(t);
            }
        }
        cfg.tables = tables;
    }
    if let Some(list) = &args.methods {
        let mut methods = Vec::new();
        for name in list {
            let name = name.trim();
            let m = Method::from_name(name).ok_or_else(|| {
                format!(
                    "unknown method {} (known: {})",
                    crate::exact::quote(name),
                    Method::ALL.map(|m| m.name()).join(", ")
                )
            })?;
            if !methods.contains(&m) {
                methods.push(m);
            }
        }
        cfg.methods = methods;
    }
    cfg.validate().map_err(|e| e.to_string())?;
    Ok(cfg)
}

/// Runs `study`; returns the exit code.
pub fn run(args: &StudyArgs) -> u8 {
    let cfg = match config(args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("study: {e}");
            return super::EXIT_BAD_INPUT;
        }
    };
    if let Err(e) = std::fs::create_dir_all(&args.out) {
        eprintln!("study: cannot create {}: {e}", args.out.display());
        return super::EXIT_BAD_INPUT;
    }
    let out = match run_study(&cfg, args.json) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("study: {e}");
            return super::EXIT_FAILS;
        }
    };
    let r = &out.results;
    let path = args.out.join("results.json");
    let text = match serde_json::to_string_pretty(r) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("study: {e}");
            return super::EXIT_FAILS;
        }
    };
    if let Err(e) = std::fs::write(&path, text) {
        eprintln!("study: cannot write {}: {e}", path.display());
        return super::EXIT_BAD_INPUT;
    }
    let pictures = crate::study::plot::write_pictures(&args.out, &out);
    if let Err(e) = &pictures {
        eprintln!("study: warning: {e}");
    }
    if args.json {
        println!("{}", json_summary(r));
    } else {
        let env = &r.environment;
        println!(
            "study: {} terminal cells ({}×{}), {} denoising steps, {} edges, log Z* = {:.3e}",
            env.terminal_cells,
            env.side,
            env.side,
            env.trajectory_len - 1,
            env.edges,
            env.log_z_star
        );
        println!(
            "{:<40} {:>5} {:>20} {:>20} {:>18} {:>18} {:>18}",
            "method", "seeds", "KL(target‖q)", "KL(q‖target)", "TV", "mode mass err", "J gap"
        );
        let pm = &env.prior_metrics;
        println!(
            "{:<40} {:>5} {:>20.4} {:>20.4} {:>18.4} {:>18.4} {:>18.4}",
            "(prior, untrained)",
            "-",
            pm.kl_target_to_model,
            pm.kl_model_to_target,
            pm.tv,
            pm.mode_mass_error,
            pm.j_gap
        );
        let mut last_table = None;
        for m in &r.methods {
            if last_table != Some(m.table) {
                println!("-- table {} --", m.table.name());
                last_table = Some(m.table);
            }
            let f = &m.final_metrics;
            let c = |s: &crate::study::run::MeanStd| format!("{:.4} ± {:.4}", s.mean, s.std);
            let name = &m.name;
            println!(
                "{:<40} {:>5} {:>20} {:>20} {:>18} {:>18} {:>18}",
                name,
                m.seeds,
                c(&f.kl_target_to_model),
                c(&f.kl_model_to_target),
                c(&f.tv),
                c(&f.mode_mass_error),
                c(&f.j_gap)
            );
        }
        println!("results in {} ({:.1} s)", path.display(), r.seconds);
        if let Ok(files) = &pictures {
            println!("{} pictures in {}", files.len(), args.out.display());
        }
    }
    super::EXIT_HOLDS
}

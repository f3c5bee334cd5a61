//! The study: configurations, every (method, seed) run in parallel, aggregation, results.
use rayon::prelude::*;
use serde::Serialize;
use std::time::Instant;

use super::behaviour::{Behaviour, BEHAVIOUR_NAMES};
use super::diffusion::{DiffusionDag, DiffusionSpec};
use super::metrics::{occupancy, Metrics, Reference, METRIC_NAMES};
use super::train::{train, Method, RunResult, RunSpec, TrainConfig};
use super::StudyError;
use crate::objectives::robust::Robust;
use crate::progress::Progress;

/// Everything that defines one study.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StudyConfig {
    /// Whether this is the `--quick` preset (or derived from it).
    pub quick: bool,
    /// The DAG.
    pub spec: DiffusionSpec,
    /// Training hyper-parameters (shared by every method).
    pub train: TrainConfig,
    /// Seeds `0..seeds`.
    pub seeds: usize,
    /// Methods of the main table, in report order.
    #[serde(serialize_with = "method_names")]
    pub methods: Vec<Method>,
    /// Behaviour of the main table's off-policy methods (`None`: each method's default).
    pub behaviour: Option<String>,
    /// Loss of the main table's squared-residual methods (`None`: the square).
    pub loss: Option<String>,
    /// The tables to run besides `main` (see [`Table`]).
    pub tables: Vec<Table>,
    /// Seeds of the learning-rate sweep (`0..sweep_seeds`).
    pub sweep_seeds: usize,
    /// The `log Z` / `V(s0)` learning rates of the sweep (besides `train.lr_scalar`).
    pub sweep_rates: Vec<f64>,
    /// The windowed methods' `V(s)` learning rates of the sweep (besides `train.lr_values`).
    pub sweep_value_rates: Vec<f64>,
    /// Huber threshold and cut-off of the loss table.
    pub huber: String,
    /// The cut-off of the loss table (`relu(½X² − c)`).
    pub cutoff: String,
}

/// The study's tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Table {
    /// Every method with its default behaviour and the square loss.
    Main,
    /// `rtb-offpolicy` and `reinforce-kl-offpolicy` under every other behaviour.
    Behaviours,
    /// Huber and cut-off losses on the squared-residual methods.
    Losses,
    /// The `log Z` / `V(s0)` learning-rate sweep.
    LrSweep,
    /// Exact expected-gradient dynamics (one deterministic run each).
    Exact,
}

impl Table {
    /// Every table, in report order.
    pub const ALL: [Table; 5] = [
        Table::Main,
        Table::Behaviours,
        Table::Losses,
        Table::LrSweep,
        Table::Exact,
    ];
    /// The name (`main`, `behaviours`, `losses`, `lr-sweep`, `exact`).
    pub fn name(self) -> &'static str {
        match self {
            Table::Main => "main",
            Table::Behaviours => "behaviours",
            Table::Losses => "losses",
            Table::LrSweep => "lr-sweep",
            Table::Exact => "exact",
        }
    }
    /// The table of a name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.name() == name)
    }
}

/// One row of a table: what is trained, and over how many seeds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Variant {
    /// The table.
    pub table: Table,
    /// The run.
    pub spec: RunSpec,
    /// Seeds `0..seeds`.
    pub seeds: usize,
}

fn method_names<S: serde::Serializer>(m: &[Method], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(m.iter().map(|m| m.name()))
}

impl StudyConfig {
    /// The full study: 41×41 cells of 0.6 on `[−12, 12]²` (1681 terminal cells), 8 denoising
    /// steps with a 3×3 stencil, 5 seeds, every method.
    pub fn full() -> Self {
        Self {
            quick: false,
            spec: DiffusionSpec {
                half_width: 12.0,
                cell: 0.6,
                steps: 8,
                radius: 1,
            },
            train: TrainConfig {
                iterations: 3000,
                exact_iterations: 3000,
                batch: 256,
                lr: 0.02,
                lr_scalar: 0.2,
                lr_values: 0.05,
                exploration: 0.05,
                temperature: 2.0,
                replay_fresh: 0.5,
                replay_capacity: 10_000,
                kappa: 1.0,
                eval_every: 100,
            },
            seeds: 5,
            methods: Method::ALL.to_vec(),
            behaviour: None,
            loss: None,
            tables: Table::ALL.to_vec(),
            sweep_seeds: 3,
            sweep_rates: vec![0.02, 0.05, 0.5],
            sweep_value_rates: vec![0.02, 0.2, 0.5],
            huber: "huber:5".into(),
            cutoff: "cutoff:1/2".into(),
        }
    }

    /// The quick study: 33×33 cells of 0.75 (1089 terminal cells), the same 8 steps and
    /// stencil, a smaller budget (3200 steps × 128 trajectories; 1600 exact steps), 2 seeds.
    /// At 1600 × 128 the tempered and replay rows were still falling, short of 2× below the
    /// flawed baseline (docs/study.md, "The quick preset").
    pub fn quick() -> Self {
        Self {
            quick: true,
            spec: DiffusionSpec {
                half_width: 12.0,
                cell: 0.75,
                steps: 8,
                radius: 1,
            },
            train: TrainConfig {
                iterations: 3200,
                exact_iterations: 1600,
                batch: 128,
                eval_every: 100,
                replay_capacity: 5_000,
                ..Self::full().train
            },
            seeds: 2,
            sweep_seeds: 2,
            ..Self::full()
        }
    }

    /// Refuses configurations that cannot run.
    pub fn validate(&self) -> Result<(), StudyError> {
        self.spec.validate()?;
        self.train.validate()?;
        if self.seeds == 0 || self.seeds > 1000 {
            return Err(StudyError::Config(format!(
                "seeds {} must be in 1..=1000",
                self.seeds
            )));
        }
        if self.methods.is_empty() {
            return Err(StudyError::Config("no method selected".into()));
        }
        if self.sweep_seeds == 0 || self.sweep_seeds > 1000 {
            return Err(StudyError::Config(format!(
                "sweep seeds {} must be in 1..=1000",
                self.sweep_seeds
            )));
        }
        for v in self.variants()? {
            v.spec.validate()?;
        }
        Ok(())
    }

    fn robust(text: &str) -> Result<Robust, StudyError> {
        Robust::parse(text).map_err(|e| StudyError::Config(e.to_string()))
    }

    /// Every row of every selected table, in report order.
    pub fn variants(&self) -> Result<Vec<Variant>, StudyError> {
        let train = &self.train;
        let params = train.behaviour_params();
        let mut out = Vec::new();
        let selected = |m: Method| self.methods.contains(&m);
        let with = |m: Method, behaviour: &str, loss: Robust| -> Result<RunSpec, StudyError> {
            let mut spec = RunSpec::default_for(m, train)?;
            spec.behaviour = Behaviour::from_name(behaviour, &params)?;
            spec.loss = loss;
            Ok(spec)
        };
        for &m in &self.methods {
            let mut spec = RunSpec::default_for(m, train)?;
            if let (Some(b), true) = (&self.behaviour, m.off_policy()) {
                spec.behaviour = Behaviour::from_name(b, &params)?;
            }
            if let (Some(l), true) = (&self.loss, m.squared_residual()) {
                spec.loss = Self::robust(l)?;
            }
            out.push(Variant {
                table: Table::Main,
                spec,
                seeds: self.seeds,
            });
        }
        let tables = |t: Table| self.tables.contains(&t);
        if tables(Table::Behaviours) {
            for m in [Method::RtbOffPolicy, Method::ReinforceKlOffPolicy] {
                if !selected(m) {
                    continue;
                }
                for b in BEHAVIOUR_NAMES {
                    let main = self.behaviour.as_deref().unwrap_or(m.default_behaviour());
                    if b == "on-policy" || b == main {
                        continue;
                    }
                    out.push(Variant {
                        table: Table::Behaviours,
                        spec: with(m, b, Robust::Square)?,
                        seeds: self.seeds,
                    });
                }
            }
        }
        if tables(Table::Losses) {
            let rows: [(Method, Option<&str>); 4] = [
                (Method::Rtb, None),
                (Method::RtbOffPolicy, None),
                (Method::RtbOffPolicy, Some("mix-source")),
                (Method::TpclWindowed, None),
            ];
            for loss in [&self.huber, &self.cutoff] {
                for (m, b) in rows {
                    if !selected(m) {
                        continue;
                    }
                    let b = b.unwrap_or(m.default_behaviour());
                    out.push(Variant {
                        table: Table::Losses,
                        spec: with(m, b, Self::robust(loss)?)?,
                        seeds: self.seeds,
                    });
                }
            }
        }
        if tables(Table::LrSweep) {
            // (method, its swept rates, whether the rate is V(s)'s rather than log Z's).
            let rows = [
                (Method::Rtb, &self.sweep_rates, false),
                (Method::RtbOffPolicy, &self.sweep_rates, false),
                (Method::TpclWindowed, &self.sweep_value_rates, true),
            ];
            for (m, rates, values) in rows {
                if !selected(m) {
                    continue;
                }
                for &lr in rates {
                    let mut spec = RunSpec::default_for(m, train)?;
                    if values {
                        spec.lr_values = lr;
                    } else {
                        spec.lr_scalar = lr;
                    }
                    out.push(Variant {
                        table: Table::LrSweep,
                        spec,
                        seeds: self.sweep_seeds,
                    });
                }
            }
        }
        if tables(Table::Exact) {
            let rows: [(Method, &str); 9] = [
                (Method::Rtb, "on-policy"),
                (Method::Tpcl, "on-policy"),
                (Method::ReinforceKl, "on-policy"),
                (Method::FlawedBaseline, "on-policy"),
                (Method::RtbOffPolicy, "mix"),
                (Method::RtbOffPolicy, "mix-source"),
                (Method::RtbOffPolicy, "tempered"),
                (Method::RtbOffPolicy, "prior"),
                (Method::TpclReplay, "mix-source"),
            ];
            for (m, b) in rows {
                if !selected(m) {
                    continue;
                }
                let mut spec = with(m, b, Robust::Square)?;
                spec.exact = true;
                out.push(Variant {
                    table: Table::Exact,
                    spec,
                    seeds: 1,
                });
            }
        }
        Ok(out)
    }
}

/// Mean and sample standard deviation over seeds (std 0 for one seed).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct MeanStd {
    /// Mean.
    pub mean: f64,
    /// Sample standard deviation (`n − 1` in the denominator).
    pub std: f64,
}

impl MeanStd {
    /// Of a nonempty sample.
    pub fn of(xs: &[f64]) -> Self {
        let n = xs.len() as f64;
        let mean = xs.iter().sum::<f64>() / n;
        let std = if xs.len() > 1 {
            (xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
        } else {
            0.0
        };
        Self { mean, std }
    }
}

/// The final metrics of a method over seeds.
#[derive(Debug, Clone, Serialize)]
pub struct FinalMetrics {
    /// `KL(target ‖ q)`.
    pub kl_target_to_model: MeanStd,
    /// `KL(q ‖ target)`.
    pub kl_model_to_target: MeanStd,
    /// Total variation.
    pub tv: MeanStd,
    /// `Σ_m |q(basin m) − w_m|`.
    pub mode_mass_error: MeanStd,
    /// `α log Z* − J(q)`.
    pub j_gap: MeanStd,
    /// `J(q)`.
    pub j: MeanStd,
    /// `q(basin m)` per target mode.
    pub mode_mass: Vec<MeanStd>,
}

/// One metric's learning curve over seeds.
#[derive(Debug, Clone, Serialize)]
pub struct CurveStats {
    /// The metric's name.
    pub metric: &'static str,
    /// Mean over seeds at each point.
    pub mean: Vec<f64>,
    /// Sample std over seeds at each point.
    pub std: Vec<f64>,
}

/// A method's learning curves.
#[derive(Debug, Clone, Serialize)]
pub struct Curves {
    /// Optimizer steps at each point.
    pub iteration: Vec<usize>,
    /// Trajectories consumed at each point.
    pub trajectories: Vec<usize>,
    /// One entry per metric of [`METRIC_NAMES`].
    pub metrics: Vec<CurveStats>,
}

/// One seed's final numbers.
#[derive(Debug, Clone, Serialize)]
pub struct SeedSummary {
    /// The seed.
    pub seed: u64,
    /// Final exact metrics.
    pub metrics: Metrics,
    /// Final `log Z` / `V(s0)` where the method learns one.
    pub scalar: Option<f64>,
}

/// A table row's results.
#[derive(Debug, Clone, Serialize)]
pub struct MethodSummary {
    /// The row's label ([`RunSpec::label`]: `rtb`, `rtb-offpolicy[mix-source,huber:5]`, …).
    pub name: String,
    /// The table.
    pub table: Table,
    /// The method's name.
    pub method: &'static str,
    /// The behaviour's name.
    pub behaviour: &'static str,
    /// The loss's name.
    pub loss: String,
    /// The `log Z` / `V(s0)` learning rate.
    pub lr_scalar: f64,
    /// The windowed methods' `V(s)` learning rate.
    pub lr_values: f64,
    /// Exact expected gradients instead of samples.
    pub exact: bool,
    /// The per-method choices.
    pub description: &'static str,
    /// Number of seeds.
    pub seeds: usize,
    /// Final metrics, mean ± std over seeds.
    pub final_metrics: FinalMetrics,
    /// Learning curves, mean ± std over seeds.
    pub curves: Curves,
    /// Per-seed final numbers.
    pub runs: Vec<SeedSummary>,
    /// Wall-clock seconds of this method's runs, summed over seeds.
    pub seconds: f64,
}

/// Facts about the environment and its exactness checks.
#[derive(Debug, Clone, Serialize)]
pub struct EnvironmentSummary {
    /// Terminal cells `N`.
    pub terminal_cells: usize,
    /// Cells per side.
    pub side: usize,
    /// Non-terminal states.
    pub states: usize,
    /// Edges (= tabular logits).
    pub edges: usize,
    /// Edges per trajectory.
    pub trajectory_len: usize,
    /// `log Z*` by backward induction.
    pub log_z_star: f64,
    /// `max_x |prior marginal(x) − discretized 25-mode mixture(x)|` (forward DP of `p`).
    pub prior_marginal_error: f64,
    /// `max_x |q* marginal(x) − discretized 9-mode mixture(x)|` (forward DP of `q*`).
    pub target_marginal_error: f64,
    /// The metrics of the untrained prior `q = p`.
    pub prior_metrics: Metrics,
}

/// The whole study's results (`results.json`).
#[derive(Debug, Clone, Serialize)]
pub struct StudyResults {
    /// The configuration.
    pub config: StudyConfig,
    /// The environment.
    pub environment: EnvironmentSummary,
    /// Number of target modes (9).
    pub target_modes: usize,
    /// Number of terminal cells.
    pub terminal_cells: usize,
    /// One entry per method, in the configuration's order.
    pub methods: Vec<MethodSummary>,
    /// Wall-clock seconds of the whole study (before pictures).
    pub seconds: f64,
}

/// The study's results and what the pictures need.
#[derive(Debug, Clone)]
pub struct StudyOutput {
    /// The results.
    pub results: StudyResults,
    /// The DAG.
    pub dag: DiffusionDag,
    /// The target.
    pub reference: Reference,
    /// The first seed's final terminal marginal of each main-table row, in order.
    pub marginals: Vec<(String, Vec<f64>)>,
}

fn max_abs_diff(a: &[f64], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

/// Runs every (method, seed), in parallel, with a progress bar unless `quiet`.
pub fn run_study(cfg: &StudyConfig, quiet: bool) -> Result<StudyOutput, StudyError> {
    cfg.validate()?;
    let started = Instant::now();
    let dag = DiffusionDag::new(cfg.spec)?;
    let reference = Reference::new(&dag);
    let prior: Vec<f64> = dag.log_p().iter().map(|l| l.exp()).collect();
    let prior_occ = occupancy(&dag, &prior)?;
    let target_occ = occupancy(&dag, &reference.q_star)?;
    let environment = EnvironmentSummary {
        terminal_cells: dag.cells(),
        side: dag.grid().side(),
        states: dag.states(),
        edges: dag.edges(),
        trajectory_len: dag.trajectory_len(),
        log_z_star: reference.log_z_star,
        prior_marginal_error: max_abs_diff(&prior_occ.terminal, dag.prior_pmf()),
        target_marginal_error: max_abs_diff(&target_occ.terminal, dag.target_pmf()),
        prior_metrics: reference.metrics(&dag, &prior)?,
    };

    let variants = cfg.variants()?;
    let jobs: Vec<(usize, u64)> = variants
        .iter()
        .enumerate()
        .flat_map(|(k, v)| (0..v.seeds as u64).map(move |s| (k, s)))
        .collect();
    let total_steps: usize = jobs
        .iter()
        .map(|&(k, _)| {
            if variants[k].spec.exact {
                cfg.train.exact_iterations
            } else {
                cfg.train.iterations
            }
        })
        .sum();
    let pb = if quiet {
        Progress::hidden()
    } else {
        let pb = Progress::stderr("study (steps)", total_steps as u64);
        pb.set_message(format!("{} rows, {} runs", variants.len(), jobs.len()));
        pb
    };
    let tick = || pb.inc(1);
    let runs: Vec<(usize, RunResult, f64)> = jobs
        .par_iter()
        .with_max_len(1)
        .map(|&(k, seed)| {
            let t0 = Instant::now();
            let r = train(&dag, &reference, &variants[k].spec, &cfg.train, seed, &tick);
            r.map(|r| (k, r, t0.elapsed().as_secs_f64()))
        })
        .collect::<Result<_, _>>()?;
    pb.finish_and_clear();

    let mut methods = Vec::new();
    let mut marginals = Vec::new();
    for (k, v) in variants.iter().enumerate() {
        let mine: Vec<(&RunResult, f64)> = runs
            .iter()
            .filter(|(j, _, _)| *j == k)
            .map(|(_, r, s)| (r, *s))
            .collect();
        methods.push(summarize(v, &mine));
        if let (Some((r, _)), Table::Main) = (mine.first(), v.table) {
            marginals.push((v.spec.label(), r.terminal.clone()));
        }
    }
    let results = StudyResults {
        config: cfg.clone(),
        terminal_cells: environment.terminal_cells,
        environment,
        target_modes: reference.mode_weights.len(),
        methods,
        seconds: started.elapsed().as_secs_f64(),
    };
    Ok(StudyOutput {
        results,
        dag,
        reference,
        marginals,
    })
}

fn summarize(v: &Variant, runs: &[(&RunResult, f64)]) -> MethodSummary {
    let finals: Vec<&Metrics> = runs
        .iter()
        .map(|(r, _)| &r.curve.last().expect("a curve has its final point").metrics)
        .collect();
    let stat =
        |f: &dyn Fn(&Metrics) -> f64| MeanStd::of(&finals.iter().map(|x| f(x)).collect::<Vec<_>>());
    let modes = finals.first().map_or(0, |f| f.mode_mass.len());
    let final_metrics = FinalMetrics {
        kl_target_to_model: stat(&|x| x.kl_target_to_model),
        kl_model_to_target: stat(&|x| x.kl_model_to_target),
        tv: stat(&|x| x.tv),
        mode_mass_error: stat(&|x| x.mode_mass_error),
        j_gap: stat(&|x| x.j_gap),
        j: stat(&|x| x.j),
        mode_mass: (0..modes).map(|k| stat(&|x| x.mode_mass[k])).collect(),
    };
    let first = &runs[0].0.curve;
    let points = runs.iter().map(|(r, _)| r.curve.len()).min().unwrap_or(0);
    let metrics = METRIC_NAMES
        .iter()
        .enumerate()
        .map(|(k, &name)| {
            let at: Vec<MeanStd> = (0..points)
                .map(|p| {
                    MeanStd::of(
                        &runs
                            .iter()
                            .map(|(r, _)| r.curve[p].metrics.scalars()[k])
                            .collect::<Vec<_>>(),
                    )
                })
                .collect();
            CurveStats {
                metric: name,
                mean: at.iter().map(|s| s.mean).collect(),
                std: at.iter().map(|s| s.std).collect(),
            }
        })
        .collect();
    let m = v.spec.method;
    let name = match v.table {
        Table::LrSweep if m.windowed() => format!("{} (V lr {})", v.spec.label(), v.spec.lr_values),
        Table::LrSweep => format!("{} (lr {})", v.spec.label(), v.spec.lr_scalar),
        _ => v.spec.label(),
    };
    MethodSummary {
        name,
        table: v.table,
        method: m.name(),
        behaviour: v.spec.behaviour.name(),
        loss: v.spec.loss.name(),
        lr_scalar: v.spec.lr_scalar,
        lr_values: v.spec.lr_values,
        exact: v.spec.exact,
        description: m.description(),
        seeds: runs.len(),
        final_metrics,
        curves: Curves {
            iteration: first[..points].iter().map(|p| p.iteration).collect(),
            trajectories: first[..points].iter().map(|p| p.trajectories).collect(),
            metrics,
        },
        runs: runs
            .iter()
            .map(|(r, _)| SeedSummary {
                seed: r.seed,
                metrics: r.curve.last().expect("final point").metrics.clone(),
                scalar: r.scalar,
            })
            .collect(),
        seconds: runs.iter().map(|(_, s)| s).sum(),
    }
}

/// The `--json` summary, with exactly the keys.
pub fn json_summary(results: &StudyResults) -> serde_json::Value {
    use serde_json::json;
    let ms = |s: &MeanStd| json!({"mean": s.mean, "std": s.std});
    json!({
        "methods": results.methods.iter().map(|m| {
            let f = &m.final_metrics;
            json!({
                "name": m.name,
                "table": m.table,
                "method": m.method,
                "behaviour": m.behaviour,
                "loss": m.loss,
                "lr_scalar": m.lr_scalar,
                "exact": m.exact,
                "seeds": m.seeds,
                "kl_target_to_model": ms(&f.kl_target_to_model),
                "kl_model_to_target": ms(&f.kl_model_to_target),
                "tv": ms(&f.tv),
                "mode_mass_error": ms(&f.mode_mass_error),
                "j_gap": ms(&f.j_gap),
            })
        }).collect::<Vec<_>>(),
        "target_modes": results.target_modes,
        "terminal_cells": results.terminal_cells,
    })
}

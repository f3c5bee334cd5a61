//! What every claim needs about one environment: exact logs, the optimum, enumerations, the
//! active mutant, and the two sides (Trust-PCL and RTB/SubTB) built on any path.
use super::term;
use crate::dag::{self, Environment, LogTable, Optimum};
use crate::exact::{Derivation, ExactError, Poly, Rational, Step, Var};
use crate::mutant::Mutant;
use crate::objectives::{self, rtb, subtb, trust_pcl, Definitions};
use num_traits::{One, Zero};

/// Options of a verification run.
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    /// Enumeration-based checks are refused above this many trajectories.
    pub max_trajectories: u64,
    /// Window enumeration is refused above this many windows.
    pub max_windows: u64,
    /// The wrong variant swapped in, if any.
    pub mutant: Option<Mutant>,
    /// Derivations kept per check in a certificate.
    pub keep: usize,
    /// Time, memory, digits and enumeration cost limits.
    pub budget: super::budget::Budget,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        Self {
            max_trajectories: 100_000,
            max_windows: 200_000,
            mutant: None,
            keep: 2,
            budget: super::budget::Budget::default(),
        }
    }
}

/// One environment prepared for the claims.
pub struct ClaimContext<'a> {
    /// The environment.
    pub env: &'a Environment,
    /// The options.
    pub options: VerifyOptions,
    /// The coprime base and log-forms.
    pub logs: LogTable,
    /// The exact optimum, or why it is not rational.
    pub optimum: Result<Optimum, dag::IrrationalOptimum>,
    /// Every trajectory, or why enumeration was refused.
    pub trajectories: Result<Vec<Vec<usize>>, super::EnumerationSkipped>,
    /// Every window, or why enumeration was refused.
    pub windows: Result<Vec<Vec<usize>>, super::EnumerationSkipped>,
    /// `α = 1/β`.
    pub alpha: Rational,
    /// The objectives, with the run's mutant applied (the one place it is applied).
    pub defs: Definitions,
    log_p: Vec<Poly>,
    log_q: Vec<Poly>,
    log_r: Vec<Option<Poly>>,
    /// The optimum's logs as polynomials (`c5_fixed_point::optimum_polys`).
    pub(crate) optimum_polys: std::sync::OnceLock<Result<OptimumPolys, super::SkipReason>>,
    /// `J(q)` at the spec's q with its steps (computed once, used by C5 and the report).
    pub(crate) j_q: std::sync::OnceLock<(Vec<Step>, Poly)>,
    /// `KL(q ‖ q*)` at the spec's q with its steps.
    pub(crate) kl_q_qstar: std::sync::OnceLock<(Vec<Step>, Poly)>,
    /// C6's two routes at the spec's q (computed once, used by C6 and the report).
    pub(crate) gradients: std::sync::OnceLock<super::c6_expected_gradient::Gradients>,
    /// The flawed baseline's route 1 at `q*`, or why `q*` is not rational (C7 and the report).
    pub(crate) flawed_at_optimum:
        std::sync::OnceLock<Result<super::c6_expected_gradient::RouteOne, super::SkipReason>>,
}

/// The two sides of the identity on one path, with the steps that built them.
pub(crate) struct Sides {
    pub steps: Vec<Step>,
    pub consistency: Poly,
    pub residual: Poly,
}

impl<'a> ClaimContext<'a> {
    /// Prepares an environment: optimum, base, logs, enumerations (each guarded).
    pub fn new(env: &'a Environment, mut options: VerifyOptions) -> Result<Self, ExactError> {
        options.budget = options.budget.restarted();
        let budget = &options.budget;
        budget.check_inputs(env)?;
        budget.check_powers(env)?;
        let optimum = dag::optimum(env);
        if let Ok(o) = &optimum {
            budget.check_digits("Z* = F*(s0)", &o.z)?;
        }
        budget.stop_if_spent()?;
        let logs = LogTable::new(env, optimum.as_ref().ok())?;
        budget.stop_if_spent()?;
        let (trajectories, windows) =
            super::budget::enumerations(env, options.max_trajectories, options.max_windows, budget);
        // Before any claim can start: on all cores.
        use rayon::prelude::*;
        let log_p = logs.log_prior.par_iter().map(Poly::from_logform).collect();
        let log_q = logs
            .log_posterior
            .par_iter()
            .map(Poly::from_logform)
            .collect();
        let log_r = logs
            .log_reward
            .par_iter()
            .map(|r| r.as_ref().map(Poly::from_logform))
            .collect();
        Ok(Self {
            env,
            alpha: env.alpha(),
            defs: Definitions::new(env.beta.clone()).mutated(options.mutant),
            options,
            logs,
            optimum,
            trajectories,
            windows,
            log_p,
            log_q,
            log_r,
            optimum_polys: std::sync::OnceLock::new(),
            j_q: std::sync::OnceLock::new(),
            kl_q_qstar: std::sync::OnceLock::new(),
            gradients: std::sync::OnceLock::new(),
            flawed_at_optimum: std::sync::OnceLock::new(),
        })
    }

    /// ` [mutant: NAME]` or nothing, for derivation headers.
    pub fn mutant_tag(&self) -> String {
        self.options
            .mutant
            .map(|m| format!(" [mutant: {m}]"))
            .unwrap_or_default()
    }

    /// Trust-PCL parameters of the equivalence regime, as the definitions state them.
    pub fn tpcl_params(&self) -> trust_pcl::Params {
        self.defs.tpcl.regularisation.clone()
    }

    /// Where β sits in RTB.
    pub fn beta_placement(&self) -> rtb::BetaPlacement {
        self.defs.rtb.beta
    }

    /// The factor the shared-scalar checks expect (α² in the definitions).
    pub fn shared_factor(&self) -> (Rational, &'static str) {
        let power = self.defs.factors.shared_scalar;
        (power.of(&self.alpha), power.label())
    }

    /// The Trust-PCL loss of a consistency: `½ C²` (or `C²` where the definition drops ½).
    pub fn tpcl_loss(&self, c: &Poly) -> Poly {
        if self.defs.tpcl.half {
            objectives::half_square(c)
        } else {
            objectives::square(c)
        }
    }

    /// `log p(e)` as a polynomial in log atoms.
    pub fn log_p(&self, e: usize) -> &Poly {
        &self.log_p[e]
    }

    /// `log q(e)` of the concrete posterior.
    pub fn log_q_concrete(&self, e: usize) -> &Poly {
        &self.log_q[e]
    }

    /// `log r(x)` of a terminal.
    pub fn log_r(&self, x: usize) -> &Poly {
        self.log_r[x]
            .as_ref()
            .expect("validated environments have a reward on every terminal")
    }

    /// The log-reward paid on edge `e` (`Some` exactly when it enters a terminal).
    pub fn reward_on(&self, e: usize) -> Option<&Poly> {
        let to = self.env.edges[e].to;
        self.env.is_terminal(to).then(|| self.log_r(to))
    }

    /// The free symbol `ℓ_e`.
    pub fn ell(e: usize) -> Poly {
        Poly::var(Var::LogQ(e))
    }

    /// `log F(s)` at the end of a window for SubTB: `β log r(x)` at a terminal (`log r(x)`
    /// under `beta-on-ratio`, whose β sits on the log-ratio), `log_f(s)` elsewhere.
    pub fn log_f_end(&self, s: usize, log_f: &dyn Fn(usize) -> Poly) -> Poly {
        if self.env.is_terminal(s) {
            match self.defs.subtb.beta {
                rtb::BetaPlacement::OnLogRatio => self.log_r(s).clone(),
                rtb::BetaPlacement::OnLogReward => self.log_r(s).scale(&self.env.beta),
            }
        } else {
            log_f(s)
        }
    }

    /// SubTB's weight on the log-ratio: 1 (β under `beta-on-ratio`).
    pub fn ratio_weight(&self) -> Rational {
        match self.defs.subtb.beta {
            rtb::BetaPlacement::OnLogRatio => self.env.beta.clone(),
            rtb::BetaPlacement::OnLogReward => Rational::one(),
        }
    }

    /// The Trust-PCL per-step RL terms of a path, labelled by edge.
    pub fn rl_terms(&self, path: &[usize], ell: &dyn Fn(usize) -> Poly) -> Vec<(String, Poly)> {
        let params = self.tpcl_params();
        let zero = Poly::zero();
        path.iter()
            .map(|&e| {
                let reward = self.reward_on(e).unwrap_or(&zero);
                let rl = trust_pcl::step_term(reward, &ell(e), self.log_p(e), &params);
                term(format!("RL[{}]", self.env.edge_name(e)), rl)
            })
            .collect()
    }

    /// RTB's residual of a path with the free symbols `ℓ_e` and scalar `log_z`: its per-step
    /// terms (`ℓ_t − log p_t`, with `−β log r` on the terminal edge, β where the definitions
    /// place it) summed after `log Z`.
    pub fn rtb_residual(&self, path: &[usize], log_z: &Poly) -> Poly {
        let steps: Vec<Poly> = path
            .iter()
            .map(|&e| {
                rtb::step(
                    &Self::ell(e),
                    self.log_p(e),
                    self.reward_on(e),
                    &self.env.beta,
                    self.beta_placement(),
                )
            })
            .collect();
        rtb::residual(log_z, &steps)
    }

    /// Both sides on a complete trajectory: Trust-PCL `C` from its RL terms with start value
    /// `v_s0` and `V(x) = 0`, and the RTB residual `δ` with `log_z`.
    pub(crate) fn trajectory_sides(
        &self,
        path: &[usize],
        v_s0: &Poly,
        log_z: &Poly,
        ell: &dyn Fn(usize) -> Poly,
    ) -> Sides {
        let params = self.tpcl_params();
        let rl = self.rl_terms(path, ell);
        let rl_values: Vec<Poly> = rl.iter().map(|(_, p)| p.clone()).collect();
        let rl_step = Step::collect(
            "Trust-PCL per-step RL terms r_t − (τ_H+λ)·ℓ_t + λ·log p_t  (γ = 1, τ_H = 0, λ = α)",
            rl,
        );
        let c = trust_pcl::consistency(v_s0, &Poly::zero(), &rl_values, &params);
        let c_step = Step::computed(
            "consistency C = −V(s0) + Σ_t RL_t + V(x)  (V(x) = 0)",
            vec![
                term("−V(s0)", v_s0.neg()),
                term("Σ_t RL_t", rl_step.result.clone()),
                term("V(x)", Poly::zero()),
            ],
            c.clone(),
        );
        let placement = self.beta_placement();
        let rtb_terms: Vec<(String, Poly)> = path
            .iter()
            .map(|&e| {
                let s = rtb::step(
                    &ell(e),
                    self.log_p(e),
                    self.reward_on(e),
                    &self.env.beta,
                    placement,
                );
                term(format!("RTB[{}]", self.env.edge_name(e)), s)
            })
            .collect();
        let rtb_values: Vec<Poly> = rtb_terms.iter().map(|(_, p)| p.clone()).collect();
        let rtb_step = Step::collect(
            match placement {
                rtb::BetaPlacement::OnLogReward => {
                    "RTB per-step terms ℓ_t − log p_t − [t = T−1]·β·log r(x)"
                }
                rtb::BetaPlacement::OnLogRatio => {
                    "RTB per-step terms β·(ℓ_t − log p_t) − [t = T−1]·log r(x)"
                }
            },
            rtb_terms,
        );
        let delta = rtb::residual(log_z, &rtb_values);
        let delta_step = Step::computed(
            "RTB residual δ = logZ + Σ_t RTB_t",
            vec![
                term("logZ", log_z.clone()),
                term("Σ_t RTB_t", rtb_step.result.clone()),
            ],
            delta.clone(),
        );
        Sides {
            steps: vec![rl_step, c_step, rtb_step, delta_step],
            consistency: c,
            residual: delta,
        }
    }

    /// Both sides on a window: Trust-PCL `C_{i:j}` with `V` at the ends (`V(x) = 0`) and
    /// relative SubTB `δ_{i:j}` with `log F` at the ends (`log F(x) = β log r(x)`).
    pub(crate) fn window_sides(
        &self,
        path: &[usize],
        value: &dyn Fn(usize) -> Poly,
        log_f: &dyn Fn(usize) -> Poly,
        ell: &dyn Fn(usize) -> Poly,
    ) -> Sides {
        let params = self.tpcl_params();
        let start = self.env.edges[path[0]].from;
        let end = self.env.edges[path[path.len() - 1]].to;
        let rl = self.rl_terms(path, ell);
        let rl_values: Vec<Poly> = rl.iter().map(|(_, p)| p.clone()).collect();
        let rl_step = Step::collect(
            "Trust-PCL per-step RL terms r_t − (τ_H+λ)·ℓ_t + λ·log p_t  (γ = 1, τ_H = 0, λ = α)",
            rl,
        );
        let v_end = if self.env.is_terminal(end) {
            Poly::zero()
        } else {
            value(end)
        };
        let c = trust_pcl::consistency(&value(start), &v_end, &rl_values, &params);
        let c_step = Step::computed(
            "consistency C_{i:j} = −V(s_i) + Σ_t RL_t + V(s_j)  (V = 0 at a terminal)",
            vec![
                term("−V(s_i)", value(start).neg()),
                term("Σ_t RL_t", rl_step.result.clone()),
                term("V(s_j)", v_end),
            ],
            c.clone(),
        );
        let ells: Vec<Poly> = path.iter().map(|&e| ell(e)).collect();
        let log_ps: Vec<Poly> = path.iter().map(|&e| self.log_p(e).clone()).collect();
        let f_end = self.log_f_end(end, log_f);
        let weight = self.ratio_weight();
        let delta = subtb::residual(&log_f(start), &ells, &log_ps, &f_end, &weight);
        let ratio = Poly::sum(&ells).sub(&Poly::sum(&log_ps)).scale(&weight);
        let delta_step = Step::computed(
            "relative SubTB δ_{i:j} = logF(s_i) + w·(Σℓ − Σlog p) − logF(s_j)  (logF(x) = β·log r(x), w = 1)",
            vec![
                term("logF(s_i)", log_f(start)),
                term("w·(Σℓ − Σlog p)", ratio),
                term("−logF(s_j)", f_end.neg()),
            ],
            delta.clone(),
        );
        Sides {
            steps: vec![rl_step, c_step, delta_step],
            consistency: c,
            residual: delta,
        }
    }

    /// A derivation of `C + α·δ = 0` from two sides.
    pub(crate) fn residual_identity(
        &self,
        check: &str,
        subject: String,
        sides: Sides,
    ) -> Derivation {
        let mut steps = sides.steps;
        steps.push(Step::identity(
            "collect C + α·δ",
            vec![
                term("C", sides.consistency),
                term("α·δ", sides.residual.scale(&self.alpha)),
            ],
        ));
        Derivation {
            check: check.into(),
            subject,
            identity: format!("C + α·δ = 0 with α = {}{}", self.alpha, self.mutant_tag()),
            steps,
        }
    }

    /// `V(s0) := α·logZ`, the shared scalar.
    pub fn shared_v_s0(&self) -> Poly {
        Poly::var(Var::LogZ).scale(&self.alpha)
    }

    /// The concrete posterior's `q(e)`.
    pub fn q(&self, e: usize) -> &Rational {
        &self.env.edges[e].posterior
    }

    /// Zero polynomial shorthand.
    pub fn zero() -> Poly {
        Poly::constant(Rational::zero())
    }
}

/// The optimum's logs as polynomials.
pub struct OptimumPolys {
    /// `log q*(e)`.
    pub log_policy: Vec<Poly>,
    /// `log F*(s)`.
    pub log_flow: Vec<Poly>,
    /// `log Z*`.
    pub log_z: Poly,
    /// `q*(e)`.
    pub policy: Vec<Rational>,
}

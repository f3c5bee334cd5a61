//! The verification report: per environment, each claim's verdict and counts, and the exact
//! numbers of interest (`Z*`, `q*`, `J(q)`, `KL(q ‖ q*)`) with `f64` approximations for
//! humans. Approximations are computed here, from the exact forms, at the very end; no
//! decision uses them.
use crate::claims::{
    self, c5_fixed_point, c6_expected_gradient, c7_negative_controls, Certificate, ClaimContext,
    VerifyOptions,
};
use crate::dag::{trajectory_count, Environment};
use crate::exact::{ExactError, FracPoly, Monomial, Poly, Rational, Var};
use crate::objectives::flawed_fixed_point;
use num_bigint::BigUint;
use num_traits::ToPrimitive;
use serde::Serialize;
use std::collections::BTreeMap;

/// An exact value with its approximation.
#[derive(Debug, Clone, Serialize)]
pub struct ExactValue {
    /// The exact form (rational combination of logs of integers).
    pub exact: String,
    /// Its value in `f64`, for humans.
    pub approx: f64,
}

/// One claim's line in the report.
#[derive(Debug, Clone, Serialize)]
pub struct ClaimReport {
    /// `C1` … `C5`.
    pub id: String,
    /// What the claim states.
    pub statement: String,
    /// `true`, `false`, or `null` when skipped.
    pub holds: Option<bool>,
    /// Identities decided.
    pub checked: u64,
    /// Why (part of) it was skipped.
    pub skipped: Option<String>,
    /// One line: per check, counts and route; the offending term on failure.
    pub summary: String,
    /// The named checks.
    pub checks: Vec<claims::CheckOutcome>,
}

/// One environment's section of the report.
#[derive(Debug, Clone, Serialize)]
pub struct EnvironmentReport {
    /// The spec file.
    pub file: String,
    /// The environment's name.
    pub name: String,
    /// β as a rational string.
    pub beta: String,
    /// Number of states.
    pub states: usize,
    /// Number of edges.
    pub edges: usize,
    /// Number of terminals.
    pub terminals: usize,
    /// Number of trajectories (decimal string: it can be huge).
    pub trajectories: String,
    /// `Z*` as a rational string, or null where irrational.
    pub z_star: Option<String>,
    /// `log Z*`, or null.
    pub log_z_star: Option<ExactValue>,
    /// `q*` per edge `from->to`, or null.
    pub q_star: Option<BTreeMap<String, String>>,
    /// `KL(q ‖ q*)` at the spec's q, or null.
    pub kl_q_to_qstar: Option<ExactValue>,
    /// `J(q)` at the spec's q.
    pub j_q: Option<ExactValue>,
    /// `∂J/∂θ` per edge `from->to` at the spec's q (Bellman route of C6).
    pub grad_j: BTreeMap<String, Option<ExactValue>>,
    /// `∂KL(q ‖ q*)/∂θ` per edge at the spec's q, or null where `q*` is irrational.
    pub grad_kl_qstar: Option<BTreeMap<String, Option<ExactValue>>>,
    /// The flawed baseline (C7): its largest expected-gradient component at `q*` and its
    /// stationary point.
    pub flawed: FlawedReport,
    /// The claims.
    pub claims: Vec<ClaimReport>,
}

/// One component of a gradient.
#[derive(Debug, Clone, Serialize)]
pub struct Component {
    /// The edge `from->to`.
    pub edge: String,
    /// The exact value.
    pub exact: String,
    /// Its approximation.
    pub approx: f64,
}

/// The flawed baseline's section of the report (C7).
#[derive(Debug, Clone, Serialize)]
pub struct FlawedReport {
    /// κ (the penalty weight, α/2), as a rational string.
    pub kappa: String,
    /// The component of `E_q*[∇θ L_flawed]` of largest magnitude, or null where `q*` is
    /// irrational.
    pub largest_component: Option<Component>,
    /// `KL(q* ‖ q_flawed)` at the numerically found stationary point, or null where the search
    /// could not run.
    pub kl_qstar_to_flawed: Option<f64>,
    /// The same at the closed-form stationary point `q ∝ p·exp(r/(2κ))`.
    pub kl_qstar_to_closed_form: Option<f64>,
    /// Descent iterations.
    pub iterations: Option<usize>,
    /// Whether the descent converged (`max |∂/∂θ| < 1e-12`).
    pub converged: Option<bool>,
    /// `max |∂/∂θ|` at the end.
    pub max_abs_gradient: Option<f64>,
    /// Why the search could not run, if so.
    pub error: Option<String>,
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// True when no claim fails anywhere.
    pub all_hold: bool,
    /// The mutant in force, if any.
    pub mutant: Option<String>,
    /// Per environment.
    pub environments: Vec<EnvironmentReport>,
}

/// `ln b` for a big integer without overflow.
fn ln_big(b: &BigUint) -> f64 {
    let bits = b.bits();
    if bits < 1000 {
        return b.to_f64().unwrap_or(f64::INFINITY).ln();
    }
    let shift = bits - 64;
    (b >> shift).to_f64().unwrap_or(f64::INFINITY).ln() + shift as f64 * std::f64::consts::LN_2
}

/// The approximate value of a polynomial with no free symbols (atoms and constants only).
pub fn approx(p: &Poly) -> Option<f64> {
    approx_terms(p.terms().iter().map(|(m, c)| (m, c.to_f64())))
}

/// [`approx`] of a polynomial over a common denominator, without reducing it: `num-rational`'s
/// conversion of `n/d` to `f64` is correctly rounded (round half to even, remainder as sticky
/// bit), so it depends on the value only and agrees with the reduced coefficient's bit for bit.
pub fn approx_frac(p: &FracPoly) -> Option<f64> {
    let d = p.denominator();
    approx_terms(
        p.numerators()
            .map(|(m, n)| (m, Rational::new_raw(n.clone(), d.clone()).to_f64())),
    )
}

fn approx_terms<'a>(terms: impl Iterator<Item = (&'a Monomial, Option<f64>)>) -> Option<f64> {
    let mut total = 0.0;
    for (m, c) in terms {
        let mut value = c?;
        for (v, e) in m.factors() {
            match v {
                Var::Atom(b) => value *= ln_big(b).powi(*e as i32),
                _ => return None,
            }
        }
        total += value;
    }
    Some(total)
}

fn exact_value(p: &Poly, env: &Environment) -> Option<ExactValue> {
    Some(ExactValue {
        exact: p.render(env),
        approx: approx(p)?,
    })
}

/// What becomes of an environment's claim context (and certificates) once its report is
/// built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Teardown {
    /// Freed: library callers, and every environment of a run but its last.
    #[default]
    Free,
    /// Left to the operating system, for a process that exits right after printing the
    /// report: freeing the exact values one by one (~40 MB at 440 edges, allocated on other
    /// threads) took 9–14 ms on one core, 8–12 % of `verify`'s wall time
    /// (docs/performance.md, issue 12, eighth pass).
    AtExit,
}

impl Teardown {
    /// Frees `value` or, for [`Teardown::AtExit`], leaves it to the end of the process.
    pub fn dispose<T>(self, value: T) {
        match self {
            Teardown::Free => drop(value),
            Teardown::AtExit => std::mem::forget(value),
        }
    }
}

/// Runs every claim on one environment and builds its report section with the certificates.
pub fn environment_report(
    env: &Environment,
    options: &VerifyOptions,
) -> Result<(EnvironmentReport, Vec<Certificate>), ExactError> {
    environment_report_with(env, options, Teardown::Free)
}

/// [`environment_report`], disposing of the claim context as `teardown` says.
pub fn environment_report_with(
    env: &Environment,
    options: &VerifyOptions,
    teardown: Teardown,
) -> Result<(EnvironmentReport, Vec<Certificate>), ExactError> {
    let ctx = ClaimContext::new(env, options.clone())?;
    // What the report shows of C5, C6 and C7's results is rendered in their own tasks, while
    // the other claims still run (it was 7–10 ms on the cores after the claims at 440 edges).
    let render = |certificate: &Certificate| {
        if ctx.options.budget.exceeded().is_some() {
            return Rendered::Nothing;
        }
        match certificate.claim.as_str() {
            "C5" => Rendered::FixedPoint(fixed_point_values(&ctx)),
            "C6" => Rendered::Gradients(gradient_values(&ctx)),
            "C7" => Rendered::Flawed(flawed_report(&ctx)),
            _ => Rendered::Nothing,
        }
    };
    let (mut fixed_point, mut gradients, mut flawed) = (None, None, None);
    let mut certificates = Vec::new();
    for (certificate, rendered) in claims::verify_environment_then(&ctx, render) {
        certificates.push(certificate);
        match rendered {
            Rendered::Nothing => {}
            Rendered::FixedPoint(values) => fixed_point = Some(values),
            Rendered::Gradients(values) => gradients = Some(values),
            Rendered::Flawed(values) => flawed = Some(values),
        }
    }
    if let Some(reason) = ctx.options.budget.exceeded() {
        return Err(reason.clone().into());
    }
    let claims = certificates
        .iter()
        .map(|c| ClaimReport {
            id: c.claim.clone(),
            statement: c.statement.clone(),
            holds: c.holds,
            checked: c.checked(),
            skipped: c.skipped(),
            summary: c.summary(env),
            checks: c.checks.clone(),
        })
        .collect();
    // Each was rendered in its claim's task unless the budget was spent by then, and a spent
    // budget has returned above; rendering here keeps this total all the same.
    let FixedPointValues {
        j_q,
        kl_q_to_qstar,
        log_z_star,
    } = fixed_point.unwrap_or_else(|| fixed_point_values(&ctx));
    let (grad_j, grad_kl_qstar) = gradients.unwrap_or_else(|| gradient_values(&ctx));
    let flawed = flawed.unwrap_or_else(|| flawed_report(&ctx));
    let report = EnvironmentReport {
        file: env.file.clone(),
        name: env.name.clone(),
        beta: env.beta.to_string(),
        states: env.states.len(),
        edges: env.edges.len(),
        terminals: env.terminals().len(),
        trajectories: trajectory_count(env).to_string(),
        z_star: ctx.optimum.as_ref().ok().map(|o| o.z.to_string()),
        log_z_star,
        q_star: ctx.optimum.as_ref().ok().map(|o| {
            (0..env.edges.len())
                .map(|e| (env.edge_name(e), o.policy[e].to_string()))
                .collect()
        }),
        kl_q_to_qstar,
        j_q,
        grad_j,
        grad_kl_qstar,
        flawed,
        claims,
    };
    teardown.dispose(ctx);
    Ok((report, certificates))
}

/// The report's values of one claim, rendered in that claim's task.
enum Rendered {
    Nothing,
    /// After C5.
    FixedPoint(FixedPointValues),
    /// After C6: `E_q[∇J]` and `E_q[∇KL(q‖q*)]` per edge.
    Gradients((EdgeValues, Option<EdgeValues>)),
    /// After C7.
    Flawed(FlawedReport),
}

/// An exact value per edge, by edge name.
type EdgeValues = BTreeMap<String, Option<ExactValue>>;

/// `J(q)`, `KL(q‖q*)` and `log Z*` (the last two where `q*` is rational).
struct FixedPointValues {
    j_q: Option<ExactValue>,
    kl_q_to_qstar: Option<ExactValue>,
    log_z_star: Option<ExactValue>,
}

fn fixed_point_values(ctx: &ClaimContext) -> FixedPointValues {
    let env = ctx.env;
    let optimum = c5_fixed_point::optimum_polys(ctx).ok();
    let kl = optimum
        .as_ref()
        .and_then(|_| exact_value(&c5_fixed_point::kl_spec_q_to_optimum(ctx).1, env));
    FixedPointValues {
        j_q: exact_value(&c5_fixed_point::j_of_spec_q(ctx).1, env),
        kl_q_to_qstar: kl,
        log_z_star: optimum.and_then(|o| exact_value(&o.log_z, env)),
    }
}

/// C6's two gradients at the spec's `q` (the context keeps them), each edge's value reduced
/// and rendered on all cores (the reductions were a tenth of the 9,600-edge run on one core).
fn gradient_values(ctx: &ClaimContext) -> (EdgeValues, Option<EdgeValues>) {
    use rayon::prelude::*;
    let env = ctx.env;
    let per_edge = |g: &[FracPoly]| -> EdgeValues {
        g.par_iter()
            .enumerate()
            .map(|(e, p)| (env.edge_name(e), exact_value(&p.to_poly(), env)))
            .collect::<Vec<_>>()
            .into_iter()
            .collect()
    };
    let gradients = c6_expected_gradient::gradients(ctx);
    rayon::join(
        || per_edge(&gradients.j.gradient),
        || gradients.kl.as_ref().ok().map(|r| per_edge(&r.gradient)),
    )
}

/// The flawed baseline's exact largest component at `q*` and its numerical stationary point.
fn flawed_report(ctx: &ClaimContext) -> FlawedReport {
    let env = ctx.env;
    let kappa = c7_negative_controls::kappa(ctx);
    // The largest component chosen on the unreduced values (same floats, see
    // [`approx_frac`]); only the chosen one is reduced, for its rendering.
    let largest_component = c7_negative_controls::flawed_route_at_optimum(ctx)
        .ok()
        .and_then(|route| {
            route
                .gradient
                .iter()
                .enumerate()
                .filter_map(|(e, p)| Some((e, p, approx_frac(p)?)))
                .max_by(|a, b| a.2.abs().total_cmp(&b.2.abs()))
                .map(|(e, p, v)| Component {
                    edge: env.edge_name(e),
                    exact: p.to_poly().render(env),
                    approx: v,
                })
        });
    let search = kappa
        .to_f64()
        .ok_or_else(|| "κ is not a float".to_string())
        .and_then(|k| flawed_fixed_point::search(env, k, 100_000, 1e-12));
    match search {
        Ok(fp) => FlawedReport {
            kappa: kappa.to_string(),
            largest_component,
            kl_qstar_to_flawed: Some(fp.kl_qstar_to_flawed),
            kl_qstar_to_closed_form: Some(fp.kl_qstar_to_closed_form),
            iterations: Some(fp.iterations),
            converged: Some(fp.converged),
            max_abs_gradient: Some(fp.max_abs_gradient),
            error: None,
        },
        Err(error) => FlawedReport {
            kappa: kappa.to_string(),
            largest_component,
            kl_qstar_to_flawed: None,
            kl_qstar_to_closed_form: None,
            iterations: None,
            converged: None,
            max_abs_gradient: None,
            error: Some(error),
        },
    }
}

impl Report {
    /// Exit code: 0 when every claim holds (or is skipped), 1 when any fails.
    pub fn exit_code(&self) -> u8 {
        if self.all_hold {
            0
        } else {
            1
        }
    }

    /// The human-readable report.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        if let Some(m) = &self.mutant {
            out.push_str(&format!("MUTANT IN FORCE: {m} (a deliberately wrong variant; claims it affects must fail)\n\n"));
        }
        let (mut held, mut failed, mut skipped) = (0, 0, 0);
        for env in &self.environments {
            out.push_str(&format!(
                "== {} ({})  β = {}  states {}  edges {}  terminals {}  trajectories {}\n",
                env.name,
                env.file,
                env.beta,
                env.states,
                env.edges,
                env.terminals,
                env.trajectories
            ));
            match (&env.z_star, &env.log_z_star) {
                (Some(z), Some(lz)) => out.push_str(&format!(
                    "   Z* = {z}   logZ* = {} ≈ {:.6}\n",
                    lz.exact, lz.approx
                )),
                _ => out.push_str("   Z* irrational (some r(x)^β is irrational): C5 skipped\n"),
            }
            if let Some(j) = &env.j_q {
                out.push_str(&format!("   J(q) ≈ {:.6}", j.approx));
            }
            if let Some(kl) = &env.kl_q_to_qstar {
                out.push_str(&format!("   KL(q‖q*) ≈ {:.6}", kl.approx));
            }
            out.push('\n');
            if let Some(c) = &env.flawed.largest_component {
                out.push_str(&format!(
                    "   flawed baseline (κ = {}): largest E_q*[∂L/∂θ] on {} ≈ {:.6}",
                    env.flawed.kappa, c.edge, c.approx
                ));
            } else {
                out.push_str(&format!("   flawed baseline (κ = {}):", env.flawed.kappa));
            }
            match (env.flawed.kl_qstar_to_flawed, &env.flawed.error) {
                (Some(kl), _) => out.push_str(&format!("   KL(q*‖q_flawed) ≈ {kl:.6}\n")),
                (None, Some(e)) => out.push_str(&format!("   stationary point: {e}\n")),
                (None, None) => out.push('\n'),
            }
            out.push_str(&format!(
                "   {:<5} {:<8} {:>9}  {}\n",
                "claim", "holds", "checked", "summary"
            ));
            for c in &env.claims {
                let verdict = match c.holds {
                    Some(true) => {
                        held += 1;
                        "yes"
                    }
                    Some(false) => {
                        failed += 1;
                        "FAILS"
                    }
                    None => {
                        skipped += 1;
                        "skipped"
                    }
                };
                out.push_str(&format!(
                    "   {:<5} {:<8} {:>9}  {}\n",
                    c.id, verdict, c.checked, c.summary
                ));
                if let Some(reason) = &c.skipped {
                    out.push_str(&format!(
                        "   {:<5} {:<8} {:>9}  skipped: {reason}\n",
                        "", "", ""
                    ));
                }
            }
            out.push('\n');
        }
        out.push_str(&format!(
            "Summary: {} environments; {held} claims hold, {failed} fail, {skipped} skipped. {}\n",
            self.environments.len(),
            if self.all_hold {
                "ALL HOLD"
            } else {
                "SOME CLAIMS FAIL"
            }
        ));
        out
    }
}

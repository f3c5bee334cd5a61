//! Exactly (rationals and the exact engine's polynomials in log atoms): a robust loss keeps
//! `q*` a stationary point of RTB and Trust-PCL under any behaviour.
//!
//! On a spec environment whose optimum is rational, for every trajectory `τ`, the residual at
//! `q*` (`δ` with `log Z = log Z* + offset`, or `C` with `V(s0) = α (log Z* + offset)`) is
//! built from the objective definitions with symbolic `ℓ_e = log q(e)`, its derivative
//! `∂X/∂ℓ_e` read off symbolically, and `ℓ_e := log q*(e)` substituted. The residual must be
//! a rational constant (it is 0 at the optimum, `offset` for RTB and `−α·offset` for
//! Trust-PCL away from it); then, for a rational behaviour `π`, the exact expected gradient
//! of `E_π[ρ(X)]` with respect to the softmax logits and the scalar is
//! `Σ_τ π(τ) ψ(X(τ)) Σ_{e∈τ} ∂X/∂ℓ_e (1[e = b] − q*(b))` and `Σ_τ π(τ) ψ(X(τ)) ∂X/∂scalar`.
//! Since `ψ(0) = 0` for every [`Robust`] loss, both are exactly 0 at the optimum.
//!
//! Negative controls (in `tests/study.rs`): with `log Z` off by one the square and Huber
//! gradients are non-zero (and the cut-off's is zero when `½ ≤ c`: its flat band hides a
//! wrong `log Z`); under the `beta-on-ratio` mutant at β ≠ 1 the residual at `q*` is not zero
//! and the check refuses it.
use crate::claims::c5_fixed_point::optimum_polys;
use crate::claims::ClaimContext;
use crate::exact::{Poly, Rational, Var};
use crate::objectives::robust::Robust;
use crate::objectives::trust_pcl;
use num_traits::{One, Zero};

/// The squared-residual objective checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Objective {
    /// RTB, `δ`.
    Rtb,
    /// Trust-PCL on the full trajectory, `C` from its per-step RL terms.
    TrustPcl,
}

/// A rational behaviour policy on a spec environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpecBehaviour {
    /// The spec's concrete posterior `q` (uniform where the spec gives none).
    Concrete,
    /// Uniform over each state's children.
    Uniform,
    /// The prior `p`.
    Prior,
    /// `q*` itself.
    Optimum,
}

/// The exact expected gradient at `q*`.
#[derive(Debug, Clone)]
pub struct ExactGradient {
    /// Trajectories summed over.
    pub trajectories: usize,
    /// The residual of each trajectory at `q*`.
    pub residuals: Vec<Rational>,
    /// `∂E_π[ρ(X)]/∂θ_b` per edge.
    pub logits: Vec<Rational>,
    /// `∂E_π[ρ(X)]/∂scalar`.
    pub scalar: Rational,
}

impl ExactGradient {
    /// Whether every component is exactly zero.
    pub fn is_zero(&self) -> bool {
        self.scalar.is_zero() && self.logits.iter().all(Zero::is_zero)
    }
}

fn constant(p: &Poly, what: &str) -> Result<Rational, String> {
    let mut value = Rational::zero();
    for (m, c) in p.terms() {
        if !m.factors().is_empty() {
            return Err(format!(
                "{what} is not a rational constant at q* (it depends on a log atom)"
            ));
        }
        value += c;
    }
    Ok(value)
}

/// The exact expected gradient of `E_π[loss(X)]` at `q*` with the scalar offset by `offset`
/// (see the module). Errors where the optimum is not rational, the trajectories were not
/// enumerated, or a residual at `q*` is not a rational constant.
pub fn expected_gradient_at_optimum(
    ctx: &ClaimContext,
    objective: Objective,
    loss: &Robust,
    behaviour: SpecBehaviour,
    offset: &Rational,
) -> Result<ExactGradient, String> {
    let opt = optimum_polys(ctx).map_err(|e| e.to_string())?;
    let paths = ctx.trajectories.as_ref().map_err(ToString::to_string)?;
    let env = ctx.env;
    let alpha = &ctx.alpha;
    let log_z = opt.log_z.add(&Poly::constant(offset.clone()));
    let (scalar, scalar_var) = match objective {
        Objective::Rtb => (Poly::var(Var::LogZ), Var::LogZ),
        Objective::TrustPcl => (Poly::var(Var::V(env.source)), Var::V(env.source)),
    };
    let scalar_value = match objective {
        Objective::Rtb => log_z.clone(),
        Objective::TrustPcl => log_z.scale(alpha),
    };
    let pi = |e: usize| -> Rational {
        let edge = &env.edges[e];
        match behaviour {
            SpecBehaviour::Concrete => ctx.q(e).clone(),
            SpecBehaviour::Uniform => {
                Rational::new(1.into(), (env.out_edges[edge.from].len() as i64).into())
            }
            SpecBehaviour::Prior => edge.prior.clone(),
            SpecBehaviour::Optimum => opt.policy[e].clone(),
        }
    };
    let mut logits = vec![Rational::zero(); env.edges.len()];
    let mut scalar_grad = Rational::zero();
    let mut residuals = Vec::with_capacity(paths.len());
    for path in paths {
        let symbolic = match objective {
            Objective::Rtb => ctx.rtb_residual(path, &scalar),
            Objective::TrustPcl => {
                let rl: Vec<Poly> = ctx
                    .rl_terms(path, &ClaimContext::ell)
                    .into_iter()
                    .map(|(_, p)| p)
                    .collect();
                trust_pcl::consistency(&scalar, &Poly::zero(), &rl, &ctx.tpcl_params())
            }
        };
        let at_optimum = symbolic.substitute_all(&|v| match v {
            Var::LogQ(e) => Some(opt.log_policy[*e].clone()),
            v if *v == scalar_var => Some(scalar_value.clone()),
            _ => None,
        });
        let x = constant(
            &at_optimum,
            &format!("the residual of {}", env.path_name(path)),
        )?;
        let psi: Rational = loss.derivative(&x);
        let weight = path.iter().fold(Rational::one(), |acc, &e| acc * pi(e));
        let dscalar = constant(&symbolic.derivative(&scalar_var), "∂X/∂scalar")?;
        scalar_grad += &weight * &psi * dscalar;
        for &e in path {
            let a = constant(&symbolic.derivative(&Var::LogQ(e)), "∂X/∂ℓ")?;
            let s = env.edges[e].from;
            for &b in &env.out_edges[s] {
                let indicator = if b == e {
                    Rational::one()
                } else {
                    Rational::zero()
                };
                logits[b] += &weight * &psi * &a * (indicator - &opt.policy[b]);
            }
        }
        residuals.push(x);
    }
    Ok(ExactGradient {
        trajectories: paths.len(),
        residuals,
        logits,
        scalar: scalar_grad,
    })
}

//! C6 (on-policy gradient), exactly, at the spec's concrete rational `q`, with gradients taken
//! with respect to the softmax logits `θ_b` of every edge `b`:
//!
//! `E_{τ∼q}[∇_θ L_RTB] = ∇_θ KL(q ‖ q*) = −β ∇_θ J(q)` for any `log Z`;
//! `E_{τ∼q}[∇_θ L_RKL] = −∇_θ J(q)` for any constant baseline; hence
//! `E[∇L_RTB] = β E[∇L_RKL]`; and, for the Trust-PCL loss built from its per-step RL terms,
//! `E[∇L_TPCL] = α² E[∇L_RTB]` for any `V(s0)` and any `log Z`.
//!
//! Two independent routes, neither enumerating trajectories:
//!
//! - Route 1 (trajectory route, [`route_one`]): the expectation of the per-trajectory gradient
//!   `∂L/∂θ_b = Σ_{e ∈ τ, e from s} w_e·X(τ)·(1[e = b] − q(b))`, where `X(τ) = k + Σ_{e∈τ} c_e`
//!   is the objective's residual (`δ`, `A` or `C`) split into per-edge terms by the objective's
//!   own definition, and `w_e = ∂L/∂ℓ_e ÷ X` is read off the objective symbolically. A forward
//!   pass accumulates `P(s) = E[(k + Σ_{prefix} c)·1[s ∈ τ]]` and `occ(s)`, a backward pass
//!   `B(s) = E[Σ_{suffix} c | s]`; then `E[X·1[e ∈ τ]] = q(e)·(P(s) + occ(s)·(c_e + B(s')))`.
//!   Symbolic `log Z`, baselines and `V(s0)` enter through `k` and must drop out.
//! - Route 2 (Bellman route, [`route_two`]): the state decomposition
//!   `F(q) = Σ_s occ_q(s) Σ_e q(e)·cost_e` with the downstream value `V(s) = Σ_e q(e)(cost_e +
//!   V(s'))`, and the policy-gradient recursion
//!   `∂F/∂θ_b = occ(s)·Σ_{e from s} ∂q(e)/∂θ_b·(cost_e + V(s')) + occ(s)·Σ_e q(e)·∂cost_e/∂θ_b`,
//!   with `∂q(e)/∂θ_b = q(e)(1[e = b] − q(b))`. For `KL(q ‖ q*)`: `cost_e = log q(e) − log q*(e)`
//!   (needs the rational `q*`); for `J`: `cost_e = [e enters x]·log r(x) − α(log q(e) − log p(e))`.
//!
//! Under the enumeration limit, route 1 is cross-checked against `Σ_τ q(τ)·∇_θ L(τ)`, with
//! `∂L/∂ℓ_e` from the loss's symbolic derivative on every trajectory.
//!
//! Mutants: `beta-on-ratio` changes RTB (fails `rtb.kl`, `rtb.j`, `rtb.rkl`, `tpcl.rtb` where
//! β ≠ 1); `missing-half`, `flipped-sign` and `alpha-not-squared` change the Trust-PCL side or
//! its expected factor (fail `tpcl.rtb`; the last only where β ≠ 1). Route 2 and REINFORCE are
//! the reference and no mutant touches them; `C6.enumeration` compares two computations of the
//! same (possibly mutated) expectation and holds under every mutant. Where no state has two
//! children (a chain) every θ-gradient is identically zero and no mutant can show.
use super::budget::flows_of;
use super::c5_fixed_point::optimum_polys;
use super::{certificate, term, Budget, Certificate, ClaimContext, Recorder, SkipReason};
use crate::dag::{dp, flow, Environment};
use crate::exact::{Derivation, FracPoly, Poly, Rational, Step, Var};
use crate::objectives::{reinforce, rtb, trust_pcl};
use num_traits::{One, Zero};

/// The claim's statement.
pub const STATEMENT: &str = "E_q[∇θ L_RTB] = ∇θ KL(q‖q*) = −β·∇θ J(q) for any logZ; E_q[∇θ L_RKL] = −∇θ J(q) for any baseline; E[∇L_TPCL] = α²·E[∇L_RTB]";

/// The check names, in report order.
pub const CHECKS: [&str; 7] = [
    "C6.rtb.kl",
    "C6.kl.j",
    "C6.rtb.j",
    "C6.rkl.j",
    "C6.rtb.rkl",
    "C6.tpcl.rtb",
    "C6.enumeration",
];

/// A trajectory functional `X(τ) = k + Σ_{e∈τ} c_e` and the per-edge weights `w_e` with
/// `∂L/∂ℓ_e = w_e·X(τ)` for every edge `e` of `τ`.
#[derive(Debug, Clone)]
pub struct Functional {
    /// The residual's name in derivations (`δ`, `A`, `C`).
    pub name: String,
    /// The loss's name (`L_RTB`, ...).
    pub loss: String,
    /// `k`, the part of `X` that no edge carries (`logZ`, `−b`, `−V(s0)`).
    pub constant: Poly,
    /// `c_e` at the concrete policy, per edge.
    pub per_edge: Vec<Poly>,
    /// `w_e`, per edge.
    pub weight: Vec<Rational>,
}

/// `w` in `∂φ(x)/∂x = w·x` for a loss `φ` that is a multiple of `x²`, read off symbolically.
fn square_loss_slope(loss: &dyn Fn(&Poly) -> Poly) -> Rational {
    let x = Var::SumLogQ;
    let derivative = loss(&Poly::var(x.clone())).derivative(&x);
    derivative
        .derivative(&x)
        .terms()
        .first()
        .map(|(_, c)| c.clone())
        .unwrap_or_default()
}

/// The constant coefficient of a polynomial that is a rational constant (else 0).
fn constant_of(p: &Poly) -> Rational {
    p.terms()
        .iter()
        .find(|(m, _)| *m == crate::exact::Monomial::one())
        .map(|(_, c)| c.clone())
        .unwrap_or_default()
}

impl Functional {
    /// The RTB residual `δ`, `L_RTB = ½δ²` (β placed as the context says), `log Z` symbolic,
    /// at a policy whose logs are `log_q`.
    pub fn rtb(ctx: &ClaimContext, log_q: &dyn Fn(usize) -> Poly) -> Self {
        let env = ctx.env;
        let placement = ctx.beta_placement();
        let slope = square_loss_slope(&crate::objectives::half_square::<Poly>);
        let (mut per_edge, mut weight) = (Vec::new(), Vec::new());
        for e in 0..env.edges.len() {
            let ell = ClaimContext::ell(e);
            let symbolic = rtb::step(&ell, ctx.log_p(e), ctx.reward_on(e), &env.beta, placement);
            weight.push(&slope * constant_of(&symbolic.derivative(&Var::LogQ(e))));
            per_edge.push(symbolic.substitute(&Var::LogQ(e), &log_q(e)));
        }
        Self {
            name: "δ".into(),
            loss: "L_RTB".into(),
            constant: rtb::residual(&Poly::var(Var::LogZ), &[]),
            per_edge,
            weight,
        }
    }

    /// The REINFORCE-KL advantage `A = log r − α(log q(τ) − log p(τ)) − b`, surrogate
    /// `L_RKL = −sg(A)·log q(τ)`, the constant baseline `b` the free symbol `V(s0)`.
    pub fn reinforce(ctx: &ClaimContext, log_q: &dyn Fn(usize) -> Poly) -> Self {
        let env = ctx.env;
        let zero = Poly::zero();
        let baseline = baseline_symbol(env);
        // ∂(−sg(A)·Σℓ)/∂ℓ_e = −A: weight −1 on every edge (A is held constant).
        let surrogate = |a: &Poly| a.mul(&Poly::var(Var::SumLogQ)).neg();
        let probe = Var::LogZ;
        let w = constant_of(
            &surrogate(&Poly::var(probe.clone()))
                .derivative(&Var::SumLogQ)
                .derivative(&probe),
        );
        let per_edge = (0..env.edges.len())
            .map(|e| {
                let r = ctx.reward_on(e).unwrap_or(&zero);
                reinforce::kl_advantage(r, &log_q(e), ctx.log_p(e), &ctx.alpha, &zero)
            })
            .collect();
        Self {
            name: "A".into(),
            loss: "L_RKL".into(),
            constant: reinforce::kl_advantage(&zero, &zero, &zero, &ctx.alpha, &baseline),
            per_edge,
            weight: vec![w; env.edges.len()],
        }
    }

    /// The Trust-PCL consistency `C = −V(s0) + Σ_t RL_t` (parameters and loss as the context
    /// says), `V(s0)` its own free symbol.
    pub fn trust_pcl(ctx: &ClaimContext, log_q: &dyn Fn(usize) -> Poly) -> Self {
        let env = ctx.env;
        let params = ctx.tpcl_params();
        let zero = Poly::zero();
        let slope = square_loss_slope(&|x: &Poly| ctx.tpcl_loss(x));
        let (mut per_edge, mut weight) = (Vec::new(), Vec::new());
        for e in 0..env.edges.len() {
            let ell = ClaimContext::ell(e);
            let r = ctx.reward_on(e).unwrap_or(&zero);
            let symbolic = trust_pcl::step_term(r, &ell, ctx.log_p(e), &params);
            weight.push(&slope * constant_of(&symbolic.derivative(&Var::LogQ(e))));
            per_edge.push(symbolic.substitute(&Var::LogQ(e), &log_q(e)));
        }
        Self {
            name: "C".into(),
            loss: "L_TPCL".into(),
            constant: trust_pcl::consistency(
                &Poly::var(Var::V(env.source)),
                &Poly::zero(),
                &[],
                &params,
            ),
            per_edge,
            weight,
        }
    }
}

/// The free symbol that stands for a constant baseline `b` of REINFORCE: `V(s0)`, a value
/// estimate of the start state.
pub fn baseline_symbol(env: &Environment) -> Poly {
    Poly::var(Var::V(env.source))
}

/// Route 1 of one functional: forward/backward DP of `E[∇_θ L(τ)]` at a policy.
#[derive(Debug, Clone)]
pub struct RouteOne {
    /// The functional.
    pub functional: Functional,
    /// `occ(s)` under the policy.
    pub occ: Vec<Rational>,
    /// How the prefix sums, suffix sums and joints are held.
    values: Values,
    /// `E[∂L/∂θ_b]` per edge `b`; identities are decided on these without reduction
    /// ([`FracPoly::equals_scaled`]).
    pub gradient: Vec<FracPoly>,
}

/// The values of route 1 that only derivations show, in the form the route computed them.
#[derive(Debug, Clone)]
enum Values {
    /// `P(s)`, `B(s)` and `E[X·1[e ∈ τ]]` of the policy's own DP ([`route_one`]).
    Direct {
        prefix: Vec<FracPoly>,
        suffix: Vec<FracPoly>,
        joint: Vec<FracPoly>,
    },
    /// The prior's DP with the h-transform's `h` and `1/h(s0)` ([`route_one_h_transform`]):
    /// the factors are applied on demand, only to the values a derivation shows (rescaling
    /// every value was 4–5 % of the 9,600-edge profile).
    HTransform {
        prefix: Vec<FracPoly>,
        suffix: Vec<FracPoly>,
        joint: Vec<FracPoly>,
        h: Vec<Rational>,
        inv_h0: Rational,
    },
    /// A functional with one value `K` on every trajectory ([`route_one_constant`]): `K`, `k`
    /// and the potential `D`, with `P(s) = occ(s)·(k + D(s))`, `B(s) = K − k − D(s)` and
    /// `E[X·1[e ∈ τ]] = K·occ(s)·q(e)`, built on demand.
    Constant {
        value: Poly,
        potential: Vec<Poly>,
        policy: Vec<Rational>,
        /// The state each edge leaves.
        tail: Vec<usize>,
    },
}

/// `factor·v`, over a common denominator.
fn scaled(v: &FracPoly, factor: &Rational) -> FracPoly {
    let mut out = FracPoly::zero();
    out.add_scaled(v, factor);
    out
}

impl RouteOne {
    /// `P(s) = E[(k + Σ_{prefix to s} c)·1[s ∈ τ]]` (over a common denominator, like every
    /// value here: reduced by [`FracPoly::to_poly`] only where a derivation shows it).
    pub fn prefix(&self, s: usize) -> FracPoly {
        use crate::exact::gcd::mul;
        match &self.values {
            Values::Direct { prefix, .. } => prefix[s].clone(),
            Values::HTransform {
                prefix, h, inv_h0, ..
            } => scaled(&prefix[s], &mul(&h[s], inv_h0)),
            Values::Constant { potential, .. } => scaled(
                &FracPoly::from_poly(&self.functional.constant.add(&potential[s])),
                &self.occ[s],
            ),
        }
    }

    /// `B(s) = E[Σ_{suffix from s} c | s]` (0 at terminals).
    pub fn suffix(&self, s: usize) -> FracPoly {
        match &self.values {
            Values::Direct { suffix, .. } => suffix[s].clone(),
            Values::HTransform { suffix, h, .. } => scaled(&suffix[s], &inverse(&h[s])),
            Values::Constant {
                value, potential, ..
            } => FracPoly::from_poly(&value.sub(&self.functional.constant).sub(&potential[s])),
        }
    }

    /// `E[X·1[e ∈ τ]]` for edge `e` (over a common denominator).
    pub fn joint(&self, e: usize) -> FracPoly {
        match &self.values {
            Values::Direct { joint, .. } => joint[e].clone(),
            Values::HTransform { joint, inv_h0, .. } => scaled(&joint[e], inv_h0),
            Values::Constant {
                value,
                policy,
                tail,
                ..
            } => scaled(
                &FracPoly::from_poly(value),
                &(&self.occ[tail[e]] * &policy[e]),
            ),
        }
    }

    /// [`RouteOne::prefix`] of every state.
    pub fn prefix_all(&self) -> Vec<FracPoly> {
        (0..self.occ.len()).map(|s| self.prefix(s)).collect()
    }

    /// [`RouteOne::suffix`] of every state.
    pub fn suffix_all(&self) -> Vec<FracPoly> {
        (0..self.occ.len()).map(|s| self.suffix(s)).collect()
    }

    /// [`RouteOne::joint`] of every edge.
    pub fn joint_all(&self) -> Vec<FracPoly> {
        (0..self.gradient.len()).map(|e| self.joint(e)).collect()
    }
}

/// The backward values of per-edge costs under `weights` (0 at terminals), stopped at the
/// budget's checkpoints.
fn backward_of(
    env: &Environment,
    weights: &[Rational],
    cost: &[FracPoly],
    budget: &Budget,
) -> flow::Backward<FracPoly> {
    flow::backward_until(env, weights, cost, |_| FracPoly::zero(), &|| {
        budget.checkpoint()
    })
}

/// The forward half both forms of route 1 share: the functional's per-edge terms over common
/// denominators (accumulated without a gcd per coefficient, reduced once at the end), the
/// flows under `weights`, and the prefix sums from the functional's constant.
struct ForwardPass {
    per_edge: Vec<FracPoly>,
    flows: flow::Flows<Rational>,
    prefix: Vec<FracPoly>,
}

fn forward_pass(
    env: &Environment,
    weights: &[Rational],
    functional: &Functional,
    budget: &Budget,
) -> ForwardPass {
    let proceed = || budget.checkpoint();
    let per_edge: Vec<FracPoly> = functional
        .per_edge
        .iter()
        .map(FracPoly::from_poly)
        .collect();
    let flows = flows_of(env, weights, budget);
    let prefix = flow::prefix_sums_until(
        env,
        weights,
        &flows,
        FracPoly::from_poly(&functional.constant),
        &per_edge,
        &proceed,
    );
    ForwardPass {
        per_edge,
        flows,
        prefix,
    }
}

/// The softmax chain rule of route 1, `scale·(w_b·J(b) − q(b)·Σ_{e from s} w_e·J(e))` per edge
/// `b` from `s`, from the joints `J(e) = E[X·1[e ∈ τ]]` (`scale` = 1 for the direct route).
fn chain_rule(
    env: &Environment,
    joint: &[FracPoly],
    weight: &[Rational],
    policy: &[Rational],
    scale: &Rational,
) -> Vec<FracPoly> {
    use crate::exact::gcd::mul;
    let mut weighted = vec![FracPoly::zero(); env.states.len()];
    for (e, edge) in env.edges.iter().enumerate() {
        weighted[edge.from].add_scaled(&joint[e], &weight[e]);
    }
    (0..env.edges.len())
        .map(|b| {
            FracPoly::combination(
                &joint[b],
                &mul(&weight[b], scale),
                &weighted[env.edges[b].from],
                &-mul(&policy[b], scale),
            )
        })
        .collect()
}

/// True when `policy` is the h-transform `q(e) = p(e)·h(s')/h(s)` of `prior` (exactly, edge by
/// edge) with `h(s0) ≠ 0`.
fn is_h_transform(
    env: &Environment,
    prior: &[Rational],
    h: &[Rational],
    policy: &[Rational],
) -> bool {
    use crate::exact::gcd::mul;
    !h[env.source].is_zero()
        && env.edges.iter().enumerate().all(|(e, edge)| {
            !h[edge.from].is_zero() && mul(&policy[e], &h[edge.from]) == mul(&prior[e], &h[edge.to])
        })
}

/// Every value multiplied by its own factor.
fn rescale(values: &[FracPoly], factor: &dyn Fn(usize) -> Rational) -> Vec<FracPoly> {
    values
        .iter()
        .enumerate()
        .map(|(i, v)| scaled(v, &factor(i)))
        .collect()
}

/// `1/r`, and 0 for 0.
fn inverse(r: &Rational) -> Rational {
    if r.is_zero() {
        Rational::zero()
    } else {
        // `recip` swaps numerator and denominator (sign to the numerator): `r` is reduced, so
        // the result is, without the gcd that `1 / r` takes.
        r.recip()
    }
}

/// The forward/backward DP of route 1, O(|E|) polynomial operations: the flows, prefix sums
/// and backward values of [`crate::dag::flow`]. The passes stop at the budget's time and
/// memory checkpoints (the values are then partial, and the run reports the budget's error).
pub fn route_one(
    env: &Environment,
    policy: &[Rational],
    functional: Functional,
    budget: &Budget,
) -> RouteOne {
    let ForwardPass {
        per_edge,
        flows,
        prefix,
    } = forward_pass(env, policy, &functional, budget);
    let backward = backward_of(env, policy, &per_edge, budget);
    // E[X·1[e ∈ τ]] = q(e)·P(s) + occ(s)·q(e)·(c_e + B(s')).
    let joint = joint_of(env, &prefix, policy, &backward.action, &flows.edge);
    // Σ_e w_e·(1[e = b] − q(b))·E[X·1[e]] = w_b·E[X·1[b]] − q(b)·Σ_e w_e·E[X·1[e]].
    let gradient = chain_rule(env, &joint, &functional.weight, policy, &Rational::one());
    RouteOne {
        functional,
        occ: flows.state,
        values: Values::Direct {
            prefix,
            suffix: backward.value,
            joint,
        },
        gradient,
    }
}

/// The joint terms of route 1, `w(e)·P(s) + flow(e)·A(e)` for every edge `e = (s, s')`: with
/// `w = q`, the policy's own flows and action values this is `E[X·1[e ∈ τ]]`; the h-transform
/// route passes the prior's quantities and `w(e) = p(e)·h(s')`.
fn joint_of(
    env: &Environment,
    prefix: &[FracPoly],
    prefix_weight: &[Rational],
    action: &[FracPoly],
    edge_flow: &[Rational],
) -> Vec<FracPoly> {
    env.edges
        .iter()
        .enumerate()
        .map(|(e, edge)| {
            FracPoly::combination(
                &prefix[edge.from],
                &prefix_weight[e],
                &action[e],
                &edge_flow[e],
            )
        })
        .collect()
}

/// The occupancy of the h-transform `q(e) = p(e)·h(s')/h(s)` from the prior's occupancy `π`:
/// `occ(s) = π(s)·h(s)/h(s0)` (`inv_h0` = `1/h(s0)`).
pub(crate) fn h_transform_occupancy(
    prior_occ: &[Rational],
    h: &[Rational],
    inv_h0: &Rational,
) -> Vec<Rational> {
    use crate::exact::gcd::mul;
    prior_occ
        .iter()
        .zip(h)
        .map(|(pi, h)| mul(&mul(pi, h), inv_h0))
        .collect()
}

/// Route 1 at a policy that is an h-transform of the prior, `q(e) = p(e)·h(s')/h(s)` (the
/// optimum `q*` is one, with `h = F*`), by the same DP run under the prior.
///
/// Run directly at `q*`, every step multiplies by a `q*(e)` whose denominator is the ~100-digit
/// `F*(s)` of its state, so the common denominators of the prefix sums grow like the product
/// of the `F*` of all ancestors (the 2,070-edge profile: 50 % big multiplications in
/// `FracPoly::add_scaled`). Under the h-transform every path probability is
/// `q(τ_{s0→s}) = p(τ)·h(s)/h(s0)`, so with the prior's occupancy `π`, prefix sums `P_p` and
/// the backward values `B^h(s) = Σ_e p(e)·(h(s')·c_e + B^h(s'))` (terminal weights `h`):
/// `occ(s) = π(s)·h(s)/h0`, `P(s) = h(s)/h0·P_p(s)`, `B(s) = B^h(s)/h(s)` and
/// `E[X·1[e ∈ τ]] = p(e)·(h(s')·P_p(s) + π(s)·(h(s')·c_e + B^h(s')))/h0`: only the prior's
/// small denominators accumulate, and each `h` enters once per value. The result is the same
/// exact [`RouteOne`] (the tests compare it with [`route_one`]). When `policy` is not the
/// h-transform of `prior` by `h` (checked exactly, edge by edge) the functional is handed back
/// as the error, so that a caller can run the direct route with it instead of cloning it for a
/// route that may not apply (440 polynomials at 440 edges).
pub fn route_one_h_transform(
    env: &Environment,
    prior: &[Rational],
    h: &[Rational],
    policy: &[Rational],
    functional: Functional,
    budget: &Budget,
) -> Result<RouteOne, Functional> {
    use crate::exact::gcd::mul;
    if !is_h_transform(env, prior, h, policy) {
        return Err(functional);
    }
    let inv_h0 = h[env.source].recip();
    let ForwardPass {
        per_edge,
        flows,
        prefix: prefix_p,
    } = forward_pass(env, prior, &functional, budget);
    // h(s')·c_e: one scaling per edge.
    let cost_h: Vec<FracPoly> = env
        .edges
        .iter()
        .zip(&per_edge)
        .map(|(edge, c)| {
            let mut scaled = FracPoly::zero();
            scaled.add_scaled(c, &h[edge.to]);
            scaled
        })
        .collect();
    let backward_h = backward_of(env, prior, &cost_h, budget);
    // h0·E[X·1[e ∈ τ]] = p(e)·h(s')·P_p(s) + p(e)·π(s)·(h(s')·c_e + B^h(s')).
    let prefix_weight: Vec<Rational> = env
        .edges
        .iter()
        .enumerate()
        .map(|(e, edge)| mul(&prior[e], &h[edge.to]))
        .collect();
    let scaled_joint = joint_of(
        env,
        &prefix_p,
        &prefix_weight,
        &backward_h.action,
        &flows.edge,
    );
    let gradient = chain_rule(env, &scaled_joint, &functional.weight, policy, &inv_h0);
    let occ = h_transform_occupancy(&flows.state, h, &inv_h0);
    Ok(RouteOne {
        functional,
        occ,
        values: Values::HTransform {
            prefix: prefix_p,
            suffix: backward_h.value,
            joint: scaled_joint,
            h: h.to_vec(),
            inv_h0,
        },
        gradient,
    })
}

/// `X(τ) = k + Σ_{e∈τ} c_e` when it takes one value `K` on every trajectory, with the
/// potential `D(s) = Σ_{prefix to s} c` it implies, or `None`. The test is exact and
/// sufficient: along the topological order `D(s')` is set by the first edge into `s'` and
/// every other edge must give the same polynomial (`D(s) + c_e = D(s')`, canonical
/// polynomials, so equal values are equal forms); then `X(τ) = k + D(x)` for the terminal `x`
/// of `τ`, and every terminal must give the same `K`.
fn constant_value(env: &Environment, functional: &Functional) -> Option<(Poly, Vec<Poly>)> {
    let mut potential: Vec<Option<Poly>> = vec![None; env.states.len()];
    potential[env.source] = Some(Poly::zero());
    for &s in &env.topo {
        // A state no edge reaches has no potential: not this route's case.
        let here = potential[s].take()?;
        for &e in &env.out_edges[s] {
            let there = here.add(&functional.per_edge[e]);
            match &potential[env.edges[e].to] {
                None => potential[env.edges[e].to] = Some(there),
                Some(set) if *set == there => {}
                Some(_) => return None,
            }
        }
        potential[s] = Some(here);
    }
    let potential: Vec<Poly> = potential.into_iter().collect::<Option<_>>()?;
    let mut terminals = env.terminals().into_iter();
    let value = functional.constant.add(&potential[terminals.next()?]);
    terminals
        .all(|x| functional.constant.add(&potential[x]) == value)
        .then_some((value, potential))
}

/// Route 1 for a functional whose value `X(τ) = K` is the same on every trajectory (the
/// correct objectives at `q*`, where every residual is a constant): then
/// `E[X·1[e ∈ τ]] = K·occ(s)·q(e)`, `P(s) = occ(s)·(k + D(s))` and `B(s) = (K − k) − D(s)`
/// for the potential `D` of `constant_value` (built on demand, for derivations), and route
/// 1's chain rule gives `E[∂L/∂θ_b] = K·occ(s)·q(b)·(w_b − Σ_{e from s} w_e·q(e))`. Only `K`
/// is multiplied by rationals, where the DP carries every prefix and suffix sum over all of
/// the base's atoms (the three correct objectives' DPs at `q*` were 17 % of `verify`'s CPU
/// at 440 edges, each computing large polynomials that cancel to zero). `occ` is the
/// policy's occupancy. The result is the same exact [`RouteOne`] as [`route_one`]'s (the
/// tests compare them); where `X` is not constant the functional is handed back.
pub fn route_one_constant(
    env: &Environment,
    policy: &[Rational],
    occ: &[Rational],
    functional: Functional,
) -> Result<RouteOne, Functional> {
    let Some((value, potential)) = constant_value(env, &functional) else {
        return Err(functional);
    };
    // Σ_e w_e·(1[e = b] − q(b))·K·occ(s)·q(e) = K·occ(s)·q(b)·(w_b − Σ_e w_e·q(e)): one
    // scalar per edge, zero wherever a state's edges have one weight and its policy sums to
    // one (Lehmer's gcd: `q*` has denominators of many digits).
    let gradient = {
        use crate::exact::gcd::{add, mul};
        let k = FracPoly::from_poly(&value);
        let mean_weight: Vec<Rational> = env
            .out_edges
            .iter()
            .map(|out| match out.first() {
                Some(&first)
                    if out
                        .iter()
                        .all(|&e| functional.weight[e] == functional.weight[first]) =>
                {
                    let mass = out
                        .iter()
                        .fold(Rational::zero(), |m, &e| add(&m, &policy[e]));
                    mul(&functional.weight[first], &mass)
                }
                _ => out.iter().fold(Rational::zero(), |m, &e| {
                    add(&m, &mul(&functional.weight[e], &policy[e]))
                }),
            })
            .collect();
        env.edges
            .iter()
            .enumerate()
            .map(|(b, edge)| {
                let spread = &functional.weight[b] - &mean_weight[edge.from];
                if spread.is_zero() {
                    FracPoly::zero()
                } else {
                    scaled(&k, &mul(&mul(&occ[edge.from], &policy[b]), &spread))
                }
            })
            .collect()
    };
    Ok(RouteOne {
        functional,
        occ: occ.to_vec(),
        values: Values::Constant {
            value,
            potential,
            policy: policy.to_vec(),
            tail: env.edges.iter().map(|edge| edge.from).collect(),
        },
        gradient,
    })
}

fn indicator(b: bool) -> Rational {
    if b {
        Rational::one()
    } else {
        Rational::zero()
    }
}

impl RouteOne {
    /// The steps of route 1 on edge `b`: `E[X·1[e ∈ τ]]` for every sibling `e`, then the
    /// gradient. The last step's result is `gradient[b]`.
    pub fn steps(&self, env: &Environment, policy: &[Rational], b: usize) -> Vec<Step> {
        let f = &self.functional;
        let x = &f.name;
        let s = env.edges[b].from;
        let state = &env.states[s];
        let mut steps = Vec::new();
        for &e in &env.out_edges[s] {
            let to = env.edges[e].to;
            let q = &policy[e];
            steps.push(Step::collect(
                format!(
                    "route 1 forward/backward: E[{x}·1[{} ∈ τ]] = q·P({state}) + q·occ({state})·(c_e + B({}))",
                    env.edge_name(e),
                    env.states[to]
                ),
                vec![
                    term(format!("{q}·P({state})"), self.prefix(s).to_poly().scale(q)),
                    term(
                        format!("{q}·{}·c_e", self.occ[s]),
                        f.per_edge[e].scale(&(q * &self.occ[s])),
                    ),
                    term(
                        format!("{q}·{}·B({})", self.occ[s], env.states[to]),
                        self.suffix(to).to_poly().scale(&(q * &self.occ[s])),
                    ),
                ],
            ));
        }
        let terms = env.out_edges[s]
            .iter()
            .map(|&e| {
                let factor = &f.weight[e] * (indicator(e == b) - &policy[b]);
                term(
                    format!(
                        "{}·({} − {})·E[{x}·1[{}]]",
                        f.weight[e],
                        indicator(e == b),
                        policy[b],
                        env.edge_name(e)
                    ),
                    self.joint(e).to_poly().scale(&factor),
                )
            })
            .collect();
        steps.push(Step::collect(
            format!(
                "route 1: E[∂{}/∂θ({})] = Σ_e w_e·(1[e = b] − q(b))·E[{x}·1[e ∈ τ]]",
                f.loss,
                env.edge_name(b)
            ),
            terms,
        ));
        steps
    }
}

/// Route 2 of one objective: the Bellman state decomposition and the policy-gradient recursion.
#[derive(Debug, Clone)]
pub struct RouteTwo {
    /// The objective's name (`KL(q‖q*)`, `J`).
    pub name: String,
    /// The downstream value `V(s)` (0 at terminals), over a common denominator.
    pub value: Vec<FracPoly>,
    /// `cost_e + V(s')` per edge, over a common denominator.
    pub action: Vec<FracPoly>,
    /// `∂cost_e/∂ℓ_e` (the score weight), per edge.
    pub score_weight: Vec<Rational>,
    /// `occ(s)`.
    pub occ: Vec<Rational>,
    /// `∂F/∂θ_b` per edge (over a common denominator).
    pub gradient: Vec<FracPoly>,
}

/// The Bellman route for `F(q) = Σ_s occ(s) Σ_e q(e)·cost_e`, with `cost_e` given at the policy
/// and its slope `∂cost_e/∂ℓ_e`.
pub fn route_two(
    env: &Environment,
    policy: &[Rational],
    name: &str,
    cost: &[Poly],
    score_weight: Vec<Rational>,
    budget: &Budget,
) -> RouteTwo {
    let flows = flows_of(env, policy, budget);
    let cost: Vec<FracPoly> = cost.iter().map(FracPoly::from_poly).collect();
    let backward = backward_of(env, policy, &cost, budget);
    let gradient = flow::policy_gradient(env, policy, &flows, &backward, Some(&score_weight));
    let (value, action, occ) = (backward.value, backward.action, flows.state);
    RouteTwo {
        name: name.into(),
        value,
        action,
        score_weight,
        occ,
        gradient,
    }
}

/// Route 2 at an h-transform of the prior, `q(e) = p(e)·h(s')/h(s)` (see
/// [`route_one_h_transform`]): the backward values under the prior with costs `h(s')·cost_e`,
/// `V^h(s) = Σ_e p(e)·(h(s')·cost_e + V^h(s'))`, give `V(s) = V^h(s)/h(s)` and
/// `cost_e + V(s') = (h(s')·cost_e + V^h(s'))/h(s')`, and the policy gradient
/// `∂F/∂θ_b = flow(b)·(cost_b + V(s'_b) − V(s)) + flow(b)·(w_b − Σ_e q(e)·w_e)` with
/// `flow(b) = π(s)·p(b)·h(s'_b)/h0`. The same exact [`RouteTwo`] as [`route_two`]; `None` when
/// `policy` is not that h-transform.
#[allow(clippy::too_many_arguments)]
pub fn route_two_h_transform(
    env: &Environment,
    prior: &[Rational],
    h: &[Rational],
    policy: &[Rational],
    name: &str,
    cost: &[Poly],
    score_weight: Vec<Rational>,
    budget: &Budget,
) -> Option<RouteTwo> {
    use crate::exact::gcd::{add, mul};
    if !is_h_transform(env, prior, h, policy) {
        return None;
    }
    let inv_h0 = h[env.source].recip();
    let flows = flows_of(env, prior, budget);
    let cost_h: Vec<FracPoly> = env
        .edges
        .iter()
        .zip(cost)
        .map(|(edge, c)| {
            let mut scaled = FracPoly::zero();
            scaled.add_scaled(&FracPoly::from_poly(c), &h[edge.to]);
            scaled
        })
        .collect();
    let backward_h = backward_of(env, prior, &cost_h, budget);
    let gradient = (0..env.edges.len())
        .map(|b| {
            let edge = &env.edges[b];
            let s = edge.from;
            // flow(b) = π(s)·p(b)·h(s')/h0.
            let flow_b = mul(&mul(&flows.edge[b], &h[edge.to]), &inv_h0);
            let mut g = FracPoly::combination(
                &backward_h.action[b],
                &mul(&flows.edge[b], &inv_h0),
                &backward_h.value[s],
                &-mul(&flow_b, &inverse(&h[s])),
            );
            let mean = env.out_edges[s].iter().fold(Rational::zero(), |acc, &e| {
                add(&acc, &mul(&policy[e], &score_weight[e]))
            });
            let centred = add(&score_weight[b], &-mean);
            g.add_scaled(&FracPoly::constant(&centred), &flow_b);
            g
        })
        .collect();
    let value = rescale(&backward_h.value, &|s| inverse(&h[s]));
    let action = rescale(&backward_h.action, &|e| inverse(&h[env.edges[e].to]));
    let occ = h_transform_occupancy(&flows.state, h, &inv_h0);
    Some(RouteTwo {
        name: name.into(),
        value,
        action,
        score_weight,
        occ,
        gradient,
    })
}

fn route_two_terms(
    env: &Environment,
    policy: &[Rational],
    occ: &[Rational],
    action: &[FracPoly],
    score_weight: &[Rational],
    b: usize,
) -> Vec<Poly> {
    let s = env.edges[b].from;
    let mut terms: Vec<Poly> = env.out_edges[s]
        .iter()
        .map(|&e| {
            action[e]
                .to_poly()
                .scale(&(&occ[s] * &policy[e] * (indicator(e == b) - &policy[b])))
        })
        .collect();
    let score = env.out_edges[s].iter().fold(Rational::zero(), |acc, &e| {
        acc + &occ[s] * &policy[e] * &score_weight[e] * (indicator(e == b) - &policy[b])
    });
    terms.push(Poly::constant(score));
    terms
}

impl RouteTwo {
    /// The step of route 2 on edge `b`; its result is `gradient[b]`.
    pub fn step(&self, env: &Environment, policy: &[Rational], b: usize) -> Step {
        let s = env.edges[b].from;
        let values = route_two_terms(env, policy, &self.occ, &self.action, &self.score_weight, b);
        let mut labels: Vec<String> = env.out_edges[s]
            .iter()
            .map(|&e| {
                format!(
                    "occ·q·(1[e=b] − q(b))·(cost + V({})) for e = {}",
                    env.states[env.edges[e].to],
                    env.edge_name(e)
                )
            })
            .collect();
        labels.push("score term occ(s)·Σ_e q(e)·∂cost_e/∂θ_b (Σ_e q(e) = 1)".into());
        Step::collect(
            format!(
                "route 2 (Bellman): ∂{}/∂θ({}) = occ({})·Σ_e ∂q(e)/∂θ_b·(cost_e + V(s'_e)) + score term",
                self.name,
                env.edge_name(b),
                env.states[s]
            ),
            labels.into_iter().zip(values).collect(),
        )
    }
}

/// `∇_θ J(q)` by the Bellman route at a policy whose logs are `log_q`.
pub fn grad_j(ctx: &ClaimContext, policy: &[Rational], log_q: &dyn Fn(usize) -> Poly) -> RouteTwo {
    let env = ctx.env;
    let cost: Vec<Poly> = (0..env.edges.len())
        .map(|e| {
            let penalty = log_q(e).sub(ctx.log_p(e)).scale(&-ctx.alpha.clone());
            match ctx.reward_on(e) {
                Some(r) => r.add(&penalty),
                None => penalty,
            }
        })
        .collect();
    route_two(
        env,
        policy,
        "J",
        &cost,
        vec![-ctx.alpha.clone(); env.edges.len()],
        &ctx.options.budget,
    )
}

/// `∇_θ KL(q ‖ q*)` by the Bellman route at the spec's q, or why `q*` is not rational.
pub fn grad_kl_qstar(ctx: &ClaimContext) -> Result<RouteTwo, SkipReason> {
    let opt = optimum_polys(ctx)?;
    let env = ctx.env;
    let cost: Vec<Poly> = (0..env.edges.len())
        .map(|e| ctx.log_q_concrete(e).sub(&opt.log_policy[e]))
        .collect();
    Ok(route_two(
        env,
        &env.posterior(),
        "KL(q‖q*)",
        &cost,
        vec![Rational::one(); env.edges.len()],
        &ctx.options.budget,
    ))
}

/// Everything C6 computes at the spec's q (also used by the report).
pub struct Gradients {
    /// Route 1 of `L_RTB`.
    pub rtb: RouteOne,
    /// Route 1 of `L_RKL`.
    pub rkl: RouteOne,
    /// Route 1 of `L_TPCL`.
    pub tpcl: RouteOne,
    /// Route 2 of `J`.
    pub j: RouteTwo,
    /// Route 2 of `KL(q ‖ q*)`, or why it is skipped.
    pub kl: Result<RouteTwo, SkipReason>,
}

/// Both routes at the spec's q, computed once per context (C6 and the report share them).
pub fn gradients<'c>(ctx: &'c ClaimContext) -> &'c Gradients {
    ctx.gradients.get_or_init(|| {
        let env = ctx.env;
        let q = env.posterior();
        let log_q = |e: usize| ctx.log_q_concrete(e).clone();
        let budget = &ctx.options.budget;
        // Five independent DPs: on all cores.
        let ((rtb, rkl), (tpcl, (j, kl))) = rayon::join(
            || {
                rayon::join(
                    || route_one(env, &q, Functional::rtb(ctx, &log_q), budget),
                    || route_one(env, &q, Functional::reinforce(ctx, &log_q), budget),
                )
            },
            || {
                rayon::join(
                    || route_one(env, &q, Functional::trust_pcl(ctx, &log_q), budget),
                    || rayon::join(|| grad_j(ctx, &q, &log_q), || grad_kl_qstar(ctx)),
                )
            },
        );
        Gradients {
            rtb,
            rkl,
            tpcl,
            j,
            kl,
        }
    })
}

/// Builds a functional from the logs of the policy (`ℓ_e` free, or concrete).
pub type Builder<'a> = &'a dyn Fn(&dyn Fn(usize) -> Poly) -> Functional;

/// `Σ_τ q(τ)·∂L(τ)/∂θ_b` for every edge `b`, by enumeration: per trajectory `X(τ)` from the
/// functional's per-edge terms with `ℓ_e` free, `∂L/∂ℓ_e = φ'(X)·∂X/∂ℓ_e` symbolically, then
/// `ℓ := log q` and the softmax chain rule at every visited state.
pub fn enumerated_gradient(ctx: &ClaimContext, paths: &[Vec<usize>], build: Builder) -> Vec<Poly> {
    let env = ctx.env;
    let q = env.posterior();
    let symbolic = build(&ClaimContext::ell);
    let mut out = vec![Poly::zero(); env.edges.len()];
    for path in paths {
        let prob = dp::path_probability(&q, path);
        let x = path.iter().fold(symbolic.constant.clone(), |acc, &e| {
            acc.add(&symbolic.per_edge[e])
        });
        let at_q = x.substitute_all(&|v| match v {
            Var::LogQ(e) => Some(ctx.log_q_concrete(*e).clone()),
            _ => None,
        });
        for &e in path {
            // ∂L/∂ℓ_e = w_e·X: the weight carries both the loss's slope and ∂X/∂ℓ_e.
            let g = at_q.scale(&(&prob * &symbolic.weight[e]));
            let s = env.edges[e].from;
            for &b in &env.out_edges[s] {
                out[b].add_assign(&g.scale(&(indicator(e == b) - &q[b])));
            }
        }
    }
    out
}

fn identity_derivation(
    check: &str,
    subject: String,
    identity: String,
    mut steps: Vec<Step>,
    last: Step,
) -> Derivation {
    steps.push(last);
    Derivation {
        check: check.into(),
        subject,
        identity,
        steps,
    }
}

/// Checks C6 (the parts that need `q*` skipped, with the reason, where it is irrational).
pub fn check(ctx: &ClaimContext) -> Certificate {
    let env = ctx.env;
    let keep = ctx.options.keep;
    let q = env.posterior();
    let g = gradients(ctx);
    let beta = &env.beta;
    let tag = ctx.mutant_tag();
    let (factor, factor_name) = ctx.shared_factor();
    let edge_subject = |b: usize| format!("edge {}", env.edge_name(b));

    let mut rtb_kl = Recorder::new(CHECKS[0], "dp", keep);
    let mut kl_j = Recorder::new(CHECKS[1], "bellman", keep);
    if let Err(reason) = &g.kl {
        rtb_kl = Recorder::skipped(CHECKS[0], "dp", reason.clone());
        kl_j = Recorder::skipped(CHECKS[1], "bellman", reason.clone());
    }
    let mut rtb_j = Recorder::new(CHECKS[2], "dp", keep);
    let mut rkl_j = Recorder::new(CHECKS[3], "dp", keep);
    let mut rtb_rkl = Recorder::new(CHECKS[4], "dp", keep);
    let mut tpcl_rtb = Recorder::new(CHECKS[5], "dp", keep);
    let fails = |holds: bool| u64::from(!holds);
    let minus_beta = -beta.clone();
    let one = Rational::one();
    for b in 0..env.edges.len() {
        // Each identity is decided on the DP's values (term by term, nothing rebuilt); the
        // derivation with its steps is built only for the kept ones and the first failure.
        let (e_rtb, e_rkl, grad_j) = (&g.rtb.gradient[b], &g.rkl.gradient[b], &g.j.gradient[b]);
        if let Ok(kl) = &g.kl {
            rtb_kl.record_with(1, fails(e_rtb.equals_scaled(&kl.gradient[b], &one)), || {
                let mut steps = g.rtb.steps(env, &q, b);
                steps.push(kl.step(env, &q, b));
                identity_derivation(
                    CHECKS[0],
                    edge_subject(b),
                    format!("E_q[∂L_RTB/∂θ] − ∂KL(q‖q*)/∂θ = 0 for any logZ{tag}"),
                    steps,
                    Step::identity(
                        "route 1 − route 2 (logZ must drop out)",
                        vec![
                            term("E[∂L_RTB/∂θ]", e_rtb.to_poly()),
                            term("−∂KL(q‖q*)/∂θ", kl.gradient[b].to_poly().neg()),
                        ],
                    ),
                )
            });
            kl_j.record_with(
                1,
                fails(kl.gradient[b].equals_scaled(grad_j, &minus_beta)),
                || {
                    identity_derivation(
                        CHECKS[1],
                        edge_subject(b),
                        format!("∂KL(q‖q*)/∂θ + β·∂J/∂θ = 0 with β = {beta}"),
                        vec![kl.step(env, &q, b), g.j.step(env, &q, b)],
                        Step::identity(
                            "collect ∂KL + β·∂J",
                            vec![
                                term("∂KL(q‖q*)/∂θ", kl.gradient[b].to_poly()),
                                term("β·∂J/∂θ", grad_j.to_poly().scale(beta)),
                            ],
                        ),
                    )
                },
            );
        }
        rtb_j.record_with(1, fails(e_rtb.equals_scaled(grad_j, &minus_beta)), || {
            let mut steps = g.rtb.steps(env, &q, b);
            steps.push(g.j.step(env, &q, b));
            identity_derivation(
                CHECKS[2],
                edge_subject(b),
                format!("E_q[∂L_RTB/∂θ] + β·∂J/∂θ = 0 for any logZ with β = {beta}{tag}"),
                steps,
                Step::identity(
                    "route 1 + β·route 2 (logZ must drop out)",
                    vec![
                        term("E[∂L_RTB/∂θ]", e_rtb.to_poly()),
                        term("β·∂J/∂θ", grad_j.to_poly().scale(beta)),
                    ],
                ),
            )
        });
        rkl_j.record_with(
            1,
            fails(e_rkl.equals_scaled(grad_j, &-Rational::one())),
            || {
                let mut steps = g.rkl.steps(env, &q, b);
                steps.push(g.j.step(env, &q, b));
                identity_derivation(
                    CHECKS[3],
                    edge_subject(b),
                    "E_q[∂L_RKL/∂θ] + ∂J/∂θ = 0 for any constant baseline b = V(s0)".into(),
                    steps,
                    Step::identity(
                        "route 1 + route 2 (the baseline must drop out)",
                        vec![
                            term("E[∂L_RKL/∂θ]", e_rkl.to_poly()),
                            term("∂J/∂θ", grad_j.to_poly()),
                        ],
                    ),
                )
            },
        );
        rtb_rkl.record_with(1, fails(e_rtb.equals_scaled(e_rkl, beta)), || {
            identity_derivation(
                CHECKS[4],
                edge_subject(b),
                format!("E_q[∂L_RTB/∂θ] − β·E_q[∂L_RKL/∂θ] = 0 with β = {beta}{tag}"),
                vec![
                    Step::collect(
                        "route 1 for L_RTB",
                        vec![term("E[∂L_RTB/∂θ]", e_rtb.to_poly())],
                    ),
                    Step::collect(
                        "route 1 for L_RKL",
                        vec![term("E[∂L_RKL/∂θ]", e_rkl.to_poly())],
                    ),
                ],
                Step::identity(
                    "collect E[∂L_RTB] − β·E[∂L_RKL]",
                    vec![
                        term("E[∂L_RTB/∂θ]", e_rtb.to_poly()),
                        term("−β·E[∂L_RKL/∂θ]", e_rkl.to_poly().scale(&-beta.clone())),
                    ],
                ),
            )
        });
        tpcl_rtb.record_with(
            1,
            fails(g.tpcl.gradient[b].equals_scaled(e_rtb, &factor)),
            || {
                let mut steps = g.tpcl.steps(env, &q, b);
                steps.push(Step::collect(
                    "route 1 for L_RTB",
                    vec![term("E[∂L_RTB/∂θ]", e_rtb.to_poly())],
                ));
                identity_derivation(
                    CHECKS[5],
                    edge_subject(b),
                    format!(
                        "E_q[∂L_TPCL/∂θ] − {factor_name}·E_q[∂L_RTB/∂θ] = 0 for any V(s0), logZ with α = {}{tag}",
                        ctx.alpha
                    ),
                    steps,
                    Step::identity(
                        format!("collect E[∂L_TPCL] − {factor_name}·E[∂L_RTB]"),
                        vec![
                            term("E[∂L_TPCL/∂θ]", g.tpcl.gradient[b].to_poly()),
                            term(
                                format!("−{factor_name}·E[∂L_RTB/∂θ]"),
                                e_rtb.to_poly().scale(&-factor.clone()),
                            ),
                        ],
                    ),
                )
            },
        );
    }

    let enumeration = match &ctx.trajectories {
        Ok(paths) => {
            let mut r = Recorder::new(CHECKS[6], "enumeration", keep);
            let rtb = enumerated_gradient(ctx, paths, &|lq| Functional::rtb(ctx, lq));
            let rkl = enumerated_gradient(ctx, paths, &|lq| Functional::reinforce(ctx, lq));
            let tpcl = enumerated_gradient(ctx, paths, &|lq| Functional::trust_pcl(ctx, lq));
            for b in 0..env.edges.len() {
                let pair = |name: &str, enumerated: &Poly, dp: &FracPoly| {
                    Step::identity(
                        format!("Σ_τ q(τ)·∂{name}(τ)/∂θ − DP route 1"),
                        vec![
                            term("Σ_τ", enumerated.clone()),
                            term("−DP", dp.to_poly().neg()),
                        ],
                    )
                };
                r.record(Derivation {
                    check: CHECKS[6].into(),
                    subject: format!(
                        "edge {} over {} trajectories",
                        env.edge_name(b),
                        paths.len()
                    ),
                    identity: format!("enumeration = forward/backward DP{tag}"),
                    steps: vec![
                        pair("L_RTB", &rtb[b], &g.rtb.gradient[b]),
                        pair("L_RKL", &rkl[b], &g.rkl.gradient[b]),
                        pair("L_TPCL", &tpcl[b], &g.tpcl.gradient[b]),
                    ],
                });
            }
            r
        }
        Err(reason) => Recorder::skipped(CHECKS[6], "enumeration", reason.clone()),
    };
    certificate(
        "C6",
        STATEMENT,
        vec![rtb_kl, kl_j, rtb_j, rkl_j, rtb_rkl, tpcl_rtb, enumeration],
    )
}

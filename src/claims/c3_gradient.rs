//! C3 (gradient identity), every factor a separate named check:
//!
//! - `C3.logq`: `∂L_TPCL/∂ℓ_e = α² ∂L_RTB/∂ℓ_e` for every edge of the trajectory, with the
//!   scalar shared (`V(s0) := α logZ`);
//! - `C3.softmax`: the same through the tabular softmax at the spec's concrete `q`:
//!   `∂/∂θ_b = Σ_{e from s} ∂L/∂ℓ_e (1[e = b] − q(b|s))` for every edge `b` at a visited state;
//! - `C3.logZ`: `∂L_TPCL/∂logZ = α² ∂L_RTB/∂logZ` (shared scalar);
//! - `C3.V-own`: with `V(s0)` its own parameter, `∂L_TPCL/∂V(s0) = α ∂L_RTB/∂logZ` at
//!   `V(s0) = α logZ`;
//! - `C3.surrogate`: the reference code's `−sg(C)·Σ log q` has gradient `α ∂L_RTB/∂ℓ_e`.
//!
//! Enumeration route on every trajectory; generic route on a trajectory with symbolic
//! aggregates (`ℓ_e` enters only through `Σℓ` with coefficient 1, so `∂/∂ℓ_e = ∂/∂Σℓ`), then
//! for every terminal, and for the softmax every edge's chain factor.
use super::{c2_loss, certificate, term, Certificate, ClaimContext, Recorder};
use crate::exact::{Derivation, Poly, Rational, Step, Var};
use crate::objectives::{half_square, trust_pcl};
use num_traits::{One, Zero};

/// The claim's statement.
pub const STATEMENT: &str =
    "∇L_TPCL = α²·∇L_RTB (θ via ℓ and softmax, logZ); ∂L_TPCL/∂V(s0) = α·∂L_RTB/∂logZ; surrogate = α·∇L_RTB";

/// The sub-checks, in report order.
pub const CHECKS: [&str; 5] = [
    "C3.logq",
    "C3.softmax",
    "C3.logZ",
    "C3.V-own",
    "C3.surrogate",
];

/// Per edge `b`: its name and `(∂L_TPCL/∂θ_b, ∂L_RTB/∂θ_b)`, from the two losses.
type SoftmaxGradients<'a> = &'a dyn Fn(&Poly, &Poly) -> Vec<(String, Poly, Poly)>;

/// The objects every sub-check derives from, on one trajectory or the generic one.
struct Losses {
    c: Poly,
    l_tpcl: Poly,
    l_rtb: Poly,
    l_tpcl_v_own: Poly,
}

fn identity(label: String, tpcl: (String, Poly), rtb: (String, Poly)) -> Step {
    Step::identity(label, vec![tpcl, rtb])
}

/// One derivation per sub-check, for gradients w.r.t. the variables `ells` (the trajectory's
/// `ℓ_e`, or `Σℓ`), and softmax chain factors given by `softmax`.
fn derivations(
    ctx: &ClaimContext,
    subject: &str,
    losses: &Losses,
    ells: &[(String, Var)],
    softmax: SoftmaxGradients,
) -> [Derivation; 5] {
    let (k, kname) = ctx.shared_factor();
    let alpha = &ctx.alpha;
    let log_z = Var::LogZ;
    let v_s0 = Var::V(ctx.env.source);
    let grad_rtb_z = losses.l_rtb.derivative(&log_z);
    let tag = ctx.mutant_tag();
    let make = |check: &str, identity_text: String, steps: Vec<Step>| Derivation {
        check: check.into(),
        subject: subject.into(),
        identity: format!("{identity_text} with α = {alpha}{tag}"),
        steps,
    };

    let logq = ells
        .iter()
        .map(|(name, v)| {
            identity(
                format!("∂/∂{name}"),
                term("∂L_TPCL", losses.l_tpcl.derivative(v)),
                term(
                    format!("−{kname}·∂L_RTB"),
                    losses.l_rtb.derivative(v).scale(&-k.clone()),
                ),
            )
        })
        .collect();

    let soft = softmax(&losses.l_tpcl, &losses.l_rtb)
        .into_iter()
        .map(|(name, t, r)| {
            identity(
                format!("∂/∂θ({name})"),
                term("∂L_TPCL", t),
                term(format!("−{kname}·∂L_RTB"), r.scale(&-k.clone())),
            )
        })
        .collect();

    let z = vec![identity(
        "∂/∂logZ (V(s0) := α·logZ)".into(),
        term("∂L_TPCL", losses.l_tpcl.derivative(&log_z)),
        term(format!("−{kname}·∂L_RTB"), grad_rtb_z.scale(&-k.clone())),
    )];

    let v_grad = losses
        .l_tpcl_v_own
        .derivative(&v_s0)
        .substitute(&v_s0, &ctx.shared_v_s0());
    let v_own = vec![identity(
        "∂/∂V(s0) at V(s0) = α·logZ".into(),
        term("∂L_TPCL/∂V(s0)", v_grad),
        term("−α·∂L_RTB/∂logZ", grad_rtb_z.scale(&-alpha.clone())),
    )];

    let surrogate_grad = trust_pcl::surrogate_gradient(&losses.c);
    let surrogate = ells
        .iter()
        .map(|(name, v)| {
            identity(
                format!("∂/∂{name}"),
                term("−sg(C)·∂(Σℓ)", surrogate_grad.clone()),
                term(
                    "−α·∂L_RTB",
                    losses.l_rtb.derivative(v).scale(&-alpha.clone()),
                ),
            )
        })
        .collect();

    [
        make(
            "C3.logq",
            format!("∂L_TPCL/∂ℓ − {kname}·∂L_RTB/∂ℓ = 0"),
            logq,
        ),
        make(
            "C3.softmax",
            format!("∂L_TPCL/∂θ − {kname}·∂L_RTB/∂θ = 0 at the spec's q"),
            soft,
        ),
        make(
            "C3.logZ",
            format!("∂L_TPCL/∂logZ − {kname}·∂L_RTB/∂logZ = 0"),
            z,
        ),
        make(
            "C3.V-own",
            "∂L_TPCL/∂V(s0) − α·∂L_RTB/∂logZ = 0".into(),
            v_own,
        ),
        make(
            "C3.surrogate",
            "∂(−sg(C)·Σℓ)/∂ℓ − α·∂L_RTB/∂ℓ = 0".into(),
            surrogate,
        ),
    ]
}

/// The five sub-check derivations on one trajectory.
pub fn trajectory_derivations(ctx: &ClaimContext, path: &[usize]) -> [Derivation; 5] {
    let log_z = Poly::var(Var::LogZ);
    let shared = ctx.trajectory_sides(path, &ctx.shared_v_s0(), &log_z, &ClaimContext::ell);
    let own = ctx.trajectory_sides(
        path,
        &Poly::var(Var::V(ctx.env.source)),
        &log_z,
        &ClaimContext::ell,
    );
    let losses = Losses {
        l_tpcl: ctx.tpcl_loss(&shared.consistency),
        l_rtb: half_square(&shared.residual),
        l_tpcl_v_own: ctx.tpcl_loss(&own.consistency),
        c: shared.consistency,
    };
    let ells: Vec<(String, Var)> = path
        .iter()
        .map(|&e| (format!("ℓ({})", ctx.env.edge_name(e)), Var::LogQ(e)))
        .collect();
    let env = ctx.env;
    let softmax = |l_tpcl: &Poly, l_rtb: &Poly| {
        // ℓ-gradients at the concrete q, then the chain rule at every visited state.
        let at_q = |p: Poly| {
            p.substitute_all(&|v| match v {
                Var::LogQ(e) => Some(ctx.log_q_concrete(*e).clone()),
                _ => None,
            })
        };
        let grads: Vec<(usize, Poly, Poly)> = path
            .iter()
            .map(|&e| {
                (
                    e,
                    at_q(l_tpcl.derivative(&Var::LogQ(e))),
                    at_q(l_rtb.derivative(&Var::LogQ(e))),
                )
            })
            .collect();
        let mut out = Vec::new();
        for &e in path {
            let s = env.edges[e].from;
            for &b in &env.out_edges[s] {
                let (mut t, mut r) = (Poly::zero(), Poly::zero());
                for (taken, gt, gr) in grads
                    .iter()
                    .filter(|(taken, _, _)| env.edges[*taken].from == s)
                {
                    let indicator = if *taken == b {
                        Rational::one()
                    } else {
                        Rational::zero()
                    };
                    let factor = indicator - ctx.q(b);
                    t = t.add(&gt.scale(&factor));
                    r = r.add(&gr.scale(&factor));
                }
                out.push((env.edge_name(b), t, r));
            }
        }
        out
    };
    derivations(
        ctx,
        &format!("trajectory {}", env.path_name(path)),
        &losses,
        &ells,
        &softmax,
    )
}

/// The five sub-check derivations on the generic trajectory (optionally into terminal `x`).
pub fn generic_derivations(ctx: &ClaimContext, terminal: Option<usize>) -> [Derivation; 5] {
    let (mut c, mut delta) = c2_loss::generic_sides(ctx, &ctx.shared_v_s0());
    let (mut c_own, _) = c2_loss::generic_sides(ctx, &Poly::var(Var::V(ctx.env.source)));
    let subject = match terminal {
        Some(x) => {
            let r = ctx.log_r(x);
            c = c.substitute(&Var::LogR, r);
            delta = delta.substitute(&Var::LogR, r);
            c_own = c_own.substitute(&Var::LogR, r);
            format!("generic trajectory into {}", ctx.env.states[x])
        }
        None => "generic trajectory".into(),
    };
    let losses = Losses {
        l_tpcl: ctx.tpcl_loss(&c),
        l_rtb: half_square(&delta),
        l_tpcl_v_own: ctx.tpcl_loss(&c_own),
        c,
    };
    let env = ctx.env;
    let softmax = |l_tpcl: &Poly, l_rtb: &Poly| {
        // With logr symbolic the identity covers every terminal, so the per-edge chain
        // factors are checked once, not once per terminal.
        if terminal.is_some() {
            return Vec::new();
        }
        // ∂L/∂θ_b = ∂L/∂Σℓ · (n_b(τ) − q(b)·n_s(τ)): for every edge, both chain factors a
        // trajectory through its state can produce (b taken, or a sibling taken).
        let (gt, gr) = (
            l_tpcl.derivative(&Var::SumLogQ),
            l_rtb.derivative(&Var::SumLogQ),
        );
        let mut out = Vec::new();
        for b in 0..env.edges.len() {
            for (case, factor) in [
                ("taken", Rational::one() - ctx.q(b)),
                ("sibling taken", -ctx.q(b).clone()),
            ] {
                out.push((
                    format!("{}, {case}", env.edge_name(b)),
                    gt.scale(&factor),
                    gr.scale(&factor),
                ));
            }
        }
        out
    };
    derivations(
        ctx,
        &subject,
        &losses,
        &[("Σℓ".to_string(), Var::SumLogQ)],
        &softmax,
    )
}

/// Checks C3 by enumeration and on the generic trajectory.
pub fn check(ctx: &ClaimContext) -> Certificate {
    let keep = ctx.options.keep;
    let mut enumeration: Vec<Recorder> = match &ctx.trajectories {
        Ok(_) => CHECKS
            .iter()
            .map(|n| Recorder::new(n, "enumeration", keep))
            .collect(),
        Err(reason) => CHECKS
            .iter()
            .map(|n| Recorder::skipped(n, "enumeration", reason.clone()))
            .collect(),
    };
    if let Ok(paths) = &ctx.trajectories {
        super::budget::stream(
            &ctx.options.budget,
            paths,
            |path| trajectory_derivations(ctx, path),
            |ds| {
                for (r, d) in enumeration.iter_mut().zip(ds) {
                    r.record(d);
                }
            },
        );
    }
    let mut generic: Vec<Recorder> = CHECKS
        .iter()
        .map(|n| Recorder::new(&format!("{n}.generic"), "generic", keep))
        .collect();
    let terminals = std::iter::once(None).chain(ctx.env.terminals().into_iter().map(Some));
    for terminal in terminals {
        for (r, d) in generic.iter_mut().zip(generic_derivations(ctx, terminal)) {
            r.record(d);
        }
    }
    enumeration.extend(generic);
    certificate("C3", STATEMENT, enumeration)
}

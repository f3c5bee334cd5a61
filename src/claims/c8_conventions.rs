//! C8 (conventions): how the variants found in popular implementations relate, each a named
//! exact check, each with a negative control that shows the wrong relation fails by an exact,
//! provably non-zero amount (see `docs/conventions.md`).
//!
//! - `C8.half`: with ½ on neither side the identity still holds (`C² = α²·δ²`) and the
//!   unhalved gradient is exactly twice the halved one; control `C8.half.mixed`: ½ on one side
//!   only is off by exactly a factor 2 (`C² − α²·½δ² = α²·½δ²`).
//! - `C8.beta`: β on `log r` (`δ_β = logZ + Σℓ − Σlog p − β·logr`) vs α on the log-ratio
//!   (`δ_α = logZ' + α(Σℓ − Σlog p) − logr`, `logZ' = α·logZ`): `δ_α = α·δ_β` (same zero set,
//!   same optimum), and `∇L_β = β²·∇L_α`; control `C8.beta.on-ratio`: β on the log-ratio
//!   (instead of α) is off by `(β² − 1)·logr` (no control at β = 1, where they coincide).
//! - `C8.vargrad`: on a batch of trajectories with free `ℓ_e`, VarGrad (`logZ := −mean(rest)`)
//!   has the gradient of RTB at that `logZ`, detached and non-detached centring agree
//!   (`Σ_i (rest_i − mean) = 0`), and `−mean` is RTB's minimiser in `logZ`; control
//!   `C8.vargrad.plus-mean`: the `+mean` variant differs by exactly `4·mean·∂mean`.
//! - `C8.cutoff`: a RTB cut-off `c` is a Trust-PCL cut-off `α²·c`:
//!   `(½C² − α²c) = α²·(½δ² − c)`, so `relu` agrees up to the positive factor α²; control
//!   `C8.cutoff.unscaled`: the same `c` on both sides is off by `(α² − 1)·c`.
//! - `C8.discount` and `C8.entropy` (controls): Trust-PCL with γ < 1 or τ_H > 0 breaks
//!   `C = −α·δ` by exactly `Σ_t (γ^t − 1)·RL_t` and `−τ_H·Σ_t ℓ_t`.
//!
//! The reference sides are the suite's own objectives, so the mutants of `verify` apply, and a
//! control fails with its check where the mutant changes the reference it is measured
//! against: `missing-half` breaks `C8.half`, `C8.cutoff`, `C8.cutoff.unscaled`;
//! `alpha-not-squared` (β ≠ 1) breaks `C8.half`, `C8.half.mixed`, `C8.cutoff`; `flipped-sign`
//! breaks `C8.half`, `C8.half.mixed`, `C8.cutoff`, `C8.cutoff.unscaled`, `C8.discount`,
//! `C8.entropy`; `beta-on-ratio` (β ≠ 1) breaks all of those and `C8.beta`,
//! `C8.beta.on-ratio`. `C8.vargrad` and its control hold for any residual, so no mutant breaks
//! them.
use super::c2_loss::generic_sides;
use super::{certificate, term, Certificate, ClaimContext, Recorder, SkipReason};
use crate::exact::{Derivation, Poly, Rational, Step, Var};
use crate::objectives::{half_square, rtb, square, trust_pcl};
use num_traits::One;

/// The claim's statement.
pub const STATEMENT: &str = "conventions: ½ or not, β on logr vs α on the ratio (∇ differ by β²), VarGrad = RTB at logZ = −mean (+mean differs), cut-off α²c; γ < 1 and τ_H > 0 break C = −α·δ by exact amounts";

/// The check names, in report order.
pub const CHECKS: [&str; 10] = [
    "C8.half",
    "C8.half.mixed",
    "C8.beta",
    "C8.beta.on-ratio",
    "C8.vargrad",
    "C8.vargrad.plus-mean",
    "C8.cutoff",
    "C8.cutoff.unscaled",
    "C8.discount",
    "C8.entropy",
];

/// The cut-offs checked.
pub fn cutoffs() -> Vec<Rational> {
    [(1, 10), (1, 1), (5, 1)]
        .iter()
        .map(|&(n, d)| Rational::new(n.into(), d.into()))
        .collect()
}

/// The discount and the entropy weight of the regime controls (pcl_rl's default τ = 0.1).
pub fn regime_controls() -> (Rational, Rational) {
    (
        Rational::new(9.into(), 10.into()),
        Rational::new(1.into(), 10.into()),
    )
}

/// A small deterministic batch of trajectories: path `k` takes child `(k + depth) mod n` at
/// every state, so different paths branch differently.
pub fn batch(ctx: &ClaimContext, size: usize) -> Vec<Vec<usize>> {
    let env = ctx.env;
    (0..size)
        .map(|k| {
            let (mut s, mut path) = (env.source, Vec::new());
            while !env.is_terminal(s) {
                let out = &env.out_edges[s];
                let e = out[(k + path.len()) % out.len()];
                path.push(e);
                s = env.edges[e].to;
            }
            path
        })
        .collect()
}

fn derivation(check: &str, subject: &str, identity: String, steps: Vec<Step>) -> Derivation {
    Derivation {
        check: check.into(),
        subject: subject.into(),
        identity,
        steps,
    }
}

fn ds(p: &Poly) -> Poly {
    p.derivative(&Var::SumLogQ)
}

/// `C8.half` and its control on the generic trajectory.
fn half(ctx: &ClaimContext, tag: &str, keep: usize) -> [Recorder; 2] {
    let (f, fname) = ctx.shared_factor();
    let (c, delta) = generic_sides(ctx, &ctx.shared_v_s0());
    let halved_t = ctx.tpcl_loss(&c);
    let (halved_r, unhalved_t, unhalved_r) = (half_square(&delta), square(&c), square(&delta));
    let mut r = Recorder::new(CHECKS[0], "generic", keep);
    r.record(derivation(
        CHECKS[0],
        "generic trajectory",
        format!("½ on both sides or on neither: the identity holds; ∇(δ²) = 2·∇(½δ²){tag}"),
        vec![
            Step::identity(
                format!("½C² − {fname}·½δ²"),
                vec![
                    term("½C²", halved_t),
                    term(format!("−{fname}·½δ²"), halved_r.scale(&-f.clone())),
                ],
            ),
            Step::identity(
                format!("C² − {fname}·δ²"),
                vec![
                    term("C²", unhalved_t.clone()),
                    term(format!("−{fname}·δ²"), unhalved_r.scale(&-f.clone())),
                ],
            ),
            Step::identity(
                "∂(δ²)/∂Σℓ − 2·∂(½δ²)/∂Σℓ",
                vec![
                    term("∂(δ²)/∂Σℓ", ds(&unhalved_r)),
                    term(
                        "−2·∂(½δ²)/∂Σℓ",
                        ds(&halved_r).scale(&-Rational::from_integer(2.into())),
                    ),
                ],
            ),
        ],
    ));
    let mut control = Recorder::new(CHECKS[1], "generic", keep);
    let mixed = unhalved_t.sub(&halved_r.scale(&f));
    let predicted = halved_r.scale(&f);
    control.record_nonzero(
        derivation(
            CHECKS[1],
            "generic trajectory",
            format!("½ on RTB only: C² − {fname}·½δ² = {fname}·½δ² ≠ 0 (off by exactly 2){tag}"),
            vec![
                Step::collect(
                    "mixed residual C² − α²·½δ²",
                    vec![
                        term("C²", unhalved_t),
                        term(format!("−{fname}·½δ²"), halved_r.scale(&-f.clone())),
                    ],
                ),
                Step::identity(
                    "mixed residual − α²·½δ²",
                    vec![
                        term("mixed", mixed.clone()),
                        term("−α²·½δ²", predicted.neg()),
                    ],
                ),
            ],
        ),
        &mixed,
    );
    [r, control]
}

/// `C8.beta` and its control on the generic trajectory.
fn beta(ctx: &ClaimContext, tag: &str, keep: usize) -> [Recorder; 2] {
    let env = ctx.env;
    let (alpha, b) = (&ctx.alpha, &env.beta);
    let (sq, sp, lr, lz) = (
        Poly::var(Var::SumLogQ),
        Poly::var(Var::SumLogP),
        Poly::var(Var::LogR),
        Poly::var(Var::LogZ),
    );
    let delta_beta = rtb::residual(
        &lz,
        &[rtb::step(&sq, &sp, Some(&lr), b, ctx.beta_placement())],
    );
    let residual_on_ratio = |weight: &Rational| {
        rtb::residual(
            &lz.scale(weight),
            &[rtb::step(
                &sq,
                &sp,
                Some(&lr),
                weight,
                rtb::BetaPlacement::OnLogRatio,
            )],
        )
    };
    let delta_alpha = residual_on_ratio(alpha);
    let mut r = Recorder::new(CHECKS[2], "generic", keep);
    r.record(derivation(
        CHECKS[2],
        "generic trajectory",
        format!("δ_α = α·δ_β (same optimum) and ∇L_β = β²·∇L_α with β = {b}{tag}"),
        vec![
            Step::collect(
                "δ_β = logZ + Σℓ − Σlogp − β·logr",
                vec![term("δ_β", delta_beta.clone())],
            ),
            Step::collect(
                "δ_α = α·logZ + α·(Σℓ − Σlogp) − logr",
                vec![term("δ_α", delta_alpha.clone())],
            ),
            Step::identity(
                "δ_α − α·δ_β",
                vec![
                    term("δ_α", delta_alpha.clone()),
                    term("−α·δ_β", delta_beta.scale(&-alpha.clone())),
                ],
            ),
            Step::identity(
                "∂(½δ_β²)/∂Σℓ − β²·∂(½δ_α²)/∂Σℓ",
                vec![
                    term("∂L_β/∂Σℓ", ds(&half_square(&delta_beta))),
                    term(
                        "−β²·∂L_α/∂Σℓ",
                        ds(&half_square(&delta_alpha)).scale(&-(b * b)),
                    ),
                ],
            ),
        ],
    ));
    let control = if b.is_one() {
        Recorder::skipped(
            CHECKS[3],
            "generic",
            SkipReason::Vacuous("β = 1: β and α on the log-ratio coincide"),
        )
    } else {
        let mut control = Recorder::new(CHECKS[3], "generic", keep);
        let wrong = residual_on_ratio(b);
        let difference = wrong.sub(&delta_beta.scale(b));
        let predicted = lr.scale(&(b * b - Rational::one()));
        control.record_nonzero(
            derivation(
                CHECKS[3],
                "generic trajectory",
                format!(
                    "β on the log-ratio instead of α: δ_wrong − β·δ_β = (β² − 1)·logr ≠ 0{tag}"
                ),
                vec![
                    Step::collect(
                        "δ_wrong = β·logZ + β·(Σℓ − Σlogp) − logr",
                        vec![term("δ_wrong", wrong.clone())],
                    ),
                    Step::identity(
                        "δ_wrong − β·δ_β − (β² − 1)·logr",
                        vec![
                            term("δ_wrong", wrong),
                            term("−β·δ_β", delta_beta.scale(&-b.clone())),
                            term("−(β² − 1)·logr", predicted.neg()),
                        ],
                    ),
                ],
            ),
            &difference,
        );
        control
    };
    [r, control]
}

/// `C8.vargrad` and its control on a batch of trajectories with free `ℓ_e`.
fn vargrad(ctx: &ClaimContext, keep: usize) -> [Recorder; 2] {
    let env = ctx.env;
    let paths = batch(ctx, 3);
    let size = Rational::from_integer((paths.len() as i64).into());
    let inv = size.recip();
    let subject = format!(
        "batch {}",
        paths
            .iter()
            .map(|p| env.path_name(p))
            .collect::<Vec<_>>()
            .join(" | ")
    );
    let rest: Vec<Poly> = paths
        .iter()
        .map(|path| ctx.rtb_residual(path, &Poly::zero()))
        .collect();
    let mean = Poly::sum(&rest).scale(&inv);
    let lz = Var::LogZ;
    let batch_loss = |scalar: &Poly| -> Poly {
        Poly::sum(
            &rest
                .iter()
                .map(|r| half_square(&scalar.add(r)))
                .collect::<Vec<_>>(),
        )
        .scale(&inv)
    };
    let rtb_loss = batch_loss(&Poly::var(lz.clone()));
    let non_detached = batch_loss(&mean.neg());
    let plus_mean = batch_loss(&mean);
    let mut edges: Vec<usize> = paths.iter().flatten().copied().collect();
    edges.sort_unstable();
    edges.dedup();
    let at_minus_mean = |p: &Poly| p.substitute(&lz, &mean.neg());
    let mut steps = vec![Step::identity(
        "Σ_i (rest_i − mean) (centring sums to zero)",
        rest.iter()
            .enumerate()
            .map(|(i, r)| term(format!("rest_{i} − mean"), r.sub(&mean)))
            .collect(),
    )];
    steps.push(Step::identity(
        "∂L_RTB/∂logZ at logZ = −mean (VarGrad's logZ minimises the batch loss)",
        vec![term("∂L/∂logZ", at_minus_mean(&rtb_loss.derivative(&lz)))],
    ));
    let mut control_steps = Vec::new();
    let mut witness = Poly::zero();
    for &e in &edges {
        let v = Var::LogQ(e);
        let name = env.edge_name(e);
        let g_rtb = at_minus_mean(&rtb_loss.derivative(&v));
        let g_nd = non_detached.derivative(&v);
        // Detached: logZ := −sg(mean), i.e. differentiate with logZ free, then substitute.
        let g_det = g_rtb.clone();
        steps.push(Step::identity(
            format!("∂/∂ℓ({name}): VarGrad (non-detached mean) − RTB at logZ = −mean"),
            vec![term("VarGrad", g_nd.clone()), term("−RTB", g_rtb.neg())],
        ));
        steps.push(Step::identity(
            format!("∂/∂ℓ({name}): detached − non-detached"),
            vec![term("detached", g_det), term("−non-detached", g_nd.neg())],
        ));
        let g_plus = plus_mean.derivative(&v);
        let difference = g_plus.sub(&g_nd);
        let predicted = mean
            .mul(&mean.derivative(&v))
            .scale(&Rational::from_integer(4.into()));
        control_steps.push(Step::identity(
            format!("∂/∂ℓ({name}): (+mean) − (−mean) − 4·mean·∂mean"),
            vec![
                term("+mean", g_plus),
                term("−(−mean)", g_nd.neg()),
                term("−4·mean·∂mean", predicted.neg()),
            ],
        ));
        witness.add_assign(&difference.mul(&difference));
    }
    let mut r = Recorder::new(CHECKS[4], "batch", keep);
    r.record(derivation(
        CHECKS[4],
        &subject,
        "VarGrad logZ := −mean_batch(rest): ∇θ equals RTB's at that logZ; detached = non-detached"
            .into(),
        steps,
    ));
    let mut control = Recorder::new(CHECKS[5], "batch", keep);
    control.record_nonzero(
        derivation(
            CHECKS[5],
            &subject,
            "the `+mean` variant is a different objective: ∇ differs by 4·mean·∂mean ≠ 0".into(),
            control_steps,
        ),
        &witness,
    );
    [r, control]
}

/// `C8.cutoff` and its control on the generic trajectory.
fn cutoff(ctx: &ClaimContext, tag: &str, keep: usize) -> [Recorder; 2] {
    let (f, fname) = ctx.shared_factor();
    let (c, delta) = generic_sides(ctx, &ctx.shared_v_s0());
    let (l_t, l_r) = (ctx.tpcl_loss(&c), half_square(&delta));
    let alpha2 = &ctx.alpha * &ctx.alpha;
    let mut r = Recorder::new(CHECKS[6], "generic", keep);
    let mut control = if alpha2.is_one() {
        Recorder::skipped(
            CHECKS[7],
            "generic",
            SkipReason::Vacuous("β = 1: α² = 1, so c and α²·c coincide"),
        )
    } else {
        Recorder::new(CHECKS[7], "generic", keep)
    };
    for cut in cutoffs() {
        let shifted = |loss: &Poly, k: &Rational| loss.sub(&Poly::constant(k.clone()));
        r.record(derivation(
            CHECKS[6],
            &format!("generic trajectory, c = {cut}"),
            format!(
                "(½C² − {fname}·c) = {fname}·(½δ² − c), so relu(½C² − {fname}·c) = {fname}·relu(½δ² − c) ({fname} = {f} > 0){tag}"
            ),
            vec![Step::identity(
                format!("(L_TPCL − {fname}·c) − {fname}·(L_RTB − c)"),
                vec![
                    term(format!("L_TPCL − {fname}·c"), shifted(&l_t, &(&f * &cut))),
                    term(
                        format!("−{fname}·(L_RTB − c)"),
                        shifted(&l_r, &cut).scale(&-f.clone()),
                    ),
                ],
            )],
        ));
        if !alpha2.is_one() {
            let difference = shifted(&l_t, &cut).sub(&shifted(&l_r, &cut).scale(&alpha2));
            let predicted = Poly::constant((&alpha2 - Rational::one()) * &cut);
            control.record_nonzero(
                derivation(
                    CHECKS[7],
                    &format!("generic trajectory, c = {cut}"),
                    format!("the same c on both sides: (L_TPCL − c) − α²·(L_RTB − c) = (α² − 1)·c ≠ 0{tag}"),
                    vec![Step::identity(
                        "(L_TPCL − c) − α²·(L_RTB − c) − (α² − 1)·c",
                        vec![
                            term("(L_TPCL − c) − α²·(L_RTB − c)", difference.clone()),
                            term("−(α² − 1)·c", predicted.neg()),
                        ],
                    )],
                ),
                &difference,
            );
        }
    }
    [r, control]
}

/// `C8.discount` and `C8.entropy` on the batch's trajectories.
fn regime(ctx: &ClaimContext, tag: &str, keep: usize) -> [Recorder; 2] {
    let env = ctx.env;
    let (gamma, tau) = regime_controls();
    let alpha = &ctx.alpha;
    let mut paths = batch(ctx, 3);
    paths.sort_by_key(|p| std::cmp::Reverse(p.len()));
    paths.dedup();
    let log_z = Poly::var(Var::LogZ);
    let v_s0 = ctx.shared_v_s0();
    let mut discount = Recorder::new(CHECKS[8], "trajectory", keep);
    let mut entropy = Recorder::new(CHECKS[9], "trajectory", keep);
    for path in &paths {
        let subject = format!("trajectory {}", env.path_name(path));
        let sides = ctx.trajectory_sides(path, &v_s0, &log_z, &ClaimContext::ell);
        let alpha_delta = sides.residual.scale(alpha);
        let rl: Vec<Poly> = ctx
            .rl_terms(path, &ClaimContext::ell)
            .into_iter()
            .map(|(_, p)| p)
            .collect();
        if path.len() >= 2 {
            let mut params = ctx.tpcl_params();
            params.gamma = gamma.clone();
            let c_gamma = trust_pcl::consistency(&v_s0, &Poly::zero(), &rl, &params);
            let mut power = Rational::one();
            let mut predicted = Poly::zero();
            for t in &rl {
                predicted.add_assign(&t.scale(&(&power - Rational::one())));
                power *= &gamma;
            }
            let difference = c_gamma.add(&alpha_delta);
            discount.record_nonzero(
                derivation(
                    CHECKS[8],
                    &subject,
                    format!("γ = {gamma} < 1: C_γ + α·δ = Σ_t (γ^t − 1)·RL_t ≠ 0{tag}"),
                    vec![
                        Step::collect(
                            "C_γ = −V(s0) + Σ_t γ^t·RL_t",
                            vec![term("C_γ", c_gamma.clone())],
                        ),
                        Step::identity(
                            "C_γ + α·δ − Σ_t (γ^t − 1)·RL_t",
                            vec![
                                term("C_γ", c_gamma),
                                term("α·δ", alpha_delta.clone()),
                                term("−Σ_t (γ^t − 1)·RL_t", predicted.neg()),
                            ],
                        ),
                    ],
                ),
                &difference,
            );
        }
        let mut params = ctx.tpcl_params();
        params.entropy = tau.clone();
        let rl_tau: Vec<Poly> = path
            .iter()
            .map(|&e| {
                let zero = Poly::zero();
                let r = ctx.reward_on(e).unwrap_or(&zero);
                trust_pcl::step_term(r, &ClaimContext::ell(e), ctx.log_p(e), &params)
            })
            .collect();
        let c_tau = trust_pcl::consistency(&v_s0, &Poly::zero(), &rl_tau, &params);
        let sum_ell = path
            .iter()
            .fold(Poly::zero(), |acc, &e| acc.add(&ClaimContext::ell(e)));
        let difference = c_tau.add(&alpha_delta);
        entropy.record_nonzero(
            derivation(
                CHECKS[9],
                &subject,
                format!("τ_H = {tau} > 0: C_τ + α·δ = −τ_H·Σ_t ℓ_t ≠ 0{tag}"),
                vec![
                    Step::collect(
                        "C_τ = −V(s0) + Σ_t (r_t − (τ_H + α)·ℓ_t + α·log p_t)",
                        vec![term("C_τ", c_tau.clone())],
                    ),
                    Step::identity(
                        "C_τ + α·δ + τ_H·Σ_t ℓ_t",
                        vec![
                            term("C_τ", c_tau),
                            term("α·δ", alpha_delta),
                            term("τ_H·Σℓ", sum_ell.scale(&tau)),
                        ],
                    ),
                ],
            ),
            &difference,
        );
    }
    if paths.iter().all(|p| p.len() < 2) {
        discount = Recorder::skipped(
            CHECKS[8],
            "trajectory",
            SkipReason::Vacuous(
                "every batch trajectory has length 1, where γ^0 = 1 changes nothing",
            ),
        );
    }
    [discount, entropy]
}

/// Checks C8.
pub fn check(ctx: &ClaimContext) -> Certificate {
    let keep = ctx.options.keep;
    let tag = ctx.mutant_tag();
    let mut recorders = Vec::new();
    recorders.extend(half(ctx, &tag, keep));
    recorders.extend(beta(ctx, &tag, keep));
    recorders.extend(vargrad(ctx, keep));
    recorders.extend(cutoff(ctx, &tag, keep));
    recorders.extend(regime(ctx, &tag, keep));
    certificate("C8", STATEMENT, recorders)
}

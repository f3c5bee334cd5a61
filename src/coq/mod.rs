//! Coq certificates: each environment's exact results restated as ground Coq statements that
//! `coqc` proves from the general theorems of `proofs/` (DESIGN §9), so that Coq, not this
//! engine, decides them.
//!
//! A certificate (one `.v` file per environment) contains:
//! - the logarithm of every rational it uses, expanded over the engine's coprime base
//!   (`ln (3/4) = 1 * ln 3 + (-2) * ln 2`), proved from `ln_mult`/`ln_Rinv`/`ln_pow` and `field`;
//! - per trajectory (at most [`CoqOptions::max_trajectories`], the cap stated in the file): the
//!   C1 identity with its rational probabilities (by the general theorem `C1_certificate`),
//!   the engine's canonical forms of both sides (decided by `lra` over the base), the C2 loss
//!   identity and the two C3 derivative identities (standard-library `derivable_pt_lim`);
//! - when the optimum is rational (C5): `F*` by backward induction, `ln F*(x) = β ln r(x)`,
//!   `Z*`, every `q*(s'|s)` with `q*(s'|s)·F*(s) = p(s'|s)·F*(s')`, `Σ q* = 1` at every state,
//!   and the RTB residual at `q*`, `log Z*` equal to zero on every written trajectory.
//!
//! Under `--mutant` the statements encode the mutant's objective or factor (the engine's own
//! objectives build both sides), so the certificate must fail to compile.
use crate::claims::{ClaimContext, VerifyOptions};
use crate::dag::{self, Environment, Optimum};
use crate::exact::{CoprimeBase, ExactError, LogForm, Monomial, Poly, Rational, Var};
use crate::mutant::Mutant;
use num_bigint::BigUint;
use num_traits::{One, Signed};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::{Path, PathBuf};

/// The default number of trajectories written per certificate.
pub const DEFAULT_MAX_TRAJECTORIES: usize = 64;

/// The DAG-table instance of `FixedPoint.v` (Coq's own `F*`, `q*` and the KL theorem on the
/// environment) is written up to this many edges; its proof cost grows quadratically.
pub const DAG_BLOCK_MAX_EDGES: usize = 64;

/// Options of the certificate writer.
#[derive(Debug, Clone)]
pub struct CoqOptions {
    /// At most this many trajectories are restated (the first ones in depth-first order);
    /// the cap and the total are stated in the file.
    pub max_trajectories: usize,
    /// The wrong variant encoded, if any (its certificate must not compile).
    pub mutant: Option<Mutant>,
}

impl Default for CoqOptions {
    fn default() -> Self {
        Self {
            max_trajectories: DEFAULT_MAX_TRAJECTORIES,
            mutant: None,
        }
    }
}

/// Why a certificate could not be written.
#[derive(Debug, thiserror::Error)]
pub enum CoqError {
    /// The exact engine could not express a number (should not happen on valid specs).
    #[error("{env}: exact arithmetic: {source}")]
    Exact {
        /// The environment.
        env: String,
        /// The engine's error.
        source: ExactError,
    },
    /// An objective came out non-linear in its log atoms (an engine invariant broken).
    #[error("{env}: {what} is not linear in log Z and the log atoms: cannot restate it")]
    NotLinear {
        /// The environment.
        env: String,
        /// Which quantity.
        what: String,
    },
    /// The output directory or a file could not be written.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Nothing to write.
    #[error("the certificate cap must be at least 1 trajectory")]
    ZeroCap,
}

/// One written certificate.
#[derive(Debug, Clone)]
pub struct Certificate {
    /// The Coq module name (the file stem): `cert_<environment>`.
    pub module: String,
    /// The `.v` text.
    pub text: String,
    /// Trajectories restated.
    pub trajectories_written: usize,
    /// Trajectories in the environment.
    pub trajectories_total: BigUint,
    /// `None` when the C5 block was written, otherwise why not.
    pub c5_skipped: Option<String>,
}

/// A Coq module name for an environment: `cert_` then the name with every character outside
/// `[A-Za-z0-9_]` replaced by `_`.
pub fn module_name(env_name: &str) -> String {
    let body: String = env_name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!("cert_{body}")
}

/// A rational as a Coq real literal: `3`, `(3/4)`, `(-3/4)`.
pub fn coq_rational(r: &Rational) -> String {
    if r.denom().is_one() {
        if r.is_negative() {
            format!("({})", r.numer())
        } else {
            r.numer().to_string()
        }
    } else {
        format!("({}/{})", r.numer(), r.denom())
    }
}

/// The first `cap` complete trajectories (edge lists) in depth-first order, without
/// enumerating the rest.
fn first_trajectories(env: &Environment, cap: usize) -> Vec<Vec<usize>> {
    let mut out = Vec::new();
    let mut stack: Vec<(usize, Vec<usize>)> = vec![(env.source, Vec::new())];
    while let Some((s, path)) = stack.pop() {
        if out.len() >= cap {
            break;
        }
        if env.is_terminal(s) {
            out.push(path);
            continue;
        }
        for &e in env.out_edges[s].iter().rev() {
            let mut next = path.clone();
            next.push(e);
            stack.push((env.edges[e].to, next));
        }
    }
    out
}

/// The logarithm table of a certificate: one lemma `ln_<k>` per distinct rational.
struct LnTable<'a> {
    base: &'a CoprimeBase,
    env: String,
    index: BTreeMap<Rational, usize>,
    lemmas: String,
}

impl<'a> LnTable<'a> {
    /// The lemma name of `ln r`, writing the lemma the first time.
    fn lemma(&mut self, r: &Rational) -> Result<String, CoqError> {
        if let Some(k) = self.index.get(r) {
            return Ok(format!("ln_{k}"));
        }
        let k = self.index.len();
        let form = LogForm::log_of(r, self.base).map_err(|source| CoqError::Exact {
            env: self.env.clone(),
            source,
        })?;
        let mut rhs = Vec::new();
        let mut pairs = Vec::new();
        for (atom, c) in form.coefficients() {
            rhs.push(format!("{} * ln {atom}", coq_rational(c)));
            pairs.push(format!("({atom}, ({})%Z)", c.numer()));
        }
        let rhs = if rhs.is_empty() {
            "0".to_string()
        } else {
            rhs.join(" + ")
        };
        let list = if pairs.is_empty() {
            "(@nil (R * Z))".to_string()
        } else {
            format!("[{}]", pairs.join("; "))
        };
        let _ = writeln!(
            self.lemmas,
            "Lemma ln_{k} : ln {} = {rhs}.\nProof. ln_base {list}. Qed.",
            coq_rational(r)
        );
        self.index.insert(r.clone(), k);
        Ok(format!("ln_{k}"))
    }
}

/// `c0 + c_z · logZ + Σ c_k ln b_k` of a polynomial of degree ≤ 1 in `log Z` and the atoms.
fn coq_linear(p: &Poly, log_z: &str, env: &str, what: &str) -> Result<String, CoqError> {
    let mut parts = Vec::new();
    for (m, c) in p.terms() {
        let factor = linear_factor(m, log_z).ok_or_else(|| CoqError::NotLinear {
            env: env.to_string(),
            what: what.to_string(),
        })?;
        parts.push(match factor {
            None => coq_rational(c),
            Some(f) => format!("{} * {f}", coq_rational(c)),
        });
    }
    Ok(if parts.is_empty() {
        "0".to_string()
    } else {
        parts.join(" + ")
    })
}

/// `Some(None)` for the constant monomial, `Some(Some(name))` for `log Z` or one atom, `None`
/// otherwise.
fn linear_factor(m: &Monomial, log_z: &str) -> Option<Option<String>> {
    match m.factors() {
        [] => Some(None),
        [(Var::LogZ, 1)] => Some(Some(log_z.to_string())),
        [(Var::Atom(b), 1)] => Some(Some(format!("ln {b}"))),
        _ => None,
    }
}

/// The certificate of one environment.
pub fn certificate(env: &Environment, options: &CoqOptions) -> Result<Certificate, CoqError> {
    if options.max_trajectories == 0 {
        return Err(CoqError::ZeroCap);
    }
    let exact = |source| CoqError::Exact {
        env: env.name.clone(),
        source,
    };
    let verify_options = VerifyOptions {
        max_trajectories: 0,
        max_windows: 0,
        mutant: options.mutant,
        ..VerifyOptions::default()
    };
    let ctx = ClaimContext::new(env, verify_options).map_err(exact)?;
    let total = dag::trajectory_count(env);
    let paths: Vec<Vec<usize>> = first_trajectories(env, options.max_trajectories)
        .into_iter()
        .filter(|path| !path.is_empty())
        .collect();
    let beta = &env.beta;
    let alpha = env.alpha();
    let mutant = options.mutant;
    // The objective's parameters as the engine (and the mutant) set them.
    let lam = if mutant == Some(Mutant::FlippedSign) {
        -alpha.clone()
    } else {
        alpha.clone()
    };
    let (w_ratio, w_reward) = if mutant == Some(Mutant::BetaOnRatio) {
        (beta.clone(), Rational::one())
    } else {
        (Rational::one(), beta.clone())
    };
    let half = if mutant == Some(Mutant::MissingHalf) {
        Rational::one()
    } else {
        Rational::new(1.into(), 2.into())
    };
    let (shared, _) = ctx.shared_factor();

    let mut ln = LnTable {
        base: &ctx.logs.base,
        env: env.name.clone(),
        index: BTreeMap::new(),
        lemmas: String::new(),
    };
    let mut body = String::new();
    let lit = coq_rational;

    let _ = writeln!(
        body,
        "(** ** C1-C3 per trajectory ({} of {} written; cap {}). *)\n",
        paths.len(),
        total,
        options.max_trajectories
    );
    let mut trajectory_rewards: Vec<(String, Rational)> = Vec::new();
    for (k, path) in paths.iter().enumerate() {
        // Validated environments have edges out of the source, so no trajectory is empty.
        let Some(&last) = path.last() else { continue };
        let x = env.edges[last].to;
        let r = env.reward(x).clone();
        let r_ln = ln.lemma(&r)?;
        let mut facts = vec![r_ln];
        let mut steps = Vec::new();
        for (i, &e) in path.iter().enumerate() {
            let edge = &env.edges[e];
            facts.push(ln.lemma(&edge.posterior)?);
            facts.push(ln.lemma(&edge.prior)?);
            let reward = if i + 1 == path.len() {
                format!("(ln {})", lit(&r))
            } else {
                "0".into()
            };
            steps.push(format!(
                "mkStep (ln {}) (ln {}) {reward}",
                lit(&edge.posterior),
                lit(&edge.prior)
            ));
        }
        facts.sort();
        facts.dedup();
        let pose: String = facts.iter().map(|f| format!("pose proof {f}; ")).collect();
        let tau = format!("tau_{k}");
        let lr = format!("(ln {})", lit(&r));
        let _ = writeln!(body, "(* {}: {} *)", tau, env.path_name(path));
        let _ = writeln!(
            body,
            "Definition {tau} : list step :=\n  [{}].",
            steps.join(";\n   ")
        );
        // C1, by the general theorem (its side conditions are the regime).
        let _ = writeln!(
            body,
            "Lemma {tau}_C1 : forall logZ,\n  consistency 1 0 {lam} (/ beta * logZ) 0 {tau}\n  = - / beta * rtb_residual_w {wr} {ww} logZ {lr} {tau}.\nProof. intros logZ. apply C1_certificate; cert_side. Qed.",
            lam = lit(&lam),
            wr = lit(&w_ratio),
            ww = lit(&w_reward),
        );
        // The engine's canonical forms of both sides, decided over the base.
        let v_s0 = ctx.shared_v_s0();
        let log_z = Poly::var(Var::LogZ);
        let ell = |e: usize| Poly::from_logform(&ctx.logs.log_posterior[e]);
        let sides = ctx.trajectory_sides(path, &v_s0, &log_z, &ell);
        let c_form = coq_linear(&sides.consistency, "logZ", &env.name, "the consistency")?;
        let d_form = coq_linear(&sides.residual, "logZ", &env.name, "the residual")?;
        let _ = writeln!(
            body,
            "Lemma {tau}_C_value : forall logZ,\n  consistency 1 0 {lam} (/ beta * logZ) 0 {tau} = {c_form}.\nProof. intros logZ. unfold {tau}, consistency, rl_term. simpl. {pose}cert_lra. Qed.",
            lam = lit(&lam),
        );
        let _ = writeln!(
            body,
            "Lemma {tau}_delta_value : forall logZ,\n  rtb_residual_w {wr} {ww} logZ {lr} {tau} = {d_form}.\nProof. intros logZ. unfold {tau}, rtb_residual_w. simpl. {pose}cert_lra. Qed.",
            wr = lit(&w_ratio),
            ww = lit(&w_reward),
        );
        // C2 and C3 with the objective's ½ and the expected shared factor.
        let _ = writeln!(
            body,
            "Lemma {tau}_C2 : forall logZ,\n  {h} * (consistency 1 0 (/ beta) (/ beta * logZ) 0 {tau}) ^ 2\n  = {s} * half_sq (rtb_residual beta logZ {lr} {tau}).\nProof. intros logZ. apply C2_certificate; cert_side. Qed.",
            h = lit(&half),
            s = lit(&shared),
        );
        let _ = writeln!(
            body,
            "Lemma {tau}_C3_logZ : forall z,\n  derivable_pt_lim (fun z' => {h} * (consistency 1 0 (/ beta) (/ beta * z') 0 {tau}) ^ 2) z\n    ({s} * rtb_residual beta z {lr} {tau}).\nProof. intros z. apply C3_logZ_certificate; cert_side. Qed.",
            h = lit(&half),
            s = lit(&shared),
        );
        let _ = writeln!(
            body,
            "Lemma {tau}_C3_V : forall z,\n  derivable_pt_lim (fun v => {h} * (consistency 1 0 (/ beta) v 0 {tau}) ^ 2) (/ beta * z)\n    ({a} * rtb_residual beta z {lr} {tau}).\nProof. intros z. apply C3_V_certificate; cert_side. Qed.\n",
            h = lit(&half),
            a = lit(&alpha),
        );
        trajectory_rewards.push((tau, r));
    }

    let c5_skipped = match &ctx.optimum {
        Ok(opt) => {
            c5_block(
                env,
                opt,
                &mut ln,
                &trajectory_rewards,
                &paths,
                (&w_ratio, &w_reward),
                &mut body,
            )?;
            None
        }
        Err(why) => {
            let _ = writeln!(body, "(* C5 not restated: {why}. *)");
            Some(why.to_string())
        }
    };

    let mut text = String::new();
    let _ = writeln!(
        text,
        "(** Certificate of environment `{}` ({}), written by `rtb-trustpcl verify --emit-coq`.\n    beta = {beta}, alpha = {alpha}; mutant: {}.\n    Trajectories restated: {} of {} (cap {}, the first ones in depth-first order).\n    C5: {}.\n    Compile with: coqc -Q <proofs dir> RTB {}.v *)",
        env.name,
        env.file,
        mutant.map(|m| m.to_string()).unwrap_or_else(|| "none".into()),
        paths.len(),
        total,
        options.max_trajectories,
        match &c5_skipped {
            None => "restated".to_string(),
            Some(why) => format!("not restated ({why})"),
        },
        module_name(&env.name),
    );
    let _ = writeln!(
        text,
        "Require Import Reals Lra ZArith List.\nRequire Import RTB.Trajectory RTB.Gradients RTB.FixedPoint RTB.Certificate.\nImport ListNotations.\nOpen Scope R_scope.\n"
    );
    let _ = writeln!(
        text,
        "Definition beta : R := {}.\nLemma beta_pos : 0 < beta. Proof. unfold beta; lra. Qed.\n\
         (* Side conditions of the general theorems (the regime: lambda = alpha, weights 1 and\n   \
         beta, loss 1/2, factors alpha^2 and alpha): each must hold, or the lemma is rejected. *)\n\
         Ltac cert_side := unfold beta; simpl; first [ exact beta_pos | lra | field\n  \
         | fail 1 \"cert_side: a side condition of the general theorem is false here\" ].\n\
         (* Ground facts, decided by lra over the log atoms of the coprime base. *)\n\
         Ltac cert_lra := unfold beta; lra.\n",
        lit(beta)
    );
    let _ = writeln!(
        text,
        "(** ** Logarithms over the coprime base {{{}}}. *)",
        ctx.logs
            .base
            .elements()
            .map(|b| b.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    text.push_str(&ln.lemmas);
    text.push('\n');
    text.push_str(&body);
    Ok(Certificate {
        module: module_name(&env.name),
        text,
        trajectories_written: paths.len(),
        trajectories_total: total,
        c5_skipped,
    })
}

/// The C5 block: backward induction, `q*`, balance, normalisation, zero residuals.
fn c5_block(
    env: &Environment,
    opt: &Optimum,
    ln: &mut LnTable<'_>,
    trajectories: &[(String, Rational)],
    paths: &[Vec<usize>],
    (w_ratio, w_reward): (&Rational, &Rational),
    body: &mut String,
) -> Result<(), CoqError> {
    let lit = coq_rational;
    let _ = writeln!(
        body,
        "(** ** C5: the optimum by backward induction, Z* = {}. *)",
        opt.z
    );
    let _ = writeln!(
        body,
        "Definition Zstar : R := {}.\nLemma Zstar_is_F_source : Zstar = {}. Proof. reflexivity. Qed.",
        lit(&opt.z),
        lit(&opt.flow[env.source])
    );
    for &s in &env.topo {
        let name = &env.states[s];
        if env.is_terminal(s) {
            // F*(x) = r(x)^β, stated with logarithms: ln F*(x) = β ln r(x).
            let f = ln.lemma(&opt.flow[s])?;
            let r = ln.lemma(env.reward(s))?;
            let _ = writeln!(
                body,
                "(* F*({name}) = r^beta *)\nLemma F_terminal_{s} : ln {} = beta * ln {}.\nProof. pose proof {f}; pose proof {r}; cert_lra. Qed.",
                lit(&opt.flow[s]),
                lit(env.reward(s))
            );
        } else {
            let terms: Vec<String> = env.out_edges[s]
                .iter()
                .map(|&e| {
                    format!(
                        "{} * {}",
                        lit(&env.edges[e].prior),
                        lit(&opt.flow[env.edges[e].to])
                    )
                })
                .collect();
            let _ = writeln!(
                body,
                "(* F*({name}) = sum of p * F*(child) *)\nLemma F_backward_{s} : {} = {}.\nProof. lra. Qed.",
                lit(&opt.flow[s]),
                terms.join(" + ")
            );
            let q: Vec<String> = env.out_edges[s]
                .iter()
                .map(|&e| lit(&opt.policy[e]))
                .collect();
            let _ = writeln!(
                body,
                "Lemma qstar_sum_{s} : {} = 1.\nProof. lra. Qed.",
                q.join(" + ")
            );
        }
    }
    for (e, edge) in env.edges.iter().enumerate() {
        let _ = writeln!(
            body,
            "(* q*({}) *)\nLemma qstar_balance_{e} : {} * {} = {} * {}.\nProof. lra. Qed.",
            env.edge_name(e),
            lit(&opt.policy[e]),
            lit(&opt.flow[edge.from]),
            lit(&edge.prior),
            lit(&opt.flow[edge.to])
        );
    }
    if env.edges.len() <= DAG_BLOCK_MAX_EDGES {
        dag_block(env, opt, ln, body)?;
    } else {
        let _ = writeln!(
            body,
            "(* The DAG-table instance of FixedPoint.v is written only up to {DAG_BLOCK_MAX_EDGES} edges \
             (this environment has {}): its proofs grow quadratically with the table. The ground \
             C5 equalities above cover every state and edge. *)",
            env.edges.len()
        );
    }
    let z_ln = ln.lemma(&opt.z)?;
    for ((tau, r), path) in trajectories.iter().zip(paths) {
        let mut facts = vec![z_ln.clone(), ln.lemma(r)?];
        let mut steps = Vec::new();
        for (i, &e) in path.iter().enumerate() {
            let edge = &env.edges[e];
            facts.push(ln.lemma(&opt.policy[e])?);
            facts.push(ln.lemma(&edge.prior)?);
            let reward = if i + 1 == path.len() {
                format!("(ln {})", lit(r))
            } else {
                "0".into()
            };
            steps.push(format!(
                "mkStep (ln {}) (ln {}) {reward}",
                lit(&opt.policy[e]),
                lit(&edge.prior)
            ));
        }
        facts.sort();
        facts.dedup();
        let pose: String = facts.iter().map(|f| format!("pose proof {f}; ")).collect();
        let _ = writeln!(
            body,
            "Definition {tau}_star : list step :=\n  [{}].\nLemma {tau}_C5_residual_zero :\n  rtb_residual_w {} {} (ln Zstar) (ln {}) {tau}_star = 0.\nProof. unfold {tau}_star, rtb_residual_w, Zstar. simpl. {pose}cert_lra. Qed.",
            steps.join(";\n   "),
            lit(w_ratio),
            lit(w_reward),
            lit(r),
        );
    }
    Ok(())
}

/// The DAG itself as tables, and the general C5 theorems of `FixedPoint.v` instantiated on
/// it: Coq's own backward induction reproduces the engine's `F*` at every state (hence `Z*`)
/// and `q*` on every edge, and `KL(q ‖ q*) = log Z* − β J(q)` holds for every policy `q`.
fn dag_block(
    env: &Environment,
    opt: &Optimum,
    ln: &mut LnTable<'_>,
    body: &mut String,
) -> Result<(), CoqError> {
    let lit = coq_rational;
    let mut position = vec![0usize; env.states.len()];
    for (i, &s) in env.topo.iter().enumerate() {
        position[s] = i;
    }
    let order: Vec<String> = env
        .topo
        .iter()
        .enumerate()
        .map(|(i, &s)| format!("{i} = {}", env.states[s]))
        .collect();
    let _ = writeln!(
        body,
        "\n(** ** C5 on this DAG by the general theorems (FixedPoint.v): states in topological order\n    {}. *)",
        order.join(", ")
    );
    let rows: Vec<String> = env
        .topo
        .iter()
        .map(|&s| {
            let row: Vec<String> = env.out_edges[s]
                .iter()
                .map(|&e| {
                    format!(
                        "({}%nat, {})",
                        position[env.edges[e].to],
                        lit(&env.edges[e].prior)
                    )
                })
                .collect();
            format!("[{}]", row.join("; "))
        })
        .collect();
    let rewards: Vec<String> = env
        .terminals()
        .iter()
        .map(|&x| format!("({}%nat, ln {})", position[x], lit(env.reward(x))))
        .collect();
    let _ = writeln!(
        body,
        "Definition ptab : list (list (nat * R)) :=\n  [{}].\nDefinition rtab : list (nat * R) := [{}].\n\
         Lemma ptab_ok : rows_ok 0 ptab = true. Proof. reflexivity. Qed.\n\
         Lemma ptab_pos : Forall (Forall (fun e => 0 < snd e)) ptab. Proof. unfold ptab. pos_table. Qed.",
        rows.join(";\n   "),
        rewards.join("; ")
    );
    for &s in env.topo.iter().rev() {
        let i = position[s];
        let name = &env.states[s];
        if env.is_terminal(s) {
            let f = ln.lemma(&opt.flow[s])?;
            let r = ln.lemma(env.reward(s))?;
            let _ = writeln!(
                body,
                "(* F*({name}), terminal *)\nLemma TF_{i} : TF ptab rtab beta {i} = {}.\n\
                 Proof. apply TF_terminal; [reflexivity | unfold tlr, rtab; simpl; pose proof {f}; pose proof {r}; cert_lra | lra]. Qed.",
                lit(&opt.flow[s])
            );
        } else {
            let mut children: Vec<String> = env.out_edges[s]
                .iter()
                .map(|&e| format!("TF_{}", position[env.edges[e].to]))
                .collect();
            children.sort();
            children.dedup();
            let _ = writeln!(
                body,
                "(* F*({name}), backward induction *)\nLemma TF_{i} : TF ptab rtab beta {i} = {}.\n\
                 Proof. rewrite TF_backward by (exact ptab_ok || (cbn; discriminate)). unfold tprior, tsucc; simpl. rewrite {}. lra. Qed.",
                lit(&opt.flow[s]),
                children.join(", ")
            );
        }
    }
    for (e, edge) in env.edges.iter().enumerate() {
        let (i, j) = (position[edge.from], position[edge.to]);
        let _ = writeln!(
            body,
            "Lemma Tqstar_{e} : Tqstar ptab rtab beta {i} {j} = {}.\n\
             Proof. rewrite Tqstar_value, TF_{i}, TF_{j}. unfold tprior; simpl. first [lra | field]. Qed.",
            lit(&opt.policy[e])
        );
    }
    let _ = writeln!(
        body,
        "Lemma TF_source_is_Zstar : TF ptab rtab beta 0 = Zstar. Proof. rewrite TF_0. reflexivity. Qed.\n\
         Theorem C5_KL_here : forall q, policy nat (tsucc ptab) q ->\n  TKL ptab rtab beta q = ln Zstar - beta * TJ ptab rtab beta q.\n\
         Proof. intros q Hq. rewrite (T_KL ptab ptab_ok ptab_pos rtab beta beta_pos q Hq), TF_source_is_Zstar. reflexivity. Qed.\n\
         Theorem C5_J_here : TJ ptab rtab beta (Tqstar ptab rtab beta) = / beta * ln Zstar.\n\
         Proof. rewrite (T_J_optimum ptab ptab_ok ptab_pos rtab beta beta_pos), TF_source_is_Zstar. reflexivity. Qed.\n"
    );
    Ok(())
}

/// Writes one certificate per environment into `dir` (created if missing); returns them with
/// their paths.
pub fn write_certificates(
    envs: &[Environment],
    dir: &Path,
    options: &CoqOptions,
) -> Result<Vec<(PathBuf, Certificate)>, CoqError> {
    std::fs::create_dir_all(dir).map_err(|source| CoqError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut written = Vec::new();
    let mut used: BTreeMap<String, usize> = BTreeMap::new();
    for env in envs {
        let mut cert = certificate(env, options)?;
        let count = used.entry(cert.module.clone()).or_insert(0);
        *count += 1;
        if *count > 1 {
            cert.module = format!("{}_{}", cert.module, count);
        }
        let path = dir.join(format!("{}.v", cert.module));
        std::fs::write(&path, &cert.text).map_err(|source| CoqError::Io {
            path: path.clone(),
            source,
        })?;
        written.push((path, cert));
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(n: i64, d: i64) -> Rational {
        Rational::new(n.into(), d.into())
    }

    #[test]
    fn rationals_print_as_coq_literals() {
        assert_eq!(coq_rational(&q(3, 1)), "3");
        assert_eq!(coq_rational(&q(-3, 1)), "(-3)");
        assert_eq!(coq_rational(&q(6, 8)), "(3/4)");
        assert_eq!(coq_rational(&q(-1, 4)), "(-1/4)");
    }

    #[test]
    fn module_names_are_coq_identifiers() {
        assert_eq!(module_name("half-irrational"), "cert_half_irrational");
        assert_eq!(module_name("a.b c"), "cert_a_b_c");
    }
}

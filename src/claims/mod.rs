//! The claims of DESIGN §3, one module each. Every claim builds both sides independently
//! (Trust-PCL from its per-step RL terms), decides the identity exactly in the polynomial
//! ring, and returns a [`Certificate`] with its derivations.

pub mod budget;
pub mod c1_residual;
pub mod c2_loss;
pub mod c3_gradient;
pub mod c4_window;
pub mod c5_fixed_point;
pub mod c6_expected_gradient;
pub mod c7_negative_controls;
pub mod c8_conventions;
mod context;

pub use budget::{Budget, BudgetExceeded, EnumerationSkipped};
pub use context::{ClaimContext, VerifyOptions};

use crate::exact::{Derivation, DerivationError, Poly, VarNames};
use serde::{Serialize, Serializer};

/// Why a check did not run. Its message is the report's text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SkipReason {
    /// The optimum is not rational (some `r(x)^β` irrational).
    #[error(transparent)]
    Irrational(#[from] crate::dag::IrrationalOptimum),
    /// The context was built without the optimum's logs.
    #[error("the optimum's logs were not built")]
    OptimumLogsMissing,
    /// An enumeration was refused (count limit or cost budget).
    #[error(transparent)]
    Enumeration(#[from] EnumerationSkipped),
    /// Every terminal has the same reward, so the flawed field vanishes at `q*`.
    #[error(
        "all rewards are equal: r and log r are both constant, so the flawed field vanishes at q*"
    )]
    RewardsAllEqual,
    /// The spec makes the check vacuous (a mutant that cannot change anything here); the text
    /// says why.
    #[error("{0}")]
    Vacuous(&'static str),
}

fn serialize_reason<S: Serializer>(
    reason: &Option<SkipReason>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match reason {
        Some(r) => serializer.serialize_some(&r.to_string()),
        None => serializer.serialize_none(),
    }
}

/// Why a certificate does not recheck.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecheckError {
    /// A kept derivation's step does not collect to its result.
    #[error(transparent)]
    Derivation(#[from] DerivationError),
    /// A derivation recorded as a failure holds.
    #[error("{claim}: a recorded failure holds")]
    FailureHolds {
        /// The claim.
        claim: String,
    },
    /// The failure counts and the recorded failures disagree.
    #[error("{claim}: failure counts and records disagree")]
    CountsDisagree {
        /// The claim.
        claim: String,
    },
    /// The verdict disagrees with the checks' counts.
    #[error("{claim}: verdict disagrees with its checks")]
    VerdictDisagrees {
        /// The claim.
        claim: String,
    },
}

/// The outcome of one named check (a family of identities decided by one route).
#[derive(Debug, Clone, Serialize)]
pub struct CheckOutcome {
    /// The check's name (`C3.logZ`, `C1.structural`, ...).
    pub name: String,
    /// `enumeration` (every trajectory/window), `structural` (per edge/state plus the
    /// telescoping lemma), `generic` (a generic trajectory with symbolic aggregates) or `dp`.
    pub route: String,
    /// Identities decided.
    pub checked: u64,
    /// Identities that failed.
    pub failed: u64,
    /// Why the check did not run (`None` when it ran); serialized as its message.
    #[serde(serialize_with = "serialize_reason")]
    pub skipped: Option<SkipReason>,
}

/// What a claim checked, whether it holds, and the derivations that show it.
#[derive(Debug, Clone)]
pub struct Certificate {
    /// `C1` … `C5`.
    pub claim: String,
    /// One line: what the claim states.
    pub statement: String,
    /// `Some(true)` when every check that ran holds, `Some(false)` when one fails, `None`
    /// when nothing could run.
    pub holds: Option<bool>,
    /// The named checks.
    pub checks: Vec<CheckOutcome>,
    /// Kept derivations (the first few of each check, and the first failures).
    pub derivations: Vec<Derivation>,
    /// The first failing derivation of each failing check.
    pub failures: Vec<Derivation>,
}

impl Certificate {
    /// Total identities decided.
    pub fn checked(&self) -> u64 {
        self.checks.iter().map(|c| c.checked).sum()
    }

    /// The reason nothing ran, or the reasons some checks were skipped.
    pub fn skipped(&self) -> Option<String> {
        // Group the checks by reason: several checks usually share one.
        let mut reasons: Vec<(String, Vec<&str>)> = Vec::new();
        for c in &self.checks {
            if let Some(r) = &c.skipped {
                let r = r.to_string();
                match reasons.iter_mut().find(|(reason, _)| *reason == r) {
                    Some((_, names)) => names.push(&c.name),
                    None => reasons.push((r, vec![&c.name])),
                }
            }
        }
        (!reasons.is_empty()).then(|| {
            reasons
                .iter()
                .map(|(r, names)| format!("{}: {r}", names.join(", ")))
                .collect::<Vec<_>>()
                .join("; ")
        })
    }

    /// A one-line summary for the report.
    pub fn summary(&self, names: &dyn VarNames) -> String {
        let ran: Vec<String> = self
            .checks
            .iter()
            .filter(|c| c.skipped.is_none())
            .map(|c| {
                if c.failed == 0 {
                    format!("{} {} ({})", c.name, c.checked, c.route)
                } else {
                    format!("{} FAILS {}/{} ({})", c.name, c.failed, c.checked, c.route)
                }
            })
            .collect();
        let mut out = if ran.is_empty() {
            "nothing ran".to_string()
        } else {
            ran.join(", ")
        };
        if let Some(first) = self.failures.first() {
            if let Some(step) = first.offending() {
                let mut rendered = step.result.render(names);
                if rendered.chars().count() > 160 {
                    rendered = rendered.chars().take(160).collect::<String>() + " …";
                }
                let soundness = if step.result.refutes() {
                    "refuted"
                } else {
                    "not proven (residual only of degree ≥ 2 in log atoms)"
                };
                out.push_str(&format!(
                    "; {soundness}: on {}, {} = {rendered}",
                    first.subject, step.name
                ));
            }
        }
        out
    }

    /// Re-checks every kept derivation: each step collects to its result, and each
    /// derivation's verdict agrees with the certificate's counts.
    pub fn recheck(&self) -> Result<(), RecheckError> {
        for d in self.derivations.iter().chain(&self.failures) {
            d.recheck()?;
        }
        let any_failed = self.checks.iter().any(|c| c.failed > 0);
        if self.failures.iter().any(|d| d.holds()) {
            return Err(RecheckError::FailureHolds {
                claim: self.claim.clone(),
            });
        }
        if any_failed == self.failures.is_empty() {
            return Err(RecheckError::CountsDisagree {
                claim: self.claim.clone(),
            });
        }
        if self.holds == Some(any_failed) {
            return Err(RecheckError::VerdictDisagrees {
                claim: self.claim.clone(),
            });
        }
        Ok(())
    }
}

/// Accumulates the derivations of one named check.
pub(crate) struct Recorder {
    outcome: CheckOutcome,
    keep: usize,
    kept: Vec<Derivation>,
    first_failure: Option<Derivation>,
}

impl Recorder {
    pub(crate) fn new(name: &str, route: &str, keep: usize) -> Self {
        Self {
            outcome: CheckOutcome {
                name: name.into(),
                route: route.into(),
                checked: 0,
                failed: 0,
                skipped: None,
            },
            keep,
            kept: Vec::new(),
            first_failure: None,
        }
    }

    pub(crate) fn skipped(name: &str, route: &str, reason: impl Into<SkipReason>) -> Self {
        let mut r = Self::new(name, route, 0);
        r.outcome.skipped = Some(reason.into());
        r
    }

    /// Records one derivation, counting each asserted identity in it.
    pub(crate) fn record(&mut self, d: Derivation) {
        let asserted = d.steps.iter().filter(|s| s.asserts_zero).count() as u64;
        let failed = d
            .steps
            .iter()
            .filter(|s| s.asserts_zero && !s.result.is_zero())
            .count() as u64;
        self.outcome.checked += asserted;
        self.outcome.failed += failed;
        if failed > 0 && self.first_failure.is_none() {
            self.first_failure = Some(d.clone());
        }
        if self.kept.len() < self.keep {
            self.kept.push(d);
        }
    }

    /// Records one derivation that asserts `asserted` identities of which `failed` fail,
    /// decided by the caller without building it: `build` runs only when the derivation is
    /// kept (the first `keep`) or is the first failure. The counts then come from the built
    /// derivation, as in [`Recorder::record`].
    pub(crate) fn record_with(
        &mut self,
        asserted: u64,
        failed: u64,
        build: impl FnOnce() -> Derivation,
    ) {
        if self.kept.len() < self.keep || (failed > 0 && self.first_failure.is_none()) {
            self.record(build());
        } else {
            self.outcome.checked += asserted;
            self.outcome.failed += failed;
        }
    }

    /// Records a negative control: `d`'s asserted identities (if any) pin the control down, and
    /// `witness` must be provably non-zero ([`Poly::refutes`]): one more check. A witness that
    /// is not provably non-zero fails, marked in the derivation by an asserted `1 = 0` step.
    pub(crate) fn record_nonzero(&mut self, mut d: Derivation, witness: &Poly) {
        if witness.refutes() {
            self.outcome.checked += 1;
        } else {
            d.steps.push(crate::exact::Step::identity(
                "the control does not discriminate: its difference is not provably non-zero",
                vec![term(
                    "1",
                    Poly::constant(crate::exact::Rational::from_integer(1.into())),
                )],
            ));
        }
        self.record(d);
    }
}

/// Builds the derivations of many independent subjects on all cores, in order.
pub(crate) fn derive_all<T: Sync, D: Send>(
    items: &[T],
    derive: impl Fn(&T) -> D + Sync + Send,
) -> Vec<D> {
    use rayon::prelude::*;
    items.par_iter().map(derive).collect()
}

/// Assembles a certificate from the recorders of its checks.
pub(crate) fn certificate(claim: &str, statement: &str, recorders: Vec<Recorder>) -> Certificate {
    let mut checks = Vec::new();
    let mut derivations = Vec::new();
    let mut failures = Vec::new();
    for r in recorders {
        checks.push(r.outcome);
        derivations.extend(r.kept);
        failures.extend(r.first_failure);
    }
    let ran = checks.iter().any(|c| c.skipped.is_none());
    let holds = ran.then(|| checks.iter().all(|c| c.failed == 0));
    Certificate {
        claim: claim.into(),
        statement: statement.into(),
        holds,
        checks,
        derivations,
        failures,
    }
}

/// C1–C8's checks, in report order.
pub const CLAIMS: [fn(&ClaimContext) -> Certificate; 8] = [
    c1_residual::check,
    c2_loss::check,
    c3_gradient::check,
    c4_window::check,
    c5_fixed_point::check,
    c6_expected_gradient::check,
    c7_negative_controls::check,
    c8_conventions::check,
];

/// The order the claims are started in: the longest first (by their CPU time on the
/// 440-edge layered DAGs: C7, C6, C5, C8, then the rest), so that the last to finish is a
/// short one (docs/performance.md, issue 12, eighth pass).
const START_ORDER: [usize; 8] = [6, 5, 4, 7, 2, 3, 0, 1];

/// Runs C1–C8 on one environment.
pub fn verify_environment(ctx: &ClaimContext) -> Vec<Certificate> {
    verify_environment_then(ctx, |_| ())
        .into_iter()
        .map(|(certificate, ())| certificate)
        .collect()
}

/// Runs C1–C8 on one environment, each followed in its own task by `then` on its certificate
/// (for work that needs what that claim computed, done while other claims still run);
/// results in report order.
pub fn verify_environment_then<T: Send>(
    ctx: &ClaimContext,
    then: impl Fn(&Certificate) -> T + Sync,
) -> Vec<(Certificate, T)> {
    // The claims are independent: one task each, taken by the cores longest first (FIFO),
    // reported in order.
    let mut slots: Vec<Option<(Certificate, T)>> = CLAIMS.iter().map(|_| None).collect();
    let mut cells: Vec<Option<&mut Option<(Certificate, T)>>> =
        slots.iter_mut().map(Some).collect();
    let then = &then;
    rayon::scope_fifo(|scope| {
        for i in START_ORDER {
            if let Some(cell) = cells[i].take() {
                scope.spawn_fifo(move |_| {
                    let certificate = CLAIMS[i](ctx);
                    let after = then(&certificate);
                    *cell = Some((certificate, after));
                });
            }
        }
    });
    slots
        .into_iter()
        .map(|slot| slot.expect("every claim's task ran"))
        .collect()
}

/// `label = poly` pair for derivation terms.
pub(crate) fn term(label: impl Into<String>, p: Poly) -> (String, Poly) {
    (label.into(), p)
}

#[cfg(test)]
mod schedule_tests {
    #[test]
    fn every_claim_is_started_once() {
        let mut order = super::START_ORDER;
        order.sort_unstable();
        assert_eq!(order, [0, 1, 2, 3, 4, 5, 6, 7]);
        assert_eq!(order.len(), super::CLAIMS.len());
    }
}

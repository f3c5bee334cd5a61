//! Derivation records: the named rewriting steps of an exact check, with the canonical form
//! after each step. A derivation is a certificate that [`Derivation::recheck`] verifies again
//! from its own contents.
use super::{Poly, VarNames};
use serde::Serialize;

/// A step of a derivation whose terms do not collect to its recorded result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{check} / {subject}: step `{step}` does not collect to its result")]
pub struct DerivationError {
    /// The derivation's check.
    pub check: String,
    /// Its subject.
    pub subject: String,
    /// The step's name.
    pub step: String,
}

/// One step: named terms and their collected sum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// What the step does ("Trust-PCL per-step RL terms", "collect C + α·δ", ...).
    pub name: String,
    /// The labelled terms the step collects.
    pub terms: Vec<(String, Poly)>,
    /// The canonical form of the sum of the terms.
    pub result: Poly,
    /// True when the step asserts that its result is zero (an identity being proved).
    pub asserts_zero: bool,
}

impl Step {
    /// A step whose result is the canonical sum of its terms.
    pub fn collect(name: impl Into<String>, terms: Vec<(String, Poly)>) -> Self {
        let result = Poly::sum(terms.iter().map(|(_, p)| p));
        Self {
            name: name.into(),
            terms,
            result,
            asserts_zero: false,
        }
    }

    /// A step whose result was computed elsewhere (by an objective's own definition); the
    /// terms show its decomposition and [`Derivation::recheck`] verifies they agree.
    pub fn computed(name: impl Into<String>, terms: Vec<(String, Poly)>, result: Poly) -> Self {
        Self {
            name: name.into(),
            terms,
            result,
            asserts_zero: false,
        }
    }

    /// A step that collects its terms and asserts the sum is zero.
    pub fn identity(name: impl Into<String>, terms: Vec<(String, Poly)>) -> Self {
        Self {
            asserts_zero: true,
            ..Self::collect(name, terms)
        }
    }
}

/// A derivation of one identity `… = 0` for one subject (a trajectory, a window, an edge).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Derivation {
    /// The claim and check (`C1`, `C3.logZ`, ...).
    pub check: String,
    /// What the identity is about (`trajectory s0,a,x1`, `edge s0->a`, `generic trajectory`).
    pub subject: String,
    /// The identity, in words (`C + α·δ = 0`).
    pub identity: String,
    /// The steps, in order; the last step's result is the residual of the identity.
    pub steps: Vec<Step>,
}

/// A rendered derivation, for JSON output and snapshots.
#[derive(Debug, Clone, Serialize)]
pub struct RenderedDerivation {
    /// The check.
    pub check: String,
    /// The subject.
    pub subject: String,
    /// The identity.
    pub identity: String,
    /// The steps.
    pub steps: Vec<RenderedStep>,
    /// Whether the residual is zero.
    pub holds: bool,
}

/// A rendered step.
#[derive(Debug, Clone, Serialize)]
pub struct RenderedStep {
    /// The step name.
    pub name: String,
    /// `label = form` for each term.
    pub terms: Vec<String>,
    /// The canonical result.
    pub result: String,
    /// Whether the step asserts its result is zero.
    pub asserts_zero: bool,
}

impl Derivation {
    /// The first non-zero result among the steps that assert zero (`None` when it holds).
    pub fn offending(&self) -> Option<&Step> {
        self.steps
            .iter()
            .find(|s| s.asserts_zero && !s.result.is_zero())
    }

    /// True when every step that asserts zero has the zero polynomial as its result (and
    /// there is at least one such step).
    pub fn holds(&self) -> bool {
        self.steps.iter().any(|s| s.asserts_zero) && self.offending().is_none()
    }

    /// Re-checks the certificate from its own contents: every step's result must be the
    /// canonical sum of its terms. Returns the name of the first step that does not.
    pub fn recheck(&self) -> Result<(), DerivationError> {
        for step in &self.steps {
            let sum = Poly::sum(step.terms.iter().map(|(_, p)| p));
            if sum != step.result {
                return Err(DerivationError {
                    check: self.check.clone(),
                    subject: self.subject.clone(),
                    step: step.name.clone(),
                });
            }
        }
        Ok(())
    }

    /// Renders every form with the given names.
    pub fn render(&self, names: &dyn VarNames) -> RenderedDerivation {
        RenderedDerivation {
            check: self.check.clone(),
            subject: self.subject.clone(),
            identity: self.identity.clone(),
            steps: self
                .steps
                .iter()
                .map(|s| RenderedStep {
                    name: s.name.clone(),
                    terms: s
                        .terms
                        .iter()
                        .map(|(label, p)| format!("{label} = {}", p.render(names)))
                        .collect(),
                    result: s.result.render(names),
                    asserts_zero: s.asserts_zero,
                })
                .collect(),
            holds: self.holds(),
        }
    }
}

impl RenderedDerivation {
    /// Plain-text form, one line per term, as printed by `derive` and stored in snapshots.
    pub fn to_text(&self) -> String {
        let mut out = format!("{} on {}: {}\n", self.check, self.subject, self.identity);
        for (i, step) in self.steps.iter().enumerate() {
            out.push_str(&format!("  {}. {}\n", i + 1, step.name));
            for term in &step.terms {
                out.push_str(&format!("       {term}\n"));
            }
            let mark = match (step.asserts_zero, step.result == "0") {
                (false, _) => "",
                (true, true) => "   ✓ = 0",
                (true, false) => "   ✗ ≠ 0",
            };
            out.push_str(&format!("     ⇒ {}{mark}\n", step.result));
        }
        out.push_str(if self.holds {
            "  ∎ holds: every asserted residual is the zero polynomial\n"
        } else {
            "  ✗ FAILS: a residual marked ✗ is not zero\n"
        });
        out
    }
}

//! Deliberately wrong variants (negative controls) that `verify` and `gradcheck` swap in.
//!
//! Each mutant changes exactly one thing; a correct suite must report the claims it affects
//! as failing. At β = 1 (α = α² = 1) `alpha-not-squared` and `beta-on-ratio` coincide with the
//! correct objective, so they are only caught where β ≠ 1.
use serde::Serialize;

/// A deliberately wrong variant of one objective or one expected factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum Mutant {
    /// Trust-PCL loss `C²` instead of `½ C²`.
    MissingHalf,
    /// Trust-PCL per-step term with the KL penalty's sign flipped:
    /// `r_t + λ (log q − log p)` instead of `r_t − λ (log q − log p)`.
    FlippedSign,
    /// RTB residual `log Z + β (Σ log q − Σ log p) − log r` instead of
    /// `log Z + Σ log q − Σ log p − β log r`.
    BetaOnRatio,
    /// The shared-scalar checks expect the factor `α` where the identity has `α²`.
    AlphaNotSquared,
}

impl Mutant {
    /// Every mutant, in a fixed order.
    pub const ALL: [Mutant; 4] = [
        Mutant::MissingHalf,
        Mutant::FlippedSign,
        Mutant::BetaOnRatio,
        Mutant::AlphaNotSquared,
    ];

    /// The command-line name (`missing-half`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Mutant::MissingHalf => "missing-half",
            Mutant::FlippedSign => "flipped-sign",
            Mutant::BetaOnRatio => "beta-on-ratio",
            Mutant::AlphaNotSquared => "alpha-not-squared",
        }
    }
}

impl std::fmt::Display for Mutant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

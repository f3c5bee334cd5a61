//! Robust per-trajectory losses on a residual: the convention "square, Huber or cut-off".
//!
//! Every squared-residual objective (RTB, Trust-PCL full and windowed, relative SubTB) is a
//! per-trajectory loss `ρ(X)` of its residual `X` (`δ`, `C`, `C_{i:j}`, `δ_{i:j}`), so its
//! per-trajectory gradient is `ψ(X) · ∂X/∂log q` with `ψ = ρ'`: a robust loss changes only
//! `ψ` and is applied to the residual a kernel returns (`KernelOutput::residual`).
//!
//! - [`Robust::Square`]: `ρ = ½X²`, `ψ(X) = X` (the objectives as defined);
//! - [`Robust::Huber`]`(c)`: `ρ = ½X²` for `|X| ≤ c`, `c·|X| − ½c²` beyond; `ψ = clamp(X, −c, c)`;
//! - [`Robust::Cutoff`]`(c)`: the cut-off of claim C8 applied to the loss `½X²`,
//!   `ρ = relu(½X² − c)`; `ψ(X) = X` where `½X² > c`, `0` where `½X² ≤ c` (at the kink
//!   `½X² = c` the value 0 is taken, a subgradient).
//!
//! For all three `ψ(0) = 0`: where the residual vanishes on every trajectory (at `q*` with
//! `log Z = log Z*`, `V = V*`), the per-trajectory gradient vanishes, so the expected gradient
//! vanishes under any behaviour: `q*` stays a stationary point (checked exactly in rationals
//! by the study's tests). The cut-off is flat on `|X| ≤ √(2c)`: every policy whose residuals all
//! lie in that band is also a minimiser, so its minimiser is not unique (a constant offset of
//! `log Z` within the band is not corrected).
//!
//! The value and derivative are written once, generic over [`RobustNumber`] (the evaluator's
//! [`Scalar`] with an order: `f64` and the exact [`Rational`]).
use super::scalar::Scalar;
use crate::exact::Rational;
use num_traits::Signed;

/// The numbers a robust loss runs over: the evaluator's [`Scalar`] (one number trait for the
/// whole suite), ordered so that `|X| ≤ c` can be decided (`f64` and the exact [`Rational`]).
pub trait RobustNumber: Scalar + PartialOrd {
    /// `−self`.
    fn neg(&self) -> Self {
        Self::zero().sub(self)
    }
}

impl<N: Scalar + PartialOrd> RobustNumber for N {}

/// A per-trajectory loss of a residual.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Robust {
    /// `½X²`.
    Square,
    /// Huber with threshold `c > 0`.
    Huber(Rational),
    /// The C8 cut-off `relu(½X² − c)`, `c ≥ 0`.
    Cutoff(Rational),
}

fn half() -> Rational {
    Rational::new(1.into(), 2.into())
}

impl Robust {
    /// `ρ(X)`.
    pub fn value<N: RobustNumber>(&self, x: &N) -> N {
        let h = N::from_rational(&half());
        let half_square = h.mul(&x.mul(x));
        match self {
            Robust::Square => half_square,
            Robust::Huber(c) => {
                let c = N::from_rational(c);
                let abs = if *x < <N as Scalar>::zero() {
                    x.neg()
                } else {
                    x.clone()
                };
                if abs <= c {
                    half_square
                } else {
                    c.mul(&abs).sub(&h.mul(&c.mul(&c)))
                }
            }
            Robust::Cutoff(c) => {
                let excess = half_square.sub(&N::from_rational(c));
                let zero = <N as Scalar>::zero();
                if excess > zero {
                    excess
                } else {
                    zero
                }
            }
        }
    }

    /// `ψ(X) = ρ'(X)`.
    pub fn derivative<N: RobustNumber>(&self, x: &N) -> N {
        match self {
            Robust::Square => x.clone(),
            Robust::Huber(c) => {
                let c = N::from_rational(c);
                if *x > c {
                    c
                } else if *x < c.neg() {
                    c.neg()
                } else {
                    x.clone()
                }
            }
            Robust::Cutoff(c) => {
                let h = N::from_rational(&half());
                if h.mul(&x.mul(x)) > N::from_rational(c) {
                    x.clone()
                } else {
                    <N as Scalar>::zero()
                }
            }
        }
    }

    /// The short name: `square`, `huber:c`, `cutoff:c`.
    pub fn name(&self) -> String {
        match self {
            Robust::Square => "square".into(),
            Robust::Huber(c) => format!("huber:{c}"),
            Robust::Cutoff(c) => format!("cutoff:{c}"),
        }
    }

    /// Parses [`Robust::name`]'s form (`c` an integer, fraction or terminating decimal).
    pub fn parse(text: &str) -> Result<Self, RobustParseError> {
        let t = text.trim();
        if t == "square" {
            return Ok(Robust::Square);
        }
        let bad = |problem: String| RobustParseError {
            text: text.to_string(),
            problem,
        };
        let (kind, c) = t
            .split_once(':')
            .ok_or_else(|| bad("expected `square`, `huber:<c>` or `cutoff:<c>`".into()))?;
        let c = crate::exact::parse_rational(c).map_err(|e| bad(e.to_string()))?;
        match kind {
            "huber" if c.is_positive() => Ok(Robust::Huber(c)),
            "huber" => Err(bad("the Huber threshold must be > 0".into())),
            "cutoff" if !c.is_negative() => Ok(Robust::Cutoff(c)),
            "cutoff" => Err(bad("the cut-off must be ≥ 0".into())),
            _ => Err(bad(format!(
                "unknown kind `{kind}` (square, huber:<c>, cutoff:<c>)"
            ))),
        }
    }
}

/// A robust loss's name that [`Robust::parse`] refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("loss `{}`: {problem}", crate::input::escape_controls(.text))]
pub struct RobustParseError {
    /// The text given.
    pub text: String,
    /// What is wrong with it.
    pub problem: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(n: i64, d: i64) -> Rational {
        Rational::new(n.into(), d.into())
    }

    #[test]
    fn derivative_is_the_slope_of_the_value_and_vanishes_at_zero() {
        for loss in [
            Robust::Square,
            Robust::Huber(r(5, 1)),
            Robust::Cutoff(r(1, 1)),
        ] {
            assert_eq!(loss.derivative(&Rational::zero()), Rational::zero());
            assert_eq!(loss.value(&Rational::zero()), Rational::zero());
            for x in [-9.0, -3.0, -0.7, 0.3, 1.2, 4.9, 5.1, 40.0] {
                let h = 1e-6;
                let fd = (loss.value(&(x + h)) - loss.value(&(x - h))) / (2.0 * h);
                let d: f64 = loss.derivative(&x);
                assert!((fd - d).abs() < 1e-6, "{} at {x}: {fd} vs {d}", loss.name());
            }
        }
        // Huber is ½X² inside, linear outside; the cut-off is flat inside √(2c).
        assert_eq!(Robust::Huber(r(5, 1)).derivative(&r(12, 1)), r(5, 1));
        assert_eq!(Robust::Huber(r(5, 1)).value(&r(7, 1)), r(45, 2));
        assert_eq!(
            Robust::Cutoff(r(1, 1)).derivative(&r(1, 1)),
            Rational::zero()
        );
        assert_eq!(Robust::Cutoff(r(1, 1)).value(&r(3, 1)), r(7, 2));
    }

    #[test]
    fn names_round_trip_and_bad_names_are_errors() {
        for loss in [
            Robust::Square,
            Robust::Huber(r(5, 2)),
            Robust::Cutoff(r(0, 1)),
        ] {
            assert_eq!(Robust::parse(&loss.name()), Ok(loss));
        }
        for bad in ["huber", "huber:0", "cutoff:-1", "tukey:3", "huber:x"] {
            assert!(Robust::parse(bad).is_err(), "{bad}");
        }
    }
}

//! Ball arithmetic in `f64`: a midpoint and a radius that rigorously encloses a real value.
//!
//! This is how exact values of the exact engine (log-forms, rationals) reach the float world
//! with a stated error: a [`Ball`] `(m, r)` claims `|x − m| ≤ r` for the real `x` it stands for.
//! Every operation rounds its midpoint to nearest and adds that rounding, `u |m̂| / (1 − u)`,
//! to the radius (Higham's standard model, `u = 2⁻⁵³`). Radii are themselves computed in
//! `f64`; as in [`super::bounds`], comparisons multiply them by `1 + EVAL_SLACK`.
//!
//! Assumptions (the same as the rest of the batched path): round to nearest, no FMA contraction,
//! `ln` faithful (within one ulp, so within `2u |ln x̂|`), rational → f64 conversion within
//! `2u` relative (num-rational rounds correctly; `2u` leaves room), big integer → f64 within
//! `2u` relative.
use std::ops::{Add, Mul, Neg, Sub};

use num_bigint::BigUint;
use num_traits::{ToPrimitive, Zero};

use crate::exact::{LogForm, Poly, Rational, Var};

const U: f64 = f64::EPSILON / 2.0;

/// Rounding of one operation, from the rounded result: `|fl(x) − x| ≤ u|fl(x)|/(1 − u)`.
#[inline]
fn rnd(m: f64) -> f64 {
    U * m.abs() * (1.0 + 2.0 * U)
}

/// A real number known to lie within `rad` of `mid`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Ball {
    /// Midpoint.
    pub mid: f64,
    /// Radius (`≥ 0`).
    pub rad: f64,
}

impl Ball {
    /// An exactly known `f64`.
    pub fn exact(x: f64) -> Self {
        Self { mid: x, rad: 0.0 }
    }

    /// `mid ± rad`.
    pub fn new(mid: f64, rad: f64) -> Self {
        Self { mid, rad }
    }

    /// The same ball with `extra` added to its radius.
    pub fn widen(self, extra: f64) -> Self {
        Self {
            mid: self.mid,
            rad: self.rad + extra,
        }
    }

    /// A rational, rounded (`None` if it overflows `f64`).
    pub fn from_rational(r: &Rational) -> Option<Self> {
        if r.is_zero() {
            return Some(Self::exact(0.0));
        }
        let m = r.to_f64()?;
        if !m.is_finite() {
            return None;
        }
        // Correctly rounded (u), or gradual underflow: allow 2u relative plus the smallest
        // subnormal.
        Some(Self::new(m, 2.0 * U * m.abs() + f64::MIN_POSITIVE * U))
    }

    /// `ln b` for an integer `b ≥ 1` (`None` if `b = 0`).
    pub fn ln_int(b: &BigUint) -> Option<Self> {
        if b.is_zero() {
            return None;
        }
        let bits = b.bits();
        if bits < 1000 {
            // x̂ = b(1 + ε), |ε| ≤ 2u: |ln x̂ − ln b| ≤ 2u/(1 − 2u) < 3u; ln faithful: 2u|ln x̂|.
            let x = b.to_f64()?;
            let l = x.ln();
            Some(Self::new(l, 3.0 * U + 2.0 * U * l.abs()))
        } else {
            // b = m·2^shift + rest, m the top 64 bits: b = m(1 + η)·2^shift, 0 ≤ η < 2⁻⁶³.
            let shift = bits - 64;
            let m = (b >> shift).to_f64()?;
            let lm = m.ln();
            let head = Self::new(lm, 3.0 * U + 2.0 * U * lm.abs() + 2f64.powi(-62));
            let ln2 = Self::new(std::f64::consts::LN_2, U * std::f64::consts::LN_2);
            Some(head.add(ln2.mul(Self::exact(shift as f64))))
        }
    }

    /// The value of a log-form `c0 + Σ c_k log b_k` (`None` if a number overflows `f64`).
    pub fn from_logform(form: &LogForm) -> Option<Self> {
        let mut acc = Self::from_rational(form.constant_part())?;
        for (atom, c) in form.coefficients() {
            acc = acc.add(Self::from_rational(c)?.mul(Self::ln_int(atom)?));
        }
        Some(acc)
    }

    /// The value of a polynomial in log atoms only (`None` if a free symbol is left or a
    /// number overflows `f64`).
    pub fn from_poly(p: &Poly) -> Option<Self> {
        let mut acc = Self::exact(0.0);
        for (m, c) in p.terms() {
            let mut term = Self::from_rational(c)?;
            for (v, e) in m.factors() {
                match v {
                    Var::Atom(b) => {
                        let l = Self::ln_int(b)?;
                        for _ in 0..*e {
                            term = term.mul(l);
                        }
                    }
                    _ => return None,
                }
            }
            acc = acc.add(term);
        }
        Some(acc)
    }

    /// `self / n` for a positive integer count `n` (exact in f64 below 2⁵³).
    pub fn div_count(self, n: usize) -> Self {
        let d = n as f64;
        let m = self.mid / d;
        Self::new(m, self.rad / d + rnd(m))
    }

    /// `c · self` for an exactly representable `c` whose products are exact (±1, ±2, ±½).
    pub fn scale_exact(self, c: f64) -> Self {
        Self::new(c * self.mid, c.abs() * self.rad)
    }

    /// `x²`.
    pub fn square(self) -> Self {
        self * self
    }

    /// `Σ balls` (left to right).
    pub fn sum(items: impl IntoIterator<Item = Ball>) -> Self {
        items.into_iter().fold(Self::exact(0.0), |a, b| a + b)
    }

    /// `(Σ balls) / n`.
    pub fn mean(items: impl IntoIterator<Item = Ball>, n: usize) -> Self {
        Self::sum(items).div_count(n)
    }

    /// Whether the real `x` is consistent with this ball.
    pub fn contains(self, x: f64) -> bool {
        (x - self.mid).abs() <= self.rad * (1.0 + super::bounds::EVAL_SLACK)
    }
}

impl Add for Ball {
    type Output = Ball;
    /// `self + o`.
    fn add(self, o: Self) -> Self {
        let m = self.mid + o.mid;
        Self::new(m, self.rad + o.rad + rnd(m))
    }
}

impl Sub for Ball {
    type Output = Ball;
    /// `self − o`.
    fn sub(self, o: Self) -> Self {
        let m = self.mid - o.mid;
        Self::new(m, self.rad + o.rad + rnd(m))
    }
}

impl Neg for Ball {
    type Output = Ball;
    /// `−self` (exact).
    fn neg(self) -> Self {
        Self::new(-self.mid, self.rad)
    }
}

impl Mul for Ball {
    type Output = Ball;
    /// `self · o`.
    fn mul(self, o: Self) -> Self {
        let m = self.mid * o.mid;
        Self::new(
            m,
            self.mid.abs() * o.rad + self.rad * o.mid.abs() + self.rad * o.rad + rnd(m),
        )
    }
}

/// Balls are a number type of the objectives' evaluator: the one definition of each
/// objective, evaluated in ball arithmetic, encloses its exact value at every point of the
/// input balls (with [`crate::objectives::Dual`] over balls, its derivatives too).
impl crate::objectives::Scalar for Ball {
    fn from_rational(c: &Rational) -> Self {
        Ball::from_rational(c).unwrap_or(Ball::new(f64::NAN, f64::INFINITY))
    }
    fn add(&self, other: &Self) -> Self {
        *self + *other
    }
    fn sub(&self, other: &Self) -> Self {
        *self - *other
    }
    fn mul(&self, other: &Self) -> Self {
        *self * *other
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exact::CoprimeBase;

    fn q(n: i64, d: i64) -> Rational {
        Rational::new(n.into(), d.into())
    }

    #[test]
    fn logforms_are_enclosed() {
        let mut base = CoprimeBase::new();
        for n in [6u32, 35, 4, 9] {
            base.insert(&BigUint::from(n));
        }
        for (n, d) in [(6, 35), (1, 4), (9, 2), (35, 36), (1, 1)] {
            let r = q(n, d);
            let f = LogForm::log_of(&r, &base).unwrap();
            let b = Ball::from_logform(&f).unwrap();
            let x = (n as f64 / d as f64).ln();
            assert!(b.contains(x), "{n}/{d}: {b:?} vs {x}");
            assert!(b.rad < 1e-14, "{b:?}");
        }
    }

    #[test]
    fn huge_integers() {
        let b = BigUint::from(3u32).pow(2000);
        let l = Ball::ln_int(&b).unwrap();
        let x = 2000.0 * 3f64.ln();
        assert!(l.contains(x), "{l:?} vs {x}");
        assert!(l.rad < 1e-9);
        assert!(Ball::ln_int(&BigUint::zero()).is_none());
    }

    #[test]
    fn arithmetic_encloses() {
        let a = Ball::new(1.0 / 3.0, 1e-16);
        let b = Ball::new(-2.0 / 7.0, 1e-16);
        let c = a.mul(b).add(a.square()).sub(b.div_count(3));
        let x = (1.0 / 3.0) * (-2.0 / 7.0) + 1.0 / 9.0 + 2.0 / 21.0;
        assert!(c.contains(x));
    }
}

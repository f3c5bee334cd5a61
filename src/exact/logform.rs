//! Log-forms `c0 + Σ_k c_k log b_k`: exact logarithms of positive rationals.
use super::{CoprimeBase, ExactError, Rational};
use num_bigint::BigUint;
use num_traits::{Signed, Zero};
use std::collections::BTreeMap;
use std::fmt;

/// `constant + Σ coefficient_k · log atom_k` with rational coefficients and atoms from one
/// pairwise-coprime base. Over one base this representation is canonical: two log-forms are
/// equal as real numbers iff they are equal as values of this type.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct LogForm {
    constant: Rational,
    coefficients: BTreeMap<BigUint, Rational>,
}

impl LogForm {
    /// The zero form.
    pub fn zero() -> Self {
        Self::default()
    }

    /// A rational constant (no logarithm).
    pub fn constant(c: Rational) -> Self {
        Self {
            constant: c,
            coefficients: BTreeMap::new(),
        }
    }

    /// `log r` for a positive rational `r` whose numerator and denominator factor over `base`:
    /// `log(p/q) = log p − log q`, each expanded over the base.
    pub fn log_of(r: &Rational, base: &CoprimeBase) -> Result<Self, ExactError> {
        if !r.is_positive() {
            return Err(ExactError::NonPositiveLog(r.to_string()));
        }
        let mut form = Self::zero();
        for (part, sign) in [(r.numer(), 1i64), (r.denom(), -1i64)] {
            let magnitude = part.magnitude();
            let exponents = base
                .factor(magnitude)
                .ok_or_else(|| ExactError::NotInBase(magnitude.to_string()))?;
            for (atom, e) in exponents {
                form.add_term(atom, Rational::from_integer((sign * e as i64).into()));
            }
        }
        Ok(form)
    }

    fn add_term(&mut self, atom: BigUint, c: Rational) {
        let entry = self.coefficients.entry(atom.clone()).or_default();
        *entry += c;
        if entry.is_zero() {
            self.coefficients.remove(&atom);
        }
    }

    /// The rational constant `c0`.
    pub fn constant_part(&self) -> &Rational {
        &self.constant
    }

    /// The coefficients `c_k` keyed by atom `b_k` (no zero coefficient is stored).
    pub fn coefficients(&self) -> &BTreeMap<BigUint, Rational> {
        &self.coefficients
    }

    /// True for the zero form.
    pub fn is_zero(&self) -> bool {
        self.constant.is_zero() && self.coefficients.is_empty()
    }

    /// `self + other`.
    pub fn add(&self, other: &Self) -> Self {
        let mut out = self.clone();
        out.constant += &other.constant;
        for (atom, c) in &other.coefficients {
            out.add_term(atom.clone(), c.clone());
        }
        out
    }

    /// `self += w·other`, in place.
    pub fn add_scaled(&mut self, other: &Self, w: &Rational) {
        if w.is_zero() {
            return;
        }
        self.constant += &other.constant * w;
        for (atom, c) in &other.coefficients {
            match self.coefficients.get_mut(atom) {
                Some(slot) => {
                    *slot += c * w;
                    if slot.is_zero() {
                        self.coefficients.remove(atom);
                    }
                }
                None => {
                    self.coefficients.insert(atom.clone(), c * w);
                }
            }
        }
    }

    /// `c · self`.
    pub fn scale(&self, c: &Rational) -> Self {
        if c.is_zero() {
            return Self::zero();
        }
        Self {
            constant: super::gcd::mul(&self.constant, c),
            coefficients: self
                .coefficients
                .iter()
                .map(|(a, k)| (a.clone(), super::gcd::mul(k, c)))
                .collect(),
        }
    }

    /// `self − other`.
    pub fn sub(&self, other: &Self) -> Self {
        self.add(&other.scale(&-Rational::from_integer(1.into())))
    }

    /// The same value over a refinement of the base this form was built on: each atom is
    /// re-expressed as a product of powers of the new elements.
    pub fn rebase(&self, refined: &CoprimeBase) -> Result<Self, ExactError> {
        let mut out = Self::constant(self.constant.clone());
        for (atom, c) in &self.coefficients {
            let exponents = refined
                .factor(atom)
                .ok_or_else(|| ExactError::NotInBase(atom.to_string()))?;
            for (b, e) in exponents {
                out.add_term(b, c * Rational::from_integer(e.into()));
            }
        }
        Ok(out)
    }
}

impl fmt::Display for LogForm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut wrote = false;
        if !self.constant.is_zero() || self.coefficients.is_empty() {
            write!(f, "{}", self.constant)?;
            wrote = true;
        }
        for (atom, c) in &self.coefficients {
            let (sign, magnitude) = if c.is_negative() {
                ("-", -c.clone())
            } else {
                ("+", c.clone())
            };
            match (wrote, sign) {
                (false, "-") => write!(f, "-")?,
                (false, _) => {}
                (true, s) => write!(f, " {s} ")?,
            }
            if magnitude == Rational::from_integer(1.into()) {
                write!(f, "log {atom}")?;
            } else {
                write!(f, "{magnitude}·log {atom}")?;
            }
            wrote = true;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(n: i64, d: i64) -> Rational {
        Rational::new(n.into(), d.into())
    }

    fn base_of(ns: &[u64]) -> CoprimeBase {
        let mut b = CoprimeBase::new();
        for n in ns {
            b.insert(&BigUint::from(*n));
        }
        b
    }

    #[test]
    fn log_of_products_is_the_sum_of_logs() {
        let base = base_of(&[6, 4, 9, 5]);
        let log6 = LogForm::log_of(&q(6, 1), &base).unwrap();
        let sum = LogForm::log_of(&q(2, 1), &base)
            .unwrap()
            .add(&LogForm::log_of(&q(3, 1), &base).unwrap());
        assert_eq!(log6, sum);
        let log_ratio = LogForm::log_of(&q(4, 9), &base).unwrap();
        assert_eq!(
            log_ratio,
            LogForm::log_of(&q(2, 3), &base).unwrap().scale(&q(2, 1))
        );
        assert_eq!(log_ratio.to_string(), "2·log 2 - 2·log 3");
        assert!(LogForm::log_of(&q(1, 1), &base).unwrap().is_zero());
    }

    #[test]
    fn refuses_non_positive_and_unknown_numbers() {
        let base = base_of(&[2]);
        assert!(matches!(
            LogForm::log_of(&q(0, 1), &base),
            Err(ExactError::NonPositiveLog(_))
        ));
        assert!(matches!(
            LogForm::log_of(&q(7, 1), &base),
            Err(ExactError::NotInBase(_))
        ));
    }

    #[test]
    fn rebase_preserves_equality() {
        let coarse = base_of(&[6, 5]);
        let form = LogForm::log_of(&q(36, 5), &coarse).unwrap();
        let mut fine = coarse.clone();
        fine.insert(&BigUint::from(4u32));
        let rebased = form.rebase(&fine).unwrap();
        assert_eq!(rebased, LogForm::log_of(&q(36, 5), &fine).unwrap());
    }
}

//! The number trait objectives are written over: the exact polynomial ring, exact rationals,
//! `f64`, `f32`, and forward-mode dual numbers over any of them ([`super::eval::Dual`]).
use crate::exact::{Poly, Rational};
use num_traits::ToPrimitive;

/// A commutative ring with rational constants: enough to write every per-trajectory objective.
pub trait Scalar: Clone {
    /// The rational constant `c`.
    fn from_rational(c: &Rational) -> Self;
    /// `self + other`.
    fn add(&self, other: &Self) -> Self;
    /// `self − other`.
    fn sub(&self, other: &Self) -> Self;
    /// `self · other`.
    fn mul(&self, other: &Self) -> Self;
    /// `c · self`.
    fn scale(&self, c: &Rational) -> Self {
        Self::from_rational(c).mul(self)
    }
    /// Zero.
    fn zero() -> Self {
        Self::from_rational(&Rational::from_integer(0.into()))
    }
    /// The sum of a slice.
    fn sum(items: &[Self]) -> Self {
        items.iter().fold(Self::zero(), |acc, x| acc.add(x))
    }
    /// `sg(self)`: the same value with no derivative (identity except on dual numbers).
    fn detach(&self) -> Self {
        self.clone()
    }
}

impl Scalar for Rational {
    fn from_rational(c: &Rational) -> Self {
        c.clone()
    }
    fn add(&self, other: &Self) -> Self {
        self + other
    }
    fn sub(&self, other: &Self) -> Self {
        self - other
    }
    fn mul(&self, other: &Self) -> Self {
        self * other
    }
}

impl Scalar for f32 {
    fn from_rational(c: &Rational) -> Self {
        c.to_f32().unwrap_or(f32::NAN)
    }
    fn add(&self, other: &Self) -> Self {
        self + other
    }
    fn sub(&self, other: &Self) -> Self {
        self - other
    }
    fn mul(&self, other: &Self) -> Self {
        self * other
    }
}

impl Scalar for Poly {
    fn from_rational(c: &Rational) -> Self {
        Poly::constant(c.clone())
    }
    fn add(&self, other: &Self) -> Self {
        Poly::add(self, other)
    }
    fn sub(&self, other: &Self) -> Self {
        Poly::sub(self, other)
    }
    fn mul(&self, other: &Self) -> Self {
        Poly::mul(self, other)
    }
    fn scale(&self, c: &Rational) -> Self {
        Poly::scale(self, c)
    }
    fn sum(items: &[Self]) -> Self {
        Poly::sum(items)
    }
}

impl Scalar for f64 {
    fn from_rational(c: &Rational) -> Self {
        c.to_f64().unwrap_or(f64::NAN)
    }
    fn add(&self, other: &Self) -> Self {
        self + other
    }
    fn sub(&self, other: &Self) -> Self {
        self - other
    }
    fn mul(&self, other: &Self) -> Self {
        self * other
    }
}

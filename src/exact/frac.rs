//! Polynomials with one common denominator, for accumulation in the dynamic programmes.
//!
//! [`Poly`] keeps every coefficient a reduced rational, so each `+=` or `·` pays gcds on
//! every coefficient (binary gcds of numbers with hundreds of digits dominated the profile of
//! the expected-gradient routes). A [`FracPoly`] is `Σ_m (n_m / d)·m` with integer numerators
//! and one positive denominator `d`: `self += w·x` costs one gcd of two denominators and then
//! only multiplications and additions per coefficient (fraction-free accumulation, as in
//! Bareiss-style exact linear algebra). Reduction happens once, in [`FracPoly::to_poly`].
use super::gcd::{gcd_int, gcd_int_unless_one, reduced};
use super::{Monomial, Poly, Rational};
use num_bigint::BigInt;
use num_traits::{One, Zero};
use std::cmp::Ordering;
use std::sync::Arc;

/// `Σ_m (numerator_m / denominator)·m`, exact, not reduced. Monomials are shared (`Arc`):
/// the values of a DP all range over the same few monomials, and cloning one (a vector of
/// variables, a log atom a big integer) was a heap allocation per term and per `+=`. The
/// terms are a vector sorted by monomial (the order of [`Poly::terms`]), without zero
/// numerators: `+=` is one merge of two sorted lists, and two shared monomials compare equal
/// by pointer before their variables are compared.
#[derive(Debug, Clone)]
pub struct FracPoly {
    numerators: Vec<(Arc<Monomial>, BigInt)>,
    denominator: BigInt,
}

fn compare(a: &Arc<Monomial>, b: &Arc<Monomial>) -> Ordering {
    if Arc::ptr_eq(a, b) {
        Ordering::Equal
    } else {
        a.cmp(b)
    }
}

impl Default for FracPoly {
    fn default() -> Self {
        Self::zero()
    }
}

impl FracPoly {
    /// Zero.
    pub fn zero() -> Self {
        Self {
            numerators: Vec::new(),
            denominator: BigInt::one(),
        }
    }

    /// A rational constant.
    pub fn constant(c: &Rational) -> Self {
        let mut numerators = Vec::new();
        if !c.is_zero() {
            numerators.push((Arc::new(Monomial::one()), c.numer().clone()));
        }
        Self {
            numerators,
            denominator: c.denom().clone(),
        }
    }

    /// The same polynomial over the common denominator of its coefficients.
    pub fn from_poly(p: &Poly) -> Self {
        let denominator = p
            .terms()
            .iter()
            .map(|(_, c)| c)
            .fold(BigInt::one(), |acc, c| {
                let g = gcd_int(&acc, c.denom());
                acc * (c.denom() / g)
            });
        let numerators = p
            .terms()
            .iter()
            .map(|(m, c)| (Arc::new(m.clone()), c.numer() * (&denominator / c.denom())))
            .collect();
        Self {
            numerators,
            denominator,
        }
    }

    /// The canonical polynomial (each coefficient reduced).
    pub fn to_poly(&self) -> Poly {
        // Each coefficient reduced with Lehmer's gcd (`exact::gcd`); the monomials arrive
        // sorted and distinct, so the map is built without merging.
        Poly::from_sorted_terms(self.numerators.iter().map(|(m, n)| {
            (
                Monomial::clone(m),
                reduced(n.clone(), self.denominator.clone()),
            )
        }))
    }

    /// The terms `(monomial, numerator)` in the order of [`Poly::terms`], not reduced.
    pub fn numerators(&self) -> impl Iterator<Item = (&Monomial, &BigInt)> {
        self.numerators.iter().map(|(m, n)| (&**m, n))
    }

    /// The common (positive) denominator.
    pub fn denominator(&self) -> &BigInt {
        &self.denominator
    }

    /// True for the zero polynomial.
    pub fn is_zero(&self) -> bool {
        self.numerators.is_empty()
    }

    /// True when `self = k·other`, decided without reducing either side: both are
    /// `n_m / d`, so `n_a/d_a = k_n·n_b/(k_d·d_b)` iff `n_a·k_d·d_b = k_n·d_a·n_b` for every
    /// monomial (two multiplications per coefficient, no gcd).
    pub fn equals_scaled(&self, other: &Self, k: &Rational) -> bool {
        if k.is_zero() || other.is_zero() {
            return self.is_zero();
        }
        if self.numerators.len() != other.numerators.len() {
            return false;
        }
        let left = k.denom() * &other.denominator;
        let right = k.numer() * &self.denominator;
        self.numerators
            .iter()
            .zip(&other.numerators)
            .all(|((ma, na), (mb, nb))| compare(ma, mb).is_eq() && na * &left == nb * &right)
    }

    /// `wa·a + wb·b`, the two-term combination of the route DPs (the joints
    /// `p(e)·P(s) + flow(e)·A(e)`, the softmax chain rule), in one merge: the same numerators
    /// and denominator, integer for integer, as `zero()` followed by `add_scaled(a, wa)` and
    /// `add_scaled(b, wb)`, without first copying `wa·a` and then multiplying that copy
    /// through by the second operand's denominator (one product per term instead of two,
    /// and no intermediate vector).
    pub fn combination(a: &Self, wa: &Rational, b: &Self, wb: &Rational) -> Self {
        if wa.is_zero() || a.is_zero() || wb.is_zero() || b.is_zero() {
            let mut out = Self::zero();
            out.add_scaled(a, wa);
            out.add_scaled(b, wb);
            return out;
        }
        // The two-step sum keeps `da = den(wa)·den(a)` and widens it by `db / g`.
        let da = wa.denom() * &a.denominator;
        let db = wb.denom() * &b.denominator;
        let (fa, fb, denominator) = match gcd_int_unless_one(&da, &db) {
            None => (wa.numer() * &db, wb.numer() * &da, da * db),
            Some(g) => {
                let (ca, cb) = (&db / &g, &da / &g);
                (wa.numer() * &ca, wb.numer() * cb, da * ca)
            }
        };
        let times = |n: &BigInt, f: &BigInt| if f.is_one() { n.clone() } else { n * f };
        let mut numerators = Vec::with_capacity(a.numerators.len().max(b.numerators.len()));
        let (mut i, mut j) = (0, 0);
        while i < a.numerators.len() || j < b.numerators.len() {
            let order = match (a.numerators.get(i), b.numerators.get(j)) {
                (Some((ma, _)), Some((mb, _))) => compare(ma, mb),
                (Some(_), None) => Ordering::Less,
                _ => Ordering::Greater,
            };
            match order {
                Ordering::Less => {
                    let (m, n) = &a.numerators[i];
                    numerators.push((m.clone(), times(n, &fa)));
                    i += 1;
                }
                Ordering::Greater => {
                    let (m, n) = &b.numerators[j];
                    numerators.push((m.clone(), times(n, &fb)));
                    j += 1;
                }
                Ordering::Equal => {
                    let (m, na) = &a.numerators[i];
                    let sum = times(na, &fa) + times(&b.numerators[j].1, &fb);
                    if !sum.is_zero() {
                        numerators.push((m.clone(), sum));
                    }
                    i += 1;
                    j += 1;
                }
            }
        }
        if numerators.is_empty() {
            return Self::zero();
        }
        Self {
            numerators,
            denominator,
        }
    }

    /// `self += w·x`: one gcd of the denominators, then multiplications only.
    pub fn add_scaled(&mut self, x: &Self, w: &Rational) {
        if w.is_zero() || x.numerators.is_empty() {
            return;
        }
        let incoming = w.denom() * &x.denominator;
        if self.numerators.is_empty() {
            let unit = w.numer().is_one();
            self.numerators = x
                .numerators
                .iter()
                .map(|(m, n)| (m.clone(), if unit { n.clone() } else { n * w.numer() }))
                .collect();
            self.denominator = incoming;
            return;
        }
        // Most denominators met here are coprime or equal: no division by a gcd of 1.
        let (widen_self, widen_x) = match gcd_int_unless_one(&self.denominator, &incoming) {
            None => (incoming, w.numer() * &self.denominator),
            Some(g) => (&incoming / &g, w.numer() * (&self.denominator / &g)),
        };
        if !widen_self.is_one() {
            for (_, n) in &mut self.numerators {
                *n *= &widen_self;
            }
            self.denominator *= &widen_self;
        }
        // Merge the sorted term lists; in place when every monomial of `x` is already here
        // (the common case once a DP value has seen its monomials).
        let mut i = 0;
        let mut in_place = true;
        for (m, _) in &x.numerators {
            while i < self.numerators.len() && compare(&self.numerators[i].0, m).is_lt() {
                i += 1;
            }
            if i == self.numerators.len() || !compare(&self.numerators[i].0, m).is_eq() {
                in_place = false;
                break;
            }
            i += 1;
        }
        if in_place {
            let mut i = 0;
            let mut cancelled = false;
            for (m, n) in &x.numerators {
                while !compare(&self.numerators[i].0, m).is_eq() {
                    i += 1;
                }
                let slot = &mut self.numerators[i].1;
                if widen_x.is_one() {
                    *slot += n;
                } else {
                    *slot += n * &widen_x;
                }
                cancelled |= slot.is_zero();
                i += 1;
            }
            if cancelled {
                self.numerators.retain(|(_, n)| !n.is_zero());
            }
        } else {
            let own = std::mem::take(&mut self.numerators);
            let mut merged = Vec::with_capacity(own.len() + x.numerators.len());
            let mut own = own.into_iter().peekable();
            for (m, n) in &x.numerators {
                while let Some((mo, _)) = own.peek() {
                    if compare(mo, m).is_lt() {
                        merged.push(own.next().expect("peeked"));
                    } else {
                        break;
                    }
                }
                let add = if widen_x.is_one() {
                    n.clone()
                } else {
                    n * &widen_x
                };
                match own.peek() {
                    Some((mo, _)) if compare(mo, m).is_eq() => {
                        let (mo, mut slot) = own.next().expect("peeked");
                        slot += add;
                        if !slot.is_zero() {
                            merged.push((mo, slot));
                        }
                    }
                    _ => merged.push((m.clone(), add)),
                }
            }
            merged.extend(own);
            self.numerators = merged;
        }
        if self.numerators.is_empty() {
            self.denominator = BigInt::one();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exact::Var;

    fn q(n: i64, d: i64) -> Rational {
        Rational::new(n.into(), d.into())
    }

    /// One of six monomials (a constant, symbols, atoms, products) for the property tests.
    fn monomial(k: usize) -> Poly {
        match k {
            0 => Poly::constant(q(1, 1)),
            1 => Poly::var(Var::LogZ),
            2 => Poly::var(Var::Atom(2u32.into())),
            3 => Poly::var(Var::Atom(3u32.into())).mul(&Poly::var(Var::LogZ)),
            4 => Poly::var(Var::V(1)),
            _ => Poly::var(Var::Atom(5u32.into())).mul(&Poly::var(Var::Atom(5u32.into()))),
        }
    }

    proptest::proptest! {
        #[test]
        fn merges_agree_with_reduced_arithmetic(
            ops in proptest::collection::vec(
                (proptest::collection::vec((0usize..6, -20i64..20), 0..5), -9i64..9, 1i64..9),
                1..12,
            ),
        ) {
            // Sparse sums over six monomials (some shared, some new, some cancelling).
            let mut reduced = Poly::zero();
            let mut frac = FracPoly::zero();
            let mut previous: Option<FracPoly> = None;
            for (terms, wn, wd) in ops {
                let mut x = Poly::zero();
                for (k, c) in terms {
                    x.add_scaled(&monomial(k), &q(c, 7));
                }
                let w = q(wn, wd);
                reduced.add_scaled(&x, &w);
                frac.add_scaled(&FracPoly::from_poly(&x), &w);
                proptest::prop_assert_eq!(frac.to_poly(), reduced.clone());
                // Values that share their monomials (`Arc`s) with the accumulator.
                if let Some(p) = previous.take() {
                    reduced.add_scaled(&p.to_poly(), &q(-1, 3));
                    frac.add_scaled(&p, &q(-1, 3));
                    proptest::prop_assert_eq!(frac.to_poly(), reduced.clone());
                }
                previous = Some(frac.clone());
            }
        }
    }

    /// The representation itself (monomials, numerators, denominator), not only the value: the
    /// report's floating-point sums read the unreduced numerators.
    fn representation(p: &FracPoly) -> (Vec<(Monomial, BigInt)>, BigInt) {
        let terms = p
            .numerators()
            .map(|(m, n)| (m.clone(), n.clone()))
            .collect();
        (terms, p.denominator().clone())
    }

    /// The two-step combination that [`FracPoly::combination`] replaces.
    fn two_steps(a: &FracPoly, wa: &Rational, b: &FracPoly, wb: &Rational) -> FracPoly {
        let mut out = FracPoly::zero();
        out.add_scaled(a, wa);
        out.add_scaled(b, wb);
        out
    }

    proptest::proptest! {
        #[test]
        fn combinations_equal_two_scaled_additions(
            terms_a in proptest::collection::vec((0usize..6, -40i64..40, 1i64..30), 0..6),
            terms_b in proptest::collection::vec((0usize..6, -40i64..40, 1i64..30), 0..6),
            big in 0u32..3,
            (wan, wad, wbn, wbd) in (-12i64..12, 1i64..12, -12i64..12, 1i64..12),
            shared in proptest::bool::ANY,
        ) {
            // Sums over six monomials with denominators that share factors or not, scaled by
            // 2^64·k to reach multi-word numerators; `shared`: b is built from a's values
            // (the same `Arc` monomials, as in the DPs), else from fresh monomials.
            let scale = Rational::from_integer(BigInt::from(1u8) << (64 * big));
            let build = |terms: &[(usize, i64, i64)]| {
                let mut p = FracPoly::zero();
                for &(k, n, d) in terms {
                    p.add_scaled(&FracPoly::from_poly(&monomial(k)), &(q(n, d) * &scale));
                }
                p
            };
            let a = build(&terms_a);
            let b = if shared {
                let mut b = build(&terms_b);
                b.add_scaled(&a, &q(3, 7));
                b
            } else {
                build(&terms_b)
            };
            let (wa, wb) = (q(wan, wad), q(wbn, wbd));
            for (x, wx, y, wy) in [(&a, &wa, &b, &wb), (&b, &wb, &a, &wa), (&a, &wa, &a, &wb)] {
                let fused = FracPoly::combination(x, wx, y, wy);
                let reference = two_steps(x, wx, y, wy);
                proptest::prop_assert_eq!(representation(&fused), representation(&reference));
                proptest::prop_assert_eq!(fused.to_poly(), x.to_poly().scale(wx).add(&y.to_poly().scale(wy)));
            }
        }
    }

    #[test]
    fn combination_keeps_the_unreduced_representation() {
        // a/6 + b/10 over 30: the two-step form keeps the denominator 30 with numerators 5
        // and 3; a reduced form of the same value would not, and the comparison sees it.
        let a = FracPoly::from_poly(&Poly::var(Var::LogZ));
        let b = FracPoly::from_poly(&Poly::constant(q(1, 1)));
        let fused = FracPoly::combination(&a, &q(1, 6), &b, &q(1, 10));
        assert_eq!(
            representation(&fused),
            representation(&two_steps(&a, &q(1, 6), &b, &q(1, 10)))
        );
        assert_eq!(fused.denominator(), &BigInt::from(30));
        // Negative controls: the same value in reduced form, and the weights swapped, differ.
        let mut doubled = FracPoly::zero();
        doubled.add_scaled(&fused, &q(2, 1));
        let reduced_value = FracPoly::from_poly(&doubled.to_poly());
        assert_ne!(representation(&doubled), representation(&reduced_value));
        assert_eq!(doubled.to_poly(), reduced_value.to_poly());
        let swapped = FracPoly::combination(&a, &q(1, 10), &b, &q(1, 6));
        assert_ne!(representation(&swapped), representation(&fused));
        // Full cancellation is the zero polynomial with denominator 1, as after two additions.
        let zero = FracPoly::combination(&a, &q(1, 6), &a, &q(-1, 6));
        assert!(zero.is_zero());
        assert_eq!(representation(&zero), representation(&FracPoly::zero()));
    }

    #[test]
    fn accumulation_agrees_with_reduced_arithmetic() {
        let x = Poly::var(Var::LogZ)
            .scale(&q(3, 4))
            .add(&Poly::constant(q(-5, 6)));
        let y = Poly::var(Var::Atom(2u32.into())).scale(&q(7, 10)).add(&x);
        let mut reduced = Poly::zero();
        let mut frac = FracPoly::zero();
        for (p, w) in [
            (&x, q(2, 3)),
            (&y, q(-9, 14)),
            (&x, q(5, 1)),
            (&y, q(9, 14)),
        ] {
            reduced.add_scaled(p, &w);
            frac.add_scaled(&FracPoly::from_poly(p), &w);
            assert_eq!(frac.to_poly(), reduced);
        }
        // Equality up to a factor, decided without reduction, agrees with the reduced forms.
        let fx = FracPoly::from_poly(&x);
        let mut twice = FracPoly::zero();
        twice.add_scaled(&fx, &q(2, 3));
        twice.add_scaled(&fx, &q(4, 3));
        assert!(twice.equals_scaled(&fx, &q(2, 1)));
        assert!(fx.equals_scaled(&twice, &q(1, 2)));
        assert!(!twice.equals_scaled(&fx, &q(1, 1)));
        assert!(!twice.equals_scaled(&FracPoly::from_poly(&y), &q(2, 1)));
        assert!(FracPoly::zero().equals_scaled(&fx, &q(0, 1)));
        assert!(!fx.equals_scaled(&FracPoly::zero(), &q(1, 1)));
        // Cancellation to zero resets the denominator.
        let mut z = FracPoly::from_poly(&x);
        z.add_scaled(&FracPoly::from_poly(&x), &q(-1, 1));
        assert!(z.is_zero() && z.to_poly().is_zero());
        assert_eq!(
            FracPoly::constant(&q(3, 7)).to_poly(),
            Poly::constant(q(3, 7))
        );
    }
}

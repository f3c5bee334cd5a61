//! The polynomial ring `Q[symbols, log b_k]` in which objectives live.
//!
//! Variables are formal symbols (learned scalars, per-edge log-probabilities, generic
//! trajectory aggregates) and the log atoms `log b_k` of a coprime base. A polynomial is a map
//! from monomials to non-zero rational coefficients, so equality of values of this type is
//! equality of canonical forms. Treating log atoms as indeterminates makes polynomial equality
//! a sufficient proof of a real identity; a non-zero difference is a sound refutation when it
//! has a non-zero coefficient that is of degree ≤ 1 in the atoms (see [`Poly::refutes`]).
use super::gcd::{add as q_add, mul as q_mul};
use super::{LogForm, Rational};
use num_bigint::BigUint;
use num_traits::{One, Signed, Zero};
use std::collections::BTreeMap;
use std::fmt::Write;

/// A variable of the ring.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Var {
    /// The learned log-partition function `log Z`.
    LogZ,
    /// The Trust-PCL value `V(s)` of a state (by index).
    V(usize),
    /// The learned log-flow `log F(s)` of a state (by index).
    LogF(usize),
    /// The log-probability `ℓ_e = log q(e)` of an edge (by index), as a free symbol.
    LogQ(usize),
    /// The sum of `log q` along a generic trajectory.
    SumLogQ,
    /// The sum of `log p` along a generic trajectory.
    SumLogP,
    /// The log-reward `log r(x)` of the terminal of a generic trajectory.
    LogR,
    /// The log atom `log b` of a base element `b`.
    Atom(BigUint),
}

impl Var {
    /// True for a log atom (a constant of unknown algebraic relations), false for a symbol.
    pub fn is_atom(&self) -> bool {
        matches!(self, Var::Atom(_))
    }
}

/// Names states and edges when polynomials are rendered.
pub trait VarNames {
    /// The name of state `s`.
    fn state(&self, s: usize) -> String;
    /// The name of edge `e`, as `from->to`.
    fn edge(&self, e: usize) -> String;

    /// The rendering of a variable.
    fn var(&self, v: &Var) -> String {
        match v {
            Var::LogZ => "logZ".into(),
            Var::V(s) => format!("V({})", self.state(*s)),
            Var::LogF(s) => format!("logF({})", self.state(*s)),
            Var::LogQ(e) => format!("ℓ({})", self.edge(*e)),
            Var::SumLogQ => "Σℓ".into(),
            Var::SumLogP => "Σlogp".into(),
            Var::LogR => "logr".into(),
            Var::Atom(b) => format!("log{b}"),
        }
    }
}

/// Renders with indices as names (for debugging).
pub struct IndexNames;

impl VarNames for IndexNames {
    fn state(&self, s: usize) -> String {
        format!("s{s}")
    }
    fn edge(&self, e: usize) -> String {
        format!("e{e}")
    }
}

/// A monomial: variables with positive exponents, sorted by variable. Monomials are ordered
/// by total degree (highest first), then lexicographically, so rendered forms read naturally.
/// The total degree is kept beside the factors (it is a function of them, so the derived
/// equality and hash are unchanged): `Poly`'s map recomputed it on every key comparison
/// (`Monomial::cmp` was 35 % of the 100-edge chain's profile, 8 % at 440 edges).
/// The factors are shared (`Arc<[_]>`): every `Poly` clone, scaling and sum cloned each key's
/// vector (and the big integer of each log atom in it); a clone is now a reference count, and
/// two clones of one monomial compare equal by pointer.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Monomial {
    factors: std::sync::Arc<[(Var, u32)]>,
    degree: u32,
}

impl Monomial {
    /// The monomial of sorted factors with positive exponents.
    fn from_factors(factors: Vec<(Var, u32)>) -> Self {
        let degree = factors.iter().map(|(_, e)| e).sum();
        Self {
            factors: factors.into(),
            degree,
        }
    }

    fn degree(&self) -> u32 {
        self.degree
    }
}

impl Ord for Monomial {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        if std::sync::Arc::ptr_eq(&self.factors, &other.factors) {
            return std::cmp::Ordering::Equal;
        }
        other.degree().cmp(&self.degree()).then_with(|| {
            // Graded lex: at the first difference, the monomial with the earlier variable
            // or the higher exponent of the same variable comes first.
            for ((va, ea), (vb, eb)) in self.factors.iter().zip(other.factors.iter()) {
                let by_var = va.cmp(vb);
                if by_var != std::cmp::Ordering::Equal {
                    return by_var;
                }
                if ea != eb {
                    return eb.cmp(ea);
                }
            }
            other.factors.len().cmp(&self.factors.len())
        })
    }
}

impl PartialOrd for Monomial {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Monomial {
    /// The monomial `1`.
    pub fn one() -> Self {
        Self::default()
    }

    /// The monomial of a single variable.
    pub fn var(v: Var) -> Self {
        Self {
            factors: vec![(v, 1)].into(),
            degree: 1,
        }
    }

    /// The variables and exponents.
    pub fn factors(&self) -> &[(Var, u32)] {
        &self.factors
    }

    /// The product of two monomials.
    pub fn mul(&self, other: &Self) -> Self {
        // Both factor lists are sorted by variable: merge them.
        let (a, b) = (&self.factors, &other.factors);
        let mut out = Vec::with_capacity(a.len() + b.len());
        let (mut i, mut j) = (0, 0);
        while i < a.len() && j < b.len() {
            match a[i].0.cmp(&b[j].0) {
                std::cmp::Ordering::Less => {
                    out.push(a[i].clone());
                    i += 1;
                }
                std::cmp::Ordering::Greater => {
                    out.push(b[j].clone());
                    j += 1;
                }
                std::cmp::Ordering::Equal => {
                    out.push((a[i].0.clone(), a[i].1 + b[j].1));
                    i += 1;
                    j += 1;
                }
            }
        }
        out.extend_from_slice(&a[i..]);
        out.extend_from_slice(&b[j..]);
        Self {
            factors: out.into(),
            degree: self.degree + other.degree,
        }
    }

    /// The exponent of `v` (0 when absent).
    pub fn exponent(&self, v: &Var) -> u32 {
        self.factors
            .iter()
            .find(|(w, _)| w == v)
            .map_or(0, |(_, e)| *e)
    }

    fn without(&self, v: &Var) -> Self {
        Self::from_factors(
            self.factors
                .iter()
                .filter(|(w, _)| w != v)
                .cloned()
                .collect(),
        )
    }

    /// Total degree in log atoms.
    pub fn atom_degree(&self) -> u32 {
        self.factors
            .iter()
            .filter(|(v, _)| v.is_atom())
            .map(|(_, e)| e)
            .sum()
    }

    /// The part of the monomial made of symbols (atoms removed).
    pub fn symbol_part(&self) -> Self {
        Self::from_factors(
            self.factors
                .iter()
                .filter(|(v, _)| !v.is_atom())
                .cloned()
                .collect(),
        )
    }

    fn render(&self, names: &dyn VarNames) -> String {
        self.factors
            .iter()
            .map(|(v, e)| {
                if *e == 1 {
                    names.var(v)
                } else {
                    format!("{}^{e}", names.var(v))
                }
            })
            .collect::<Vec<_>>()
            .join("·")
    }
}

/// A polynomial with rational coefficients in canonical form: its terms sorted by monomial,
/// each monomial once, no zero coefficient stored. A sorted vector, not a map: a sum is one
/// merge of two sorted lists, a product one sort of all pairwise products, and a clone or a
/// drop one allocation (the `BTreeMap` this was spent about a tenth of `verify`'s time at
/// 440 edges building, cloning, searching and freeing its nodes).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Poly {
    terms: Vec<(Monomial, Rational)>,
}

/// Merges two lists sorted by monomial, summing the coefficients of equal monomials and
/// dropping zeros: the sum of two canonical polynomials.
fn merge(
    a: impl IntoIterator<Item = (Monomial, Rational)>,
    b: impl IntoIterator<Item = (Monomial, Rational)>,
    capacity: usize,
) -> Vec<(Monomial, Rational)> {
    use std::cmp::Ordering;
    let mut out = Vec::with_capacity(capacity);
    let (mut a, mut b) = (a.into_iter().peekable(), b.into_iter().peekable());
    loop {
        let order = match (a.peek(), b.peek()) {
            (Some((ma, _)), Some((mb, _))) => ma.cmp(mb),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => return out,
        };
        match order {
            Ordering::Less => out.extend(a.next()),
            Ordering::Greater => out.extend(b.next()),
            Ordering::Equal => {
                let ((m, ca), (_, cb)) = (a.next().expect("peeked"), b.next().expect("peeked"));
                let c = q_add(&ca, &cb);
                if !c.is_zero() {
                    out.push((m, c));
                }
            }
        }
    }
}

impl Poly {
    /// The zero polynomial.
    pub fn zero() -> Self {
        Self::default()
    }

    /// A rational constant.
    pub fn constant(c: Rational) -> Self {
        Self::from_sorted_terms([(Monomial::one(), c)])
    }

    /// A single variable.
    pub fn var(v: Var) -> Self {
        Self::from_sorted_terms([(Monomial::var(v), Rational::one())])
    }

    /// The polynomial of a log-form: `c0 + Σ c_k · Atom(b_k)`.
    pub fn from_logform(form: &LogForm) -> Self {
        Self::from_terms(
            std::iter::once((Monomial::one(), form.constant_part().clone())).chain(
                form.coefficients()
                    .iter()
                    .map(|(atom, c)| (Monomial::var(Var::Atom(atom.clone())), c.clone())),
            ),
        )
    }

    /// A polynomial from monomials and coefficients (zeros are dropped, repeats summed): one
    /// sort, then one pass that sums runs of equal monomials, then the zero sums dropped.
    pub fn from_terms(terms: impl IntoIterator<Item = (Monomial, Rational)>) -> Self {
        let mut terms: Vec<(Monomial, Rational)> =
            terms.into_iter().filter(|(_, c)| !c.is_zero()).collect();
        terms.sort_by(|(a, _), (b, _)| a.cmp(b));
        let mut out: Vec<(Monomial, Rational)> = Vec::with_capacity(terms.len());
        for (m, c) in terms {
            match out.last_mut() {
                Some((last, sum)) if *last == m => *sum = q_add(sum, &c),
                _ => out.push((m, c)),
            }
        }
        // Runs that summed to zero.
        out.retain(|(_, sum)| !sum.is_zero());
        Self { terms: out }
    }

    /// A polynomial from distinct monomials in increasing order with non-zero reduced
    /// coefficients (what a canonical value yields), without merging; zeros are still dropped.
    pub(crate) fn from_sorted_terms(terms: impl IntoIterator<Item = (Monomial, Rational)>) -> Self {
        let terms: Vec<(Monomial, Rational)> =
            terms.into_iter().filter(|(_, c)| !c.is_zero()).collect();
        debug_assert!(terms.windows(2).all(|w| w[0].0 < w[1].0));
        Self { terms }
    }

    /// The terms `(monomial, non-zero coefficient)`, in increasing order of monomial.
    pub fn terms(&self) -> &[(Monomial, Rational)] {
        &self.terms
    }

    /// True for the zero polynomial.
    pub fn is_zero(&self) -> bool {
        self.terms.is_empty()
    }

    /// `self + other`.
    pub fn add(&self, other: &Self) -> Self {
        Self {
            terms: merge(
                self.terms.iter().cloned(),
                other.terms.iter().cloned(),
                self.terms.len() + other.terms.len(),
            ),
        }
    }

    /// `self − other`.
    pub fn sub(&self, other: &Self) -> Self {
        Self {
            terms: merge(
                self.terms.iter().cloned(),
                other.terms.iter().map(|(m, c)| (m.clone(), -c.clone())),
                self.terms.len() + other.terms.len(),
            ),
        }
    }

    /// `−self`.
    pub fn neg(&self) -> Self {
        Self {
            terms: self
                .terms
                .iter()
                .map(|(m, c)| (m.clone(), -c.clone()))
                .collect(),
        }
    }

    /// `c · self`.
    pub fn scale(&self, c: &Rational) -> Self {
        if c.is_zero() {
            return Self::zero();
        }
        Self {
            terms: self
                .terms
                .iter()
                .map(|(m, k)| (m.clone(), q_mul(k, c)))
                .collect(),
        }
    }

    /// `self · other`: every pairwise product, canonicalised once ([`Poly::from_terms`]). A
    /// square (`p.mul(&p)`, the squared residuals of the losses) takes each unordered pair of
    /// terms once: `Σ c_i² m_i² + Σ_{i<j} 2·c_i·c_j·m_i·m_j`, the same exact canonical
    /// polynomial with about half the products.
    pub fn mul(&self, other: &Self) -> Self {
        if std::ptr::eq(self, other) {
            return self.square();
        }
        let mut products = Vec::with_capacity(self.terms.len() * other.terms.len());
        for (m1, c1) in &self.terms {
            for (m2, c2) in &other.terms {
                products.push((m1.mul(m2), q_mul(c1, c2)));
            }
        }
        Self::from_terms(products)
    }

    /// `self²` by the symmetric products (see [`Poly::mul`]).
    fn square(&self) -> Self {
        let two = Rational::from_integer(2.into());
        let n = self.terms.len();
        let mut products = Vec::with_capacity(n * (n + 1) / 2);
        for (i, (m1, c1)) in self.terms.iter().enumerate() {
            products.push((m1.mul(m1), q_mul(c1, c1)));
            for (m2, c2) in &self.terms[i + 1..] {
                products.push((m1.mul(m2), q_mul(&q_mul(c1, c2), &two)));
            }
        }
        Self::from_terms(products)
    }

    /// `self += other`, in place.
    pub fn add_assign(&mut self, other: &Self) {
        if other.terms.is_empty() {
            return;
        }
        let capacity = self.terms.len() + other.terms.len();
        self.terms = merge(
            std::mem::take(&mut self.terms),
            other.terms.iter().cloned(),
            capacity,
        );
    }

    /// `self += w·other`, in place (no intermediate polynomial).
    pub fn add_scaled(&mut self, other: &Self, w: &Rational) {
        if w.is_zero() || other.terms.is_empty() {
            return;
        }
        let capacity = self.terms.len() + other.terms.len();
        self.terms = merge(
            std::mem::take(&mut self.terms),
            other.terms.iter().map(|(m, c)| (m.clone(), q_mul(c, w))),
            capacity,
        );
    }

    /// True when `self = k·other` (compared term by term, nothing allocated but the
    /// products).
    pub fn equals_scaled(&self, other: &Self, k: &Rational) -> bool {
        if k.is_zero() {
            return self.is_zero();
        }
        self.terms.len() == other.terms.len()
            && self
                .terms
                .iter()
                .zip(&other.terms)
                .all(|((ma, ca), (mb, cb))| ma == mb && *ca == q_mul(cb, k))
    }

    /// The sum of an iterator of polynomials. A long sum (C5's `J` and `KL` collect one term
    /// per edge) is accumulated over one common denominator ([`super::FracPoly`]: one gcd per
    /// term instead of two per coefficient) and reduced once; a short one by merges. Both give
    /// the canonical sum.
    pub fn sum<'a>(items: impl IntoIterator<Item = &'a Poly>) -> Self {
        const LONG: usize = 32;
        let items: Vec<&Poly> = items.into_iter().collect();
        if items.len() >= LONG {
            let one = Rational::one();
            let mut acc = super::FracPoly::zero();
            for p in items {
                acc.add_scaled(&super::FracPoly::from_poly(p), &one);
            }
            return acc.to_poly();
        }
        let mut out = Self::zero();
        for p in items {
            out.add_assign(p);
        }
        out
    }

    /// The partial derivative `∂self/∂v`.
    pub fn derivative(&self, v: &Var) -> Self {
        Self::from_terms(self.terms.iter().filter_map(|(m, c)| {
            let e = m.exponent(v);
            if e == 0 {
                return None;
            }
            let rest = m.without(v);
            let lowered = if e > 1 {
                rest.mul(&Monomial::from_factors(vec![(v.clone(), e - 1)]))
            } else {
                rest
            };
            // The exponent is almost always 1: no product then.
            let coefficient = if e == 1 {
                c.clone()
            } else {
                q_mul(c, &Rational::from_integer(e.into()))
            };
            Some((lowered, coefficient))
        }))
    }

    /// `self` with every occurrence of `v` replaced by `value`: every term's products
    /// collected, canonicalised once.
    pub fn substitute(&self, v: &Var, value: &Poly) -> Self {
        let mut powers: Vec<Poly> = vec![Poly::constant(Rational::one())];
        let mut products = Vec::new();
        for (m, c) in &self.terms {
            let e = m.exponent(v) as usize;
            while powers.len() <= e {
                let next = powers.last().expect("non-empty").mul(value);
                powers.push(next);
            }
            let rest = m.without(v);
            for (mp, cp) in &powers[e].terms {
                products.push((rest.mul(mp), q_mul(c, cp)));
            }
        }
        Self::from_terms(products)
    }

    /// `self` with every variable `v` for which `value(v)` is `Some` replaced by that value,
    /// in one pass (simultaneous substitution).
    pub fn substitute_all(&self, value: &dyn Fn(&Var) -> Option<Poly>) -> Self {
        let mut products = Vec::new();
        for (m, c) in &self.terms {
            let mut product = Poly::constant(c.clone());
            let mut kept = Vec::new();
            for (v, e) in m.factors() {
                match value(v) {
                    Some(p) => {
                        for _ in 0..*e {
                            product = product.mul(&p);
                        }
                    }
                    None => kept.push((v.clone(), *e)),
                }
            }
            let rest = Monomial::from_factors(kept);
            products.extend(
                product
                    .terms
                    .into_iter()
                    .map(|(mp, cp)| (rest.mul(&mp), cp)),
            );
        }
        Self::from_terms(products)
    }

    /// True when `self`, as a polynomial in the symbols with coefficients in `Q[log atoms]`,
    /// has a coefficient of degree ≤ 1 in the atoms that is non-zero. By Baker's theorem
    /// (`1` and the logs of multiplicatively independent integers are linearly independent over
    /// the algebraic numbers) such a coefficient is a non-zero real number, so `self` is not
    /// the zero function of the symbols: a sound refutation of `self = 0`.
    pub fn refutes(&self) -> bool {
        let mut by_symbols: BTreeMap<Monomial, bool> = BTreeMap::new();
        for (m, _) in &self.terms {
            let low = m.atom_degree() <= 1;
            let entry = by_symbols.entry(m.symbol_part()).or_insert(true);
            *entry &= low;
        }
        by_symbols.values().any(|&all_low| all_low)
    }

    /// Renders the polynomial with the given names, terms in canonical order.
    pub fn render(&self, names: &dyn VarNames) -> String {
        if self.terms.is_empty() {
            return "0".into();
        }
        let mut out = String::new();
        for (i, (m, c)) in self.terms.iter().enumerate() {
            let (negative, magnitude) = (c.is_negative(), c.abs());
            match (i, negative) {
                (0, true) => out.push('-'),
                (0, false) => {}
                (_, true) => out.push_str(" - "),
                (_, false) => out.push_str(" + "),
            }
            let body = m.render(names);
            if body.is_empty() {
                let _ = write!(out, "{magnitude}");
            } else if magnitude.is_one() {
                out.push_str(&body);
            } else {
                let _ = write!(out, "{magnitude}·{body}");
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(n: i64, d: i64) -> Rational {
        Rational::new(n.into(), d.into())
    }

    #[test]
    fn a_long_sum_is_the_canonical_sum() {
        // 40 terms (over the threshold of the common-denominator route) with cancellations,
        // against pairwise addition.
        let atom = |k: u32| Poly::var(Var::Atom(BigUint::from(k)));
        let terms: Vec<Poly> = (1..=40i64)
            .map(|k| {
                atom(2)
                    .scale(&q(k, k + 1))
                    .add(&atom((k % 3) as u32 + 3).scale(&q(-1, 7 * k)))
                    .add(&Poly::constant(q(if k % 2 == 0 { 1 } else { -1 }, 5)))
            })
            .collect();
        let pairwise = terms.iter().fold(Poly::zero(), |acc, p| acc.add(p));
        assert_eq!(Poly::sum(&terms), pairwise);
        // The constants cancel to zero and are not stored.
        assert!(!Poly::sum(&terms)
            .terms()
            .iter()
            .any(|(m, _)| *m == Monomial::one()));
        // Negative control: one term changed changes the sum.
        let mut changed = terms.clone();
        changed[7] = changed[7].add(&atom(2));
        assert_ne!(Poly::sum(&changed), pairwise);
    }

    #[test]
    fn the_cached_degree_is_the_sum_of_the_exponents() {
        let a = Poly::var(Var::Atom(2u32.into()));
        let z = Poly::var(Var::LogZ);
        let l = Poly::var(Var::LogQ(4));
        let p = z
            .mul(&z)
            .mul(&a)
            .add(&l.mul(&a))
            .add(&z)
            .add(&Poly::constant(q(3, 1)));
        let built = [
            p.clone(),
            p.mul(&p),
            p.derivative(&Var::LogZ),
            p.substitute(&Var::LogZ, &l),
            p.substitute_all(&|v| matches!(v, Var::LogQ(_)).then(|| z.clone())),
        ];
        for poly in &built {
            for (m, _) in poly.terms() {
                let sum: u32 = m.factors().iter().map(|(_, e)| e).sum();
                assert_eq!(m.degree(), sum, "{m:?}");
                assert_eq!(m.symbol_part().degree(), sum - m.atom_degree());
            }
        }
        // Graded order: higher total degree first.
        let degrees: Vec<_> = p.terms().iter().map(|(m, _)| m.degree()).collect();
        assert_eq!(degrees, vec![3, 2, 1, 0]);
        // Negative control: a wrong cached degree would sort the monomial elsewhere.
        let wrong = Monomial {
            factors: vec![(Var::LogZ, 1)].into(),
            degree: 5,
        };
        assert_eq!(
            wrong.cmp(&Monomial::var(Var::LogZ)),
            std::cmp::Ordering::Less
        );
        assert_ne!(wrong, Monomial::var(Var::LogZ));
    }

    proptest::proptest! {
        #[test]
        fn squares_agree_with_the_general_product(
            terms in proptest::collection::vec(
                (0usize..7, proptest::num::i64::ANY, 1i64..1_000_000, 0u32..3),
                0..9,
            ),
        ) {
            // Random polynomials over symbols, atoms and products of them, with coefficients
            // up to the i64 limits (times 2^64 for some), cancellations allowed.
            let var = |k: usize| match k {
                0 => Poly::constant(q(1, 1)),
                1 => Poly::var(Var::LogZ),
                2 => Poly::var(Var::Atom(2u32.into())),
                3 => Poly::var(Var::Atom(3u32.into())).mul(&Poly::var(Var::LogQ(1))),
                4 => Poly::var(Var::LogQ(1)),
                5 => Poly::var(Var::V(0)).mul(&Poly::var(Var::V(0))),
                _ => Poly::var(Var::Atom(BigUint::from(u64::MAX) * 7u32)),
            };
            let mut p = Poly::zero();
            for (k, n, d, big) in terms {
                let n = num_bigint::BigInt::from(n) << (64 * big);
                let c = Rational::new(n, d.into());
                p = p.add(&var(k).scale(&c));
            }
            let other = p.clone();
            // `p.mul(&p)` takes the square's route; `p.mul(&other)` the general one.
            let square = p.mul(&p);
            proptest::prop_assert_eq!(&square, &p.mul(&other));
            proptest::prop_assert_eq!(square.is_zero(), p.is_zero());
            // Negative control: the square is not the polynomial itself unless p is 0 or 1.
            if !p.is_zero() && p != Poly::constant(q(1, 1)) {
                proptest::prop_assert_ne!(&square, &p);
            }
        }
    }

    /// A term list summed into a map (the representation `Poly` had before it was a sorted
    /// vector): the reference the vector's merges and sorts are checked against.
    fn by_map(terms: &[(Monomial, Rational)]) -> Vec<(Monomial, Rational)> {
        let mut map: BTreeMap<Monomial, Rational> = BTreeMap::new();
        for (m, c) in terms {
            *map.entry(m.clone()).or_default() += c;
        }
        map.into_iter().filter(|(_, c)| !c.is_zero()).collect()
    }

    proptest::proptest! {
        #[test]
        fn sorted_vector_operations_equal_a_map_of_terms(
            left in proptest::collection::vec((0usize..6, -4i64..5, 1i64..4), 0..12),
            right in proptest::collection::vec((0usize..6, -4i64..5, 1i64..4), 0..12),
            w in (-3i64..4, 1i64..3),
        ) {
            // Few monomials and small coefficients, so that repeats and cancellations (runs
            // that sum to zero in the middle of a list, at its end, twice in a row) are common.
            let monomial = |k: usize| match k {
                0 => Monomial::one(),
                1 => Monomial::var(Var::LogZ),
                2 => Monomial::var(Var::Atom(2u32.into())),
                3 => Monomial::var(Var::Atom(3u32.into())).mul(&Monomial::var(Var::LogQ(1))),
                4 => Monomial::var(Var::LogQ(1)),
                _ => Monomial::var(Var::V(0)).mul(&Monomial::var(Var::V(0))),
            };
            let terms = |raw: &[(usize, i64, i64)]| -> Vec<(Monomial, Rational)> {
                raw.iter().map(|&(k, n, d)| (monomial(k), q(n, d))).collect()
            };
            let (a_terms, b_terms) = (terms(&left), terms(&right));
            let (a, b) = (Poly::from_terms(a_terms.clone()), Poly::from_terms(b_terms.clone()));
            proptest::prop_assert_eq!(a.terms().to_vec(), by_map(&a_terms));
            let both: Vec<_> = a_terms.iter().chain(&b_terms).cloned().collect();
            proptest::prop_assert_eq!(a.add(&b).terms().to_vec(), by_map(&both));
            let mut assigned = a.clone();
            assigned.add_assign(&b);
            proptest::prop_assert_eq!(&assigned, &a.add(&b));
            let negated: Vec<_> = a_terms
                .iter()
                .cloned()
                .chain(b_terms.iter().map(|(m, c)| (m.clone(), -c)))
                .collect();
            proptest::prop_assert_eq!(a.sub(&b).terms().to_vec(), by_map(&negated));
            let w = q(w.0, w.1);
            let scaled: Vec<_> = a_terms
                .iter()
                .cloned()
                .chain(b_terms.iter().map(|(m, c)| (m.clone(), c * &w)))
                .collect();
            let mut with_scaled = a.clone();
            with_scaled.add_scaled(&b, &w);
            proptest::prop_assert_eq!(with_scaled.terms().to_vec(), by_map(&scaled));
            let products: Vec<_> = a_terms
                .iter()
                .flat_map(|(ma, ca)| b_terms.iter().map(move |(mb, cb)| (ma.mul(mb), ca * cb)))
                .collect();
            proptest::prop_assert_eq!(a.mul(&b).terms().to_vec(), by_map(&products));
            // Negative control: one more term changes the polynomial.
            let mut more = a_terms.clone();
            more.push((monomial(2), q(1, 1)));
            proptest::prop_assert_ne!(Poly::from_terms(more).terms().to_vec(), by_map(&a_terms));
        }
    }

    #[test]
    fn runs_that_sum_to_zero_leave_no_term() {
        let z = Monomial::var(Var::LogZ);
        let a = Monomial::var(Var::Atom(5u32.into()));
        // A zero run in the middle, one at the end, and one that returns from zero.
        let p = Poly::from_terms([
            (z.clone(), q(1, 2)),
            (a.clone(), q(1, 3)),
            (z.clone(), q(-1, 2)),
            (Monomial::one(), q(2, 1)),
            (a.clone(), q(-1, 3)),
            (Monomial::one(), q(-2, 1)),
            (Monomial::one(), q(1, 1)),
        ]);
        assert_eq!(p, Poly::constant(q(1, 1)));
        let empty = Poly::from_terms([(a.clone(), q(1, 3)), (a, q(-1, 3))]);
        assert!(empty.is_zero());
        assert_eq!(empty, Poly::zero());
    }

    #[test]
    fn shared_monomials_compare_like_fresh_ones() {
        // A clone shares its factors (equal by pointer); a rebuilt one compares by content.
        let a = Monomial::var(Var::Atom(6u32.into())).mul(&Monomial::var(Var::LogZ));
        let shared = a.clone();
        let rebuilt = Monomial::var(Var::LogZ).mul(&Monomial::var(Var::Atom(6u32.into())));
        assert!(std::sync::Arc::ptr_eq(&a.factors, &shared.factors));
        assert!(!std::sync::Arc::ptr_eq(&a.factors, &rebuilt.factors));
        assert_eq!(a.cmp(&shared), std::cmp::Ordering::Equal);
        assert_eq!(a.cmp(&rebuilt), std::cmp::Ordering::Equal);
        assert_eq!(a, rebuilt);
        let lower = Monomial::var(Var::LogZ);
        assert_eq!(a.cmp(&lower), std::cmp::Ordering::Less);
        assert_eq!(lower.cmp(&shared), std::cmp::Ordering::Greater);
        assert_eq!(
            Monomial::one().cmp(&Monomial::default()),
            std::cmp::Ordering::Equal
        );
    }

    #[test]
    fn ring_operations_are_canonical() {
        let x = Poly::var(Var::LogZ);
        let y = Poly::var(Var::LogQ(0));
        let sum = x.add(&y);
        let square = sum.mul(&sum);
        let expanded = x.mul(&x).add(&x.mul(&y).scale(&q(2, 1))).add(&y.mul(&y));
        assert_eq!(square, expanded);
        assert!(square.sub(&expanded).is_zero());
        assert_eq!(
            square.render(&IndexNames),
            "logZ^2 + 2·logZ·ℓ(e0) + ℓ(e0)^2"
        );
    }

    #[test]
    fn derivative_and_substitution() {
        let x = Poly::var(Var::LogZ);
        let y = Poly::var(Var::V(1));
        let p = x.mul(&x).mul(&y).scale(&q(1, 2));
        assert_eq!(p.derivative(&Var::LogZ), x.mul(&y));
        assert_eq!(p.derivative(&Var::LogQ(3)), Poly::zero());
        let sub = p.substitute(&Var::V(1), &x.scale(&q(3, 1)));
        assert_eq!(sub, x.mul(&x).mul(&x).scale(&q(3, 2)));
        let both = p.substitute_all(&|v| match v {
            Var::V(1) => Some(x.scale(&q(3, 1))),
            Var::LogZ => Some(Poly::constant(q(2, 1))),
            _ => None,
        });
        // Simultaneous: the value substituted for V(1) is not itself rewritten.
        assert_eq!(both, x.scale(&q(6, 1)));
    }

    #[test]
    fn refutation_needs_a_low_degree_coefficient() {
        let a = Poly::var(Var::Atom(2u32.into()));
        let b = Poly::var(Var::Atom(3u32.into()));
        let z = Poly::var(Var::LogZ);
        assert!(a.sub(&b).refutes());
        assert!(z.mul(&a).refutes());
        // log2² − log3 is not decided by linear independence alone.
        assert!(!a.mul(&a).sub(&b).refutes());
        assert!(!Poly::zero().refutes());
    }
}

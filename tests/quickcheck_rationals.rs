//! quickcheck: spec rationals round-trip exactly through their text, and exact powers invert.
use quickcheck::quickcheck;
use rtb_trustpcl::exact::{exact_power, parse_rational, Rational};

quickcheck! {
    fn rationals_round_trip_through_text(n: i32, d: u16) -> bool {
        let d = i64::from(d) + 1;
        let r = Rational::new(i64::from(n).into(), d.into());
        parse_rational(&r.to_string()) == Ok(r)
    }

    fn perfect_powers_invert(n: u16, d: u16, k: u8) -> bool {
        // (n/d)^(k+1) raised to 1/(k+1) gives n/d back exactly.
        let base = Rational::new((i64::from(n) + 1).into(), (i64::from(d) + 1).into());
        let k = i64::from(k % 4) + 1;
        let power = num_traits::pow(base.clone(), k as usize);
        exact_power(&power, &Rational::new(1.into(), k.into())) == Some(base)
    }
}

//! Exact rationals (`num-rational` over `num-bigint`): parsing spec strings and exact powers.
use num_bigint::{BigInt, BigUint};
use num_rational::BigRational;
use num_traits::{One, Signed, ToPrimitive, Zero};

/// The exact rational type used throughout the exact engine.
pub type Rational = BigRational;

/// Parses an exact rational from a spec string: an integer (`"3"`), a fraction (`"3/2"`,
/// `"-1/4"`) or a terminating decimal (`"0.25"`, converted exactly). Whitespace around the
/// string is ignored. Returns a message saying what is wrong otherwise.
pub fn parse_rational(text: &str) -> Result<Rational, String> {
    let t = text.trim();
    if t.is_empty() {
        return Err("empty string is not a rational".into());
    }
    if let Some((num, den)) = t.split_once('/') {
        let num = parse_integer(num.trim())
            .ok_or_else(|| format!("`{text}` is not a rational: bad numerator"))?;
        let den = parse_integer(den.trim())
            .ok_or_else(|| format!("`{text}` is not a rational: bad denominator"))?;
        if den.is_zero() {
            return Err(format!("`{text}` has a zero denominator"));
        }
        return Ok(Rational::new(num, den));
    }
    if let Some((int, frac)) = t.split_once('.') {
        let negative = int.starts_with('-');
        let int_digits = int.trim_start_matches(['-', '+']);
        let valid = !(int_digits.is_empty() && frac.is_empty())
            && int_digits.chars().all(|c| c.is_ascii_digit())
            && frac.chars().all(|c| c.is_ascii_digit());
        if !valid {
            return Err(format!("`{text}` is not a rational"));
        }
        let digits = format!("{int_digits}{frac}");
        let mantissa: BigInt = if digits.is_empty() {
            BigInt::zero()
        } else {
            digits
                .parse()
                .map_err(|_| format!("`{text}` is not a rational"))?
        };
        let scale = num_traits::pow(BigInt::from(10u32), frac.len());
        let value = Rational::new(mantissa, scale);
        return Ok(if negative { -value } else { value });
    }
    parse_integer(t)
        .map(Rational::from_integer)
        .ok_or_else(|| format!("`{text}` is not a rational"))
}

fn parse_integer(text: &str) -> Option<BigInt> {
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// The exact `d`-th root of a non-negative integer, if it is a perfect `d`-th power.
fn exact_root(n: &BigUint, d: u32) -> Option<BigUint> {
    let root = n.nth_root(d);
    (num_traits::pow(root.clone(), d as usize) == *n).then_some(root)
}

/// `base^exponent` exactly, for a positive rational base and a rational exponent, when the
/// result is rational; `None` when it is irrational (or the exponent is too large to be
/// computed). Perfect powers such as `(9/4)^(1/2) = 3/2` are exact.
pub fn exact_power(base: &Rational, exponent: &Rational) -> Option<Rational> {
    if !base.is_positive() {
        return None;
    }
    let d = exponent.denom().to_u32()?;
    let n = exponent.numer().abs().to_u32()?;
    let num = exact_root(&base.numer().magnitude().clone(), d)?;
    let den = exact_root(&base.denom().magnitude().clone(), d)?;
    let root = Rational::new(BigInt::from(num), BigInt::from(den));
    let power = num_traits::pow(root, n as usize);
    Some(if exponent.is_negative() {
        Rational::one() / power
    } else {
        power
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(n: i64, d: i64) -> Rational {
        Rational::new(n.into(), d.into())
    }

    #[test]
    fn parses_integers_fractions_and_decimals_exactly() {
        assert_eq!(parse_rational("3").unwrap(), q(3, 1));
        assert_eq!(parse_rational(" 3/6 ").unwrap(), q(1, 2));
        assert_eq!(parse_rational("-1/4").unwrap(), q(-1, 4));
        assert_eq!(parse_rational("0.25").unwrap(), q(1, 4));
        assert_eq!(parse_rational("-.5").unwrap(), q(-1, 2));
    }

    #[test]
    fn refuses_malformed_rationals() {
        for bad in [
            "", "abc", "1//2", "1/0", "1/", "/2", "1.2.3", "1e3", "0x10", "--1", ".",
        ] {
            assert!(parse_rational(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn exact_powers_are_exact_and_irrational_ones_refused() {
        assert_eq!(exact_power(&q(9, 4), &q(1, 2)), Some(q(3, 2)));
        assert_eq!(exact_power(&q(4, 1), &q(3, 2)), Some(q(8, 1)));
        assert_eq!(exact_power(&q(1, 9), &q(-1, 2)), Some(q(3, 1)));
        assert_eq!(exact_power(&q(3, 1), &q(2, 1)), Some(q(9, 1)));
        assert_eq!(exact_power(&q(2, 1), &q(1, 2)), None);
        assert_eq!(exact_power(&q(8, 3), &q(1, 3)), None);
    }
}

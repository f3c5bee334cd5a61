//! Exact rationals (`num-rational` over `num-bigint`): parsing spec strings and exact powers.
use num_bigint::{BigInt, BigUint};
use num_rational::BigRational;
use num_traits::{One, Signed, ToPrimitive, Zero};

/// The exact rational type used throughout the exact engine.
pub type Rational = BigRational;

/// Most characters accepted in one integer of a rational (numerator, denominator; for a
/// decimal, its digits and point together, so that `digits/10^k` stays within the limit): far beyond any hand-written or generated spec, and small enough that
/// parsing stays instantaneous (decimal-to-binary conversion is superlinear in the digits).
pub const MAX_RATIONAL_DIGITS: usize = 10_000;

/// Why a string is not an exact rational. The message quotes the value (escaped).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RationalError {
    /// The empty string.
    #[error("empty string is not a rational (write e.g. \"3/2\", \"-1/4\", \"0.25\" or \"2\")")]
    Empty,
    /// Anything outside the grammar `[-]digits[/digits]` or `[-]digits.digits`.
    #[error(
        "{value} is not a rational: the grammar is `[-]digits[/digits]` or `[-]digits.digits` \
         (no `+`, no spaces, no exponent), {why}"
    )]
    Malformed {
        /// The value, quoted and escaped.
        value: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// A zero denominator.
    #[error("{value} has a zero denominator")]
    ZeroDenominator {
        /// The value, quoted and escaped.
        value: String,
    },
    /// More than [`MAX_RATIONAL_DIGITS`] digits in one integer.
    #[error("{value} has {digits} digits in one integer, over the limit of {limit}")]
    TooManyDigits {
        /// The value, quoted, escaped and shortened.
        value: String,
        /// Its number of digits.
        digits: usize,
        /// [`MAX_RATIONAL_DIGITS`].
        limit: usize,
    },
}

/// A value quoted for a message: Rust string escaping (control characters and escape sequences
/// become `\u{1b}` and the like, so nothing reaches the terminal raw), shortened past 80 chars.
pub fn quote(text: &str) -> String {
    let mut shown: String = text.chars().take(80).collect();
    if shown.len() < text.len() {
        shown.push('…');
    }
    format!("{shown:?}")
}

fn digits_only(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|c| c.is_ascii_digit())
}

/// Parses an exact rational from a spec string, by one strict grammar: an integer (`"3"`,
/// `"-2"`), a fraction `[-]digits/digits` (`"3/2"`, `"-1/4"`), or a plain decimal
/// `[-]digits.digits` (`"0.25"`, converted exactly). Nothing else: no `+` sign, no sign after
/// the first character or in the denominator, no spaces, no exponent, no `.5` or `5.`, at
/// most [`MAX_RATIONAL_DIGITS`] digits per integer. (`benches/spec_model.py` mirrors it.)
pub fn parse_rational(text: &str) -> Result<Rational, RationalError> {
    let malformed = |why| RationalError::Malformed {
        value: quote(text),
        why,
    };
    if text.is_empty() {
        return Err(RationalError::Empty);
    }
    let (negative, body) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    if body.starts_with(['-', '+']) || text.starts_with('+') {
        return Err(malformed("and it carries more than one sign or a `+`"));
    }
    let too_long = |part: &str| -> Result<(), RationalError> {
        if part.len() > MAX_RATIONAL_DIGITS {
            Err(RationalError::TooManyDigits {
                value: quote(text),
                digits: part.len(),
                limit: MAX_RATIONAL_DIGITS,
            })
        } else {
            Ok(())
        }
    };
    let integer = |digits: &str| -> BigInt {
        // Only ASCII digits reach here: the parse cannot fail.
        digits.parse().unwrap_or_default()
    };
    let value = if let Some((num, den)) = body.split_once('/') {
        if !digits_only(num) {
            return Err(malformed("and the numerator is not digits"));
        }
        if !digits_only(den) {
            return Err(malformed("and the denominator is not digits"));
        }
        too_long(num)?;
        too_long(den)?;
        let den = integer(den);
        if den.is_zero() {
            return Err(RationalError::ZeroDenominator { value: quote(text) });
        }
        Rational::new(integer(num), den)
    } else if let Some((int, frac)) = body.split_once('.') {
        if !digits_only(int) || !digits_only(frac) {
            return Err(malformed(
                "and a decimal needs digits on both sides of one `.`",
            ));
        }
        // The exact value is written back as `digits/10^len(frac)`: both must stay within
        // the limit, or a spec would not reload from its own TOML (a fuzz finding).
        too_long(&body[..body.len().min(int.len() + frac.len() + 1)])?;
        let scale = num_traits::pow(BigInt::from(10u32), frac.len());
        Rational::new(integer(&format!("{int}{frac}")), scale)
    } else {
        if !digits_only(body) {
            return Err(malformed("and this is not one"));
        }
        too_long(body)?;
        Rational::from_integer(integer(body))
    };
    Ok(if negative { -value } else { value })
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
        assert_eq!(parse_rational("3/6").unwrap(), q(1, 2));
        assert_eq!(parse_rational("-1/4").unwrap(), q(-1, 4));
        assert_eq!(parse_rational("0.25").unwrap(), q(1, 4));
        assert_eq!(parse_rational("-0.5").unwrap(), q(-1, 2));
        assert_eq!(parse_rational("-0").unwrap(), q(0, 1));
        assert_eq!(parse_rational("007/014").unwrap(), q(1, 2));
    }

    #[test]
    fn refuses_every_sign_run_and_loose_form() {
        // Each of these was, or could be, silently read as another value.
        for bad in [
            "+-2.5",
            "+--0.5",
            "+2",
            "+1/2",
            "-+1",
            "--1",
            "1/-2",
            "1/+2",
            "-1/-2",
            " 3/6",
            "3/6 ",
            "1 / 2",
            "-.5",
            ".5",
            "5.",
            "1_000",
            "١",
            "1\u{0}",
            "\u{1b}[2J1",
        ] {
            assert!(parse_rational(bad).is_err(), "{bad:?} should be refused");
        }
        let e = parse_rational("+-2.5").unwrap_err().to_string();
        assert!(e.contains("\"+-2.5\""), "{e}");
    }

    #[test]
    fn control_characters_are_escaped_in_messages() {
        let e = parse_rational("\u{1b}[2J1").unwrap_err().to_string();
        assert!(!e.contains('\u{1b}'), "{e}");
        assert!(e.contains("\\u{1b}"), "{e}");
    }

    #[test]
    fn too_many_digits_are_refused_before_parsing() {
        let long = "1".repeat(MAX_RATIONAL_DIGITS + 1);
        assert!(matches!(
            parse_rational(&long),
            Err(RationalError::TooManyDigits { .. })
        ));
        assert!(parse_rational(&"1".repeat(MAX_RATIONAL_DIGITS)).is_ok());
        // A decimal is written back as a fraction: its digits together are bounded (fuzz
        // finding: 10,226 digits in all were accepted and did not reload).
        let half = "3".repeat(MAX_RATIONAL_DIGITS / 2 + 200);
        assert!(parse_rational(&format!("{half}.{half}")).is_err());
        let tiny = format!("0.{}1", "0".repeat(MAX_RATIONAL_DIGITS - 3));
        let q = parse_rational(&tiny).unwrap();
        assert_eq!(parse_rational(&q.to_string()), Ok(q));
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

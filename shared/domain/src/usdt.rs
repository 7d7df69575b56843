//! Exact USDT amounts (and USD amounts: Stripe's prices are the same
//! numbers in dollars, held in the same exact form).
//!
//! Amounts arrive as decimal strings ("50.00", "50", "50.000000"). They are
//! held as integer millionths of a USDT (the token's own precision) so that
//! comparing a received amount with a package price is exact. Floats never
//! touch money.

use std::fmt;

/// Decimal places a USDT amount may carry (the token has six).
const DECIMALS: u32 = 6;
const SCALE: i64 = 10i64.pow(DECIMALS);
/// Anything above a billion USDT is not a credit-package payment; refusing it
/// keeps every arithmetic step far from overflow.
const MAX_WHOLE_USDT: i64 = 1_000_000_000;

/// A non-negative USDT amount in millionths.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Usdt {
    micros: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    #[error("the amount is empty")]
    Empty,
    #[error("the amount is not a plain decimal number")]
    NotDecimal,
    #[error("the amount has more than six decimal places")]
    TooPrecise,
    #[error("the amount is negative")]
    Negative,
    #[error("the amount is implausibly large")]
    TooLarge,
}

impl Usdt {
    pub const fn from_whole(usdt: i64) -> Self {
        Self {
            micros: usdt * SCALE,
        }
    }

    pub const fn micros(self) -> i64 {
        self.micros
    }

    /// An amount in hundredths (Stripe's `amount_total` for USD is in
    /// cents): exact, with the same bounds as [`Usdt::parse`].
    pub fn from_cents(cents: i64) -> Result<Self, AmountError> {
        if cents < 0 {
            return Err(AmountError::Negative);
        }
        if cents > MAX_WHOLE_USDT * 100 {
            return Err(AmountError::TooLarge);
        }
        Ok(Self {
            micros: cents * (SCALE / 100),
        })
    }

    /// The amount in hundredths, rounded down (exact for any price).
    pub const fn cents(self) -> i64 {
        self.micros / (SCALE / 100)
    }

    /// Parses a plain decimal string: digits, an optional point and up to six
    /// decimals. No exponent, no thousands separators, no sign but a leading
    /// `-`, which is refused as negative.
    pub fn parse(text: &str) -> Result<Self, AmountError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(AmountError::Empty);
        }
        if text.starts_with('-') {
            return Err(AmountError::Negative);
        }
        let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
        let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if (whole.is_empty() && fraction.is_empty()) || !all_digits(whole) || !all_digits(fraction)
        {
            return Err(AmountError::NotDecimal);
        }
        if fraction.len() > DECIMALS as usize {
            return Err(AmountError::TooPrecise);
        }
        let whole_value: i64 = if whole.is_empty() {
            0
        } else {
            let digits = whole.trim_start_matches('0');
            if digits.len() > 10 {
                return Err(AmountError::TooLarge);
            }
            digits.parse().unwrap_or(0)
        };
        if whole_value > MAX_WHOLE_USDT {
            return Err(AmountError::TooLarge);
        }
        let fraction_value: i64 = if fraction.is_empty() {
            0
        } else {
            let padded = format!("{fraction:0<6}");
            padded.parse().map_err(|_| AmountError::NotDecimal)?
        };
        Ok(Self {
            micros: whole_value * SCALE + fraction_value,
        })
    }
}

/// Always six decimals, the form PostgreSQL's `numeric(20, 6)` reads back.
impl fmt::Display for Usdt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:06}", self.micros / SCALE, self.micros % SCALE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_amounts_in_different_spellings_are_equal() {
        for text in ["50", "50.0", "50.00", "50.000000", "050.00", " 50.00 "] {
            assert_eq!(Usdt::parse(text), Ok(Usdt::from_whole(50)), "{text:?}");
        }
    }

    #[test]
    fn fractions_are_exact() {
        assert_eq!(Usdt::parse("49.999999").unwrap().micros(), 49_999_999);
        assert_eq!(Usdt::parse(".5").unwrap().micros(), 500_000);
        assert_eq!(Usdt::parse("0.1").unwrap().to_string(), "0.100000");
    }

    #[test]
    fn bad_amounts_are_refused_with_a_reason() {
        assert_eq!(Usdt::parse(""), Err(AmountError::Empty));
        assert_eq!(Usdt::parse("-10"), Err(AmountError::Negative));
        assert_eq!(Usdt::parse("1e3"), Err(AmountError::NotDecimal));
        assert_eq!(Usdt::parse("ten"), Err(AmountError::NotDecimal));
        assert_eq!(Usdt::parse("1,000"), Err(AmountError::NotDecimal));
        assert_eq!(Usdt::parse("."), Err(AmountError::NotDecimal));
        assert_eq!(Usdt::parse("+5"), Err(AmountError::NotDecimal));
        assert_eq!(Usdt::parse("1.0000001"), Err(AmountError::TooPrecise));
        assert_eq!(
            Usdt::parse("99999999999999999999"),
            Err(AmountError::TooLarge)
        );
        assert_eq!(Usdt::parse("1000000001"), Err(AmountError::TooLarge));
    }

    #[test]
    fn cents_are_exact_and_bounded() {
        assert_eq!(Usdt::from_cents(5000), Ok(Usdt::from_whole(50)));
        assert_eq!(Usdt::from_cents(4999).unwrap().to_string(), "49.990000");
        assert_eq!(Usdt::from_whole(100).cents(), 10_000);
        assert_eq!(Usdt::from_cents(-1), Err(AmountError::Negative));
        assert_eq!(Usdt::from_cents(i64::MAX), Err(AmountError::TooLarge));
    }

    proptest::proptest! {
        #[test]
        fn display_round_trips(micros in 0i64..=MAX_WHOLE_USDT * SCALE) {
            let amount = Usdt { micros };
            proptest::prop_assert_eq!(Usdt::parse(&amount.to_string()), Ok(amount));
        }

        #[test]
        fn parser_never_panics(text in ".{0,40}") {
            let _ = Usdt::parse(&text);
        }
    }
}

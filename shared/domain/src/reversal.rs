//! Money given back after a grant: a refund, or a dispute (chargeback)
//! opened by the buyer's bank. Either takes back the matching share of
//! the order's credits, never more than the order granted, and never
//! below zero (what was already spent becomes the order's shortfall:
//! `ledgerhook_store::credits::take_back`).

use super::package::Credits;
use super::usdt::{AmountError, Usdt};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReversalKind {
    /// The merchant refunded (part of) the payment. Stripe reports the
    /// charge's refunded total so far, so each refund event says how much
    /// of the order should have been taken back by now.
    Refund,
    /// The buyer's bank disputed the payment; the disputed amount is held
    /// from the merchant at once, so the credits go with it.
    Chargeback,
}

impl ReversalKind {
    pub const ALL: [Self; 2] = [Self::Refund, Self::Chargeback];

    /// The ledger kind written, and the metric label.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Refund => "refund",
            Self::Chargeback => "chargeback",
        }
    }
}

/// What a provider said was given back, about the payment it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentReversal {
    pub kind: ReversalKind,
    /// The event name exactly as received.
    pub event_type: String,
    /// The payment it reverses (Stripe's PaymentIntent), by which the
    /// order is found.
    pub payment_intent: String,
    /// What makes this fact unique at the provider, so it never takes
    /// credits twice: the charge with its refunded total
    /// (`ch_..:2500`), or the dispute's id.
    pub reference: String,
    /// For a refund, the total refunded on the payment so far; for a
    /// chargeback, the disputed amount. Kept as a result: an unreadable
    /// amount is a reversal to look at, not an unreadable event.
    pub amount: Result<Usdt, AmountError>,
    /// Upper-cased, as order events are.
    pub currency: Option<String>,
    /// The provider's reason (`requested_by_customer`, `fraudulent`, ...).
    pub reason: Option<String>,
}

/// The credits `amount` of a payment of `price` stands for, out of
/// `total_credits`: rounded down, so a reversal never takes more than
/// its share; the whole price (or more) is every credit.
pub fn credits_share(total_credits: Credits, amount: Usdt, price: Usdt) -> Credits {
    if price.micros() <= 0 || amount >= price {
        return total_credits.max(0);
    }
    let share =
        i128::from(total_credits) * i128::from(amount.micros()) / i128::from(price.micros());
    Credits::try_from(share)
        .unwrap_or(total_credits)
        .clamp(0, total_credits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_share_is_exact_and_rounds_down() {
        let price = Usdt::from_whole(50);
        assert_eq!(
            credits_share(3300, Usdt::from_cents(2500).unwrap(), price),
            1650
        );
        assert_eq!(credits_share(3300, Usdt::from_cents(1).unwrap(), price), 0);
        // 3300 x 1.01 / 50 = 66.66: 66, never 67.
        assert_eq!(
            credits_share(3300, Usdt::from_cents(101).unwrap(), price),
            66
        );
        assert_eq!(credits_share(3300, price, price), 3300);
        assert_eq!(credits_share(3300, Usdt::from_whole(80), price), 3300);
        assert_eq!(credits_share(3300, Usdt::from_whole(0), price), 0);
    }

    proptest::proptest! {
        #[test]
        fn a_share_is_never_more_than_the_credits(cents in 0i64..20_000, total in 0i64..100_000) {
            let share = credits_share(total, Usdt::from_cents(cents).unwrap(), Usdt::from_whole(100));
            proptest::prop_assert!((0..=total).contains(&share));
        }
    }
}

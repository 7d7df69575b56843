//! Who takes the buyer's money for an order, and in what currency the
//! package prices are then read. Crossmint is paid in USDT on a chain;
//! Stripe by card in US dollars. The prices are the same numbers.

/// The value stored in `payment_orders.provider`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum PaymentProvider {
    #[default]
    Crossmint,
    Stripe,
}

impl PaymentProvider {
    pub const ALL: [Self; 2] = [Self::Crossmint, Self::Stripe];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Crossmint => "crossmint",
            Self::Stripe => "stripe",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "crossmint" => Some(Self::Crossmint),
            "stripe" => Some(Self::Stripe),
            _ => None,
        }
    }

    /// The currency a payment must arrive in, upper-cased as events are
    /// normalised (Stripe writes `usd`).
    pub const fn currency(self) -> &'static str {
        match self {
            Self::Crossmint => super::package::CURRENCY,
            Self::Stripe => "USD",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_each_has_its_currency() {
        for provider in [PaymentProvider::Crossmint, PaymentProvider::Stripe] {
            assert_eq!(PaymentProvider::parse(provider.as_str()), Some(provider));
        }
        assert_eq!(PaymentProvider::parse("reconcile"), None);
        assert_eq!(PaymentProvider::Crossmint.currency(), "USDT");
        assert_eq!(PaymentProvider::Stripe.currency(), "USD");
    }
}

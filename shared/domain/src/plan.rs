//! Subscription plans: a price charged every period (a month, a year) by
//! Stripe, and the credits each paid period grants. A plan's period is sold
//! like a package: [`Plan::period`] is what one paid invoice buys, so the
//! order machinery (exact amount check, one grant per order, refunds'
//! shares) applies to each period's invoice unchanged.
//!
//! Plans are not packages: they are not offered as one-off orders, and a
//! period's credits stay valid for the period (plus the configured grace),
//! not for the packages' validity.

use serde::Serialize;

use super::package::Package;
use super::usdt::Usdt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Interval {
    Month,
    Year,
}

impl Interval {
    /// Stripe's `recurring[interval]`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Month => "month",
            Self::Year => "year",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub id: &'static str,
    pub interval: Interval,
    /// What one paid period buys: its price (US dollars) and credits.
    pub period: Package,
}

pub const PLANS: [Plan; 2] = [
    Plan {
        id: "monthly",
        interval: Interval::Month,
        period: Package {
            id: "monthly",
            name: "Monthly",
            price: Usdt::from_whole(20),
            credits: 1200,
            bonus_credits: 0,
            badge: None,
            chain: "",
        },
    },
    Plan {
        id: "yearly",
        interval: Interval::Year,
        period: Package {
            id: "yearly",
            name: "Yearly",
            price: Usdt::from_whole(200),
            credits: 14400,
            bonus_credits: 1600,
            badge: Some("BEST SAVE"),
            chain: "",
        },
    },
];

pub fn find_plan(id: &str) -> Option<&'static Plan> {
    PLANS.iter().find(|p| p.id == id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::package::{find_bought, find_package};

    #[test]
    fn plans_are_bought_per_period_but_never_sold_as_packages() {
        let monthly = find_plan("monthly").unwrap();
        assert_eq!(monthly.period.total_credits(), 1200);
        assert_eq!(find_plan("yearly").unwrap().period.total_credits(), 16000);
        assert!(find_package("monthly").is_none(), "not a one-off order");
        assert_eq!(find_bought("monthly"), Some(&PLANS[0].period));
        assert_eq!(find_bought("pro").unwrap().total_credits(), 3300);
        assert!(find_plan("pro").is_none());
    }
}

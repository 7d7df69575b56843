//! The immutable catalogue of credit packages: the prices and
//! credit amounts the frontend sells, the same for every buyer.
//!
//! An order keeps a snapshot of its package, so changing a price here later
//! never changes what an already created order is worth.

use serde::Serialize;

use super::usdt::Usdt;

/// Credits are whole numbers; i64 leaves room for any balance.
pub type Credits = i64;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Package {
    pub id: &'static str,
    pub name: &'static str,
    #[serde(serialize_with = "serialize_usdt")]
    pub price: Usdt,
    pub credits: Credits,
    pub bonus_credits: Credits,
    pub badge: Option<&'static str>,
    /// The chain the checkout offers first (the frontend's `chainPreference`).
    pub chain: &'static str,
}

fn serialize_usdt<S: serde::Serializer>(amount: &Usdt, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&amount.to_string())
}

impl Package {
    pub fn total_credits(&self) -> Credits {
        self.credits + self.bonus_credits
    }

    /// The snapshot stored on an order (`payment_orders.package_snapshot`).
    pub fn snapshot(&self) -> serde_json::Value {
        serde_json::json!({
            "id": self.id,
            "name": self.name,
            "price": self.price.to_string(),
            "currency": CURRENCY,
            "credits": self.credits,
            "bonusCredits": self.bonus_credits,
            "totalCredits": self.total_credits(),
        })
    }
}

/// The only currency the packages are sold in.
pub const CURRENCY: &str = "USDT";

pub const PACKAGES: [Package; 3] = [
    Package {
        id: "starter",
        name: "Starter",
        price: Usdt::from_whole(10),
        credits: 500,
        bonus_credits: 0,
        badge: None,
        chain: "polygon",
    },
    Package {
        id: "pro",
        name: "Pro",
        price: Usdt::from_whole(50),
        credits: 3000,
        bonus_credits: 300,
        badge: Some("HOT"),
        chain: "base",
    },
    Package {
        id: "vip",
        name: "VIP",
        price: Usdt::from_whole(100),
        credits: 8000,
        bonus_credits: 1600,
        badge: Some("BEST SAVE"),
        chain: "arbitrum",
    },
];

/// A package sold as a one-off order.
pub fn find_package(id: &str) -> Option<&'static Package> {
    PACKAGES.iter().find(|p| p.id == id)
}

/// What an order may buy: a package, or one period of a subscription plan
/// (a paid invoice of it). The ledger resolves orders through this; the
/// API sells packages through [`find_package`] alone.
pub fn find_bought(id: &str) -> Option<&'static Package> {
    find_package(id).or_else(|| super::plan::find_plan(id).map(|plan| &plan.period))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_matches_the_seed() {
        let totals: Vec<_> = PACKAGES
            .iter()
            .map(|p| (p.id, p.price.to_string(), p.total_credits()))
            .collect();
        assert_eq!(
            totals,
            [
                ("starter", "10.000000".to_string(), 500),
                ("pro", "50.000000".to_string(), 3300),
                ("vip", "100.000000".to_string(), 9600),
            ]
        );
    }

    #[test]
    fn unknown_package_is_not_found() {
        assert!(find_package("enterprise").is_none());
        assert!(find_package("PRO").is_none());
        assert_eq!(find_package("pro").unwrap().total_credits(), 3300);
    }
}

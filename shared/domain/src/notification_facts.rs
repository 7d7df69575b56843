//! What a notification says about its grant, stored with the row as JSON
//! and rendered only when sent, so the wording can change without a
//! migration and the row stays a record of what was granted.

use serde::{Deserialize, Serialize};

/// What a notice tells the buyer about their credits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoticeKind {
    /// The payment's credits arrived (rows written before kinds existed
    /// have none, and are this).
    #[default]
    Granted,
    /// An operator granted the credits by hand.
    GrantedByHand,
    /// A refund took back the refunded share of the order's credits.
    Refund,
    /// A dispute (chargeback) took back the order's credits.
    Chargeback,
    /// An operator revoked the order's credits.
    Revoke,
}

/// The facts of one grant, or of one take-back (then `credits` is what was
/// taken). Amounts are exact decimal text, credits integers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GrantFacts {
    #[serde(default)]
    pub kind: NoticeKind,
    /// The provider's order id (Crossmint's), as the buyer and team know it.
    pub order_id: String,
    pub user_id: String,
    pub package_id: String,
    pub package_name: String,
    pub credits: i64,
    /// The amount paid, exact (`"50"`, `"10.5"`), never a float.
    pub amount: String,
    pub currency: String,
}

/// Credits with thousands separators: 3300 -> "3,300".
pub fn format_credits(credits: i64) -> String {
    let digits = credits.unsigned_abs().to_string();
    let mut grouped = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if credits < 0 {
        grouped.push('-');
    }
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    grouped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credits_read_with_thousands_separators() {
        let cases = [
            (0, "0"),
            (500, "500"),
            (3300, "3,300"),
            (9600, "9,600"),
            (1_234_567, "1,234,567"),
            (-1000, "-1,000"),
            (i64::MIN, "-9,223,372,036,854,775,808"),
        ];
        for (credits, text) in cases {
            assert_eq!(format_credits(credits), text);
        }
    }

    #[test]
    fn facts_round_trip_as_camel_case_json() {
        let facts = GrantFacts {
            kind: NoticeKind::Granted,
            order_id: "o-1".into(),
            user_id: "u-1".into(),
            package_id: "pro".into(),
            package_name: "Pro".into(),
            credits: 3300,
            amount: "50".into(),
            currency: "USDT".into(),
        };
        let json = serde_json::to_value(&facts).unwrap();
        assert_eq!(json["orderId"], "o-1");
        assert_eq!(json["packageName"], "Pro");
        assert_eq!(
            serde_json::from_value::<GrantFacts>(json.clone()).unwrap(),
            facts
        );
        // A row written before notices had kinds is a grant's.
        let mut old = json;
        old.as_object_mut().unwrap().remove("kind");
        assert_eq!(
            serde_json::from_value::<GrantFacts>(old).unwrap().kind,
            NoticeKind::Granted
        );
    }
}

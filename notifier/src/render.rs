//! The words of each message, from a grant's facts. Credits read with
//! thousands separators ("3,300"), amounts exactly as stored.

use ledgerhook_shared::notifications::{GrantFacts, format_credits};

/// The buyer's email: subject and plain-text body.
pub fn email(facts: &GrantFacts) -> (String, String) {
    let credits = format_credits(facts.credits);
    let subject = format!("Your {credits} credits have arrived");
    let body = format!(
        "Hello,\n\n\
         your {credits} credits have arrived: your payment of {amount} {currency} \
         for the {package} package (order {order}) is complete, and the credits \
         are in your account.\n\n\
         Thank you.\n",
        amount = facts.amount,
        currency = facts.currency,
        package = facts.package_name,
        order = facts.order_id,
    );
    (subject, body)
}

/// The team's chat line.
pub fn chat(facts: &GrantFacts) -> String {
    format!(
        "payment received: {package}, {amount} {currency}, {credits} credits, user {user}, order {order}",
        package = facts.package_id,
        amount = facts.amount,
        currency = facts.currency,
        credits = format_credits(facts.credits),
        user = facts.user_id,
        order = facts.order_id,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> GrantFacts {
        GrantFacts {
            order_id: "cm-1".into(),
            user_id: "user-7".into(),
            package_id: "pro".into(),
            package_name: "Pro".into(),
            credits: 3300,
            amount: "50".into(),
            currency: "USDT".into(),
        }
    }

    #[test]
    fn the_email_names_the_credits_with_separators_and_the_exact_amount() {
        let (subject, body) = email(&facts());
        assert_eq!(subject, "Your 3,300 credits have arrived");
        assert!(body.contains("your 3,300 credits have arrived"), "{body}");
        assert!(body.contains("50 USDT"), "{body}");
        assert!(body.contains("order cm-1"), "{body}");
    }

    #[test]
    fn the_chat_line_says_who_paid_what() {
        assert_eq!(
            chat(&facts()),
            "payment received: pro, 50 USDT, 3,300 credits, user user-7, order cm-1"
        );
    }
}

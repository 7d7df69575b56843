//! The words of each message, from a grant's facts. Credits read with
//! thousands separators ("3,300"), amounts exactly as stored.
//!
//! Every text field of the facts came from outside (the user id is webhook
//! metadata of up to 200 characters; the order id, amount and currency are
//! the provider's), so each is made inert before it is put in a message:
//! control characters (newlines included) are dropped everywhere, so no
//! value can add a line that looks like ours; and each chat service gets
//! its own treatment of its markup (see [`chat`]).

use ledgerhook_domain::{Channel, GrantFacts, NoticeKind, format_credits};

/// The buyer's email: subject and plain-text body, by what happened to
/// their credits.
pub fn email(facts: &GrantFacts) -> (String, String) {
    let credits = format_credits(facts.credits);
    let amount = plain(&facts.amount);
    let currency = plain(&facts.currency);
    let package = plain(&facts.package_name);
    let order = plain(&facts.order_id);
    let (subject, what) = match facts.kind {
        NoticeKind::Granted => (
            format!("Your {credits} credits have arrived"),
            format!(
                "your {credits} credits have arrived: your payment of {amount} {currency} \
                 for the {package} package (order {order}) is complete, and the credits \
                 are in your account."
            ),
        ),
        NoticeKind::GrantedByHand => (
            format!("Your {credits} credits have arrived"),
            format!(
                "our support team has added {credits} credits to your account \
                 for the {package} package (order {order})."
            ),
        ),
        NoticeKind::Refund => (
            format!("{credits} credits taken back after your refund"),
            format!(
                "your payment of {amount} {currency} for the {package} package \
                 (order {order}) was refunded, in whole or in part, so {credits} of its \
                 credits have been taken back from your account."
            ),
        ),
        NoticeKind::Chargeback => (
            format!("{credits} credits taken back after a payment dispute"),
            format!(
                "your payment of {amount} {currency} for the {package} package \
                 (order {order}) was disputed with your bank, so {credits} of its credits \
                 have been taken back from your account."
            ),
        ),
        NoticeKind::Revoke => (
            format!("{credits} credits removed from your account"),
            format!(
                "our support team has removed the {credits} credits of the {package} \
                 package (order {order}) from your account. Reply to this message if \
                 you think this is a mistake."
            ),
        ),
    };
    let body = format!("Hello,\n\n{what}\n\nThank you.\n");
    (subject, body)
}

/// The team's chat line, in the channel's markup:
///
/// - Discord renders Markdown (masked links `[x](https://...)`, emphasis,
///   headings): each outside value goes in inline code, which Discord shows
///   as typed, with backticks removed so it cannot close the code span.
///   Mentions are also switched off in the payload (`allowed_mentions`).
/// - Feishu text messages interpret tags such as `<at user_id="all"></at>`
///   (which mentions everyone). Its documentation gives no escaping for
///   text messages that we could rely on, so `<`, `>` and `&` are removed.
pub fn chat(channel: Channel, facts: &GrantFacts) -> String {
    let value = |text: &str| match channel {
        Channel::Discord => discord_code(text),
        _ => feishu_text(text),
    };
    format!(
        "payment received: {package}, {amount} {currency}, {credits} credits, user {user}, order {order}",
        package = value(&facts.package_id),
        amount = value(&facts.amount),
        currency = value(&facts.currency),
        credits = format_credits(facts.credits),
        user = value(&facts.user_id),
        order = value(&facts.order_id),
    )
}

/// The value without control characters (newlines, tabs, escape sequences,
/// Unicode's line and paragraph separators and bidirectional overrides).
fn plain(text: &str) -> String {
    text.chars()
        .filter(|&c| !c.is_control() && !is_format_control(c))
        .collect()
}

/// Characters that are not `is_control` yet move or reorder text: the line
/// and paragraph separators and the bidirectional marks and overrides.
fn is_format_control(c: char) -> bool {
    matches!(c, '\u{2028}' | '\u{2029}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Inline code for Discord; a value left empty shows as `-` (an empty code
/// span would render as two stray backticks).
fn discord_code(text: &str) -> String {
    let inner: String = plain(text).chars().filter(|&c| c != '`').collect();
    let inner = inner.trim();
    if inner.is_empty() {
        "`-`".to_owned()
    } else {
        format!("`{inner}`")
    }
}

fn feishu_text(text: &str) -> String {
    plain(text)
        .chars()
        .filter(|c| !matches!(c, '<' | '>' | '&'))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> GrantFacts {
        GrantFacts {
            kind: NoticeKind::Granted,
            order_id: "cm-1".into(),
            user_id: "user-7".into(),
            package_id: "pro".into(),
            package_name: "Pro".into(),
            credits: 3300,
            amount: "50".into(),
            currency: "USDT".into(),
        }
    }

    fn with_user(user_id: &str) -> GrantFacts {
        GrantFacts {
            user_id: user_id.into(),
            ..facts()
        }
    }

    const HOSTILE: [&str; 5] = [
        "<at user_id=\"all\"></at>",
        "[click](https://evil.example)",
        "a\nFAKE LINE",
        "`x` **bold** `",
        "a\r\n\u{2028}b\u{202e}c\u{1b}[31m",
    ];

    #[test]
    fn the_email_names_the_credits_with_separators_and_the_exact_amount() {
        let (subject, body) = email(&facts());
        assert_eq!(subject, "Your 3,300 credits have arrived");
        assert!(body.contains("your 3,300 credits have arrived"), "{body}");
        assert!(body.contains("50 USDT"), "{body}");
        assert!(body.contains("order cm-1"), "{body}");
    }

    #[test]
    fn take_backs_and_hand_grants_say_what_happened() {
        let said = |kind| {
            let (subject, body) = email(&GrantFacts {
                kind,
                credits: 1650,
                ..facts()
            });
            format!("{subject}\n{body}")
        };
        assert!(said(NoticeKind::Refund).contains("1,650 credits taken back after your refund"));
        assert!(said(NoticeKind::Refund).contains("50 USDT"));
        assert!(said(NoticeKind::Chargeback).contains("disputed"));
        assert!(said(NoticeKind::Revoke).contains("removed the 1,650 credits"));
        assert!(said(NoticeKind::GrantedByHand).contains("support team has added 1,650"));
    }

    #[test]
    fn the_email_drops_control_characters_from_outside_values() {
        let hostile = GrantFacts {
            order_id: "cm-1\nBcc: someone".into(),
            ..facts()
        };
        let (_, body) = email(&hostile);
        assert!(body.contains("(order cm-1Bcc: someone)"), "{body}");
        assert_eq!(body.lines().count(), email(&facts()).1.lines().count());
    }

    #[test]
    fn the_chat_line_says_who_paid_what() {
        assert_eq!(
            chat(Channel::Feishu, &facts()),
            "payment received: pro, 50 USDT, 3,300 credits, user user-7, order cm-1"
        );
        assert_eq!(
            chat(Channel::Discord, &facts()),
            "payment received: `pro`, `50` `USDT`, 3,300 credits, user `user-7`, order `cm-1`"
        );
    }

    #[test]
    fn feishu_gets_no_tags_and_no_extra_lines_from_a_user_id() {
        let line = chat(Channel::Feishu, &with_user(HOSTILE[0]));
        assert_eq!(
            line,
            "payment received: pro, 50 USDT, 3,300 credits, user at user_id=\"all\"/at, order cm-1"
        );
        for user in HOSTILE {
            let line = chat(Channel::Feishu, &with_user(user));
            assert!(!line.contains(['<', '>', '&']), "{line:?}");
            assert!(
                !line.chars().any(|c| c.is_control() || is_format_control(c)),
                "{line:?}"
            );
            assert!(line.ends_with(", order cm-1"), "{line:?}");
        }
        assert!(chat(Channel::Feishu, &with_user(HOSTILE[2])).contains("user aFAKE LINE,"));
    }

    #[test]
    fn discord_shows_a_user_id_as_code_that_it_cannot_leave() {
        assert!(
            chat(Channel::Discord, &with_user(HOSTILE[1]))
                .contains("user `[click](https://evil.example)`, order")
        );
        assert!(
            chat(Channel::Discord, &with_user(HOSTILE[2])).contains("user `aFAKE LINE`, order")
        );
        assert!(
            chat(Channel::Discord, &with_user(HOSTILE[3])).contains("user `x **bold**`, order")
        );
        assert!(chat(Channel::Discord, &with_user("```")).contains("user `-`, order"));
        for user in HOSTILE {
            let line = chat(Channel::Discord, &with_user(user));
            // The only backticks are ours: one pair around each of the five values.
            assert_eq!(line.matches('`').count(), 10, "{line:?}");
            let (_, user_part) = line.split_once(" user `").unwrap();
            let (inside, rest) = user_part.split_once('`').unwrap();
            assert!(!inside.is_empty() && rest == ", order `cm-1`", "{line:?}");
            assert!(
                !line.chars().any(|c| c.is_control() || is_format_control(c)),
                "{line:?}"
            );
        }
    }
}

//! The words of each message, from a grant's facts. Credits read with
//! thousands separators ("3,300"), amounts exactly as stored.
//!
//! Every text field of the facts came from outside (the user id is webhook
//! metadata of up to 200 characters; the order id, amount and currency are
//! the provider's), so each is made inert before it is put in a message:
//! control characters (newlines included) are dropped everywhere, so no
//! value can add a line that looks like ours; and each chat service gets
//! its own treatment of its markup (see [`chat`]).

use ledgerhook_domain::{Channel, GrantFacts, format_credits};

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
        amount = plain(&facts.amount),
        currency = plain(&facts.currency),
        package = plain(&facts.package_name),
        order = plain(&facts.order_id),
    );
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

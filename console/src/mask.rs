//! Buyers' personal data, hidden until an operator reveals it (a reveal is
//! audited): e-mail addresses anywhere, and the values of fields that name
//! a person (names, phones, postal addresses, IP addresses). Amounts, ids
//! and event types stay visible: they are what an operator looks for.

use serde_json::Value;

/// Field names (lower case, without `_` or `-`) whose string values are
/// personal.
const PERSONAL_FIELDS: &[&str] = &[
    "email",
    "receiptemail",
    "customeremail",
    "customername",
    "customerphone",
    "billingname",
    "name",
    "firstname",
    "lastname",
    "fullname",
    "phone",
    "phonenumber",
    "line1",
    "line2",
    "city",
    "postalcode",
    "zip",
    "address",
    "ip",
    "ipaddress",
];

fn personal(field: &str) -> bool {
    let folded: String = field
        .chars()
        .filter(|c| *c != '_' && *c != '-')
        .flat_map(char::to_lowercase)
        .collect();
    PERSONAL_FIELDS.contains(&folded.as_str())
}

/// `value` with personal data masked, in place.
pub fn mask_json(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (field, inner) in map.iter_mut() {
                if personal(field)
                    && let Value::String(text) = inner
                {
                    *text = mask_word(text);
                } else {
                    mask_json(inner);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(mask_json),
        Value::String(text) if looks_like_email(text) => *text = mask_word(text),
        _ => {}
    }
}

/// Text that is not JSON: every word that looks like an e-mail address
/// masked.
pub fn mask_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut word = String::new();
    for c in text.chars() {
        if c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>' | ',' | ';') {
            flush(&mut out, &mut word);
            out.push(c);
        } else {
            word.push(c);
        }
    }
    flush(&mut out, &mut word);
    out
}

fn flush(out: &mut String, word: &mut String) {
    if looks_like_email(word) {
        out.push_str(&mask_word(word));
    } else {
        out.push_str(word);
    }
    word.clear();
}

fn looks_like_email(text: &str) -> bool {
    text.split_once('@')
        .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'))
}

/// The first character, then `•` for the rest (an e-mail keeps its `@` and
/// top-level domain, enough to tell two apart at a glance).
pub fn mask_word(text: &str) -> String {
    let Some(first) = text.chars().next() else {
        return String::new();
    };
    if let Some((_, domain)) = text.split_once('@') {
        let tld = domain.rsplit_once('.').map_or("", |(_, tld)| tld);
        return format!("{first}•••@•••.{tld}");
    }
    format!("{first}•••")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn emails_and_personal_fields_are_masked_amounts_are_not() {
        let mut body = json!({
            "type": "orders.payment.succeeded",
            "data": {
                "payment": {"receiptEmail": "buyer@example.com", "amount": "10.00"},
                "recipient": {"email": "someone@example.org", "walletAddress": "0xabc"},
                "customer_details": {"name": "Ada Lovelace", "phone": "+44 1234"},
                "note": "contact buyer@example.com",
                "list": ["x@y.io", 5]
            }
        });
        mask_json(&mut body);
        let text = body.to_string();
        for hidden in [
            "buyer@example.com",
            "someone@example.org",
            "Ada Lovelace",
            "+44 1234",
            "x@y.io",
        ] {
            assert!(!text.contains(hidden), "{hidden} shown in {text}");
        }
        assert!(
            text.contains("10.00")
                && text.contains("0xabc")
                && text.contains("orders.payment.succeeded")
        );
        assert_eq!(body["data"]["payment"]["receiptEmail"], "b•••@•••.com");
    }

    #[test]
    fn text_bodies_mask_their_addresses() {
        assert_eq!(
            mask_text("from <buyer@example.com>, ok"),
            "from <b•••@•••.com>, ok"
        );
    }
}

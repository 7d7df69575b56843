//! The keys each provider's deliveries are verified with, from the
//! environment. A provider without keys is not served: its route answers
//! `404 PROVIDER_NOT_CONFIGURED`. At least one provider must be set up, or
//! the ingester would refuse everything it receives.

use ledgerhook_providers::stripe::signature::StripeSecret;
use ledgerhook_providers::svix::VerificationKeys;
use ledgerhook_runtime::config::EnvReader;

pub const CROSSMINT_VAR: &str = "CROSSMINT_WEBHOOK_SECRET";
pub const STRIPE_VAR: &str = "STRIPE_WEBHOOK_SECRET";

#[derive(Debug, Clone, Default)]
pub struct WebhookKeys {
    /// `CROSSMINT_WEBHOOK_SECRET`: one or more keys separated by spaces:
    /// `whsec_` secrets (HMAC, `v1` signatures) and/or `whpk_` public keys
    /// (Ed25519, `v1a`); several are live at once while keys are rotated or
    /// the sender switches schemes.
    pub crossmint: Option<VerificationKeys>,
    /// `STRIPE_WEBHOOK_SECRET`: one or more `whsec_` endpoint secrets
    /// separated by spaces, all live (two while Stripe rolls the secret).
    pub stripe: Option<Vec<StripeSecret>>,
}

impl WebhookKeys {
    /// Reads both variables; either may be unset, not both. A bad entry is
    /// reported by variable and position, never by value.
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &mut EnvReader<F>) -> Self {
        let crossmint = env.optional(CROSSMINT_VAR);
        let stripe = env.optional(STRIPE_VAR);
        if crossmint.is_none() && stripe.is_none() {
            // Both named as missing, and why one would do.
            env.required(CROSSMINT_VAR);
            env.required(STRIPE_VAR);
            env.invalid(format!(
                "at least one of {CROSSMINT_VAR} and {STRIPE_VAR} is required"
            ));
        }
        Self {
            crossmint: crossmint.map(|text| {
                let mut keys = VerificationKeys::default();
                for (index, part) in text.split_whitespace().enumerate() {
                    if let Err(e) = keys.add(part) {
                        env.invalid(format!("{CROSSMINT_VAR} entry {}: {e}", index + 1));
                    }
                }
                keys
            }),
            stripe: stripe.map(|text| {
                let mut secrets = Vec::new();
                for (index, part) in text.split_whitespace().enumerate() {
                    match StripeSecret::parse(part) {
                        Ok(secret) => secrets.push(secret),
                        Err(e) => env.invalid(format!("{STRIPE_VAR} entry {}: {e}", index + 1)),
                    }
                }
                secrets
            }),
        }
    }
}

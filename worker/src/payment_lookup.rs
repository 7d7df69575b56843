//! Asking the payment provider which order a payment paid, when no order
//! holds it: a refund or dispute names a Stripe PaymentIntent, and an order
//! paid by invoice holds one only if its invoice event listed its payments
//! (webhooks need not). Without this the refund would wait, then park for a
//! person; with it, the worker asks Stripe once (`STRIPE_SECRET_KEY`).

use ledgerhook_providers::stripe::reads::StripeReads;
use ledgerhook_runtime::config::EnvReader;

#[derive(Debug, Clone)]
pub struct PaymentLookup {
    stripe: StripeReads,
}

impl PaymentLookup {
    /// With `STRIPE_SECRET_KEY` (and `STRIPE_API_URL`, `STRIPE_TIMEOUT_MS`
    /// as the API reads them); none without a key.
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &mut EnvReader<F>) -> Option<Self> {
        env.optional("STRIPE_SECRET_KEY")?;
        StripeReads::from_env(env).map(|stripe| Self { stripe })
    }

    /// The order (its provider's id) `payment` paid, if the provider knows
    /// one; a failed lookup is logged and counts as none (the reversal then
    /// waits and retries as before).
    pub async fn order_of(&self, payment: &str) -> Option<String> {
        match self.stripe.invoice_of_payment(payment).await {
            Ok(invoice) => invoice,
            Err(e) => {
                tracing::warn!(payment, error = %e, "could not ask which invoice a payment paid");
                None
            }
        }
    }
}

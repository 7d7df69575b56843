//! The API's use of Crossmint's orders API: creating an order for a package
//! of our collection (`CROSSMINT_COLLECTION_ID`). The client itself is
//! `ledgerhook_providers::crossmint`, shared with reconcile.

use std::time::Duration;

use ledgerhook_domain::Package;
use ledgerhook_providers::crossmint::OrdersApi;
pub use ledgerhook_providers::crossmint::{CreatedOrder, CrossmintError};
use ledgerhook_runtime::secret_text::SecretText;

#[derive(Clone)]
pub struct Crossmint {
    orders: OrdersApi,
    collection_id: String,
}

impl Crossmint {
    pub fn new(
        api_url: &str,
        api_key: &SecretText,
        collection_id: &str,
        timeout: Duration,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            orders: OrdersApi::new(api_url, api_key.clone(), timeout)?,
            collection_id: collection_id.to_owned(),
        })
    }

    /// Creates the order for one package paid in USDT (see
    /// [`OrdersApi::create_order`]).
    pub async fn create_order(
        &self,
        package: &Package,
        payer_address: Option<&str>,
    ) -> Result<CreatedOrder, CrossmintError> {
        self.orders
            .create_order(&self.collection_id, package, payer_address)
            .await
    }
}

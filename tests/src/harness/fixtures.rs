//! What a test puts in its world's database before the binaries see it, the
//! way other parts of the system would have.

use ledgerhook_domain::{PaymentProvider, find_package};
use ledgerhook_store::ledger::orders::{self, CreatedFrom, PendingOrder};

use super::world::TestEnv;

impl TestEnv {
    /// Records a pending order the way the API does (`created_from` api),
    /// with credits that never expire.
    pub async fn create_order(&self, provider_order_id: &str, user_id: &str, package_id: &str) {
        self.create_provider_order(
            PaymentProvider::Crossmint,
            provider_order_id,
            user_id,
            package_id,
        )
        .await;
    }

    /// The same, for an order paid through `provider`.
    pub async fn create_provider_order(
        &self,
        provider: PaymentProvider,
        provider_order_id: &str,
        user_id: &str,
        package_id: &str,
    ) {
        let package = find_package(package_id).expect("a catalogue package");
        let order = PendingOrder {
            provider,
            provider_order_id,
            user_id,
            package,
            credits_valid_days: None,
            subscription_id: None,
        };
        orders::insert_pending(&self.pool, CreatedFrom::Api, &[order])
            .await
            .expect("creating an order");
    }
}

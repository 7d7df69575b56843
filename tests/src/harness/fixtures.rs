//! What a test puts in its world's database before the binaries see it, the
//! way other parts of the system would have.

use super::world::TestEnv;

impl TestEnv {
    /// Creates an order the way the backend does before payment.
    pub async fn create_order(&self, crossmint_order_id: &str, user_id: &str, package_id: &str) {
        let package =
            ledgerhook_shared::domain::find_package(package_id).expect("a catalogue package");
        sqlx::query(
            "insert into payment_orders (id, crossmint_order_id, user_id, package_id, package_snapshot,
                 amount, base_credits, bonus_credits, total_credits, created_from)
             values ($1, $2, $3, $4, $5, $6::numeric, $7, $8, $9, 'api')",
        )
        .bind(uuid::Uuid::now_v7())
        .bind(crossmint_order_id)
        .bind(user_id)
        .bind(package.id)
        .bind(package.snapshot())
        .bind(package.price.to_string())
        .bind(package.credits)
        .bind(package.bonus_credits)
        .bind(package.total_credits())
        .execute(&self.pool)
        .await
        .expect("creating an order");
    }
}

//! `ledgerhook-notifier` in a test's world: same database, its own metrics
//! port, and whatever channels the test points it at.

use super::processes::Service;
use super::world::TestEnv;

impl TestEnv {
    /// Starts the notifier; `extra` names its channels (`NOTIFY_SMTP_URL`,
    /// ...) and retry settings. Ready when its `/metrics` answers.
    pub async fn start_notifier(&self, extra: &[(&str, &str)]) -> anyhow::Result<Service> {
        Service::spawn("ledgerhook-notifier", self.base_env(), extra).await
    }
}

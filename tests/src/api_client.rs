//! The frontend's API as a test calls it: requests with a user's bearer
//! token minted with the test secret.

use serde_json::Value;

use crate::harness::{Answer, Service};

/// The HS256 key the tests' API runs with; visibly not a real one.
pub const TEST_JWT_SECRET: &str = "test-only-jwt-secret-not-for-production-use";

pub struct Api {
    pub base: String,
    pub service: Service,
    http: reqwest::Client,
}

/// A bearer token for `user_id`, valid for an hour.
pub fn token_for(user_id: &str) -> String {
    token_expiring(user_id, chrono::Utc::now().timestamp() + 3600)
}

pub fn token_expiring(user_id: &str, exp: i64) -> String {
    ledgerhook_api::auth::JwtSecret::new(TEST_JWT_SECRET)
        .expect("the test secret is long enough")
        .sign(user_id, exp)
}

impl Api {
    pub(crate) fn new(service: Service, http: reqwest::Client) -> anyhow::Result<Self> {
        let addr = service
            .http_addr
            .ok_or_else(|| anyhow::anyhow!("the API reports its address"))?;
        Ok(Self {
            base: format!("http://{addr}"),
            service,
            http,
        })
    }

    /// `GET path` as `user` (`None`: without a token).
    pub async fn get(&self, path: &str, user: Option<&str>) -> Answer {
        let mut request = self.http.get(format!("{}{path}", self.base));
        if let Some(user) = user {
            request = request.bearer_auth(token_for(user));
        }
        Answer::read(request.send().await.expect("the API answers")).await
    }

    /// `POST path` with a JSON body as `user` (`None`: without a token).
    pub async fn post(&self, path: &str, user: Option<&str>, body: &Value) -> Answer {
        let mut request = self.http.post(format!("{}{path}", self.base)).json(body);
        if let Some(user) = user {
            request = request.bearer_auth(token_for(user));
        }
        Answer::read(request.send().await.expect("the API answers")).await
    }

    /// `POST path` with a JSON body as `user`, with extra request headers.
    pub async fn post_with_headers(
        &self,
        path: &str,
        user: &str,
        headers: &[(&str, &str)],
        body: &Value,
    ) -> Answer {
        let mut request = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(token_for(user))
            .json(body);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        Answer::read(request.send().await.expect("the API answers")).await
    }

    /// `POST path` with exactly this Authorization header value.
    pub async fn post_with_authorization(
        &self,
        path: &str,
        authorization: &str,
        body: &Value,
    ) -> Answer {
        let request = self
            .http
            .post(format!("{}{path}", self.base))
            .header("authorization", authorization)
            .json(body);
        Answer::read(request.send().await.expect("the API answers")).await
    }

    /// `method path` with exactly these headers (Authorization included)
    /// and an optional JSON body.
    pub async fn send_with(
        &self,
        method: reqwest::Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Answer {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        Answer::read(request.send().await.expect("the API answers")).await
    }
}

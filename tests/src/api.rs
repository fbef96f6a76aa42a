//! A small client of the server's JSON API for the end-to-end tests: who
//! calls (`server.as_(token)`, `server.anonymous()`), what (`get`, `post`,
//! `put`, or `send` for any method), and the answer as its status and JSON
//! body, so a test reads as the request it makes and what it expects back.

use anyhow::bail;
use reqwest::Method;
use serde_json::Value;

use crate::ServerProcess;

/// What the server answered: its status and JSON body (Null when there is none).
pub type Reply = (u16, Value);

/// Requests to one server as the holder of one token (a session token or a
/// device credential), or as no one.
#[derive(Clone, Copy)]
pub struct Api<'a> {
    server: &'a ServerProcess,
    token: Option<&'a str>,
}

impl ServerProcess {
    /// Calls the API as the holder of `token`.
    pub fn as_<'a>(&'a self, token: &'a str) -> Api<'a> {
        self.api(Some(token))
    }

    /// Calls the API without credentials.
    pub fn anonymous(&self) -> Api<'_> {
        self.api(None)
    }

    /// Calls the API as the holder of `token`, if any: for tables of callers.
    pub fn api<'a>(&'a self, token: Option<&'a str>) -> Api<'a> {
        Api {
            server: self,
            token,
        }
    }
}

impl Api<'_> {
    pub async fn get(&self, path: &str) -> anyhow::Result<Reply> {
        self.send(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> anyhow::Result<Reply> {
        self.send(Method::POST, path, Some(body)).await
    }

    pub async fn put(&self, path: &str, body: &Value) -> anyhow::Result<Reply> {
        self.send(Method::PUT, path, Some(body)).await
    }

    /// Sends `method path` with `body` as JSON: for tables of requests.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<Reply> {
        let mut request = reqwest::Client::new().request(method, self.server.http_url(path));
        if let Some(token) = self.token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await?;
        let status = response.status().as_u16();
        let bytes = response.bytes().await?;
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)?
        };
        Ok((status, body))
    }
}

/// The body of `reply` if the server answered `status`; otherwise an error
/// naming what it answered: for setup steps, whose answer is not what a test
/// is about.
pub fn expect_status(reply: Reply, status: u16) -> anyhow::Result<Value> {
    let (got, body) = reply;
    if got != status {
        bail!("expected {status}, the server answered {got}: {body}");
    }
    Ok(body)
}

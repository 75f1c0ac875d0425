//! `moto_server`: the child process and a plain-HTTP client to it.
//!
//! Every IAM/STS call names its account in `x-moto-account-id` (moto keeps one
//! IAM backend per account): a forwarded request the caller's, the sandbox's
//! own calls the account they act in.

use std::process::Stdio;
use std::time::{Duration, Instant};

use http::{HeaderMap, HeaderValue, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::process::{Child, Command};

use super::SandboxError;
use crate::state::valid_account_id;

/// The header moto takes a request's account from.
const ACCOUNT_HEADER: &str = "x-moto-account-id";

/// Access key id moto sees on the sandbox's own calls (moto maps unknown
/// keys to the account's root; it never checks signatures).
const INTERNAL_KEY: &str = "AKIASANDBOXINTERNAL0";

/// A client to one moto server, and the process when we started it.
#[derive(Debug)]
pub struct Moto {
    base: String,
    client: Client<HttpConnector, Full<Bytes>>,
    child: Option<Child>,
}

/// An answer from moto.
#[derive(Debug, Clone)]
pub struct MotoResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl MotoResponse {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn ok(&self) -> bool {
        self.status.is_success()
    }
}

fn client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

impl Moto {
    /// Uses an already running moto at `url` (`http://host:port`).
    pub async fn connect(url: &str) -> Result<Moto, SandboxError> {
        let moto = Moto {
            base: url.trim_end_matches('/').to_string(),
            client: client(),
            child: None,
        };
        moto.wait_ready(None).await?;
        Ok(moto)
    }

    /// Starts `moto_server` on a free loopback port and waits (≤10 s) until it answers.
    pub async fn spawn(program: &str) -> Result<Moto, SandboxError> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let child = Command::new(program)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| {
                if e.kind() == std::io::ErrorKind::NotFound {
                    SandboxError::MotoMissing
                } else {
                    SandboxError::Io(e)
                }
            })?;
        let mut moto = Moto {
            base: format!("http://127.0.0.1:{port}"),
            client: client(),
            child: Some(child),
        };
        let mut child = moto.child.take();
        let ready = moto.wait_ready(child.as_mut()).await;
        moto.child = child;
        ready?;
        Ok(moto)
    }

    async fn wait_ready(&self, mut child: Option<&mut Child>) -> Result<(), SandboxError> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let req = Request::get(format!("{}/moto-api/", self.base))
                .body(Full::new(Bytes::new()))
                .map_err(|e| SandboxError::Moto(e.to_string()))?;
            if self.client.request(req).await.is_ok() {
                return Ok(());
            }
            if let Some(c) = child.as_deref_mut()
                && let Ok(Some(status)) = c.try_wait()
            {
                return Err(SandboxError::MotoStart(format!(
                    "moto_server exited with {status} before answering"
                )));
            }
            if Instant::now() > deadline {
                return Err(SandboxError::MotoStart(format!(
                    "moto_server at {} did not answer within 10 s",
                    self.base
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `http://127.0.0.1:PORT` of moto.
    pub fn url(&self) -> &str {
        &self.base
    }

    /// The moto process id when the sandbox started it.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    /// Hands the moto process (if ours) to the caller, who then owns its lifetime.
    pub fn take_child(&mut self) -> Option<Child> {
        self.child.take()
    }

    /// Forwards a client's request unchanged (but for hop-by-hop headers), in `account`.
    pub async fn forward(
        &self,
        account: &str,
        method: &Method,
        path_and_query: &str,
        headers: &HeaderMap,
        body: Bytes,
    ) -> Result<MotoResponse, SandboxError> {
        let mut req = Request::builder()
            .method(method.clone())
            .uri(format!("{}{}", self.base, path_and_query));
        for (k, v) in headers {
            if matches!(
                k.as_str(),
                "host"
                    | "content-length"
                    | "connection"
                    | "transfer-encoding"
                    | "expect"
                    | ACCOUNT_HEADER
            ) {
                continue;
            }
            req = req.header(k, v);
        }
        req = req.header(ACCOUNT_HEADER, account);
        let req = req
            .body(Full::new(body))
            .map_err(|e| SandboxError::Moto(e.to_string()))?;
        self.send(req).await
    }

    /// Sends `req`; a connection moto did not accept (its listen queue full while
    /// many sandboxes start at once, as in the soak) is tried again, a few times: the
    /// request never reached moto, so sending it again cannot apply it twice.
    async fn send(&self, req: Request<Full<Bytes>>) -> Result<MotoResponse, SandboxError> {
        const CONNECT_TRIES: u32 = 5;
        let (parts, body) = req.into_parts();
        let mut tries = 0;
        let resp = loop {
            tries += 1;
            let req = Request::from_parts(parts.clone(), body.clone());
            match self.client.request(req).await {
                Ok(resp) => break resp,
                Err(e) if e.is_connect() && tries < CONNECT_TRIES => {
                    tokio::time::sleep(Duration::from_millis(50 << tries)).await;
                }
                Err(e) => return Err(SandboxError::Moto(e.to_string())),
            }
        };
        let (parts, body) = resp.into_parts();
        let body = body
            .collect()
            .await
            .map_err(|e| SandboxError::Moto(e.to_string()))?
            .to_bytes();
        Ok(MotoResponse {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    }

    /// The sandbox's own query-protocol call (`service` is `iam` or `sts`) in `account`.
    pub async fn call(
        &self,
        account: &str,
        service: &str,
        action: &str,
        params: &[(&str, &str)],
    ) -> Result<MotoResponse, SandboxError> {
        let version = if service == "sts" {
            "2011-06-15"
        } else {
            "2010-05-08"
        };
        let body = {
            let mut form = url::form_urlencoded::Serializer::new(String::new());
            form.append_pair("Action", action)
                .append_pair("Version", version);
            for (k, v) in params {
                form.append_pair(k, v);
            }
            form.finish()
        };
        let auth = format!(
            "AWS4-HMAC-SHA256 Credential={INTERNAL_KEY}/20260101/us-east-1/{service}/aws4_request, \
             SignedHeaders=host, Signature=0"
        );
        let req = Request::post(format!("{}/", self.base))
            .header(
                "content-type",
                "application/x-www-form-urlencoded; charset=utf-8",
            )
            .header(
                "authorization",
                HeaderValue::from_str(&auth).map_err(|e| SandboxError::Moto(e.to_string()))?,
            )
            .header(ACCOUNT_HEADER, account)
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| SandboxError::Moto(e.to_string()))?;
        self.send(req).await
    }

    /// Every IAM user name `account` holds (`ListUsers`, every page), as stored.
    pub async fn user_names(&self, account: &str) -> Result<Vec<String>, SandboxError> {
        self.iam_names(account, "ListUsers", "UserName").await
    }

    /// Every IAM group name `account` holds (`ListGroups`, every page), as stored.
    pub async fn group_names(&self, account: &str) -> Result<Vec<String>, SandboxError> {
        self.iam_names(account, "ListGroups", "GroupName").await
    }

    /// The `element` values of every page of the IAM list call `action`.
    async fn iam_names(
        &self,
        account: &str,
        action: &str,
        element: &str,
    ) -> Result<Vec<String>, SandboxError> {
        let mut names = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let mut params = vec![("MaxItems", "1000")];
            if let Some(m) = &marker {
                params.push(("Marker", m.as_str()));
            }
            let r = self.call(account, "iam", action, &params).await?;
            if !r.ok() {
                return Err(SandboxError::Moto(format!(
                    "{action} answered {}: {}",
                    r.status,
                    r.text()
                )));
            }
            let text = r.text();
            names.extend(
                super::xml::raw_all(&text, element)
                    .into_iter()
                    .map(super::xml::unescape),
            );
            marker = super::xml::text(&text, "Marker")
                .filter(|_| super::xml::text(&text, "IsTruncated").as_deref() == Some("true"));
            if marker.is_none() {
                return Ok(names);
            }
        }
    }

    /// The sandbox's own JSON 1.0 call (DynamoDB): `target` is the whole
    /// `X-Amz-Target`, e.g. `DynamoDB_20120810.CreateTable`; `region` goes in the
    /// credential scope, which is how moto picks the region's backend.
    pub async fn call_json(
        &self,
        service: &str,
        target: &str,
        region: &str,
        body: &serde_json::Value,
    ) -> Result<MotoResponse, SandboxError> {
        let auth = format!(
            "AWS4-HMAC-SHA256 Credential={INTERNAL_KEY}/20260101/{region}/{service}/aws4_request, \
             SignedHeaders=host, Signature=0"
        );
        let req = Request::post(format!("{}/", self.base))
            .header("content-type", "application/x-amz-json-1.0")
            .header(
                "x-amz-target",
                HeaderValue::from_str(target).map_err(|e| SandboxError::Moto(e.to_string()))?,
            )
            .header(
                "authorization",
                HeaderValue::from_str(&auth).map_err(|e| SandboxError::Moto(e.to_string()))?,
            )
            .body(Full::new(Bytes::from(body.to_string())))
            .map_err(|e| SandboxError::Moto(e.to_string()))?;
        self.send(req).await
    }
}

/// `arn:aws:iam::<acct>:user/...` or `role/...` (any account) → (kind, name).
pub fn iam_arn_kind_name(arn: &str) -> Option<(&str, &str)> {
    iam_arn_parts(arn).map(|(_, kind, name)| (kind, name))
}

/// `arn:aws:iam::<acct>:user/...` or `role/...` → (account, kind, name).
pub fn iam_arn_parts(arn: &str) -> Option<(&str, &str, &str)> {
    let rest = arn.strip_prefix("arn:aws:iam::")?;
    let (account, rest) = rest.split_once(':')?;
    if !valid_account_id(account) {
        return None;
    }
    let (kind, path_name) = rest.split_once('/')?;
    let name = path_name.rsplit('/').next()?;
    if name.is_empty() || !(kind == "user" || kind == "role") {
        return None;
    }
    Some((account, kind, name))
}

//! The AWS front door: one HTTP port that routes on the SigV4 credential
//! scope. IAM and STS go to `moto_server` (with what moto lacks added here),
//! DynamoDB to moto as it is ([`dynamodb`]), EKS to the control-plane emulator
//! in [`eks`], and `/_sandbox/…` to the control endpoints in [`control`].
//!
//! Accounts: every request runs in the account of its credential's principal
//! (a user's, or an assumed role's). The hub ([`ACCOUNT_ID`]) has the operator
//! from the start; [`Sandbox::create_account`] (`POST /_sandbox/accounts`)
//! adds a member account with its own `sandbox-operator`, and
//! [`Sandbox::seed_member`] (`POST /_sandbox/seed-member`) builds a member
//! account as the README's multi-account setup has it.

pub mod control;
pub mod dynamodb;
pub mod eks;
pub mod events;
pub mod iam;
pub mod identity;
pub mod moto;
pub mod seed;
pub mod trust;
pub mod xml;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, StatusCode};
use hyper::body::Bytes;
use rand::Rng;
use tokio::process::Child;
use tokio::sync::oneshot;
use tokio::task::{JoinHandle, JoinSet};

use crate::conn::{self, ConnReset};
use crate::kube::{ClusterServer, KubeError};
use crate::sigv4::{self, SigV4Error};
use crate::state::{
    ACCOUNT_ID, Credential, FaultKind, ORGANIZATION_ID, Principal, Shared, SharedState,
    valid_account_id,
};

pub use seed::{MemberSeed, MemberSeedReport, SeedReport};

/// Name of the operator user created at start.
pub const OPERATOR_USER: &str = "sandbox-operator";

/// Why the sandbox could not start or act.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("moto_server was not found on PATH; install it with: pip install 'moto[server]'")]
    MotoMissing,
    #[error("moto_server did not start: {0}")]
    MotoStart(String),
    #[error("talking to moto failed: {0}")]
    Moto(String),
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("cluster API server: {0}")]
    Kube(#[from] KubeError),
    #[error("{code}: {message}")]
    Aws { code: String, message: String },
}

impl From<AwsError> for SandboxError {
    fn from(e: AwsError) -> Self {
        SandboxError::Aws {
            code: e.code,
            message: e.message,
        }
    }
}

/// How to start a sandbox.
#[derive(Debug, Clone)]
pub struct SandboxOptions {
    /// Front-door port; 0 picks a free one.
    pub port: u16,
    /// Use this running moto instead of starting one.
    pub moto_url: Option<String>,
    pub region: String,
    /// The moto server program (looked up on PATH).
    pub moto_command: String,
}

impl Default for SandboxOptions {
    fn default() -> Self {
        SandboxOptions {
            port: 0,
            moto_url: None,
            region: "us-east-1".to_string(),
            moto_command: "moto_server".to_string(),
        }
    }
}

/// An AWS-style error, rendered per protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsError {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
}

impl AwsError {
    pub fn new(status: u16, code: &str, message: impl Into<String>) -> Self {
        AwsError {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
            code: code.to_string(),
            message: message.into(),
        }
    }

    pub fn internal(message: impl Into<String>) -> Self {
        AwsError::new(500, "InternalFailure", message)
    }

    /// The query-protocol (IAM, STS) XML error.
    pub fn to_xml_response(&self, service: &str) -> Response {
        let ns = if service == "sts" {
            "https://sts.amazonaws.com/doc/2011-06-15/"
        } else {
            "https://iam.amazonaws.com/doc/2010-05-08/"
        };
        let kind = if self.status.is_server_error() {
            "Receiver"
        } else {
            "Sender"
        };
        let body = format!(
            "<ErrorResponse xmlns=\"{ns}\"><Error><Type>{kind}</Type><Code>{}</Code><Message>{}</Message></Error><RequestId>{}</RequestId></ErrorResponse>",
            xml::escape(&self.code),
            xml::escape(&self.message),
            request_id()
        );
        (self.status, [("content-type", "text/xml")], body).into_response()
    }

    /// The JSON 1.0 protocol (DynamoDB) error: `__type` in the body.
    pub fn to_json10_response(&self, namespace: &str) -> Response {
        let body = serde_json::json!({
            "__type": format!("{namespace}#{}", self.code),
            "message": self.message,
        })
        .to_string();
        let mut resp = (self.status, body).into_response();
        resp.headers_mut().insert(
            "content-type",
            HeaderValue::from_static("application/x-amz-json-1.0"),
        );
        if let Ok(v) = HeaderValue::from_str(&request_id()) {
            resp.headers_mut().insert("x-amzn-requestid", v);
        }
        resp
    }

    /// The REST-JSON (EKS) error.
    pub fn to_json_response(&self) -> Response {
        let code = match self.code.as_str() {
            "InvalidClientTokenId" => "UnrecognizedClientException",
            "SignatureDoesNotMatch" => "InvalidSignatureException",
            other => other,
        };
        let body = serde_json::json!({ "message": self.message }).to_string();
        let mut resp = (self.status, body).into_response();
        let h = resp.headers_mut();
        h.insert("content-type", HeaderValue::from_static("application/json"));
        if let Ok(v) = HeaderValue::from_str(code) {
            h.insert("x-amzn-errortype", v);
        }
        if let Ok(v) = HeaderValue::from_str(&request_id()) {
            h.insert("x-amzn-requestid", v);
        }
        resp
    }
}

/// A random request id shaped like AWS's.
pub fn request_id() -> String {
    let mut rng = rand::rng();
    let h: String = (0..32)
        .map(|_| char::from_digit(rng.random_range(0..16), 16).unwrap_or('0'))
        .collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// `prefix` + 17 characters of `[A-Z0-9]` (IAM unique-id shape).
pub fn unique_id(prefix: &str) -> String {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut rng = rand::rng();
    let tail: String = (0..17)
        .map(|_| char::from(CHARS[rng.random_range(0..CHARS.len())]))
        .collect();
    format!("{prefix}{tail}")
}

pub fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

pub fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Locks the shared state; a poisoned lock is recovered (the state holds
/// plain data, every critical section leaves it consistent).
pub fn lock(shared: &Shared) -> MutexGuard<'_, SharedState> {
    shared.lock().unwrap_or_else(|p| p.into_inner())
}

/// Extra control-plane data the shared `Cluster` record does not carry.
#[derive(Debug, Clone, Default)]
pub(crate) struct ClusterExtra {
    pub role_arn: String,
    pub bootstrap_admin: bool,
}

/// Everything a request handler needs.
#[derive(Debug)]
pub struct FrontDoor {
    pub(crate) shared: Shared,
    pub(crate) moto: moto::Moto,
    pub(crate) region: String,
    /// `127.0.0.1:PORT` of the front door.
    pub(crate) host: String,
    /// Keyed by [`crate::state::cluster_key`], as `SharedState::clusters`.
    pub(crate) servers: Mutex<BTreeMap<String, ClusterServer>>,
    pub(crate) extras: Mutex<BTreeMap<String, ClusterExtra>>,
    /// moto's user id → the `AIDA…` id the sandbox shows instead.
    pub(crate) moto_ids: Mutex<BTreeMap<String, String>>,
    /// account -> its `sandbox-operator`'s credential (the hub's from the start).
    pub(crate) operators: Mutex<BTreeMap<String, Credential>>,
}

/// A member account's administrator, as `POST /_sandbox/accounts` answers it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountCredentials {
    pub account_id: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    /// `arn:aws:iam::<account>:user/sandbox-operator`.
    pub user_arn: String,
}

fn lock_plain<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl FrontDoor {
    pub(crate) fn count(&self, service: &str, op: &str) {
        *lock(&self.shared)
            .calls
            .entry((service.to_string(), op.to_string()))
            .or_insert(0) += 1;
    }

    pub(crate) fn servers(&self) -> MutexGuard<'_, BTreeMap<String, ClusterServer>> {
        lock_plain(&self.servers)
    }

    pub(crate) fn extras(&self) -> MutexGuard<'_, BTreeMap<String, ClusterExtra>> {
        lock_plain(&self.extras)
    }

    pub(crate) fn moto_ids(&self) -> MutexGuard<'_, BTreeMap<String, String>> {
        lock_plain(&self.moto_ids)
    }

    /// The hub's operator.
    pub(crate) fn operator(&self) -> Option<Credential> {
        self.operator_of(ACCOUNT_ID)
    }

    /// The operator of `account`, if the account exists.
    pub(crate) fn operator_of(&self, account: &str) -> Option<Credential> {
        lock_plain(&self.operators).get(account).cloned()
    }

    /// Creates member account `account` (12 digits) with its administrator
    /// `sandbox-operator` (an access key, an `Allow * on *` inline policy);
    /// idempotent: an existing account's operator is returned as it is.
    pub(crate) async fn create_account(
        &self,
        account: &str,
    ) -> Result<AccountCredentials, SandboxError> {
        if !valid_account_id(account) {
            return Err(SandboxError::Aws {
                code: "ValidationError".into(),
                message: format!("account ID {account:?} is not 12 digits"),
            });
        }
        let cred = match self.operator_of(account) {
            Some(c) => c,
            None => {
                let c = iam::create_operator(self, account).await?;
                lock_plain(&self.operators).insert(account.to_string(), c.clone());
                if account != ACCOUNT_ID {
                    lock(&self.shared)
                        .member_accounts
                        .insert(account.to_string());
                }
                c
            }
        };
        let user_arn = match &cred.principal {
            Principal::User { arn, .. } => arn.clone(),
            p => caller_arn(p),
        };
        Ok(AccountCredentials {
            account_id: account.to_string(),
            access_key_id: cred.access_key_id,
            secret_access_key: cred.secret_access_key,
            user_arn,
        })
    }

    /// Hosts an EKS token's presigned URL may name.
    pub(crate) fn sts_hosts(&self) -> Vec<String> {
        vec![
            "sts.amazonaws.com".to_string(),
            format!("sts.{}.amazonaws.com", self.region),
            self.host.clone(),
        ]
    }
}

/// A running sandbox: moto, the front door and the cluster API servers.
#[derive(Debug)]
pub struct Sandbox {
    fd: Arc<FrontDoor>,
    addr: SocketAddr,
    moto_child: Option<Child>,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<()>>,
}

impl Sandbox {
    /// Starts moto (unless `opts.moto_url`), the front door, and the operator identity.
    pub async fn start(opts: SandboxOptions) -> Result<Sandbox, SandboxError> {
        let mut moto = match &opts.moto_url {
            Some(url) => moto::Moto::connect(url).await?,
            None => moto::Moto::spawn(&opts.moto_command).await?,
        };
        let moto_child = moto.take_child();
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", opts.port)).await?;
        let addr = listener.local_addr()?;
        let fd = Arc::new(FrontDoor {
            shared: Shared::default(),
            moto,
            region: opts.region.clone(),
            host: addr.to_string(),
            servers: Mutex::new(BTreeMap::new()),
            extras: Mutex::new(BTreeMap::new()),
            moto_ids: Mutex::new(BTreeMap::new()),
            operators: Mutex::new(BTreeMap::new()),
        });
        fd.create_account(ACCOUNT_ID).await?;

        let (tx, rx) = oneshot::channel::<()>();
        let server = tokio::spawn(serve(listener, fd.clone(), rx));
        tracing::info!(endpoint = %format!("http://{addr}"), "sandbox front door listening");
        Ok(Sandbox {
            fd,
            addr,
            moto_child,
            stop: Some(tx),
            server: Some(server),
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn aws_endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn region(&self) -> String {
        self.fd.region.clone()
    }

    /// (access key id, secret access key) of `sandbox-operator`.
    pub fn operator_credentials(&self) -> (String, String) {
        self.fd
            .operator()
            .map(|c| (c.access_key_id, c.secret_access_key))
            .unwrap_or_default()
    }

    /// ARN of the operator user.
    pub fn operator_arn(&self) -> String {
        format!("arn:aws:iam::{ACCOUNT_ID}:user/{OPERATOR_USER}")
    }

    pub fn shared(&self) -> Shared {
        self.fd.shared.clone()
    }

    /// URL of the moto server behind the front door.
    pub fn moto_url(&self) -> String {
        self.fd.moto.url().to_string()
    }

    /// Process id of moto when this sandbox started it.
    pub fn moto_pid(&self) -> Option<u32> {
        self.moto_child.as_ref().and_then(Child::id)
    }

    /// The `export` lines of `.sandbox/env`.
    pub fn env_lines(&self) -> String {
        let (ak, sk) = self.operator_credentials();
        let ep = self.aws_endpoint();
        let region = self.region();
        format!(
            "export AWS_ENDPOINT_URL_IAM={ep}\n\
             export AWS_ENDPOINT_URL_STS={ep}\n\
             export AWS_ENDPOINT_URL_EKS={ep}\n\
             export AWS_ENDPOINT_URL_DYNAMODB={ep}\n\
             export AWS_ENDPOINT_URL_EVENTBRIDGE={ep}\n\
             export AWS_REGION={region}\n\
             export AWS_DEFAULT_REGION={region}\n\
             export AWS_ACCESS_KEY_ID={ak}\n\
             export AWS_SECRET_ACCESS_KEY={sk}\n\
             unset AWS_SESSION_TOKEN\n\
             unset AWS_PROFILE\n"
        )
    }

    /// Creates the README's example world (idempotent). Its [`SeedReport::lock_table`]
    /// goes in `.sandbox/env` as `TRUST_LOCK_TABLE` ([`with_env_var`]).
    pub async fn seed(&self) -> Result<SeedReport, SandboxError> {
        seed::seed(&self.fd).await
    }

    /// Creates member account `account_id` (12 digits) and its administrator user
    /// `sandbox-operator`; returns that user's credentials. Idempotent (a second
    /// call returns the same working key). `POST /_sandbox/accounts` in-process.
    pub async fn create_account(
        &self,
        account_id: &str,
    ) -> Result<AccountCredentials, SandboxError> {
        self.fd.create_account(account_id).await
    }

    /// The organization every sandbox account is in (`aws:PrincipalOrgID`).
    pub fn organization_id(&self) -> &'static str {
        ORGANIZATION_ID
    }

    /// The hub account (moto's default).
    pub fn hub_account_id(&self) -> &'static str {
        ACCOUNT_ID
    }

    /// Builds a member account for the multi-account tests and demo (see
    /// [`seed::seed_member`]); `POST /_sandbox/seed-member` in-process.
    pub async fn seed_member(&self, spec: &MemberSeed) -> Result<MemberSeedReport, SandboxError> {
        seed::seed_member(&self.fd, spec).await
    }

    /// Creates the trust-policy lease table [`seed::LOCK_TABLE`] alone (idempotent; the
    /// seed creates it too): for a world built without the seed. Returns its name.
    pub async fn create_lock_table(&self) -> Result<String, SandboxError> {
        seed::ensure_lock_table(&self.fd).await
    }

    /// What `POST /_sandbox/faults` does, in-process.
    pub fn apply_faults(&self, f: &control::FaultRequest) -> Result<(), String> {
        control::apply_faults(&self.fd, f)
    }

    /// Stops the front door, every cluster API server, and moto.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.server.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), h).await;
        }
        let servers = std::mem::take(&mut *self.fd.servers());
        for (_, mut s) in servers {
            s.shutdown();
        }
        if let Some(mut c) = self.moto_child.take() {
            let _ = c.kill().await;
        }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        for (_, mut s) in std::mem::take(&mut *self.fd.servers()) {
            s.shutdown();
        }
        if let Some(c) = self.moto_child.as_mut() {
            let _ = c.start_kill();
        }
    }
}

/// The front door's accept loop: HTTP/1.1, one task per connection, every
/// connection closed at `stop`. A connection whose request drew a `reset` fault is
/// closed with RST.
async fn serve(
    listener: tokio::net::TcpListener,
    fd: Arc<FrontDoor>,
    mut stop: oneshot::Receiver<()>,
) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => {
                let Ok((tcp, _)) = accepted else { continue };
                conns.spawn(serve_connection(fd.clone(), tcp));
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    conns.abort_all();
}

async fn serve_connection(fd: Arc<FrontDoor>, tcp: tokio::net::TcpStream) {
    let Ok((tcp, keep)) = conn::keep_handle(tcp) else {
        return;
    };
    let reset = ConnReset::default();
    let on_reset = reset.clone();
    let svc = hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
        let fd = fd.clone();
        let reset = reset.clone();
        async move {
            let mut req = req.map(axum::body::Body::new);
            req.extensions_mut().insert(reset);
            Ok::<_, Infallible>(handle(State(fd), req).await)
        }
    });
    let served = hyper::server::conn::http1::Builder::new()
        .serve_connection(hyper_util::rt::TokioIo::new(tcp), svc);
    tokio::select! {
        _ = served => {}
        () = on_reset.requested() => conn::reset_now(keep),
    }
}

/// The operation a call names, for counters and fault rules.
fn operation_of(service: &str, parts: &http::request::Parts, body: &[u8]) -> String {
    match service {
        "iam" | "sts" => iam::action_of(parts, body),
        "eks" => eks::operation(&parts.method, parts.uri.path())
            .unwrap_or_default()
            .to_string(),
        "dynamodb" | "events" => dynamodb::operation(parts),
        _ => String::new(),
    }
}

/// The answer to a call that drew a throttle or 500 fault, in the service's protocol.
fn fault_error(service: &str, kind: FaultKind, code: Option<&str>) -> Response {
    let (status, default_code, message) = match (service, kind) {
        ("eks", FaultKind::Throttle) => (429, "ThrottlingException", "Rate exceeded"),
        ("dynamodb", FaultKind::Throttle) => (
            400,
            "ThrottlingException",
            "Rate of requests exceeds the allowed throughput.",
        ),
        (_, FaultKind::Throttle) => (400, "Throttling", "Rate exceeded"),
        ("eks", _) => (500, "ServerException", "injected fault: internal error"),
        ("dynamodb", _) => (
            500,
            "InternalServerError",
            "injected fault: internal server error",
        ),
        ("iam", _) => (500, "ServiceFailure", "injected fault: service failure"),
        _ => (500, "InternalFailure", "injected fault: internal failure"),
    };
    let e = AwsError::new(status, code.unwrap_or(default_code), message);
    match service {
        "eks" => e.to_json_response(),
        "dynamodb" => e.to_json10_response("com.amazonaws.dynamodb.v20120810"),
        _ => e.to_xml_response(service),
    }
}

/// `env` (the `export` lines of `.sandbox/env`) with `export NAME=value` set: an
/// earlier value of `NAME` is replaced, so a second seed leaves one line.
pub fn with_env_var(env: &str, name: &str, value: &str) -> String {
    let prefix = format!("export {name}=");
    let mut out: String = env
        .lines()
        .filter(|l| !l.starts_with(&prefix))
        .map(|l| format!("{l}\n"))
        .collect();
    out.push_str(&format!("{prefix}{value}\n"));
    out
}

/// The credential scope of a signed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    pub access_key_id: String,
    pub region: String,
    pub service: String,
    pub presigned: bool,
}

fn parse_credential(cred: &str) -> Option<(String, String, String)> {
    let mut it = cred.split('/');
    let ak = it.next()?.to_string();
    let _date = it.next()?;
    let region = it.next()?.to_string();
    let service = it.next()?.to_string();
    Some((ak, region, service))
}

/// Finds the SigV4 scope in the `Authorization` header or the query.
pub fn scope_of(headers: &HeaderMap, query: Option<&str>) -> Option<Scope> {
    if let Some(auth) = headers.get("authorization").and_then(|v| v.to_str().ok()) {
        let i = auth.find("Credential=")?;
        let rest = &auth[i + "Credential=".len()..];
        let cred = rest.split([',', ' ']).next()?;
        let (access_key_id, region, service) = parse_credential(cred)?;
        return Some(Scope {
            access_key_id,
            region,
            service,
            presigned: false,
        });
    }
    let query = query?;
    let cred = url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "X-Amz-Credential")
        .map(|(_, v)| v.into_owned())?;
    let (access_key_id, region, service) = parse_credential(&cred)?;
    Some(Scope {
        access_key_id,
        region,
        service,
        presigned: true,
    })
}

fn sig_error(e: SigV4Error) -> AwsError {
    match e {
        SigV4Error::SignatureMismatch => AwsError::new(
            403,
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided. \
             Check your AWS Secret Access Key and signing method. Consult the service documentation for details.",
        ),
        SigV4Error::ClockSkew(d) => AwsError::new(
            403,
            "SignatureDoesNotMatch",
            format!("Signature expired: {d} is now earlier or later than the allowed window."),
        ),
        SigV4Error::UnknownAccessKey(_) => invalid_token(),
        other => AwsError::new(403, "IncompleteSignature", other.to_string()),
    }
}

fn invalid_token() -> AwsError {
    AwsError::new(
        403,
        "InvalidClientTokenId",
        "The security token included in the request is invalid.",
    )
}

/// Verifies the request's signature; returns the caller's credential.
pub(crate) fn authenticate(
    fd: &FrontDoor,
    parts: &http::request::Parts,
    body: &[u8],
    scope: &Scope,
) -> Result<Credential, AwsError> {
    let cred = lock(&fd.shared)
        .credentials
        .get(&scope.access_key_id)
        .cloned()
        .ok_or_else(invalid_token)?;
    let now = now_secs();
    let pq = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_string();
    let token = if scope.presigned {
        let host = parts
            .headers
            .get("host")
            .and_then(|h| h.to_str().ok())
            .unwrap_or(&fd.host);
        let url = url::Url::parse(&format!("http://{host}{pq}"))
            .map_err(|_| AwsError::new(400, "MalformedQueryString", "bad request target"))?;
        let signed: Vec<String> = url
            .query_pairs()
            .find(|(k, _)| k == "X-Amz-SignedHeaders")
            .map(|(_, v)| v.split(';').map(str::to_string).collect())
            .unwrap_or_default();
        let extra: Vec<(String, String)> = signed
            .iter()
            .filter(|h| h.as_str() != "host")
            .filter_map(|h| {
                let v = parts.headers.get(h.as_str())?.to_str().ok()?;
                Some((h.clone(), v.to_string()))
            })
            .collect();
        let extra_refs: Vec<(&str, &str)> = extra
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        let info = sigv4::verify_presigned(&url, &extra_refs, &cred.secret_access_key, now)
            .map_err(sig_error)?;
        if info.timestamp + info.expires_secs < now {
            return Err(AwsError::new(403, "AccessDenied", "Request has expired"));
        }
        info.security_token
    } else {
        let lookup = |ak: &str| (ak == cred.access_key_id).then(|| cred.secret_access_key.clone());
        let info = sigv4::verify_authorization_header(
            parts.method.as_str(),
            &pq,
            &parts.headers,
            body,
            lookup,
            now,
        )
        .map_err(sig_error)?;
        info.security_token
    };
    if let Some(expected) = &cred.session_token
        && token.as_deref() != Some(expected.as_str())
    {
        return Err(invalid_token());
    }
    if cred.expires_at.is_some_and(|e| e < now) {
        return Err(AwsError::new(
            403,
            "ExpiredToken",
            "The security token included in the request is expired",
        ));
    }
    Ok(cred)
}

async fn handle(State(fd): State<Arc<FrontDoor>>, req: axum::extract::Request) -> Response {
    let (parts, body) = req.into_parts();
    let body: Bytes = match axum::body::to_bytes(body, 16 * 1024 * 1024).await {
        Ok(b) => b,
        Err(e) => {
            return AwsError::new(400, "InvalidRequest", e.to_string()).to_xml_response("iam");
        }
    };
    if parts.uri.path().starts_with("/_sandbox") {
        return control::handle(&fd, &parts, body).await;
    }
    let latency = Duration::from_millis(lock(&fd.shared).global_faults.latency_ms);
    crate::latency::answered_after(latency, answer(&fd, parts, body)).await
}

/// A call's answer (the control endpoints aside).
async fn answer(fd: &FrontDoor, parts: http::request::Parts, body: Bytes) -> Response {
    let Some(scope) = scope_of(&parts.headers, parts.uri.query()) else {
        return AwsError::new(
            403,
            "MissingAuthenticationToken",
            "Missing Authentication Token",
        )
        .to_xml_response("iam");
    };
    let json = matches!(scope.service.as_str(), "eks" | "dynamodb" | "events");
    let render = |e: AwsError| {
        if json {
            e.to_json_response()
        } else {
            e.to_xml_response(&scope.service)
        }
    };
    let cred = match authenticate(fd, &parts, &body, &scope) {
        Ok(c) => c,
        Err(e) => {
            tracing::info!(service = %scope.service, code = %e.code, "request refused");
            return render(e);
        }
    };
    let fault = {
        let op = operation_of(&scope.service, &parts, &body);
        let f = lock(&fd.shared)
            .global_faults
            .take(&scope.service, None, &op);
        if f.is_some() {
            fd.count(&scope.service, &op);
        }
        f
    };
    if let Some(f) = fault {
        tracing::info!(service = %scope.service, kind = %format!("{:?}", f.kind), "injected fault");
        match f.kind {
            FaultKind::Throttle | FaultKind::Error500 => {
                return fault_error(&scope.service, f.kind, f.code.as_deref());
            }
            FaultKind::Reset => {
                if let Some(r) = parts.extensions.get::<ConnReset>() {
                    r.reset();
                }
                return std::future::pending().await;
            }
            FaultKind::Hang => return std::future::pending().await,
        }
    }
    let result = match scope.service.as_str() {
        "iam" | "sts" => iam::handle(fd, &scope.service, &cred, &parts, body).await,
        "eks" => eks::handle(fd, &scope.region, &cred, &parts, body).await,
        "dynamodb" => dynamodb::handle(fd, cred.principal.account(), &parts, body).await,
        "events" => events::handle(fd, &parts, &body),
        other => Err(AwsError::new(
            400,
            "UnknownService",
            format!("the sandbox does not emulate {other}"),
        )),
    };
    result.unwrap_or_else(render)
}

/// The canonical (path-less) ARN EKS records for a principal (in its own account).
pub fn canonical_arn(p: &Principal) -> String {
    match p {
        Principal::User { arn, .. } => arn.clone(),
        Principal::AssumedRole { role_arn, .. } => {
            let name = role_arn.rsplit('/').next().unwrap_or_default();
            format!("arn:aws:iam::{}:role/{name}", p.account())
        }
    }
}

/// The ARN the caller is known by in error messages and GetCallerIdentity.
pub fn caller_arn(p: &Principal) -> String {
    match p {
        Principal::User { arn, .. } => arn.clone(),
        Principal::AssumedRole {
            role_arn,
            session_name,
            ..
        } => {
            let name = role_arn.rsplit('/').next().unwrap_or_default();
            format!(
                "arn:aws:sts::{}:assumed-role/{name}/{session_name}",
                p.account()
            )
        }
    }
}

// Compile-time check that the front door's handler future is `Send`
// (axum's error for a non-`Send` handler is opaque).
#[allow(dead_code)]
fn _assert_send(fd: Arc<FrontDoor>, req: axum::extract::Request) {
    fn is_send<T: Send>(_: T) {}
    is_send(handle(State(fd), req));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_from_header_and_query() {
        let mut h = HeaderMap::new();
        h.insert(
            "authorization",
            HeaderValue::from_static(
                "AWS4-HMAC-SHA256 Credential=AKIAX/20260101/us-west-2/eks/aws4_request, SignedHeaders=host, Signature=ab",
            ),
        );
        let s = scope_of(&h, None);
        assert_eq!(
            s,
            Some(Scope {
                access_key_id: "AKIAX".into(),
                region: "us-west-2".into(),
                service: "eks".into(),
                presigned: false
            })
        );
        let q = "Action=GetCallerIdentity&X-Amz-Credential=ASIAY%2F20260101%2Fus-east-1%2Fsts%2Faws4_request";
        let s = scope_of(&HeaderMap::new(), Some(q)).map(|s| (s.service, s.presigned));
        assert_eq!(s, Some(("sts".to_string(), true)));
        assert_eq!(scope_of(&HeaderMap::new(), Some("a=b")), None);
    }

    #[test]
    fn env_var_is_set_once() {
        let env = "export AWS_REGION=us-east-1\nunset AWS_PROFILE\n";
        let once = with_env_var(env, "TRUST_LOCK_TABLE", "t1");
        assert_eq!(
            once,
            "export AWS_REGION=us-east-1\nunset AWS_PROFILE\nexport TRUST_LOCK_TABLE=t1\n"
        );
        let twice = with_env_var(&once, "TRUST_LOCK_TABLE", "t2");
        assert_eq!(twice.matches("TRUST_LOCK_TABLE").count(), 1);
        assert!(twice.ends_with("export TRUST_LOCK_TABLE=t2\n"));
        assert!(twice.starts_with("export AWS_REGION=us-east-1\n"));
    }

    #[test]
    fn unique_ids_are_aida_shaped() {
        let id = unique_id("AIDA");
        assert_eq!(id.len(), 21);
        assert!(
            id[4..]
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
        );
        assert_ne!(id, unique_id("AIDA"));
    }
}

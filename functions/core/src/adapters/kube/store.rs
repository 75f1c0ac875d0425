//! Kubernetes adapter: the `aws-auth` ConfigMap of one cluster.
//!
//! [`AwsAuthStore`] reads the ConfigMap with its `resourceVersion` and writes it back
//! at that version (a concurrent writer makes the write fail with
//! [`K8sError::Conflict`]). [`KubeAwsAuth`] keeps the whole object it read and writes it
//! back with only `data` replaced: labels, annotations, `binaryData` and every other
//! field survive. [`KubeConnector`] builds a store for a cluster from its endpoint, CA
//! and an EKS token.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, PostParams};

use crate::adapters::kube::token::TokenError;
use crate::ports::{AwsAuthObject, AwsAuthStore};

pub const AWS_AUTH_NAME: &str = "aws-auth";
pub const KUBE_SYSTEM: &str = "kube-system";

/// Kubernetes errors. Never carries the bearer token.
#[derive(Debug, thiserror::Error)]
pub enum K8sError {
    /// 409: someone else wrote first (or the object already exists).
    #[error("conflict writing {AWS_AUTH_NAME}: {0}")]
    Conflict(String),
    /// 5xx or 429: the API server (or what is in front of it) may answer the same
    /// request the next time; retried like a conflict.
    #[error("Kubernetes API transient error {code} {reason}: {message}")]
    Transient {
        code: u16,
        reason: String,
        message: String,
    },
    #[error("Kubernetes API error {code} {reason}: {message}")]
    Api {
        code: u16,
        reason: String,
        message: String,
    },
    /// The call did not end within [`K8S_OPERATION_TIMEOUT`], its own retries (the
    /// kube client retries 429/503/504 by itself) included.
    #[error("Kubernetes {operation} of {AWS_AUTH_NAME} timed out after {} s", K8S_OPERATION_TIMEOUT.as_secs())]
    Timeout { operation: &'static str },
    /// No answer: the connection failed (refused, reset, closed early) or a request
    /// timed out. Worth another attempt: a write carries the `resourceVersion` it
    /// read, so one that did land turns the next into a 409.
    #[error("Kubernetes client error: {message}")]
    Network { timed_out: bool, message: String },
    #[error("Kubernetes client error: {0}")]
    Client(String),
    #[error("invalid cluster connection data: {0}")]
    Config(String),
    #[error(transparent)]
    Token(#[from] TokenError),
}

impl K8sError {
    /// The error for an API server status answer: 409 a conflict, 5xx and 429
    /// transient, any other an API error.
    pub fn from_status(code: u16, reason: &str, message: &str) -> Self {
        match code {
            409 => K8sError::Conflict(message.to_owned()),
            429 | 500..=599 => K8sError::Transient {
                code,
                reason: reason.to_owned(),
                message: message.to_owned(),
            },
            _ => K8sError::Api {
                code,
                reason: reason.to_owned(),
                message: message.to_owned(),
            },
        }
    }
}

impl K8sError {
    /// A 404 answer.
    pub fn is_not_found(&self) -> bool {
        matches!(self, K8sError::Api { code: 404, .. })
    }

    /// Whether the read-modify-write is worth another attempt (a conflict, a
    /// transient error, a failed connection or a timeout).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            K8sError::Conflict(_)
                | K8sError::Transient { .. }
                | K8sError::Network { .. }
                | K8sError::Timeout { .. }
        )
    }
}

impl From<kube::Error> for K8sError {
    fn from(e: kube::Error) -> Self {
        match e {
            kube::Error::Api(status) => {
                K8sError::from_status(status.code, &status.reason, &status.message)
            }
            other => {
                let (network, message) = client_error_message(&other);
                match network {
                    Some(timed_out) => K8sError::Network { timed_out, message },
                    None => K8sError::Client(message),
                }
            }
        }
    }
}

/// Connect (TCP + TLS handshake) timeout of the Kubernetes API: an EKS endpoint
/// answers a handshake in milliseconds; 5 s rides out a lost packet.
pub const K8S_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Read and write timeouts: the aws-auth calls (one object) answer in well under a
/// second; a server that stops answering fails the cluster in 10 s.
pub const K8S_IO_TIMEOUT: Duration = Duration::from_secs(10);
/// The whole of one aws-auth call, the kube client's own retries of 429/503/504
/// included (they back off for minutes otherwise): a throttling server fails the
/// cluster in 30 s, well within a run's minute.
pub const K8S_OPERATION_TIMEOUT: Duration = Duration::from_secs(30);

/// `call` within [`K8S_OPERATION_TIMEOUT`].
pub(super) async fn within<T>(
    operation: &'static str,
    call: impl Future<Output = Result<T, kube::Error>>,
) -> Result<T, K8sError> {
    match tokio::time::timeout(K8S_OPERATION_TIMEOUT, call).await {
        Ok(r) => r.map_err(K8sError::from),
        Err(_) => Err(K8sError::Timeout { operation }),
    }
}

/// A kube client error in words: a timeout as a timeout (with the bounds), a refused or
/// reset connection as such, else the error and its causes. Never holds the token
/// (kube keeps it out of its errors). With it, `Some(timed_out)` when the request got
/// no answer (a network failure), `None` otherwise.
fn client_error_message(e: &kube::Error) -> (Option<bool>, String) {
    let mut chain = vec![e.to_string()];
    let mut timed_out = false;
    let mut closed_early = false;
    let mut io_kind = None;
    let mut cur: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            timed_out |= io.kind() == std::io::ErrorKind::TimedOut;
            io_kind.get_or_insert(io.kind());
        }
        let text = err.to_string();
        timed_out |= text.contains("timed out") || text.contains("deadline has elapsed");
        closed_early |= text.contains("connection closed before message completed");
        if chain.last() != Some(&text) {
            chain.push(text);
        }
        cur = err.source();
    }
    let chain = chain.join(": ");
    if timed_out {
        let message = format!(
            "timed out (no connection within {} s or no answer within {} s): {chain}",
            K8S_CONNECT_TIMEOUT.as_secs(),
            K8S_IO_TIMEOUT.as_secs()
        );
        (Some(true), message)
    } else if let Some(
        kind @ (std::io::ErrorKind::ConnectionRefused
        | std::io::ErrorKind::ConnectionReset
        | std::io::ErrorKind::ConnectionAborted
        | std::io::ErrorKind::BrokenPipe
        | std::io::ErrorKind::UnexpectedEof),
    ) = io_kind
    {
        (Some(false), format!("connection failed ({kind}): {chain}"))
    } else if closed_early {
        (
            Some(false),
            format!("connection failed (closed early): {chain}"),
        )
    } else {
        (None, chain)
    }
}

/// [`AwsAuthStore`] over `kube::Api<ConfigMap>` in `kube-system`.
pub struct KubeAwsAuth {
    pub(super) client: kube::Client,
    api: Api<ConfigMap>,
    /// The object as last read, so that a write keeps every field but `data`.
    last: Mutex<Option<ConfigMap>>,
}

impl KubeAwsAuth {
    pub fn new(client: kube::Client) -> Self {
        KubeAwsAuth {
            api: Api::namespaced(client.clone(), KUBE_SYSTEM),
            client,
            last: Mutex::new(None),
        }
    }

    fn remember(&self, cm: Option<ConfigMap>) {
        if let Ok(mut last) = self.last.lock() {
            *last = cm;
        }
    }

    fn remembered(&self, resource_version: &str) -> Option<ConfigMap> {
        let last = self.last.lock().ok()?;
        last.as_ref()
            .filter(|cm| cm.metadata.resource_version.as_deref() == Some(resource_version))
            .cloned()
    }
}

impl AwsAuthStore for KubeAwsAuth {
    async fn read(&self) -> Result<Option<AwsAuthObject>, K8sError> {
        let cm = within("GET", self.api.get_opt(AWS_AUTH_NAME)).await?;
        let out = cm.as_ref().map(|cm| AwsAuthObject {
            data: cm.data.clone().unwrap_or_default(),
            resource_version: cm.metadata.resource_version.clone().unwrap_or_default(),
        });
        self.remember(cm);
        Ok(out)
    }

    async fn replace(
        &self,
        data: BTreeMap<String, String>,
        resource_version: &str,
    ) -> Result<(), K8sError> {
        let mut cm = match self.remembered(resource_version) {
            Some(cm) => cm,
            // Not the version we hold: fetch the object for its other fields; the
            // write still carries the caller's version, so a mismatch is a 409.
            None => within("GET", self.api.get_opt(AWS_AUTH_NAME))
                .await?
                .ok_or_else(|| K8sError::Conflict("aws-auth was deleted".into()))?,
        };
        cm.metadata.resource_version = Some(resource_version.to_owned());
        cm.metadata.managed_fields = None;
        cm.data = Some(data);
        let written = within(
            "PUT",
            self.api.replace(AWS_AUTH_NAME, &PostParams::default(), &cm),
        )
        .await?;
        self.remember(Some(written));
        Ok(())
    }

    async fn create(&self, data: BTreeMap<String, String>) -> Result<(), K8sError> {
        let cm = ConfigMap {
            metadata: ObjectMeta {
                name: Some(AWS_AUTH_NAME.to_owned()),
                namespace: Some(KUBE_SYSTEM.to_owned()),
                ..ObjectMeta::default()
            },
            data: Some(data),
            ..ConfigMap::default()
        };
        let written = within("POST", self.api.create(&PostParams::default(), &cm)).await?;
        self.remember(Some(written));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// A one-object API server in memory: GET / PUT / POST of kube-system/aws-auth.
    #[derive(Default)]
    struct FakeServer {
        object: Mutex<Option<serde_json::Value>>,
        version: Mutex<u64>,
        puts: Mutex<Vec<serde_json::Value>>,
    }

    fn status(code: u16, reason: &str) -> http::Response<kube::client::Body> {
        let body = serde_json::json!({"kind":"Status","apiVersion":"v1","status":"Failure","message":reason,"reason":reason,"code":code});
        http::Response::builder()
            .status(code)
            .header("content-type", "application/json")
            .body(kube::client::Body::from(body.to_string().into_bytes()))
            .expect("response")
    }

    fn ok(v: &serde_json::Value) -> http::Response<kube::client::Body> {
        http::Response::builder()
            .status(200)
            .header("content-type", "application/json")
            .body(kube::client::Body::from(v.to_string().into_bytes()))
            .expect("response")
    }

    async fn serve(
        srv: Arc<FakeServer>,
        req: http::Request<kube::client::Body>,
    ) -> Result<http::Response<kube::client::Body>, std::convert::Infallible> {
        assert!(
            req.uri()
                .path()
                .starts_with("/api/v1/namespaces/kube-system/configmaps")
        );
        let method = req.method().clone();
        let body = req.into_body().collect_bytes().await.expect("body");
        let mut obj = srv.object.lock().expect("lock");
        let mut version = srv.version.lock().expect("lock");
        let resp = match method.as_str() {
            "GET" => match obj.as_ref() {
                Some(o) => ok(o),
                None => status(404, "NotFound"),
            },
            "PUT" => {
                let mut new: serde_json::Value = serde_json::from_slice(&body).expect("json");
                srv.puts.lock().expect("lock").push(new.clone());
                let current = obj
                    .as_ref()
                    .map(|o| o["metadata"]["resourceVersion"].clone());
                if current.as_ref() != Some(&new["metadata"]["resourceVersion"]) {
                    status(409, "Conflict")
                } else {
                    *version += 1;
                    new["metadata"]["resourceVersion"] = version.to_string().into();
                    *obj = Some(new.clone());
                    ok(&new)
                }
            }
            "POST" => {
                if obj.is_some() {
                    status(409, "AlreadyExists")
                } else {
                    let mut new: serde_json::Value = serde_json::from_slice(&body).expect("json");
                    *version += 1;
                    new["metadata"]["resourceVersion"] = version.to_string().into();
                    *obj = Some(new.clone());
                    ok(&new)
                }
            }
            _ => status(405, "MethodNotAllowed"),
        };
        Ok(resp)
    }

    fn store(srv: &Arc<FakeServer>) -> KubeAwsAuth {
        let srv = srv.clone();
        let svc = tower::service_fn(move |req| serve(srv.clone(), req));
        KubeAwsAuth::new(kube::Client::new(svc, KUBE_SYSTEM))
    }

    fn seeded() -> Arc<FakeServer> {
        let srv = Arc::new(FakeServer::default());
        *srv.version.lock().expect("lock") = 7;
        *srv.object.lock().expect("lock") = Some(serde_json::json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "aws-auth", "namespace": "kube-system", "resourceVersion": "7",
                         "labels": {"app": "x"}, "annotations": {"note": "keep me"}},
            "data": {"mapRoles": "- rolearn: arn:aws:iam::111122223333:role/node\n", "other": "v"},
            "binaryData": {"blob": "AAEC"}
        }));
        srv
    }

    #[tokio::test]
    async fn read_then_replace_keeps_every_other_field() {
        let srv = seeded();
        let s = store(&srv);
        let got = s.read().await.expect("read").expect("exists");
        assert_eq!(got.resource_version, "7");
        assert_eq!(got.data["other"], "v");
        let mut data = got.data.clone();
        data.insert("mapUsers".into(), "[]\n".into());
        s.replace(data, &got.resource_version)
            .await
            .expect("replace");
        let obj = srv.object.lock().expect("lock").clone().expect("obj");
        assert_eq!(obj["metadata"]["labels"]["app"], "x");
        assert_eq!(obj["metadata"]["annotations"]["note"], "keep me");
        assert_eq!(obj["binaryData"]["blob"], "AAEC");
        assert_eq!(obj["data"]["mapUsers"], "[]\n");
        assert_eq!(obj["data"]["other"], "v");
        let puts = srv.puts.lock().expect("lock");
        assert_eq!(puts[0]["metadata"]["resourceVersion"], "7");
    }

    #[tokio::test]
    async fn stale_version_is_a_conflict() {
        let srv = seeded();
        let s = store(&srv);
        let got = s.read().await.expect("read").expect("exists");
        // Someone else writes in between.
        store(&srv)
            .replace(got.data.clone(), "7")
            .await
            .expect("other writer");
        let err = s
            .replace(got.data.clone(), &got.resource_version)
            .await
            .expect_err("conflict");
        assert!(matches!(err, K8sError::Conflict(_)), "{err:?}");
    }

    #[tokio::test]
    async fn absent_then_create_and_create_twice_conflicts() {
        let srv = Arc::new(FakeServer::default());
        let s = store(&srv);
        assert_eq!(s.read().await.expect("read"), None);
        let data = BTreeMap::from([("mapRoles".to_owned(), "[]\n".to_owned())]);
        s.create(data.clone()).await.expect("create");
        let got = s.read().await.expect("read").expect("exists");
        assert_eq!(got.data, data);
        let err = s.create(data).await.expect_err("exists");
        assert!(matches!(err, K8sError::Conflict(_)));
    }

    #[test]
    fn statuses_are_classified() {
        for code in [500u16, 502, 503, 504, 429] {
            let e = K8sError::from_status(code, "ServiceUnavailable", "try again");
            assert!(
                matches!(e, K8sError::Transient { code: c, .. } if c == code),
                "{e:?}"
            );
            assert!(e.is_retryable());
            assert!(e.to_string().contains(&code.to_string()), "{e}");
        }
        assert!(K8sError::from_status(409, "Conflict", "modified").is_retryable());
        for code in [400u16, 401, 403, 404, 422] {
            let e = K8sError::from_status(code, "Forbidden", "no");
            assert!(matches!(e, K8sError::Api { .. }), "{e:?}");
            assert!(!e.is_retryable());
        }
        assert!(!K8sError::Client("connection refused".into()).is_retryable());
    }
}

//! One TLS Kubernetes API server per EKS cluster.
//!
//! * [`start_cluster_server`] makes the cluster's CA and serving
//!   certificate, binds `127.0.0.1:0` and serves HTTP/1.1 over TLS.
//! * `auth` checks EKS tokens like aws-iam-authenticator and maps the
//!   identity through access entries and/or `aws-auth` (`awsauth`).
//! * `authz` decides: `system:masters`, access policies, stored RBAC;
//!   `roles` holds the default ClusterRoles and the access policies' rules.
//! * `resources` stores ConfigMaps, Namespaces, RBAC objects and a few
//!   workload kinds (pods, deployments, secrets, services, service accounts);
//!   `discovery` answers `/api`, `/apis`, `/version`.

pub mod auth;
mod authz;
mod awsauth;
mod discovery;
mod proto;
mod resources;
pub mod roles;
mod status;

pub use auth::{Identity, UserInfo};

/// Creates namespace `ns` on `cluster` if absent (as `kubectl create namespace`
/// would, without going through the API).
pub fn seed_namespace(cluster: &mut crate::state::Cluster, ns: &str) {
    resources::seed_namespace(cluster, ns);
}
pub use awsauth::{AwsAuth, Mapping, ParsedAwsAuth, parse_aws_auth};

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinSet;

use crate::conn::ConnReset;
use crate::state::{FaultKind, Shared, SharedState};

/// Largest request body accepted (Kubernetes' own limit is 3 MiB).
const MAX_BODY: usize = 3 * 1024 * 1024;

/// Why a cluster's API server could not start.
#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    #[error("certificate generation failed: {0}")]
    Cert(#[from] rcgen::Error),
    #[error("TLS configuration failed: {0}")]
    Tls(#[from] rustls::Error),
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("cluster {0} is not in the shared state")]
    UnknownCluster(String),
    #[error("shared state lock poisoned")]
    Poisoned,
}

/// A running per-cluster API server. Dropping it (or calling
/// [`ClusterServer::shutdown`]) stops the listener and every connection.
#[derive(Debug)]
pub struct ClusterServer {
    /// `https://127.0.0.1:PORT`.
    pub endpoint: String,
    /// PEM of the cluster CA that signed the serving certificate.
    pub ca_pem: String,
    shutdown: Option<oneshot::Sender<()>>,
}

impl ClusterServer {
    /// Stops accepting and closes open connections.
    pub fn shutdown(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

impl Drop for ClusterServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// What every request handler needs.
#[derive(Debug, Clone)]
pub(crate) struct Ctx {
    pub shared: Shared,
    pub cluster: String,
    pub sts_hosts: Arc<Vec<String>>,
    pub endpoint: String,
}

impl Ctx {
    pub(crate) fn lock(&self) -> Option<std::sync::MutexGuard<'_, SharedState>> {
        self.shared.lock().ok()
    }
}

struct Certs {
    ca_pem: String,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

fn make_certs(cluster: &str) -> Result<Certs, KubeError> {
    let ca_key = rcgen::KeyPair::generate()?;
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, format!("kubernetes ({cluster})"));
    ca_params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let issuer = rcgen::Issuer::new(ca_params, ca_key);

    let leaf_key = rcgen::KeyPair::generate()?;
    let mut leaf_params =
        rcgen::CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])?;
    leaf_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "kube-apiserver");
    leaf_params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let leaf_cert = leaf_params.signed_by(&leaf_key, &issuer)?;
    Ok(Certs {
        ca_pem: ca_cert.pem(),
        chain: vec![leaf_cert.der().clone()],
        key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
    })
}

/// Starts the API server of the cluster keyed `cluster_name` in
/// `shared.clusters` (its name in the hub, `<account>/<name>` in a member
/// account: [`crate::state::cluster_key`]); the record must already be there. Seeds the namespaces `default`, `kube-system`,
/// `kube-public` and `kube-node-lease`, and Kubernetes' default ClusterRoles
/// (`cluster-admin`, `admin`, `edit`, `view`, `system:basic-user`,
/// `system:discovery`) with their default ClusterRoleBindings. `sts_hosts` are the `host[:port]`s an EKS token's
/// presigned URL may name (https required for `*.amazonaws.com`).
pub async fn start_cluster_server(
    shared: Shared,
    cluster_name: &str,
    sts_hosts: Vec<String>,
) -> Result<ClusterServer, KubeError> {
    {
        let mut st = shared.lock().map_err(|_| KubeError::Poisoned)?;
        let cluster = st
            .clusters
            .get_mut(cluster_name)
            .ok_or_else(|| KubeError::UnknownCluster(cluster_name.to_string()))?;
        for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            resources::seed_namespace(cluster, ns);
        }
        resources::seed_rbac(cluster);
    }
    let certs = make_certs(cluster_name)?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs.chain, certs.key)?;
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));

    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let endpoint = format!("https://127.0.0.1:{port}");
    let ctx = Ctx {
        shared,
        cluster: cluster_name.to_string(),
        sts_hosts: Arc::new(sts_hosts),
        endpoint: endpoint.clone(),
    };
    let (tx, mut rx) = oneshot::channel::<()>();
    tokio::spawn(async move {
        let mut conns = JoinSet::new();
        loop {
            tokio::select! {
                _ = &mut rx => break,
                accepted = listener.accept() => {
                    let Ok((tcp, _)) = accepted else { continue };
                    let acceptor = acceptor.clone();
                    let ctx = ctx.clone();
                    conns.spawn(async move {
                        let Ok((tcp, keep)) = crate::conn::keep_handle(tcp) else { return };
                        let Ok(tls) = acceptor.accept(tcp).await else { return };
                        let reset = ConnReset::default();
                        let on_reset = reset.clone();
                        let svc = hyper::service::service_fn(move |req| {
                            let ctx = ctx.clone();
                            let reset = reset.clone();
                            async move { Ok::<_, Infallible>(handle(ctx, req, reset).await) }
                        });
                        let served = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(tls), svc);
                        tokio::select! {
                            _ = served => {}
                            () = on_reset.requested() => crate::conn::reset_now(keep),
                        }
                    });
                }
                Some(_) = conns.join_next(), if !conns.is_empty() => {}
            }
        }
        conns.abort_all();
    });
    Ok(ClusterServer {
        endpoint,
        ca_pem: certs.ca_pem,
        shutdown: Some(tx),
    })
}

async fn handle(ctx: Ctx, req: Request<Incoming>, reset: ConnReset) -> Response<Full<Bytes>> {
    let latency = ctx.lock().map(|s| s.global_faults.latency_ms).unwrap_or(0);
    crate::latency::answered_after(Duration::from_millis(latency), answer(ctx, req, reset)).await
}

async fn answer(ctx: Ctx, req: Request<Incoming>, reset: ConnReset) -> Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let op = resources::operation(&parts);
    let fault = ctx.lock().and_then(|mut st| {
        let f = st.global_faults.take("kube", Some(&ctx.cluster), &op)?;
        *st.calls
            .entry((format!("k8s:{}", ctx.cluster), op.clone()))
            .or_default() += 1;
        Some(f)
    });
    if let Some(f) = fault {
        tracing::info!(cluster = %ctx.cluster, operation = %op, kind = %format!("{:?}", f.kind), "injected fault");
        match f.kind {
            FaultKind::Throttle => {
                let mut resp = status::to_response(&status::Failure::new(
                    429,
                    "TooManyRequests",
                    "the server has received too many requests and has asked us to try again later (injected fault)".to_string(),
                ));
                resp.headers_mut()
                    .insert("retry-after", hyper::header::HeaderValue::from_static("1"));
                return resp;
            }
            FaultKind::Error500 => {
                return status::to_response(&status::Failure::internal(
                    "an error on the server (\"injected fault\") has prevented the request from succeeding".into(),
                ));
            }
            FaultKind::Reset => {
                reset.reset();
                return std::future::pending().await;
            }
            FaultKind::Hang => return std::future::pending().await,
        }
    }
    let body = match Limited::new(body, MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            return status::to_response(&status::Failure::new(
                413,
                "RequestEntityTooLarge",
                "the request body is too large or could not be read".to_string(),
            ));
        }
    };
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    resources::dispatch(&ctx, &parts, &body, now)
}

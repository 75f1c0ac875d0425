//! Kube clients for EKS clusters: endpoint + CA + an EKS token, reused for a while.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_types::SdkConfig;

use crate::adapters::aws::accounts::AccountSessions;
use crate::adapters::kube::store::{
    K8S_CONNECT_TIMEOUT, K8S_IO_TIMEOUT, K8sError, KUBE_SYSTEM, KubeAwsAuth,
};
use crate::adapters::kube::token::{EksToken, eks_token_from_sdk};
use crate::model::arn::AccountId;
use crate::model::cluster::ClusterEndpoint;
use crate::ports::KubeConnector;

/// DER certificates from PEM text (one or more `CERTIFICATE` blocks).
pub fn pem_to_der(pem_bytes: &[u8]) -> Result<Vec<Vec<u8>>, K8sError> {
    let blocks = pem::parse_many(pem_bytes)
        .map_err(|e| K8sError::Config(format!("cluster CA is not PEM: {e}")))?;
    let certs: Vec<Vec<u8>> = blocks
        .into_iter()
        .filter(|p| p.tag() == "CERTIFICATE")
        .map(|p| p.contents().to_vec())
        .collect();
    if certs.is_empty() {
        return Err(K8sError::Config(
            "cluster CA holds no CERTIFICATE block".into(),
        ));
    }
    Ok(certs)
}

/// A kube client for an EKS cluster: its endpoint, its CA (PEM), an EKS bearer token.
pub fn kube_client(
    endpoint: &str,
    ca_pem: &[u8],
    token: &EksToken,
) -> Result<kube::Client, K8sError> {
    let uri: http::Uri = endpoint
        .parse()
        .map_err(|e| K8sError::Config(format!("endpoint {endpoint:?}: {e}")))?;
    let mut config = kube::Config::new(uri);
    config.default_namespace = KUBE_SYSTEM.to_owned();
    config.root_cert = Some(pem_to_der(ca_pem)?);
    config.auth_info.token = Some(secrecy::SecretString::from(token.expose().to_owned()));
    config.connect_timeout = Some(K8S_CONNECT_TIMEOUT);
    config.read_timeout = Some(K8S_IO_TIMEOUT);
    config.write_timeout = Some(K8S_IO_TIMEOUT);
    kube::Client::try_from(config).map_err(|e| K8sError::Client(e.to_string()))
}

/// How long a client (its connection and the token in it) is reused. EKS accepts a
/// token for 15 minutes after it is signed (kubectl caches one for 14); renewing
/// after 5 leaves a wide margin. A warm Lambda thus handles its next events without a
/// new TLS handshake per cluster.
pub const CLIENT_REUSE: Duration = Duration::from_secs(5 * 60);

/// Which cluster a cached client talks to: account, region, name, endpoint and CA.
type ClientKey = (Option<AccountId>, String, String, String, Vec<u8>);

/// Connects with the function's own credentials (a member account's cluster: with the
/// member role's session): an EKS token per client, each client reused for
/// [`CLIENT_REUSE`].
#[derive(Clone)]
pub struct EksKubeConnector {
    sessions: Arc<AccountSessions>,
    reuse: Duration,
    clients: Arc<Mutex<BTreeMap<ClientKey, (kube::Client, Instant)>>>,
}

impl std::fmt::Debug for EksKubeConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EksKubeConnector")
            .field("reuse", &self.reuse)
            .field("cached_clients", &self.cached_clients())
            .finish_non_exhaustive()
    }
}

impl EksKubeConnector {
    /// The hub's own clusters only.
    pub fn new(sdk: SdkConfig) -> Self {
        Self::with_sessions(Arc::new(AccountSessions::hub_only(sdk)))
    }

    /// The hub's and the member accounts' clusters: a member cluster's token is signed
    /// with the member role's session.
    pub fn with_sessions(sessions: Arc<AccountSessions>) -> Self {
        EksKubeConnector {
            sessions,
            reuse: CLIENT_REUSE,
            clients: Arc::default(),
        }
    }

    /// Reuses each client for `reuse` instead of [`CLIENT_REUSE`] (zero: never).
    pub fn with_reuse(mut self, reuse: Duration) -> Self {
        self.reuse = reuse;
        self
    }

    /// Clients held for reuse.
    pub fn cached_clients(&self) -> usize {
        self.clients.lock().map(|c| c.len()).unwrap_or_default()
    }

    /// A kube client for the cluster (also used by `bootstrap`): the cached one while
    /// it is younger than the reuse window, else a new one with a fresh token.
    pub async fn client(&self, cluster: &ClusterEndpoint) -> Result<kube::Client, K8sError> {
        let key: ClientKey = (
            cluster.member.clone(),
            cluster.region.clone(),
            cluster.name.clone(),
            cluster.endpoint.clone(),
            cluster.ca_pem.clone(),
        );
        if let Ok(cache) = self.clients.lock()
            && let Some((client, made)) = cache.get(&key)
            && made.elapsed() < self.reuse
        {
            return Ok(client.clone());
        }
        let (sdk, _) = self
            .sessions
            .sdk_for(cluster.member.as_ref())
            .await
            .map_err(|e| K8sError::Client(e.to_string()))?;
        let token = eks_token_from_sdk(&sdk, &cluster.region, &cluster.name).await?;
        let client = kube_client(&cluster.endpoint, &cluster.ca_pem, &token)?;
        if let Ok(mut cache) = self.clients.lock() {
            cache.retain(|_, (_, made)| made.elapsed() < self.reuse);
            if !self.reuse.is_zero() {
                cache.insert(key, (client.clone(), Instant::now()));
            }
        }
        Ok(client)
    }
}

impl KubeConnector for EksKubeConnector {
    type Store = KubeAwsAuth;

    async fn connect(&self, cluster: &ClusterEndpoint) -> Result<KubeAwsAuth, K8sError> {
        Ok(KubeAwsAuth::new(self.client(cluster).await?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_is_converted_to_der() {
        let der = vec![0x30u8, 0x82, 0x01, 0x0a, 0xde, 0xad, 0xbe, 0xef];
        let text = pem::encode(&pem::Pem::new("CERTIFICATE", der.clone()));
        assert_eq!(pem_to_der(text.as_bytes()).expect("der"), vec![der]);
        assert!(pem_to_der(b"not pem").is_err());
        let key = pem::encode(&pem::Pem::new("PRIVATE KEY", vec![1, 2, 3]));
        assert!(pem_to_der(key.as_bytes()).is_err());
    }
}

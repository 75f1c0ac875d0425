//! EKS adapter: clusters in each region (with tags, endpoint, CA, authentication
//! mode) and access entries for clusters in `API` / `API_AND_CONFIG_MAP` mode.
//!
//! [`EksApi`] is what the engine needs; [`SdkEks`] implements it with one
//! `aws_sdk_eks::Client` per account and region, built from the hub's `SdkConfig` or
//! a member account's session ([`AccountSessions`]).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use aws_sdk_eks::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_eks::types::{AccessScope, AccessScopeType, AuthenticationMode};
use aws_types::SdkConfig;
use aws_types::region::Region;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::adapters::aws::accounts::{AccountError, AccountSessions};
use crate::model::arn::{AccountId, ClusterName};
use crate::model::cluster::{AuthMode, ClusterInfo, Place, UnknownAuthMode};
use crate::policy::accessentry::{AccessEntryView, PolicyAssociation, Timestamp};
use crate::ports::EksApi;

/// EKS errors with the AWS code and message.
#[derive(Debug, thiserror::Error)]
pub enum EksError {
    #[error("EKS {operation} failed: {code}: {message}")]
    Service {
        operation: &'static str,
        code: String,
        message: String,
    },
    #[error("EKS {operation} failed: {message}")]
    Transport {
        operation: &'static str,
        message: String,
    },
    #[error("EKS {operation} returned an unexpected response: {message}")]
    InvalidResponse {
        operation: &'static str,
        message: String,
    },
    /// The member account's role could not be assumed.
    #[error("{0}")]
    Account(#[from] AccountError),
}

impl EksError {
    pub fn code(&self) -> Option<&str> {
        match self {
            EksError::Service { code, .. } => Some(code),
            _ => None,
        }
    }

    pub fn is_not_found(&self) -> bool {
        self.code() == Some("ResourceNotFoundException")
    }

    fn from_sdk<E, R>(operation: &'static str, err: SdkError<E, R>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        match err.code() {
            Some(code) => EksError::Service {
                operation,
                code: code.to_owned(),
                message: err.message().unwrap_or_default().to_owned(),
            },
            None => EksError::Transport {
                operation,
                message: crate::adapters::aws::sdk::transport_message(&err),
            },
        }
    }
}

/// A cached client: the session generation it was built with.
type Cached = (aws_sdk_eks::Client, u64);

/// [`EksApi`] over the AWS SDK, one client per account and region.
#[derive(Debug)]
pub struct SdkEks {
    sessions: Arc<AccountSessions>,
    clients: Mutex<HashMap<(Option<AccountId>, String), Cached>>,
}

impl SdkEks {
    /// The hub's own account only.
    pub fn new(sdk: SdkConfig) -> Self {
        Self::with_sessions(Arc::new(AccountSessions::hub_only(sdk)))
    }

    /// The hub and the member accounts of `sessions`.
    pub fn with_sessions(sessions: Arc<AccountSessions>) -> Self {
        SdkEks {
            sessions,
            clients: Mutex::new(HashMap::new()),
        }
    }

    /// The client for `at`: cached while the account's session is the same.
    async fn client(&self, at: &Place) -> Result<aws_sdk_eks::Client, EksError> {
        let key = (at.member.clone(), at.region.clone());
        let (sdk, generation) = self.sessions.sdk_for(at.member.as_ref()).await?;
        if let Ok(map) = self.clients.lock()
            && let Some((client, g)) = map.get(&key)
            && *g == generation
        {
            return Ok(client.clone());
        }
        let conf = aws_sdk_eks::config::Builder::from(&sdk)
            .region(Region::new(at.region.clone()))
            .build();
        let client = aws_sdk_eks::Client::from_conf(conf);
        if let Ok(mut map) = self.clients.lock() {
            map.insert(key, (client.clone(), generation));
        }
        Ok(client)
    }
}

/// Turns a `DescribeCluster` response into [`ClusterInfo`].
pub fn cluster_info(at: &Place, c: &aws_sdk_eks::types::Cluster) -> Result<ClusterInfo, EksError> {
    let invalid = |message: String| EksError::InvalidResponse {
        operation: "DescribeCluster",
        message,
    };
    let name: ClusterName = c
        .name()
        .ok_or_else(|| invalid("cluster without a name".into()))?
        .parse()
        .map_err(|e| invalid(format!("cluster name: {e}")))?;
    let ca_pem = match c.certificate_authority().and_then(|ca| ca.data()) {
        Some(data) if !data.is_empty() => STANDARD
            .decode(data.trim())
            .map_err(|e| invalid(format!("certificateAuthority.data is not base64: {e}")))?,
        _ => Vec::new(),
    };
    let auth_mode = match c.access_config().and_then(|a| a.authentication_mode()) {
        None => AuthMode::ConfigMap,
        Some(AuthenticationMode::Api) => AuthMode::Api,
        Some(AuthenticationMode::ApiAndConfigMap) => AuthMode::ApiAndConfigMap,
        Some(AuthenticationMode::ConfigMap) => AuthMode::ConfigMap,
        Some(other) => other.as_str().parse()?,
    };
    Ok(ClusterInfo {
        name,
        region: at.region.clone(),
        member: at.member.clone(),
        arn: c.arn().unwrap_or_default().to_owned(),
        endpoint: c.endpoint().filter(|e| !e.is_empty()).map(str::to_owned),
        ca_pem,
        tags: c
            .tags()
            .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default(),
        auth_mode,
        status: c
            .status()
            .map(|s| s.as_str().to_owned())
            .unwrap_or_default(),
    })
}

impl EksApi for SdkEks {
    async fn list_clusters(&self, at: &Place) -> Result<Vec<ClusterName>, EksError> {
        let mut names = self
            .client(at)
            .await?
            .list_clusters()
            .into_paginator()
            .items()
            .send();
        let mut out = Vec::new();
        while let Some(name) = names.next().await {
            let name = name.map_err(|e| EksError::from_sdk("ListClusters", e))?;
            match name.parse::<ClusterName>() {
                Ok(n) => out.push(n),
                Err(e) => tracing::warn!(cluster = %name, error = %e, "skipping cluster"),
            }
        }
        Ok(out)
    }

    async fn describe_cluster(
        &self,
        at: &Place,
        name: &ClusterName,
    ) -> Result<ClusterInfo, EksError> {
        let out = self
            .client(at)
            .await?
            .describe_cluster()
            .name(name.as_str())
            .send()
            .await
            .map_err(|e| EksError::from_sdk("DescribeCluster", e))?;
        let c = out.cluster().ok_or_else(|| EksError::InvalidResponse {
            operation: "DescribeCluster",
            message: "no cluster in response".into(),
        })?;
        cluster_info(at, c)
    }

    async fn list_access_entries(
        &self,
        at: &Place,
        cluster: &ClusterName,
    ) -> Result<Vec<String>, EksError> {
        self.client(at)
            .await?
            .list_access_entries()
            .cluster_name(cluster.as_str())
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| EksError::from_sdk("ListAccessEntries", e))
    }

    async fn describe_access_entry(
        &self,
        at: &Place,
        cluster: &ClusterName,
        principal_arn: &str,
    ) -> Result<Option<AccessEntryView>, EksError> {
        let client = self.client(at).await?;
        let out = match client
            .describe_access_entry()
            .cluster_name(cluster.as_str())
            .principal_arn(principal_arn)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) => {
                let err = EksError::from_sdk("DescribeAccessEntry", e);
                return if err.is_not_found() {
                    Ok(None)
                } else {
                    Err(err)
                };
            }
        };
        let Some(entry) = out.access_entry() else {
            return Ok(None);
        };
        let mut associated = client
            .list_associated_access_policies()
            .cluster_name(cluster.as_str())
            .principal_arn(principal_arn)
            .into_paginator()
            .items()
            .send();
        let mut policies = Vec::new();
        let mut policy_namespaces = BTreeMap::new();
        while let Some(p) = associated.next().await {
            let p = p.map_err(|e| EksError::from_sdk("ListAssociatedAccessPolicies", e))?;
            let scope = p
                .access_scope()
                .and_then(|s| s.r#type())
                .map(|t| t.as_str().to_owned())
                .unwrap_or_default();
            let arn = p.policy_arn().unwrap_or_default().to_owned();
            let namespaces = p.access_scope().map(|s| s.namespaces().to_vec());
            if let Some(ns) = namespaces.filter(|n| !n.is_empty()) {
                policy_namespaces.insert(arn.clone(), ns);
            }
            policies.push((arn, scope));
        }
        Ok(Some(AccessEntryView {
            principal_arn: entry.principal_arn().unwrap_or(principal_arn).to_owned(),
            username: entry.username().map(str::to_owned),
            kubernetes_groups: entry.kubernetes_groups().to_vec(),
            policies,
            policy_namespaces,
            created_at: entry
                .created_at()
                .and_then(|t| Timestamp::from_unix_nanos(t.as_nanos())),
        }))
    }

    async fn create_access_entry(
        &self,
        at: &Place,
        cluster: &ClusterName,
        principal_arn: &str,
        username: Option<&str>,
        groups: &[String],
    ) -> Result<(), EksError> {
        self.client(at)
            .await?
            .create_access_entry()
            .cluster_name(cluster.as_str())
            .principal_arn(principal_arn)
            .set_username(username.map(str::to_owned))
            .set_kubernetes_groups(Some(groups.to_vec()))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| EksError::from_sdk("CreateAccessEntry", e))
    }

    async fn update_access_entry(
        &self,
        at: &Place,
        cluster: &ClusterName,
        principal_arn: &str,
        username: Option<&str>,
        groups: &[String],
    ) -> Result<(), EksError> {
        self.client(at)
            .await?
            .update_access_entry()
            .cluster_name(cluster.as_str())
            .principal_arn(principal_arn)
            .set_username(username.map(str::to_owned))
            .set_kubernetes_groups(Some(groups.to_vec()))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| EksError::from_sdk("UpdateAccessEntry", e))
    }

    async fn delete_access_entry(
        &self,
        at: &Place,
        cluster: &ClusterName,
        principal_arn: &str,
    ) -> Result<(), EksError> {
        match self
            .client(at)
            .await?
            .delete_access_entry()
            .cluster_name(cluster.as_str())
            .principal_arn(principal_arn)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => {
                let err = EksError::from_sdk("DeleteAccessEntry", e);
                // Already gone is what we wanted.
                if err.is_not_found() { Ok(()) } else { Err(err) }
            }
        }
    }

    async fn disassociate_access_policy(
        &self,
        at: &Place,
        cluster: &ClusterName,
        principal_arn: &str,
        policy_arn: &str,
    ) -> Result<(), EksError> {
        self.client(at)
            .await?
            .disassociate_access_policy()
            .cluster_name(cluster.as_str())
            .principal_arn(principal_arn)
            .policy_arn(policy_arn)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| EksError::from_sdk("DisassociateAccessPolicy", e))
    }

    async fn associate_access_policy(
        &self,
        at: &Place,
        cluster: &ClusterName,
        principal_arn: &str,
        policy: &PolicyAssociation,
    ) -> Result<(), EksError> {
        let scope = if policy.namespaces.is_empty() {
            AccessScope::builder().r#type(AccessScopeType::Cluster)
        } else {
            AccessScope::builder()
                .r#type(AccessScopeType::Namespace)
                .set_namespaces(Some(policy.namespaces.clone()))
        };
        self.client(at)
            .await?
            .associate_access_policy()
            .cluster_name(cluster.as_str())
            .principal_arn(principal_arn)
            .policy_arn(&policy.policy_arn)
            .access_scope(scope.build())
            .send()
            .await
            .map(|_| ())
            .map_err(|e| EksError::from_sdk("AssociateAccessPolicy", e))
    }
}

impl From<UnknownAuthMode> for EksError {
    fn from(e: UnknownAuthMode) -> Self {
        EksError::InvalidResponse {
            operation: "DescribeCluster",
            message: e.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_eks::types::{AccessConfigResponse, Certificate, Cluster, ClusterStatus};

    #[test]
    fn describe_output_is_mapped() {
        let pem = "-----BEGIN CERTIFICATE-----\nAAEC\n-----END CERTIFICATE-----\n";
        let c = Cluster::builder()
            .name("prod")
            .arn("arn:aws:eks:eu-west-1:111122223333:cluster/prod")
            .endpoint("https://ABC.gr7.eu-west-1.eks.amazonaws.com")
            .certificate_authority(Certificate::builder().data(STANDARD.encode(pem)).build())
            .tags("eks-access-sync", "enabled")
            .status(ClusterStatus::Active)
            .access_config(
                AccessConfigResponse::builder()
                    .authentication_mode(AuthenticationMode::ApiAndConfigMap)
                    .build(),
            )
            .build();
        let info = cluster_info(&Place::hub("eu-west-1"), &c).expect("info");
        assert_eq!(info.name.as_str(), "prod");
        assert_eq!(info.ca_pem, pem.as_bytes());
        assert_eq!(info.auth_mode, AuthMode::ApiAndConfigMap);
        assert!(info.auth_mode.uses_access_entries());
        assert!(info.has_tag("eks-access-sync", "enabled"));
        assert!(!info.has_tag("eks-access-sync", "disabled"));
        assert_eq!(info.status, "ACTIVE");
        assert_eq!(info.connection().expect("active").region, "eu-west-1");
        assert_eq!(info.account(), "111122223333", "the hub's: from the ARN");
        let member: AccountId = "444455556666".parse().expect("account");
        let at = Place::member(member.clone(), "eu-west-1");
        let info = cluster_info(&at, &c).expect("info");
        assert_eq!((info.place(), info.account()), (at, member.to_string()));
        assert_eq!(info.connection().expect("active").member, Some(member));
    }

    #[test]
    fn no_access_config_means_config_map_and_bad_ca_is_an_error() {
        let c = Cluster::builder().name("old").build();
        let info = cluster_info(&Place::hub("us-east-1"), &c).expect("info");
        assert_eq!(info.auth_mode, AuthMode::ConfigMap);
        assert!(info.ca_pem.is_empty());
        let bad = Cluster::builder()
            .name("bad")
            .certificate_authority(Certificate::builder().data("%%%").build())
            .build();
        assert!(cluster_info(&Place::hub("us-east-1"), &bad).is_err());
    }
}

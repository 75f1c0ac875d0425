//! A cluster as the engine sees it: its authentication mode, what `DescribeCluster`
//! says about it, where its API server is, and which backend manages its access.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::arn::{AccountId, ClusterName};

/// `accessConfig.authenticationMode`. A cluster without one is `CONFIG_MAP`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AuthMode {
    ConfigMap,
    ApiAndConfigMap,
    Api,
}

impl AuthMode {
    /// Whether access entries are honoured (and used by this tool).
    pub fn uses_access_entries(self) -> bool {
        matches!(self, AuthMode::Api | AuthMode::ApiAndConfigMap)
    }

    /// The backend that manages a cluster in this mode.
    pub fn backend(self) -> Backend {
        if self.uses_access_entries() {
            Backend::AccessEntries
        } else {
            Backend::ConfigMap
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AuthMode::ConfigMap => "CONFIG_MAP",
            AuthMode::ApiAndConfigMap => "API_AND_CONFIG_MAP",
            AuthMode::Api => "API",
        }
    }
}

/// An `authenticationMode` this tool does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown authentication mode {0:?}")]
pub struct UnknownAuthMode(pub String);

impl std::str::FromStr for AuthMode {
    type Err = UnknownAuthMode;
    fn from_str(s: &str) -> Result<Self, UnknownAuthMode> {
        match s {
            "CONFIG_MAP" => Ok(AuthMode::ConfigMap),
            "API_AND_CONFIG_MAP" => Ok(AuthMode::ApiAndConfigMap),
            "API" => Ok(AuthMode::Api),
            other => Err(UnknownAuthMode(other.to_owned())),
        }
    }
}

/// Where clusters are listed: a region of the hub's own account (`member: None`: the
/// functions' own credentials) or of a member account, reached through its member
/// role (issue 12).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Place {
    pub member: Option<AccountId>,
    pub region: String,
}

impl Place {
    /// A region of the hub's own account.
    pub fn hub(region: impl Into<String>) -> Self {
        Place {
            member: None,
            region: region.into(),
        }
    }

    /// A region of a member account.
    pub fn member(account: AccountId, region: impl Into<String>) -> Self {
        Place {
            member: Some(account),
            region: region.into(),
        }
    }
    /// The member account's ID; empty for the hub's (whose ID a listing does not give).
    pub fn account(&self) -> &str {
        self.member.as_ref().map_or("", AccountId::as_str)
    }
}

/// `us-east-1` for the hub, `111122223333/us-east-1` for a member account.
impl std::fmt::Display for Place {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.member {
            Some(a) => write!(f, "{a}/{}", self.region),
            None => f.write_str(&self.region),
        }
    }
}

/// One cluster as `DescribeCluster` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterInfo {
    pub name: ClusterName,
    pub region: String,
    /// The member account the cluster is in (`None`: the hub's own).
    pub member: Option<AccountId>,
    pub arn: String,
    /// `None` while the cluster is being created.
    pub endpoint: Option<String>,
    /// The CA bundle, PEM (decoded from base64).
    pub ca_pem: Vec<u8>,
    pub tags: BTreeMap<String, String>,
    pub auth_mode: AuthMode,
    /// `ACTIVE`, `CREATING`, …
    pub status: String,
}

impl ClusterInfo {
    pub fn has_tag(&self, key: &str, value: &str) -> bool {
        self.tags.get(key).is_some_and(|v| v == value)
    }

    /// Where the cluster was listed.
    pub fn place(&self) -> Place {
        Place {
            member: self.member.clone(),
            region: self.region.clone(),
        }
    }

    /// The cluster's account: the member account, else the one its ARN names (empty
    /// if it names none).
    pub fn account(&self) -> String {
        match &self.member {
            Some(a) => a.to_string(),
            None => self.arn.split(':').nth(4).unwrap_or_default().to_owned(),
        }
    }

    /// Where to reach the API server; `None` until the cluster has an endpoint.
    pub fn connection(&self) -> Option<ClusterEndpoint> {
        Some(ClusterEndpoint {
            member: self.member.clone(),
            region: self.region.clone(),
            name: self.name.to_string(),
            endpoint: self.endpoint.clone().filter(|e| !e.is_empty())?,
            ca_pem: self.ca_pem.clone(),
        })
    }
}

/// Where a cluster's API server is and how to trust it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterEndpoint {
    /// The member account (`None`: the hub's own): whose credentials sign the token.
    pub member: Option<AccountId>,
    pub region: String,
    pub name: String,
    pub endpoint: String,
    /// PEM (as decoded from `certificateAuthority.data`).
    pub ca_pem: Vec<u8>,
}

/// How a cluster's access is managed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Backend {
    /// `aws-auth` ConfigMap (`CONFIG_MAP`).
    #[serde(rename = "configmap")]
    ConfigMap,
    /// EKS access entries (`API`, `API_AND_CONFIG_MAP`).
    AccessEntries,
}

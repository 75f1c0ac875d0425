//! State shared by the AWS front door and the per-cluster Kubernetes API
//! servers. Everything lives behind one `Arc<Shared>`; locks are held only
//! for short, non-async critical sections.
//!
//! Accounts: the hub is [`ACCOUNT_ID`] (moto's default); member accounts are
//! created with `POST /_sandbox/accounts`. Every principal, credential and
//! cluster belongs to the account in its ARN; all sandbox accounts form one
//! organization, [`ORGANIZATION_ID`]. Clusters are keyed by [`cluster_key`]:
//! a hub cluster by its name alone (as before), a member's by
//! `<account>/<name>`, so two accounts may each have a cluster of one name.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// The hub account: moto's default, where the operator, the seed's users and
/// roles and the seed's clusters live.
pub const ACCOUNT_ID: &str = "123456789012";

/// The AWS Organizations ID every sandbox account belongs to
/// (`aws:PrincipalOrgID` of every caller).
pub const ORGANIZATION_ID: &str = "o-sandbox0001";

/// Whether `s` is an account ID (12 digits).
pub fn valid_account_id(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

/// The account field of an ARN (`arn:<partition>:<service>:<region>:<account>:...`).
pub fn arn_account(arn: &str) -> Option<&str> {
    let mut it = arn.splitn(6, ':');
    if it.next()? != "arn" {
        return None;
    }
    let account = it.nth(3)?;
    it.next()?;
    Some(account)
}

/// The key of cluster `name` of `account` in [`SharedState::clusters`] (and the
/// front door's per-cluster maps): the name alone in the hub, `<account>/<name>`
/// elsewhere (a cluster name never holds a `/`).
pub fn cluster_key(account: &str, name: &str) -> String {
    if account == ACCOUNT_ID {
        name.to_string()
    } else {
        format!("{account}/{name}")
    }
}

/// Who a credential belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// An IAM user: `arn:aws:iam::<acct>:user/<path><name>`.
    User { arn: String, user_id: String },
    /// An assumed-role session. `role_arn` keeps the role's path;
    /// the authenticator canonicalises it away.
    AssumedRole {
        role_arn: String,
        role_id: String,
        session_name: String,
    },
}

impl Principal {
    /// The account the principal belongs to (a session's: its role's), from its ARN.
    pub fn account(&self) -> &str {
        let arn = match self {
            Principal::User { arn, .. } => arn,
            Principal::AssumedRole { role_arn, .. } => role_arn,
        };
        arn_account(arn).unwrap_or(ACCOUNT_ID)
    }
}

/// A credential the sandbox handed out (CreateAccessKey, AssumeRole) or
/// created for the operator, with the secret it needs to verify signatures.
#[derive(Debug, Clone)]
pub struct Credential {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
    /// Unix seconds; `None` for long-term keys.
    pub expires_at: Option<i64>,
    pub principal: Principal,
}

/// EKS authentication modes; they only ever move forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum AuthMode {
    ConfigMap,
    ApiAndConfigMap,
    Api,
}

/// An EKS access policy association.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyAssociation {
    pub policy_arn: String,
    /// `cluster` or `namespace`.
    pub scope_type: String,
    /// Namespace names, or patterns with a trailing `*` (`team-b-*`).
    pub namespaces: Vec<String>,
    pub associated_at: i64,
    /// When the scope last changed (re-associating replaces the scope).
    pub modified_at: i64,
}

/// An EKS access entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessEntry {
    pub principal_arn: String,
    pub username: String,
    pub kubernetes_groups: Vec<String>,
    /// `STANDARD`, `EC2_LINUX`, ...
    pub entry_type: String,
    pub policies: Vec<PolicyAssociation>,
    /// Milliseconds since the epoch: EKS reports `createdAt` to the millisecond.
    pub created_at_ms: i64,
    pub modified_at: i64,
    /// The principal's unique ID (`AROA…`, `AIDA…`) when the entry was created, as
    /// EKS stores it: a caller matches the entry only with this ID, so a role deleted
    /// and re-created under the same name is refused (containers-roadmap #2441).
    /// `None`: not recorded (the cluster creator's entry), matched by ARN alone.
    pub principal_id: Option<String>,
}

/// One Kubernetes object as stored: the full JSON (metadata included).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredObject {
    pub json: serde_json::Value,
}

/// One EKS cluster: control-plane record plus its Kubernetes store.
#[derive(Debug)]
pub struct Cluster {
    pub name: String,
    /// `arn:aws:eks:<region>:<account>:cluster/<name>`: the account it lives in
    /// ([`Cluster::account`]).
    pub arn: String,
    pub region: String,
    pub version: String,
    pub created_at: i64,
    pub tags: BTreeMap<String, String>,
    pub auth_mode: AuthMode,
    /// The identity that created the cluster (EKS makes it cluster-admin).
    pub creator_arn: String,
    /// `https://127.0.0.1:<port>`.
    pub endpoint: String,
    /// base64 of the PEM CA certificate (as DescribeCluster gives it).
    pub ca_data_b64: String,
    /// principal ARN -> entry.
    pub access_entries: BTreeMap<String, AccessEntry>,
    /// Kubernetes objects keyed by (api path prefix e.g. "api/v1" or
    /// "apis/rbac.authorization.k8s.io/v1", plural resource, namespace, name).
    pub objects: BTreeMap<(String, String, String, String), StoredObject>,
    /// Monotonic resourceVersion counter for this cluster's objects.
    pub resource_version: u64,
    pub faults: ClusterFaults,
    /// aws-auth as the authenticator last parsed it.
    pub aws_auth_read: crate::kube::ParsedAwsAuth,
}

impl Cluster {
    /// The account the cluster belongs to (from its ARN).
    pub fn account(&self) -> &str {
        arn_account(&self.arn).unwrap_or(ACCOUNT_ID)
    }

    /// Its key in [`SharedState::clusters`].
    pub fn key(&self) -> String {
        cluster_key(self.account(), &self.name)
    }
}

/// Faults injected into one cluster's Kubernetes API.
#[derive(Debug, Clone, Default)]
pub struct ClusterFaults {
    /// The next N writes to kube-system/aws-auth lose a race: another
    /// writer's edit (a new node-role mapping) lands first, so the write
    /// carrying the old resourceVersion gets 409.
    pub aws_auth_conflicts: u32,
    /// The next N requests answer 500.
    pub errors_500: u32,
}

/// Faults injected into IAM.
#[derive(Debug, Clone, Default)]
pub struct IamFaults {
    /// The next N IAM calls answer `Throttling`.
    pub throttle: u32,
    /// Until this Unix time (seconds, fractional allowed via millis), a trust
    /// policy naming a user created less than `invalid_principal_window_ms`
    /// ago is rejected with `MalformedPolicyDocument: Invalid principal in policy`.
    pub invalid_principal_window_ms: u64,
}

/// What a [`FaultRule`] does to a matching call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum FaultKind {
    /// The service's own throttling error (IAM/STS `Throttling` 400, EKS
    /// `ThrottlingException` 429, DynamoDB `ThrottlingException` 400, Kubernetes 429).
    Throttle,
    /// An internal error, 500.
    Error500,
    /// The connection is accepted and the request read, but never answered.
    Hang,
    /// The connection is reset (RST) instead of answered.
    Reset,
}

/// One fault rule: calls of `service` (and `operation`, and for Kubernetes
/// `cluster`, when given) get `kind`, the next `remaining` times or always.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultRule {
    /// `iam`, `sts`, `eks`, `dynamodb` or `kube`.
    pub service: String,
    /// IAM/STS `Action`, EKS or DynamoDB operation name, or for Kubernetes
    /// `"<METHOD> <resource>"` as the call counters name it (`PUT configmaps`);
    /// `None` matches every operation.
    pub operation: Option<String>,
    /// Kubernetes only: one cluster's API server; `None` matches all.
    pub cluster: Option<String>,
    pub kind: FaultKind,
    /// Error code instead of the service's default (e.g. DynamoDB
    /// `ProvisionedThroughputExceededException`).
    pub code: Option<String>,
    /// Calls still to fault; `None` = always.
    pub remaining: Option<u32>,
}

/// A fault a call drew from the rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    pub kind: FaultKind,
    pub code: Option<String>,
}

/// Faults that apply everywhere.
#[derive(Debug, Clone, Default)]
pub struct GlobalFaults {
    /// Added to every AWS and Kubernetes call.
    pub latency_ms: u64,
    /// Per-service/operation rules, first match wins (`POST /_sandbox/faults` with
    /// `service`, `kind`, `count`).
    pub rules: Vec<FaultRule>,
}

impl GlobalFaults {
    /// The fault for one call, if a rule matches (a counted rule is used up by it).
    pub fn take(&mut self, service: &str, cluster: Option<&str>, operation: &str) -> Option<Fault> {
        let i = self.rules.iter().position(|r| {
            r.service == service
                && r.operation.as_deref().is_none_or(|o| o == operation)
                && r.cluster
                    .as_deref()
                    .is_none_or(|c| cluster.is_some_and(|x| x == c))
        })?;
        let rule = &mut self.rules[i];
        let fault = Fault {
            kind: rule.kind,
            code: rule.code.clone(),
        };
        match &mut rule.remaining {
            None => {}
            Some(n) if *n > 1 => *n -= 1,
            Some(_) => {
                self.rules.remove(i);
            }
        }
        Some(fault)
    }

    /// Adds `rule`, replacing one for the same service, operation and cluster.
    pub fn set(&mut self, rule: FaultRule) {
        self.clear(
            &rule.service,
            rule.operation.as_deref(),
            rule.cluster.as_deref(),
        );
        if rule.remaining != Some(0) {
            self.rules.push(rule);
        }
    }

    /// Removes the rule for exactly this service, operation and cluster.
    pub fn clear(&mut self, service: &str, operation: Option<&str>, cluster: Option<&str>) {
        self.rules.retain(|r| {
            !(r.service == service
                && r.operation.as_deref() == operation
                && r.cluster.as_deref() == cluster)
        });
    }
}

/// Call counters, keyed by (service, operation): ("iam", "GetRole"),
/// ("eks", "DescribeCluster"), ("k8s:<cluster>", "PUT configmaps"), ...
pub type CallCounts = BTreeMap<(String, String), u64>;

/// Everything shared.
#[derive(Debug, Default)]
pub struct SharedState {
    /// access key id -> credential.
    pub credentials: BTreeMap<String, Credential>,
    /// [`cluster_key`] (the name, for a hub cluster) -> cluster.
    pub clusters: BTreeMap<String, Cluster>,
    /// user ARN -> AIDA-shaped unique id assigned when the user was created.
    pub user_ids: BTreeMap<String, String>,
    /// (account, lower-case user name) -> the name as created, for the users in
    /// `user_ids` (IAM user names are unique regardless of case).
    pub user_names: BTreeMap<(String, String), String>,
    /// user ARN -> creation time in Unix millis (for eventual consistency).
    pub user_created_ms: BTreeMap<String, u64>,
    pub iam_faults: IamFaults,
    pub global_faults: GlobalFaults,
    pub calls: CallCounts,
    /// Member accounts created (`POST /_sandbox/accounts`); the hub is not listed.
    pub member_accounts: std::collections::BTreeSet<String>,
    /// Every entry `events:PutEvents` accepted, as sent (plus `EventId`).
    pub put_events: Vec<serde_json::Value>,
}

pub type Shared = Arc<Mutex<SharedState>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts_of_arns_and_cluster_keys() {
        assert_eq!(
            arn_account("arn:aws:iam::111111111111:role/x"),
            Some("111111111111")
        );
        assert_eq!(
            arn_account("arn:aws:eks:us-east-1:123456789012:cluster/prod"),
            Some("123456789012")
        );
        assert_eq!(arn_account("nope"), None);
        assert_eq!(cluster_key(ACCOUNT_ID, "prod"), "prod");
        assert_eq!(cluster_key("111111111111", "prod"), "111111111111/prod");
        assert!(valid_account_id("111111111111"));
        assert!(!valid_account_id("11111111111"));
        assert!(!valid_account_id("11111111111x"));
    }
}

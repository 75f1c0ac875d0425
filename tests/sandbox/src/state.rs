//! State shared by the AWS front door and the per-cluster Kubernetes API
//! servers. Everything lives behind one `Arc<Shared>`; locks are held only
//! for short, non-async critical sections.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// The account moto always uses.
pub const ACCOUNT_ID: &str = "123456789012";

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
    /// cluster name -> cluster.
    pub clusters: BTreeMap<String, Cluster>,
    /// user ARN -> AIDA-shaped unique id assigned when the user was created.
    pub user_ids: BTreeMap<String, String>,
    /// user ARN -> creation time in Unix millis (for eventual consistency).
    pub user_created_ms: BTreeMap<String, u64>,
    pub iam_faults: IamFaults,
    pub global_faults: GlobalFaults,
    pub calls: CallCounts,
    /// Every entry `events:PutEvents` accepted, as sent (plus `EventId`).
    pub put_events: Vec<serde_json::Value>,
}

pub type Shared = Arc<Mutex<SharedState>>;

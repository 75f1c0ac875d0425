//! The edges the engine needs from the world: IAM, EKS, each cluster's aws-auth, and the
//! trust-policy lease. The engine is generic over these traits, so tests run it on fakes.
//!
//! The adapters implement them; their error enums live with them and are imported here.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;

use crate::adapters::aws::eks::EksError;
use crate::adapters::aws::iam::IamError;
use crate::adapters::aws::lock::LockError;
use crate::adapters::kube::store::K8sError;
use crate::model::arn::{ClusterName, RoleArn, RoleName, UserName};
use crate::model::cluster::{ClusterEndpoint, ClusterInfo, Place};
use crate::output::events::AccessEvent;
use crate::policy::accessentry::{AccessEntryView, PolicyAssociation, Timestamp};
use crate::policy::desired::IamUser;
use crate::policy::rbac::{BindingRef, BindingSpec, BindingView};

// IAM
/// What the engine needs from IAM.
pub trait IamApi: Send + Sync {
    /// Every user of the account with its tags (`GetAccountAuthorizationDetails`, filter `User`).
    fn list_users(&self) -> impl Future<Output = Result<Vec<IamUser>, IamError>> + Send;
    /// One user, re-read (`GetUser`); `None` if it does not exist.
    fn get_user(
        &self,
        name: &UserName,
    ) -> impl Future<Output = Result<Option<IamUser>, IamError>> + Send;
    /// The names of the IAM groups the user is in (`ListGroupsForUser`, every page);
    /// `None` if the user does not exist. Read on an event only when a tier selects
    /// its members by group.
    fn user_groups(
        &self,
        name: &UserName,
    ) -> impl Future<Output = Result<Option<Vec<String>>, IamError>> + Send;
    /// Every role of the account with its trust policy (`GetAccountAuthorizationDetails`,
    /// filter `Role`): read by the access audit only.
    fn list_roles(&self) -> impl Future<Output = Result<Vec<RoleInfo>, IamError>> + Send;
    /// The role's ARN and its trust policy, percent-decoded.
    fn get_role(&self, name: &RoleName) -> impl Future<Output = Result<RoleInfo, IamError>> + Send;
    /// The roles at [`crate::policy::shards::SHARD_PATH`] (the tiers' shard roles) with
    /// their trust policies (`ListRoles`, every page).
    fn list_shard_roles(&self) -> impl Future<Output = Result<Vec<RoleInfo>, IamError>> + Send;
    /// `CreateRole` at [`crate::policy::shards::SHARD_PATH`] with `document` as its
    /// trust policy and `boundary` as its permissions boundary, retried like
    /// [`IamApi::update_trust_policy`]. A role of that name already at that path (one
    /// an earlier run created, not yet listed) gets `document` written instead.
    fn create_shard_role(
        &self,
        name: &RoleName,
        document: &str,
        boundary: Option<&str>,
    ) -> impl Future<Output = Result<RoleInfo, IamError>> + Send;
    /// `UpdateAssumeRolePolicy`, retried on eventual-consistency and throttling errors.
    fn update_trust_policy(
        &self,
        name: &RoleName,
        document: &str,
    ) -> impl Future<Output = Result<(), IamError>> + Send;
}

/// A role as read by `GetRole`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleInfo {
    pub arn: RoleArn,
    /// The trust policy as JSON text (decoded from the URL encoding IAM returns).
    pub trust_policy: String,
    /// The role's unique ID (`AROA…`): a role deleted and re-created under the same
    /// name gets a new one.
    pub role_id: String,
    /// `CreateDate`: access entries older than this were made for a previous role of
    /// the same name (see [`crate::accessentry`]). `None` if IAM gave none.
    pub create_date: Option<Timestamp>,
}

// EKS
/// What the engine needs from EKS, in a region of the hub's account or of a member
/// account ([`Place`]).
pub trait EksApi: Send + Sync {
    fn list_clusters(
        &self,
        at: &Place,
    ) -> impl Future<Output = Result<Vec<ClusterName>, EksError>> + Send;
    fn describe_cluster(
        &self,
        at: &Place,
        name: &ClusterName,
    ) -> impl Future<Output = Result<ClusterInfo, EksError>> + Send;
    /// Principal ARNs of the cluster's access entries.
    fn list_access_entries(
        &self,
        at: &Place,
        cluster: &ClusterName,
    ) -> impl Future<Output = Result<Vec<String>, EksError>> + Send;
    /// One access entry with its associated policies and `createdAt`; `None` if absent.
    fn describe_access_entry(
        &self,
        at: &Place,
        cluster: &ClusterName,
        principal_arn: &str,
    ) -> impl Future<Output = Result<Option<AccessEntryView>, EksError>> + Send;
    fn create_access_entry(
        &self,
        at: &Place,
        cluster: &ClusterName,
        principal_arn: &str,
        username: Option<&str>,
        groups: &[String],
    ) -> impl Future<Output = Result<(), EksError>> + Send;
    fn update_access_entry(
        &self,
        at: &Place,
        cluster: &ClusterName,
        principal_arn: &str,
        username: Option<&str>,
        groups: &[String],
    ) -> impl Future<Output = Result<(), EksError>> + Send;
    fn delete_access_entry(
        &self,
        at: &Place,
        cluster: &ClusterName,
        principal_arn: &str,
    ) -> impl Future<Output = Result<(), EksError>> + Send;
    /// Associates `policy_arn` at cluster scope.
    fn associate_access_policy(
        &self,
        at: &Place,
        cluster: &ClusterName,
        principal_arn: &str,
        policy: &PolicyAssociation,
    ) -> impl Future<Output = Result<(), EksError>> + Send;
    fn disassociate_access_policy(
        &self,
        at: &Place,
        cluster: &ClusterName,
        principal_arn: &str,
        policy_arn: &str,
    ) -> impl Future<Output = Result<(), EksError>> + Send;
}

// Kubernetes
/// The `data` of aws-auth and the version it was read at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsAuthObject {
    pub data: BTreeMap<String, String>,
    pub resource_version: String,
}

/// The aws-auth ConfigMap of one cluster.
pub trait AwsAuthStore: Send + Sync {
    /// The ConfigMap's data, or `None` if it does not exist.
    fn read(&self) -> impl Future<Output = Result<Option<AwsAuthObject>, K8sError>> + Send;
    /// Replaces `data`, only if the object is still at `resource_version`.
    fn replace(
        &self,
        data: BTreeMap<String, String>,
        resource_version: &str,
    ) -> impl Future<Output = Result<(), K8sError>> + Send;
    /// Creates the ConfigMap; [`K8sError::Conflict`] if it already exists.
    fn create(
        &self,
        data: BTreeMap<String, String>,
    ) -> impl Future<Output = Result<(), K8sError>> + Send;
}

/// The tiers' RBAC bindings on one cluster.
pub trait RbacStore: Send + Sync {
    /// The names of every namespace.
    fn namespaces(&self) -> impl Future<Output = Result<Vec<String>, K8sError>> + Send;
    /// The ClusterRoleBindings and RoleBindings that carry our label or one of
    /// `names`.
    fn bindings(
        &self,
        names: &[String],
    ) -> impl Future<Output = Result<Vec<BindingView>, K8sError>> + Send;
    /// Creates the binding, or replaces ours of that name.
    fn put_binding(&self, spec: &BindingSpec) -> impl Future<Output = Result<(), K8sError>> + Send;
    fn delete_binding(&self, at: &BindingRef) -> impl Future<Output = Result<(), K8sError>> + Send;
}

/// Opens an [`AwsAuthStore`] (and the [`RbacStore`]) on a cluster.
pub trait KubeConnector: Send + Sync {
    type Store: AwsAuthStore + RbacStore;
    fn connect(
        &self,
        cluster: &ClusterEndpoint,
    ) -> impl Future<Output = Result<Self::Store, K8sError>> + Send;
}

// Lock
/// A held lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub lock_id: String,
    pub owner: String,
    /// Epoch seconds after which others may take the lease (`None`: never expires,
    /// [`NoLock`]).
    pub expires_at: Option<i64>,
    /// When the lease runs out by our own clock (measured from before the request
    /// that took it, so never later than the table's view).
    pub deadline: Option<Instant>,
}

impl Lease {
    /// Time left before others may take the lease over (`Duration::MAX` if never).
    pub fn remaining(&self) -> Duration {
        self.deadline.map_or(Duration::MAX, |d| {
            d.saturating_duration_since(Instant::now())
        })
    }
}

/// What the engine needs from a lock. Object-safe (the futures are boxed) so that the
/// engine holds any implementation without another type parameter.
pub trait TrustLock: Send + Sync + fmt::Debug {
    /// Takes the lease `lock_id` for `owner` for `ttl`, waiting (bounded) while
    /// someone else holds an unexpired one.
    fn acquire<'a>(
        &'a self,
        lock_id: &'a str,
        owner: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<Lease, LockError>>;

    /// Gives the lease back (only if still ours).
    fn release<'a>(&'a self, lease: &'a Lease) -> BoxFuture<'a, Result<(), LockError>>;
}

// Access events
/// Why access events could not be put (logged; a run never fails for it).
#[derive(Debug, thiserror::Error)]
#[error("PutEvents failed: {0}")]
pub struct EventsError(pub String);

/// Where access events go ([`crate::output::events`]). Object-safe, like
/// [`TrustLock`].
pub trait AccessEventSink: Send + Sync + fmt::Debug {
    fn put<'a>(&'a self, events: &'a [AccessEvent]) -> BoxFuture<'a, Result<(), EventsError>>;
    /// Whether events go anywhere: when not, the engine does not make them.
    fn enabled(&self) -> bool {
        true
    }
}

/// Access events are not published (the CLI unless configured; tests).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoEvents;

impl AccessEventSink for NoEvents {
    fn put<'a>(&'a self, _events: &'a [AccessEvent]) -> BoxFuture<'a, Result<(), EventsError>> {
        Box::pin(async { Ok(()) })
    }
    fn enabled(&self) -> bool {
        false
    }
}

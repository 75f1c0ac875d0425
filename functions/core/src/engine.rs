//! Orchestration: IAM → the admin role's trust policy → every tagged cluster.
//!
//! The engine is generic over the three adapters ([`IamApi`], [`EksApi`],
//! [`KubeConnector`]) so that tests run it on in-memory fakes. The pure core decides
//! every edit; the engine reads, calls the editors, and writes what they return.
//!
//! Order: the users (or the event's user), the admin role and the cluster list are
//! read at once, and beside them the cluster list and each cluster's description; then
//! the trust-policy write goes on beside the clusters' reconcile, at most
//! `cluster_concurrency` clusters at once.
//! A run thus takes the fewest sequential round trips the APIs allow (see
//! BENCHMARKS.md).
//!
//! A run that may write the trust policy holds the [`TrustLock`] lease from before
//! the users (or the event's user) and the role are read until
//! `UpdateAssumeRolePolicy` (its retries included) is done, so that two writers (the
//! two functions, an operator's CLI) never interleave their read-modify-write
//! cycles; the clusters are listed and described while the lease is awaited, and
//! reconciled once the role and the users are in. Dry runs and runs that leave the
//! trust policy alone take no lease. One cluster failing never stops the others; a
//! failed trust-policy write does not stop the clusters (their admin mapping does not
//! depend on it). A dry run does everything but the writes.
//!
//! Decisions where the spec was silent:
//! - Untagged clusters are not reported (and never touched); a cluster named in the
//!   scope that is not found among the tagged clusters is reported `skipped`.
//! - A tagged cluster that is not `ACTIVE` yet (no endpoint) is `skipped`.
//! - `API_AND_CONFIG_MAP`: the admin role gets an access entry; aws-auth is only edited
//!   when it exists and maps an offboarded user (that edit also keeps the admin
//!   mapping there, which is harmless: both paths grant the same). It is never created.
//! - A `ListClusters` failure in a region is reported as a failed pseudo-cluster
//!   named `*` in that region, so that the run fails visibly.
//! - When `ListUsers` fails the run still ensures every cluster's admin mapping but
//!   offboards nobody; the report carries the error and the run fails.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use futures::StreamExt;
use rand::Rng;

use crate::accessentry::{AccessEntryView, Timestamp, plan_access_entries};
use crate::arn::{ClusterName, RoleArn, UserArn};
use crate::awsauth::{AdminMapping, MAP_USERS, Offboarded, edit_aws_auth, parse_entries};
use crate::config::Config;
use crate::desired::{IamUser, admin_arns, change_for_event, offboarded_for_event};
use crate::eks::SdkEks;
use crate::eks::{AuthMode, ClusterInfo, EksApi};
use crate::event::{
    EksClusterEvent, EventClass, IamEventKind, IamUserEvent, classify_event, cluster_name_from_arn,
};
use crate::iam::{IamApi, SdkIam};
use crate::k8s::{AwsAuthStore, EksKubeConnector, K8sError, KubeConnector};
use crate::lock::{
    DynamoDbLock, Lease, LockError, MIN_LEASE_FOR_WRITE, NoLock, TRUST_LOCK_TTL, TrustLock,
    new_owner, trust_policy_lock_id,
};
use crate::plan::{Backend, ClusterChange, ClusterPlan, Plan, TrustPolicyPlan};
use crate::report::{ClusterReport, ClusterStatus, RunReport};
use crate::trust::{PrincipalChange, TrustOptions, edit_trust_policy, managed_principals};
use aws_types::SdkConfig;

/// How many times the aws-auth read-modify-write is attempted when it keeps meeting
/// transient API errors (5xx, 429); the pause between attempts doubles.
pub const MAX_WRITE_ATTEMPTS: u32 = 5;
/// How many times it is attempted when it keeps losing races (409): another writer
/// won, the server is fine, so a fresh read follows after a short jittered pause (at
/// most a quarter of the conflict backoff, 50 ms by default).
pub const MAX_CONFLICT_ATTEMPTS: u32 = 10;
/// How many times it is attempted when a request gets no answer within 10 s: once
/// more, so a server that stopped answering fails the cluster well within a run's
/// minute. A call that used up its 30 s bound (the kube client retrying 429/503/504
/// by itself) is not tried again.
pub const MAX_TIMEOUT_ATTEMPTS: u32 = 2;
/// The longest pause between two aws-auth attempts.
const MAX_RETRY_PAUSE: Duration = Duration::from_secs(5);

/// Which part of the world a run covers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    /// `None`: every tagged cluster. `Some`: only these (still only if tagged).
    pub clusters: Option<BTreeSet<ClusterName>>,
    /// Skip the trust-policy edit (EKS events: only the cluster needs work).
    pub skip_trust_policy: bool,
    /// The region the clusters were named in (an EKS event's), reported for a named
    /// cluster that is not managed; `None`: none is known (reported as `""`).
    pub region: Option<String>,
}

impl Scope {
    /// Everything.
    pub fn all() -> Self {
        Scope::default()
    }

    /// Only these clusters (and the trust policy).
    pub fn clusters(names: impl IntoIterator<Item = ClusterName>) -> Self {
        Scope {
            clusters: Some(names.into_iter().collect()),
            skip_trust_policy: false,
            region: None,
        }
    }

    fn includes(&self, name: &ClusterName) -> bool {
        self.clusters.as_ref().is_none_or(|s| s.contains(name))
    }
}

/// For logs: `every tagged cluster` or `clusters a, b`, then `(event in <region>)` when one
/// is known and `, trust policy untouched` when it is skipped.
impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.clusters {
            None => f.write_str("every tagged cluster")?,
            Some(names) => {
                let names: Vec<String> = names.iter().map(ToString::to_string).collect();
                write!(f, "clusters {}", names.join(", "))?;
            }
        }
        if let Some(region) = &self.region {
            write!(f, " (event in {region})")?;
        }
        if self.skip_trust_policy {
            f.write_str(", trust policy untouched")?;
        }
        Ok(())
    }
}

/// A run's plan and report.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub plan: Plan,
    pub report: RunReport,
}

/// The engine. `config` is read once at start-up.
pub struct Engine<I, E, K> {
    config: Config,
    iam: I,
    eks: E,
    kube: K,
    conflict_backoff: Duration,
    /// Serializes trust-policy writers ([`NoLock`] unless configured).
    lock: Arc<dyn TrustLock>,
}

/// What the clusters must end up with.
struct ClusterGoal {
    /// For aws-auth: the role ARN without its path.
    admin: AdminMapping,
    /// For access entries: the role's full ARN (EKS accepts paths there).
    admin_entry: AdminMapping,
    /// The admin role's ARN as IAM gives it (with its path).
    role_arn: RoleArn,
    /// The admin role's `CreateDate`: an older admin access entry is stale.
    role_created: Option<Timestamp>,
    offboarded: Vec<Offboarded>,
    /// Names of every existing user (lower-case), when the full listing is known:
    /// direct mappings of this account's users not in it are stale.
    existing_users: Option<BTreeSet<String>>,
    account: String,
    /// aws-auth attempts retried (409, 5xx, 429), every cluster's, failed ones
    /// included.
    retries: AtomicU32,
}

/// A cluster as `DescribeCluster` answered (region, name, info or the error).
type Described = (String, ClusterName, Result<ClusterInfo, String>);

/// What a run starts from: the change to the managed principals and whom to offboard.
#[derive(Default)]
struct RunInput {
    change: Option<PrincipalChange>,
    offboarded: Vec<Offboarded>,
    /// Every user, when a full listing was read.
    users: Option<Vec<IamUser>>,
    admin_users: usize,
    /// Why the input is incomplete (reported as the trust policy's error).
    error: Option<String>,
    /// Nothing can be decided (the event's user could not be read): stop.
    stop: bool,
}

/// The trust-policy lease of one run.
enum TrustLease {
    /// The run does not write the trust policy (dry run, EKS event).
    NotNeeded,
    Held(Lease),
    /// Wanted but not obtained (the error): the trust policy is left alone.
    Unavailable(String),
}

struct ClusterResult {
    /// `None` for a region whose clusters could not be listed.
    plan: Option<ClusterPlan>,
    report: ClusterReport,
}

impl<I: IamApi, E: EksApi, K: KubeConnector> Engine<I, E, K> {
    pub fn new(config: Config, iam: I, eks: E, kube: K) -> Self {
        Engine {
            config,
            iam,
            eks,
            kube,
            conflict_backoff: Duration::from_millis(200),
            lock: Arc::new(NoLock),
        }
    }

    /// The lease taken around every trust-policy read-modify-write.
    pub fn with_trust_lock(mut self, lock: Arc<dyn TrustLock>) -> Self {
        self.lock = lock;
        self
    }

    pub fn trust_lock(&self) -> &dyn TrustLock {
        self.lock.as_ref()
    }

    /// First pause after an aws-auth conflict (doubles each retry).
    pub fn with_conflict_backoff(mut self, backoff: Duration) -> Self {
        self.conflict_backoff = backoff;
        self
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn iam(&self) -> &I {
        &self.iam
    }

    pub fn eks(&self) -> &E {
        &self.eks
    }

    pub fn kube(&self) -> &K {
        &self.kube
    }

    /// What a full run would change (nothing is written).
    pub async fn plan_full(&self, scope: &Scope) -> Plan {
        self.run_full(scope, true).await.plan
    }

    /// Applies a full reconcile.
    pub async fn apply_full(&self, scope: &Scope) -> RunReport {
        self.run_full(scope, false).await.report
    }

    /// A full reconcile: every user, the trust policy, every tagged cluster in scope.
    pub async fn run_full(&self, scope: &Scope, dry_run: bool) -> Outcome {
        let input = async {
            match self.iam.list_users().await {
                Ok(users) => {
                    let desired = admin_arns(&users, &self.config.admin_user_tag);
                    RunInput {
                        admin_users: desired.len(),
                        change: (!scope.skip_trust_policy).then_some(PrincipalChange::Set(desired)),
                        users: Some(users),
                        ..RunInput::default()
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot list IAM users");
                    // Every cluster still gets its admin mapping; nobody is offboarded.
                    RunInput {
                        error: Some(e.to_string()),
                        ..RunInput::default()
                    }
                }
            }
        };
        let writes_trust = !dry_run && !scope.skip_trust_policy;
        self.run(Box::pin(input), writes_trust, scope, dry_run)
            .await
    }

    /// Applies what an IAM event calls for. The user is re-read: the event only says
    /// whom to look at.
    pub async fn handle_iam_event(&self, ev: &IamUserEvent) -> RunReport {
        self.run_iam_event(ev, false).await.report
    }

    /// An IAM event, optionally as a dry run.
    pub async fn run_iam_event(&self, ev: &IamUserEvent, dry_run: bool) -> Outcome {
        let input = async {
            let user = match self.iam.get_user(&ev.user_name).await {
                Ok(u) => u,
                Err(e) => {
                    tracing::error!(user = %ev.user_name, error = %e, "cannot read the user");
                    return RunInput {
                        error: Some(e.to_string()),
                        stop: true,
                        ..RunInput::default()
                    };
                }
            };
            let change = change_for_event(ev, user.as_ref(), &self.config.admin_user_tag);
            // Only a DeleteUser whose user is gone offboards (in the event's account).
            let offboarded = offboarded_for_event(ev, user.as_ref());
            if user.is_none() && ev.kind != IamEventKind::DeleteUser {
                tracing::warn!(
                    user = %ev.user_name,
                    account = %ev.account,
                    "the event's user was not found (eventual consistency?); nobody is \
                     removed, the next full run decides"
                );
            }
            tracing::info!(
                user = %ev.user_name,
                exists = user.is_some(),
                change = %change.as_ref().map_or_else(|| "none".to_owned(), ToString::to_string),
                "event re-read"
            );
            RunInput {
                change,
                offboarded,
                ..RunInput::default()
            }
        };
        self.run(Box::pin(input), !dry_run, &Scope::all(), dry_run)
            .await
    }

    /// An EKS event: reconcile the cluster it names (all tagged clusters if it names
    /// none), without touching the trust policy.
    pub async fn handle_eks_event(&self, ev: &EksClusterEvent) -> RunReport {
        self.apply_full(&eks_event_scope(ev)).await
    }

    fn empty_plan(&self, dry_run: bool) -> Plan {
        Plan {
            dry_run,
            trust_policy: TrustPolicyPlan {
                role_name: self.config.admin_role_name.clone(),
                added: Vec::new(),
                removed: Vec::new(),
                dangling_removed: Vec::new(),
                foreign_dangling: Vec::new(),
                size_before: 0,
                size_after: 0,
                max_chars: self.config.trust_policy_max_chars,
                before: String::new(),
                after: None,
            },
            clusters: Vec::new(),
        }
    }

    /// The run itself, on the fewest sequential round trips: the input (the users or
    /// the event's user) and the admin role are read (under the lease) beside the
    /// cluster list and each cluster's description; then the trust-policy write and the
    /// clusters' reconcile go on side by side.
    ///
    /// `writes_trust`: the run may write the trust policy, so the input and the role
    /// are read under the lease, which is given back once the write is done.
    async fn run(
        &self,
        input: impl Future<Output = RunInput>,
        writes_trust: bool,
        scope: &Scope,
        dry_run: bool,
    ) -> Outcome {
        let started = tokio::time::Instant::now();
        let mut report = RunReport::new(
            dry_run,
            self.config.admin_role_name.as_str(),
            self.config.trust_policy_max_chars,
        );
        let mut plan = self.empty_plan(dry_run);
        // Boxed, as `write_trust` below: the nested futures otherwise make the
        // handlers' future types too deep for the compiler's default limit.
        let trust_reads = Box::pin(async {
            let lease = self.acquire_trust_lock(writes_trust).await;
            let (input, role) =
                futures::join!(input, self.iam.get_role(&self.config.admin_role_name));
            (lease, input, role)
        });
        // Beside the lease and those reads: the cluster list, and each cluster described.
        let clusters_read = Box::pin(async {
            let (names, failures) = self.cluster_names(scope).await;
            let described: Vec<Described> = futures::stream::iter(names)
                .map(|(region, name)| async move {
                    let info = self.eks.describe_cluster(&region, &name).await;
                    (region, name, info.map_err(|e| e.to_string()))
                })
                .buffer_unordered(self.config.cluster_concurrency.max(1))
                .collect()
                .await;
            (described, failures)
        });
        let ((lease, mut input, role), (described, mut failures)) =
            futures::join!(trust_reads, clusters_read);
        report.admin_users = input.admin_users;
        let mut errors: Vec<String> = input.error.iter().cloned().collect();
        if let TrustLease::Unavailable(e) = &lease {
            // Without the lease the trust policy is left alone.
            errors.push(e.clone());
            input.change = None;
        }
        if !errors.is_empty() {
            report.trust_policy.error = Some(errors.join("; "));
        }
        if input.stop {
            self.release_trust_lock(lease).await;
            return self.finish(plan, report, started);
        }
        let role = match role {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the admin role");
                report.trust_policy.error = Some(e.to_string());
                self.release_trust_lock(lease).await;
                return self.finish(plan, report, started);
            }
        };
        // Only a deleted user is offboarded: one the event says is gone, or (on a full
        // run) one the listing lacks (`offboarded_for`). Leaving the trust policy,
        // e.g. by losing the tag, does not take a user's own mappings away.
        let offboarded = input.offboarded;

        // 1. The trust policy: the edit is pure; its write goes on beside the clusters.
        let opts = TrustOptions::from(&self.config).with_role(&role.arn);
        report.trust_policy.size_chars = crate::trust::policy_size_chars(&role.trust_policy);
        let mut write = None;
        if let Some(change) = &input.change {
            match edit_trust_policy(&role.trust_policy, change, &opts) {
                Ok(edit) => {
                    plan.trust_policy =
                        TrustPolicyPlan::from_edit(self.config.admin_role_name.clone(), &edit);
                    let t = &mut report.trust_policy;
                    t.added = edit.added.iter().map(ToString::to_string).collect();
                    t.removed = edit.removed.clone();
                    t.dangling_removed = edit.dangling_removed.clone();
                    t.foreign_dangling = edit.foreign_dangling.clone();
                    t.size_chars = edit.size_after;
                    t.max_chars = edit.max_chars;
                    if let Some(after) = edit.after {
                        t.changed = true;
                        if !dry_run {
                            write = Some((after, edit.added.len(), edit.removed.len()));
                        }
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "trust policy edit refused");
                    report.trust_policy.error = Some(e.to_string());
                }
            }
        } else {
            plan.trust_policy.before = role.trust_policy.clone();
            plan.trust_policy.size_before = report.trust_policy.size_chars;
            plan.trust_policy.size_after = report.trust_policy.size_chars;
        }
        if report.admin_users == 0
            && let Some(doc) = plan
                .trust_policy
                .after
                .as_ref()
                .or(Some(&role.trust_policy))
            && let Ok(set) = managed_principals(doc, &self.config.trust_statement_sid)
        {
            report.admin_users = set.iter().filter(|p| p.starts_with("arn:")).count();
        }
        let write_trust = Box::pin(async {
            let written = match write {
                None => None,
                Some((after, added, removed)) => {
                    let r = self.write_trust_policy(&lease, &after).await;
                    match &r {
                        Ok(()) => tracing::info!(added, removed, "trust policy written"),
                        Err(e) => tracing::error!(error = %e, "trust policy write failed"),
                    }
                    Some(r)
                }
            };
            self.release_trust_lock(lease).await;
            written
        });

        // 2. The clusters.
        let goal = ClusterGoal {
            admin: AdminMapping {
                role_arn: role.arn.without_path(),
                username: self.config.k8s_username.clone(),
                groups: self.config.k8s_groups.clone(),
            },
            admin_entry: AdminMapping {
                role_arn: role.arn.clone(),
                username: self.config.k8s_username.clone(),
                groups: self.config.k8s_groups.clone(),
            },
            account: role.arn.account().to_owned(),
            role_arn: role.arn.clone(),
            role_created: role.create_date,
            offboarded,
            existing_users: input.users.as_deref().map(|u| {
                u.iter()
                    .map(|u| u.name.as_str().to_ascii_lowercase())
                    .collect()
            }),
            retries: AtomicU32::new(0),
        };
        let clusters = futures::stream::iter(described)
            .map(|(region, name, info)| {
                self.reconcile_described(region, name, info, &goal, dry_run)
            })
            .buffer_unordered(self.config.cluster_concurrency.max(1))
            .collect::<Vec<_>>();
        let (written, described) = futures::join!(write_trust, clusters);
        if let Some(Err(e)) = written {
            // Nothing was applied: no user is reported added or removed, and the size
            // is the policy's as it stands.
            let t = &mut report.trust_policy;
            t.changed = false;
            t.error = Some(e);
            t.added.clear();
            t.removed.clear();
            t.dangling_removed.clear();
            t.size_chars = crate::trust::policy_size_chars(&role.trust_policy);
        }

        let mut results = Vec::new();
        let mut seen = BTreeSet::new();
        for (name, result) in described {
            if let Some(r) = result {
                seen.insert(name);
                results.push(r);
            }
        }
        if let Some(wanted) = &scope.clusters {
            for name in wanted.iter().filter(|n| !seen.contains(*n)) {
                let reason = format!(
                    "no cluster named {name} carrying the tag {}={} in {}",
                    self.config.cluster_tag.key,
                    self.config.cluster_tag.value,
                    self.config.cluster_regions.join(", ")
                );
                let region = scope.region.as_deref().unwrap_or_default();
                failures.push(skipped_result(name, region, Backend::ConfigMap, reason));
            }
        }
        results.append(&mut failures);
        results.sort_by(|a, b| {
            (&a.report.region, &a.report.name).cmp(&(&b.report.region, &b.report.name))
        });
        report.conflict_retries = goal.retries.load(Ordering::Relaxed);
        for r in results {
            plan.clusters.extend(r.plan);
            report.clusters.push(r.report);
        }
        self.finish(plan, report, started)
    }

    /// `UpdateAssumeRolePolicy`, if the lease (when one is held) has time enough left
    /// for the write and its retries.
    async fn write_trust_policy(&self, lease: &TrustLease, after: &str) -> Result<(), String> {
        if let TrustLease::Held(lease) = lease {
            let left = lease.remaining();
            if left < MIN_LEASE_FOR_WRITE {
                return Err(format!(
                    "trust policy not written: the lock's lease has {} s left, less than the {} s a write may take",
                    left.as_secs(),
                    MIN_LEASE_FOR_WRITE.as_secs()
                ));
            }
        }
        self.iam
            .update_trust_policy(&self.config.admin_role_name, after)
            .await
            .map_err(|e| e.to_string())
    }

    /// Takes the trust-policy lease for a run that may write the trust policy
    /// (`wanted`).
    async fn acquire_trust_lock(&self, wanted: bool) -> TrustLease {
        if !wanted {
            return TrustLease::NotNeeded;
        }
        let lock_id = trust_policy_lock_id(self.config.admin_role_name.as_str());
        match self
            .lock
            .acquire(&lock_id, &new_owner(), TRUST_LOCK_TTL)
            .await
        {
            Ok(lease) => TrustLease::Held(lease),
            Err(e) => {
                tracing::error!(error = %e, "the trust policy will not be edited: no lock");
                TrustLease::Unavailable(e.to_string())
            }
        }
    }

    /// Gives the lease back, if held. A failure is logged: the lease then expires on
    /// its own.
    async fn release_trust_lock(&self, lease: TrustLease) {
        let TrustLease::Held(lease) = lease else {
            return;
        };
        match self.lock.release(&lease).await {
            Ok(()) => {}
            Err(e @ LockError::Lost { .. }) => tracing::error!(
                error = %e,
                "the trust-policy write outlived its lease: another writer may have \
                 overwritten it; the next full reconcile repairs that"
            ),
            Err(e) => tracing::warn!(
                error = %e,
                ttl_s = TRUST_LOCK_TTL.as_secs(),
                "cannot release the trust-policy lock; it expires on its own"
            ),
        }
    }

    /// Completes the report (the plan on dry runs, how long the run took since
    /// `started`) and logs its summary.
    fn finish(&self, plan: Plan, mut report: RunReport, started: tokio::time::Instant) -> Outcome {
        report.duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        if report.dry_run {
            report.plan = serde_json::to_value(&plan).ok();
        }
        tracing::info!(
            dry_run = report.dry_run,
            succeeded = report.succeeded(),
            trust_changed = report.trust_policy.changed,
            clusters = report.clusters.len(),
            conflict_retries = report.conflict_retries,
            duration_ms = report.duration_ms,
            "run finished"
        );
        Outcome { plan, report }
    }

    /// The clusters in scope, by region (the regions are listed at once), and results
    /// for the regions that could not be listed.
    async fn cluster_names(
        &self,
        scope: &Scope,
    ) -> (Vec<(String, ClusterName)>, Vec<ClusterResult>) {
        let listed = futures::future::join_all(
            self.config
                .cluster_regions
                .iter()
                .map(|region| async move { (region, self.eks.list_clusters(region).await) }),
        )
        .await;
        let mut names = Vec::new();
        let mut failures = Vec::new();
        for (region, r) in listed {
            match r {
                Ok(list) => names.extend(
                    list.into_iter()
                        .filter(|n| scope.includes(n))
                        .map(|n| (region.clone(), n)),
                ),
                Err(e) => {
                    tracing::error!(region = %region, error = %e, "cannot list clusters");
                    failures.push(failed_result(
                        None,
                        region,
                        Backend::ConfigMap,
                        e.to_string(),
                    ));
                }
            }
        }
        (names, failures)
    }

    /// Reconciles one described cluster if it carries the cluster tag. `None` (with
    /// the name) for an untagged cluster: it is neither reported nor touched.
    async fn reconcile_described(
        &self,
        region: String,
        name: ClusterName,
        info: Result<ClusterInfo, String>,
        goal: &ClusterGoal,
        dry_run: bool,
    ) -> (ClusterName, Option<ClusterResult>) {
        match info {
            Ok(info) => {
                if info.has_tag(&self.config.cluster_tag.key, &self.config.cluster_tag.value) {
                    let r = self.reconcile_cluster(info, goal, dry_run).await;
                    (name, Some(r))
                } else {
                    tracing::debug!(cluster = %name, region = %region, "not tagged; left alone");
                    (name, None)
                }
            }
            Err(e) => {
                tracing::error!(cluster = %name, region = %region, error = %e, "cannot describe cluster");
                let r = failed_result(Some(&name), &region, Backend::ConfigMap, e);
                (name, Some(r))
            }
        }
    }

    async fn reconcile_cluster(
        &self,
        cluster: ClusterInfo,
        goal: &ClusterGoal,
        dry_run: bool,
    ) -> ClusterResult {
        let backend = if cluster.auth_mode.uses_access_entries() {
            Backend::AccessEntries
        } else {
            Backend::ConfigMap
        };
        if cluster.endpoint.is_empty() {
            let reason = format!(
                "cluster is {} and has no endpoint yet; the next run will bring it in",
                if cluster.status.is_empty() {
                    "not active"
                } else {
                    &cluster.status
                }
            );
            return skipped_result(&cluster.name, &cluster.region, backend, reason);
        }
        let result = match cluster.auth_mode {
            AuthMode::ConfigMap => self.reconcile_aws_auth(&cluster, goal, dry_run, true).await,
            AuthMode::Api | AuthMode::ApiAndConfigMap => {
                self.reconcile_access_entries(&cluster, goal, dry_run).await
            }
        };
        match result {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(cluster = %cluster.name, region = %cluster.region, error = %e, "cluster failed");
                failed_result(Some(&cluster.name), &cluster.region, backend, e)
            }
        }
    }

    /// Offboarded users for one aws-auth document: the run's, plus this account's
    /// users mapped directly in `mapUsers` who no longer exist.
    fn offboarded_for(&self, goal: &ClusterGoal, user_arns: &[String]) -> Vec<Offboarded> {
        let mut out = goal.offboarded.clone();
        if let Some(existing) = &goal.existing_users {
            for raw in user_arns {
                if let Ok(arn) = raw.parse::<UserArn>()
                    && arn.account() == goal.account
                    && !existing.contains(&arn.name().as_str().to_ascii_lowercase())
                {
                    tracing::info!(user = %arn, "direct mapping of a user that no longer exists");
                    out.push(Offboarded::Arn(arn));
                }
            }
        }
        out
    }

    async fn reconcile_aws_auth(
        &self,
        cluster: &ClusterInfo,
        goal: &ClusterGoal,
        dry_run: bool,
        create_if_absent: bool,
    ) -> Result<ClusterResult, String> {
        let store = self
            .kube
            .connect(&cluster.connection())
            .await
            .map_err(|e| e.to_string())?;
        let mut budget = RetryBudget::new(self.conflict_backoff);
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let current = match store.read().await {
                Ok(c) => c,
                Err(e) if budget.allows(&e) => {
                    self.retry_pause(cluster, goal, attempt, &e, &mut budget)
                        .await;
                    continue;
                }
                Err(e) => {
                    return Err(format!(
                        "aws-auth read failed after {attempt} attempt(s): {e}"
                    ));
                }
            };
            if current.is_none() && !create_if_absent {
                return Ok(unchanged_result(cluster, Backend::AccessEntries));
            }
            let data = current.as_ref().map(|c| &c.data);
            let user_arns = data.map(map_users_arns).unwrap_or_default();
            let offboarded = self.offboarded_for(goal, &user_arns);
            if !create_if_absent && !mentions_offboarded(&user_arns, &offboarded) {
                // API_AND_CONFIG_MAP: aws-auth is only edited to take users out.
                return Ok(unchanged_result(cluster, Backend::AccessEntries));
            }
            let edit = edit_aws_auth(data, &goal.admin, &offboarded)
                .map_err(|e| format!("refusing to edit aws-auth: {e}"))?;
            let backend = if create_if_absent {
                Backend::ConfigMap
            } else {
                Backend::AccessEntries
            };
            if !edit.changed() {
                return Ok(unchanged_result(cluster, backend));
            }
            let changes: Vec<String> = edit.changes.iter().map(ToString::to_string).collect();
            let create = current.is_none();
            let status = if create {
                ClusterStatus::Created
            } else {
                ClusterStatus::Updated
            };
            let plan = ClusterPlan {
                name: cluster.name.clone(),
                region: cluster.region.clone(),
                backend,
                change: ClusterChange::AwsAuth {
                    before: current.as_ref().map(|c| c.data.clone()),
                    after: edit.data.clone(),
                    changes: changes.clone(),
                    create,
                },
            };
            let done = || ClusterResult {
                plan: Some(plan),
                report: ClusterReport {
                    name: cluster.name.to_string(),
                    region: cluster.region.clone(),
                    backend,
                    status,
                    error: None,
                    changes,
                },
            };
            if dry_run {
                return Ok(done());
            }
            let written = match &current {
                None => store.create(edit.data).await,
                Some(c) => store.replace(edit.data, &c.resource_version).await,
            };
            match written {
                Ok(()) => {
                    tracing::info!(cluster = %cluster.name, region = %cluster.region, "aws-auth written");
                    return Ok(done());
                }
                Err(e) if budget.allows(&e) => {
                    self.retry_pause(cluster, goal, attempt, &e, &mut budget)
                        .await;
                }
                Err(e) => {
                    return Err(format!(
                        "aws-auth write failed after {attempt} attempt(s): {e}"
                    ));
                }
            }
        }
    }

    /// Counts a retry of the aws-auth read-modify-write and waits before it (see
    /// [`RetryBudget::pause`]).
    async fn retry_pause(
        &self,
        cluster: &ClusterInfo,
        goal: &ClusterGoal,
        attempt: u32,
        error: &K8sError,
        budget: &mut RetryBudget,
    ) {
        goal.retries.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(
            cluster = %cluster.name,
            region = %cluster.region,
            attempt,
            error = %error,
            "aws-auth read-modify-write will be retried from a fresh read"
        );
        tokio::time::sleep(budget.pause(error)).await;
    }

    async fn reconcile_access_entries(
        &self,
        cluster: &ClusterInfo,
        goal: &ClusterGoal,
        dry_run: bool,
    ) -> Result<ClusterResult, String> {
        let (region, name) = (cluster.region.as_str(), &cluster.name);
        let principals = self
            .eks
            .list_access_entries(region, name)
            .await
            .map_err(|e| e.to_string())?;
        let mut views = Vec::new();
        let mut user_arns = Vec::new();
        for p in &principals {
            if let Ok(role) = p.parse::<RoleArn>() {
                if role.eq_ignoring_path_and_case(&goal.role_arn)
                    && let Some(v) = self
                        .eks
                        .describe_access_entry(region, name, p)
                        .await
                        .map_err(|e| e.to_string())?
                {
                    views.push(v);
                }
            } else if p.parse::<UserArn>().is_ok() {
                user_arns.push(p.clone());
                views.push(AccessEntryView {
                    principal_arn: p.clone(),
                    username: None,
                    kubernetes_groups: Vec::new(),
                    policies: Vec::new(),
                    created_at: None,
                });
            }
        }
        let offboarded = self.offboarded_for(goal, &user_arns);
        let ae = plan_access_entries(&views, &goal.admin_entry, &offboarded, goal.role_created);
        let mut changes = access_entry_changes(&ae);
        if let Some(stale) = &ae.recreate_admin_entry {
            tracing::warn!(cluster = %cluster.name, region = %cluster.region, entry_created_at = %stale.entry_created_at, role_created_at = %stale.role_created_at, "the admin role was re-created after its access entry; re-creating the entry");
            changes.insert(0, stale.to_string());
        }
        let mut status = if ae.create_admin_entry.is_some() && ae.recreate_admin_entry.is_none() {
            ClusterStatus::Created
        } else if ae.is_empty() {
            ClusterStatus::Unchanged
        } else {
            ClusterStatus::Updated
        };
        if !dry_run && !ae.is_empty() {
            let existing_admin = views
                .iter()
                .find(|v| {
                    v.principal_arn
                        .parse::<RoleArn>()
                        .is_ok_and(|r| r.eq_ignoring_path_and_case(&goal.role_arn))
                })
                .map(|v| v.principal_arn.clone());
            self.apply_access_entries(
                cluster,
                &ae,
                existing_admin.as_deref(),
                goal.role_arn.as_str(),
            )
            .await?;
            tracing::info!(cluster = %cluster.name, region = %cluster.region, "access entries written");
        }
        let mut plan = ClusterPlan {
            name: cluster.name.clone(),
            region: cluster.region.clone(),
            backend: Backend::AccessEntries,
            change: if ae.is_empty() {
                ClusterChange::Unchanged
            } else {
                ClusterChange::AccessEntries(ae)
            },
        };
        // API_AND_CONFIG_MAP: aws-auth is still honoured; take offboarded users out.
        if cluster.auth_mode == AuthMode::ApiAndConfigMap {
            let r = self
                .reconcile_aws_auth(cluster, goal, dry_run, false)
                .await?;
            if let Some(p) = r
                .plan
                .filter(|p| matches!(p.change, ClusterChange::AwsAuth { .. }))
            {
                changes.extend(r.report.changes.iter().map(|c| format!("aws-auth: {c}")));
                if status == ClusterStatus::Unchanged {
                    status = ClusterStatus::Updated;
                    plan = p;
                }
            }
        }
        Ok(ClusterResult {
            plan: Some(plan),
            report: ClusterReport {
                name: cluster.name.to_string(),
                region: cluster.region.clone(),
                backend: Backend::AccessEntries,
                status,
                error: None,
                changes,
            },
        })
    }

    async fn apply_access_entries(
        &self,
        cluster: &ClusterInfo,
        ae: &crate::accessentry::AccessEntryPlan,
        existing_admin: Option<&str>,
        fallback_admin: &str,
    ) -> Result<(), String> {
        let (region, name) = (cluster.region.as_str(), &cluster.name);
        let mut admin_principal = None;
        // A stale admin entry goes first: the new one may have the same principal ARN.
        if let Some(stale) = &ae.recreate_admin_entry {
            self.eks
                .delete_access_entry(region, name, &stale.principal_arn)
                .await
                .map_err(|e| e.to_string())?;
        }
        if let Some(e) = &ae.create_admin_entry {
            self.eks
                .create_access_entry(
                    region,
                    name,
                    &e.principal_arn,
                    e.username.as_deref(),
                    &e.kubernetes_groups,
                )
                .await
                .map_err(|e| e.to_string())?;
            admin_principal = Some(e.principal_arn.clone());
        }
        if let Some(e) = &ae.update_admin_entry {
            self.eks
                .update_access_entry(
                    region,
                    name,
                    &e.principal_arn,
                    e.username.as_deref(),
                    &e.kubernetes_groups,
                )
                .await
                .map_err(|e| e.to_string())?;
            admin_principal = Some(e.principal_arn.clone());
        }
        if ae.associate_admin_policy {
            let principal = admin_principal
                .or_else(|| existing_admin.map(str::to_owned))
                .unwrap_or_else(|| fallback_admin.to_owned());
            self.eks
                .associate_access_policy(
                    region,
                    name,
                    &principal,
                    crate::accessentry::CLUSTER_ADMIN_POLICY,
                )
                .await
                .map_err(|e| e.to_string())?;
        }
        for p in &ae.delete_entries {
            self.eks
                .delete_access_entry(region, name, p)
                .await
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}

/// The retries left to one aws-auth read-modify-write: conflicts, transient errors
/// (5xx, 429, a failed connection) and timeouts have budgets of their own
/// ([`MAX_CONFLICT_ATTEMPTS`], [`MAX_WRITE_ATTEMPTS`], [`MAX_TIMEOUT_ATTEMPTS`]).
struct RetryBudget {
    conflicts: u32,
    transients: u32,
    timeouts: u32,
    /// The next pause after a transient error (doubles up to [`MAX_RETRY_PAUSE`]).
    delay: Duration,
    /// The longest pause after a conflict.
    conflict_pause: Duration,
}

impl RetryBudget {
    fn new(backoff: Duration) -> Self {
        RetryBudget {
            conflicts: 0,
            transients: 0,
            timeouts: 0,
            delay: backoff,
            conflict_pause: backoff / 4,
        }
    }

    /// Whether `e` may be retried; counts it against its budget if so.
    fn allows(&mut self, e: &K8sError) -> bool {
        let (used, max) = match e {
            K8sError::Conflict(_) => (&mut self.conflicts, MAX_CONFLICT_ATTEMPTS),
            // The 30 s bound already holds the kube client's own retries: no more.
            K8sError::Timeout { .. } => return false,
            K8sError::Network {
                timed_out: true, ..
            } => (&mut self.timeouts, MAX_TIMEOUT_ATTEMPTS),
            e if e.is_retryable() => (&mut self.transients, MAX_WRITE_ATTEMPTS),
            _ => return false,
        };
        if *used + 1 < max {
            *used += 1;
            true
        } else {
            false
        }
    }

    /// The pause before the next attempt: after a conflict, a short jittered one (a
    /// fresh read is all it takes); after a transient error, `delay` jittered (half of
    /// it at least), which then doubles.
    fn pause(&mut self, e: &K8sError) -> Duration {
        let mut rng = rand::rng();
        if matches!(e, K8sError::Conflict(_)) {
            let max = self.conflict_pause.as_millis() as u64;
            return Duration::from_millis(rng.random_range(0..=max));
        }
        let half = self.delay / 2;
        let jitter = rng.random_range(0..=half.as_millis() as u64);
        self.delay = (self.delay * 2).min(MAX_RETRY_PAUSE);
        half + Duration::from_millis(jitter)
    }
}

/// The scope an EKS event calls for: the cluster it names, trust policy untouched.
pub fn eks_event_scope(ev: &EksClusterEvent) -> Scope {
    let from_arn = ev.resource_arn.as_deref().and_then(cluster_name_from_arn);
    match ev.cluster.clone().or(from_arn) {
        Some(name) => Scope {
            clusters: Some(BTreeSet::from([name])),
            skip_trust_policy: true,
            region: ev.region.clone(),
        },
        None => Scope {
            clusters: None,
            skip_trust_policy: true,
            region: ev.region.clone(),
        },
    }
}

/// Whether any of `user_arns` (from `mapUsers`) names an offboarded user.
fn mentions_offboarded(user_arns: &[String], offboarded: &[Offboarded]) -> bool {
    user_arns
        .iter()
        .any(|raw| offboarded.iter().any(|o| o.matches(raw)))
}

/// `userarn` of every `mapUsers` entry (a light, read-only parse; the editor does the
/// real one and refuses broken YAML).
fn map_users_arns(data: &BTreeMap<String, String>) -> Vec<String> {
    let Some(raw) = data.get(MAP_USERS) else {
        return Vec::new();
    };
    parse_entries(MAP_USERS, raw)
        .unwrap_or_default()
        .iter()
        .filter_map(|e| {
            e.as_object()?
                .iter()
                .rev()
                .find(|(k, _)| k.eq_ignore_ascii_case("userarn"))
                .and_then(|(_, v)| v.as_str().map(str::to_owned))
        })
        .collect()
}

fn access_entry_changes(ae: &crate::accessentry::AccessEntryPlan) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(e) = &ae.create_admin_entry {
        out.push(format!("create access entry for {}", e.principal_arn));
    }
    if let Some(e) = &ae.update_admin_entry {
        out.push(format!("update access entry for {}", e.principal_arn));
    }
    if ae.associate_admin_policy {
        out.push(format!(
            "associate {} (cluster scope)",
            crate::accessentry::CLUSTER_ADMIN_POLICY
        ));
    }
    for p in &ae.delete_entries {
        out.push(format!("delete access entry for {p}"));
    }
    out
}

fn unchanged_result(cluster: &ClusterInfo, backend: Backend) -> ClusterResult {
    ClusterResult {
        plan: Some(ClusterPlan {
            name: cluster.name.clone(),
            region: cluster.region.clone(),
            backend,
            change: ClusterChange::Unchanged,
        }),
        report: ClusterReport {
            name: cluster.name.to_string(),
            region: cluster.region.clone(),
            backend,
            status: ClusterStatus::Unchanged,
            error: None,
            changes: Vec::new(),
        },
    }
}

fn failed_result(
    name: Option<&ClusterName>,
    region: &str,
    backend: Backend,
    error: String,
) -> ClusterResult {
    ClusterResult {
        plan: name.map(|name| ClusterPlan {
            name: name.clone(),
            region: region.to_owned(),
            backend,
            change: ClusterChange::Failed {
                error: error.clone(),
            },
        }),
        report: ClusterReport {
            name: name.map_or_else(|| "*".to_owned(), ToString::to_string),
            region: region.to_owned(),
            backend,
            status: ClusterStatus::Failed,
            error: Some(error),
            changes: Vec::new(),
        },
    }
}

fn skipped_result(
    name: &ClusterName,
    region: &str,
    backend: Backend,
    reason: String,
) -> ClusterResult {
    ClusterResult {
        plan: Some(ClusterPlan {
            name: name.clone(),
            region: region.to_owned(),
            backend,
            change: ClusterChange::Skipped {
                reason: reason.clone(),
            },
        }),
        report: ClusterReport {
            name: name.to_string(),
            region: region.to_owned(),
            backend,
            status: ClusterStatus::Skipped,
            error: None,
            changes: vec![reason],
        },
    }
}

/// What happened to an event.
#[derive(Debug, Clone)]
pub enum EventResult {
    /// Nothing to do; the reason is logged and returned.
    Ignored(String),
    /// The engine ran.
    Ran(Box<RunReport>),
}

impl<I: IamApi, E: EksApi, K: KubeConnector> Engine<I, E, K> {
    /// What the `iam-events` function does with an EventBridge payload (also the CLI's
    /// `handle-event`): IAM user events run the engine, everything else is ignored
    /// with a reason.
    pub async fn handle_iam_events_payload(
        &self,
        raw: &serde_json::Value,
        dry_run: bool,
    ) -> EventResult {
        match classify_event(raw, &self.config) {
            EventClass::Iam(ev) => {
                tracing::info!(
                    user = %ev.user_name,
                    kind = %ev.kind,
                    event_id = ev.event_id.as_deref().unwrap_or(""),
                    "IAM event"
                );
                EventResult::Ran(Box::new(self.run_iam_event(&ev, dry_run).await.report))
            }
            EventClass::Ignored { reason } => {
                tracing::info!(reason = %reason, "event ignored");
                EventResult::Ignored(reason)
            }
            EventClass::Eks(ev) => {
                let reason = format!(
                    "EKS {} event: handled by the reconcile function, not iam-events",
                    ev.kind
                );
                tracing::info!(reason = %reason, "event ignored");
                EventResult::Ignored(reason)
            }
            EventClass::Schedule => {
                let reason = "scheduled event: handled by the reconcile function".to_owned();
                tracing::info!(reason = %reason, "event ignored");
                EventResult::Ignored(reason)
            }
        }
    }
}

/// The engine over the real AWS SDK and kube clients.
pub type SdkEngine = Engine<SdkIam, SdkEks, EksKubeConnector>;

/// Why the engine could not be built at start-up.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("invalid configuration: {0}")]
    Config(#[from] crate::config::ConfigError),
}

impl SdkEngine {
    /// Reads the configuration from the environment and the AWS SDK configuration the
    /// standard way (credentials chain, `AWS_REGION`, `AWS_ENDPOINT_URL*`).
    pub async fn from_env() -> Result<(SdkEngine, SdkConfig), StartupError> {
        let config = Config::from_env()?;
        let sdk = crate::sdk::load_sdk_config().await;
        Ok((SdkEngine::from_sdk(config, &sdk), sdk))
    }

    /// The engine over `sdk`; trust-policy writes take a DynamoDB lease when
    /// `config.trust_lock_table` is set.
    /// Every client gets [`crate::sdk::timeout_config`] unless `sdk` sets its own.
    pub fn from_sdk(config: Config, sdk: &SdkConfig) -> SdkEngine {
        let sdk = &crate::sdk::with_timeouts(sdk);
        let lock: Arc<dyn TrustLock> = match &config.trust_lock_table {
            Some(table) => Arc::new(DynamoDbLock::new(
                aws_sdk_dynamodb::Client::new(sdk),
                table.clone(),
            )),
            None => Arc::new(NoLock),
        };
        Engine::new(
            config,
            SdkIam::new(aws_sdk_iam::Client::new(sdk)),
            SdkEks::new(sdk.clone()),
            EksKubeConnector::new(sdk.clone()),
        )
        .with_trust_lock(lock)
    }
}

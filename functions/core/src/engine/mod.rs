//! Orchestration: IAM → the tier roles' trust policies → every tagged cluster, in the
//! hub's account and in the member accounts of the configuration.
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
//! cycles; the clusters are listed while the lease is awaited, described beside the
//! reads under it, and reconciled once the role and the users are in. Dry runs and
//! runs that leave the trust policy alone take no lease. One cluster failing never
//! stops the others; a failed trust-policy write does not stop the clusters (their
//! admin mapping does not depend on it). A dry run does everything but the writes.
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

//!
//! Files: `run` (the run's steps, the report, the access events), `trust_step`
//! (lease, trust-policy edit and write, per tier role), `clusters` (list, describe,
//! dispatch by backend; what each tier maps where), `aws_auth` (the aws-auth
//! read-modify-write, [`write_with_retry`]), `in_sync` (the aws-auth documents found
//! in sync, not parsed again on a warm engine), `rbac` (the tiers' bindings on aws-auth
//! clusters), `access_entries`, `outcome` (each cluster's plan and report part) and
//! [`Error`].

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use crate::adapters::aws::lock::NoLock;
use crate::model::arn::ClusterName;
use crate::model::config::Config;
use crate::model::mapping::Offboarded;
use crate::output::events::Cause;
use crate::output::plan::Plan;
use crate::output::report::RunReport;
use crate::policy::desired::{IamUser, change_for_event, offboarded_for_event, tier_members};
use crate::policy::event::{
    EksClusterEvent, EventClass, IamEventKind, IamUserEvent, TagHint, classify_event,
};
use crate::policy::trust::PrincipalChange;
use crate::ports::{AccessEventSink, EksApi, IamApi, KubeConnector, NoEvents, TrustLock};

mod access_entries;
mod audit;
mod aws_auth;
mod clusters;
mod error;
mod in_sync;
mod outcome;
mod rbac;
mod run;
mod shards;
mod trust_step;

pub use audit::AuditClusters;
pub use aws_auth::{
    AwsAuthWrite, MAX_CONFLICT_ATTEMPTS, MAX_RETRY_PAUSE, MAX_TIMEOUT_ATTEMPTS, MAX_WRITE_ATTEMPTS,
    RetryBudget, write_with_retry,
};
pub use error::{Error, ErrorKind};

/// Whether a run writes: `DryRun` reads and plans everything and writes nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunMode {
    Apply,
    DryRun,
}

impl RunMode {
    /// `DryRun` when `dry_run` (a payload's or a flag's boolean).
    pub fn from_dry_run(dry_run: bool) -> Self {
        if dry_run {
            RunMode::DryRun
        } else {
            RunMode::Apply
        }
    }

    pub fn is_dry_run(self) -> bool {
        self == RunMode::DryRun
    }

    pub fn is_apply(self) -> bool {
        self == RunMode::Apply
    }
}

/// Which part of the world a run covers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    /// `None`: every tagged cluster. `Some`: only these (still only if tagged).
    pub clusters: Option<BTreeSet<ClusterName>>,
    /// Skip the trust-policy edit (EKS events: only the cluster needs work).
    pub skip_trust_policy: bool,
    /// Leave the tiers' RBAC bindings alone (IAM events: a membership changed, not the
    /// configuration or the namespaces the bindings follow; full runs repair them).
    pub skip_bindings: bool,
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
            ..Scope::default()
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

/// What happened to an event.
#[derive(Debug, Clone)]
pub enum EventResult {
    /// Nothing to do; the reason is logged and returned.
    Ignored(String),
    /// The engine ran.
    Ran(Box<RunReport>),
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
    /// Where grants and revocations are announced ([`NoEvents`] unless configured).
    events: Arc<dyn AccessEventSink>,
    /// aws-auth documents found in sync, not parsed again while nothing changes.
    in_sync: in_sync::InSync,
}

/// What a run starts from: the change to each tier's members and whom to offboard.
#[derive(Default)]
struct RunInput {
    /// Per tier, in the configuration's order (`None`: the tier's trust policy is
    /// left as it is). Empty: no tier changes.
    changes: Vec<Option<PrincipalChange>>,
    offboarded: Vec<Offboarded>,
    /// Every user, when a full listing was read.
    users: Option<Vec<IamUser>>,
    /// Per tier, its members in a full listing.
    members: Vec<usize>,
    /// Why the input is incomplete (reported as the trust policy's error).
    error: Option<Error>,
    /// Nothing can be decided (the event's user could not be read): stop.
    stop: bool,
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
            events: Arc::new(NoEvents),
            in_sync: in_sync::InSync::default(),
        }
    }

    /// The lease taken around every trust-policy read-modify-write.
    pub fn with_trust_lock(mut self, lock: Arc<dyn TrustLock>) -> Self {
        self.lock = lock;
        self
    }

    /// Where the access events of applied runs go.
    pub fn with_access_events(mut self, events: Arc<dyn AccessEventSink>) -> Self {
        self.events = events;
        self
    }

    /// First pause after an aws-auth conflict (doubles each retry).
    pub fn with_conflict_backoff(mut self, backoff: Duration) -> Self {
        self.conflict_backoff = backoff;
        self
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// What a full run would change (nothing is written).
    pub async fn plan_full(&self, scope: &Scope) -> Plan {
        self.run_full(scope, RunMode::DryRun).await.plan
    }

    /// Applies a full reconcile.
    pub async fn apply_full(&self, scope: &Scope) -> RunReport {
        self.run_full(scope, RunMode::Apply).await.report
    }

    /// A full reconcile: every user, the trust policy, every tagged cluster in scope.
    pub async fn run_full(&self, scope: &Scope, mode: RunMode) -> Outcome {
        let input = async {
            match self.iam.list_users().await {
                Ok(users) => {
                    let tiers = &self.config.access.tiers;
                    let desired: Vec<_> = tiers.iter().map(|t| tier_members(&users, t)).collect();
                    RunInput {
                        members: desired.iter().map(BTreeSet::len).collect(),
                        changes: if scope.skip_trust_policy {
                            Vec::new()
                        } else {
                            desired
                                .into_iter()
                                .map(|d| Some(PrincipalChange::Set(d)))
                                .collect()
                        },
                        users: Some(users),
                        ..RunInput::default()
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot list IAM users");
                    // Every cluster still gets its admin mapping; nobody is offboarded.
                    RunInput {
                        error: Some(e.into()),
                        ..RunInput::default()
                    }
                }
            }
        };
        let writes = mode.is_apply() && !scope.skip_trust_policy;
        let touches = vec![true; self.config.access.tiers.len()];
        self.run(
            Box::pin(input),
            touches,
            writes,
            scope,
            mode,
            Cause::reconcile(),
        )
        .await
    }

    /// An IAM event, optionally as a dry run. The user is re-read: the event only
    /// says whom to look at.
    pub async fn run_iam_event(&self, ev: &IamUserEvent, mode: RunMode) -> Outcome {
        let tiers = &self.config.access.tiers;
        let input = async {
            let user = match self.read_event_user(ev).await {
                Ok(u) => u,
                Err(e) => {
                    tracing::error!(user = %ev.user_name, error = %e, "cannot read the user");
                    return RunInput {
                        error: Some(e),
                        stop: true,
                        ..RunInput::default()
                    };
                }
            };
            let changes: Vec<Option<PrincipalChange>> = tiers
                .iter()
                .enumerate()
                .map(|(i, t)| {
                    let hint = ev.hints.get(i).copied().unwrap_or(TagHint::Unknown);
                    (hint != TagHint::Unchanged)
                        .then(|| change_for_event(ev, user.as_ref(), t, hint))
                        .flatten()
                })
                .collect();
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
            for (t, change) in tiers.iter().zip(&changes) {
                let shown = change
                    .as_ref()
                    .map_or_else(|| "none".to_owned(), ToString::to_string);
                tracing::info!(user = %ev.user_name, tier = %t.name, exists = user.is_some(), change = %shown, "event re-read");
            }
            RunInput {
                changes,
                offboarded,
                ..RunInput::default()
            }
        };
        let touches = (0..tiers.len()).map(|i| ev.touches(i)).collect();
        let cause = Cause {
            event_name: ev.kind.to_string(),
            event_id: ev.event_id.clone(),
            event_time: ev.event_time.clone(),
            user_name: Some(ev.user_name.to_string()),
        };
        let scope = Scope {
            skip_bindings: true,
            ..Scope::all()
        };
        self.run(
            Box::pin(input),
            touches,
            mode.is_apply(),
            &scope,
            mode,
            cause,
        )
        .await
    }

    /// The event's user, re-read, with their groups when a tier the event touches
    /// selects members by group (`ListGroupsForUser`, beside `GetUser`).
    async fn read_event_user(&self, ev: &IamUserEvent) -> Result<Option<IamUser>, Error> {
        let needs_groups = self
            .config
            .access
            .tiers
            .iter()
            .enumerate()
            .any(|(i, t)| ev.touches(i) && !t.members.groups.is_empty());
        if !needs_groups {
            return Ok(self.iam.get_user(&ev.user_name).await?);
        }
        let (user, groups) = futures::join!(
            self.iam.get_user(&ev.user_name),
            self.iam.user_groups(&ev.user_name)
        );
        let (user, groups) = (user?, groups?);
        Ok(user.map(|mut u| {
            u.groups = groups.unwrap_or_default();
            u
        }))
    }

    /// An EKS event: reconcile the cluster it names (all tagged clusters if it names
    /// none), without touching the trust policy.
    pub async fn handle_eks_event(&self, ev: &EksClusterEvent) -> RunReport {
        self.apply_full(&eks_event_scope(ev)).await
    }

    /// What the `iam-events` function does with an EventBridge payload (also the CLI's
    /// `handle-event`): IAM user events run the engine, everything else is ignored
    /// with a reason.
    pub async fn handle_iam_events_payload(
        &self,
        raw: &serde_json::Value,
        mode: RunMode,
    ) -> EventResult {
        let reason = match classify_event(raw, &self.config) {
            EventClass::Iam(ev) => {
                tracing::info!(
                    user = %ev.user_name,
                    kind = %ev.kind,
                    event_id = ev.event_id.as_deref().unwrap_or(""),
                    "IAM event"
                );
                return EventResult::Ran(Box::new(self.run_iam_event(&ev, mode).await.report));
            }
            EventClass::IamGroupDeleted { group } => {
                tracing::info!(group = %group, "IAM group deleted: every tier's members re-read");
                return EventResult::Ran(Box::new(self.run_full(&Scope::all(), mode).await.report));
            }
            EventClass::Ignored { reason } => reason,
            EventClass::Eks(ev) => format!(
                "EKS {} event: handled by the reconcile function, not iam-events",
                ev.kind
            ),
            EventClass::Schedule => "scheduled event: handled by the reconcile function".to_owned(),
        };
        tracing::info!(reason = %reason, "event ignored");
        EventResult::Ignored(reason)
    }
}

/// The scope an EKS event calls for: the cluster it names, trust policy untouched.
pub fn eks_event_scope(ev: &EksClusterEvent) -> Scope {
    Scope {
        clusters: Some(BTreeSet::from([ev.cluster.clone()])),
        skip_trust_policy: true,
        region: ev.region.clone(),
        ..Scope::default()
    }
}

//! aws-auth: the read-modify-write of one cluster's ConfigMap, with the [`AwsAuth`]
//! verbs each authentication mode calls for, and the retry loop that the engine and
//! `bootstrap` share.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::adapters::kube::store::K8sError;
use crate::backoff::Backoff;
use crate::engine::clusters::ClusterGoal;
use crate::engine::outcome::ClusterOutcome;
use crate::engine::{Engine, Error, RunMode};
use crate::model::cluster::{Backend, ClusterEndpoint, ClusterInfo};
use crate::model::mapping::{AdminMapping, Offboarded};
use crate::output::plan::ClusterChange;
use crate::output::report::ClusterStatus;
use crate::policy::awsauth::AwsAuth;
use crate::policy::desired::stale_direct_users;
use crate::ports::{AwsAuthObject, AwsAuthStore, EksApi, IamApi, KubeConnector};

/// How many times the aws-auth read-modify-write is attempted when it keeps meeting
/// transient API errors (5xx, 429, a failed connection); the pause between attempts
/// doubles.
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
pub const MAX_RETRY_PAUSE: Duration = Duration::from_secs(5);

/// The retries left to one aws-auth read-modify-write: conflicts, transient errors
/// (5xx, 429, a failed connection) and timeouts have budgets of their own
/// ([`MAX_CONFLICT_ATTEMPTS`], [`MAX_WRITE_ATTEMPTS`], [`MAX_TIMEOUT_ATTEMPTS`]).
#[derive(Debug, Clone)]
pub struct RetryBudget {
    conflicts: u32,
    transients: u32,
    timeouts: u32,
    /// After a transient error or a timeout: `backoff`, doubling up to
    /// [`MAX_RETRY_PAUSE`].
    transient_pause: Backoff,
    /// After a conflict: a quarter of `backoff` at most (a fresh read is all it takes).
    conflict_pause: Backoff,
}

impl RetryBudget {
    /// Budgets for one read-modify-write whose first pause is `backoff`.
    pub fn new(backoff: Duration) -> Self {
        RetryBudget {
            conflicts: 0,
            transients: 0,
            timeouts: 0,
            transient_pause: Backoff::new(backoff, MAX_RETRY_PAUSE),
            conflict_pause: Backoff::new(backoff / 4, backoff / 4),
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

    /// Waits before the next attempt, by the kind of `e`.
    async fn pause(&mut self, e: &K8sError) {
        if matches!(e, K8sError::Conflict(_)) {
            self.conflict_pause.wait().await;
        } else {
            self.transient_pause.wait().await;
        }
    }
}

/// What the engine does with a cluster's aws-auth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum AwsAuthJob {
    /// `CONFIG_MAP`: aws-auth is ours to keep: `ensure_role` and `remove_users`;
    /// created when absent.
    Own,
    /// `API_AND_CONFIG_MAP`: only offboarded users' `mapUsers` entries are removed
    /// (`mapRoles` is not read); an absent ConfigMap stays absent.
    OffboardOnly,
}

impl AwsAuthJob {
    fn backend(self) -> Backend {
        match self {
            AwsAuthJob::Own => Backend::ConfigMap,
            AwsAuthJob::OffboardOnly => Backend::AccessEntries,
        }
    }
}

/// One edit to write: the new data, and what the caller wants back once written.
pub struct AwsAuthWrite<T> {
    pub data: BTreeMap<String, String>,
    pub payload: T,
}

/// The aws-auth read-modify-write: read, `edit` (`None`: nothing to write), then
/// create or replace at the version read. A conflict, a transient error or a timeout
/// (on the read or the write) starts over from a fresh read after a pause, within
/// `budget`; `on_retry` is told of each retry. With `write` false
/// (a dry run) the edit is returned unwritten. Returns the object read and the
/// payload of the edit, or `None` when `edit` found nothing to do.
pub async fn write_with_retry<S: AwsAuthStore, T>(
    store: &S,
    mut budget: RetryBudget,
    write: bool,
    mut edit: impl FnMut(Option<&AwsAuthObject>) -> Result<Option<AwsAuthWrite<T>>, Error>,
    mut on_retry: impl FnMut(u32, &K8sError),
) -> Result<Option<(Option<AwsAuthObject>, T)>, Error> {
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        let current = match store.read().await {
            Ok(c) => c,
            Err(e) if budget.allows(&e) => {
                on_retry(attempt, &e);
                budget.pause(&e).await;
                continue;
            }
            Err(source) => {
                return Err(Error::AwsAuthRead {
                    attempts: attempt,
                    source,
                });
            }
        };
        let Some(AwsAuthWrite { data, payload }) = edit(current.as_ref())? else {
            return Ok(None);
        };
        if !write {
            return Ok(Some((current, payload)));
        }
        let written = match &current {
            None => store.create(data).await,
            Some(c) => store.replace(data, &c.resource_version).await,
        };
        match written {
            Ok(()) => return Ok(Some((current, payload))),
            Err(e) if budget.allows(&e) => {
                on_retry(attempt, &e);
                budget.pause(&e).await;
            }
            Err(source) => {
                return Err(Error::AwsAuthWrite {
                    attempts: attempt,
                    source,
                });
            }
        }
    }
}

/// What one edit changes, for the plan and the report.
struct Edited {
    after: BTreeMap<String, String>,
    changes: Vec<String>,
}

impl<I: IamApi, E: EksApi, K: KubeConnector> Engine<I, E, K> {
    /// One cluster's aws-auth, as `job` says.
    pub(super) async fn reconcile_aws_auth(
        &self,
        cluster: &ClusterInfo,
        conn: &ClusterEndpoint,
        goal: &ClusterGoal,
        mode: RunMode,
        job: AwsAuthJob,
    ) -> Result<ClusterOutcome, Error> {
        let store = self.kube.connect(conn).await?;
        let budget = RetryBudget::new(self.conflict_backoff);
        let on_retry = |attempt: u32, error: &K8sError| {
            goal.retries.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                cluster = %cluster.name,
                region = %cluster.region,
                attempt,
                error = %error,
                "aws-auth read-modify-write will be retried from a fresh read"
            );
        };
        let edit = |current: Option<&AwsAuthObject>| {
            let seen = current.map(|c| &c.data);
            if seen.is_some_and(|d| self.in_sync.holds(&goal.fingerprint, cluster, job, d)) {
                return Ok(None);
            }
            let edited = aws_auth_edit(job, current, goal, cluster);
            if let (Ok(None), Some(d)) = (&edited, seen) {
                self.in_sync.remember(&goal.fingerprint, cluster, job, d);
            }
            edited
        };
        let written = write_with_retry(&store, budget, mode.is_apply(), edit, on_retry).await?;
        let Some((current, edited)) = written else {
            return Ok(ClusterOutcome::unchanged(cluster, job.backend()));
        };
        if mode.is_apply() {
            tracing::info!(cluster = %cluster.name, region = %cluster.region, "aws-auth written");
        }
        let create = current.is_none();
        let status = if create {
            ClusterStatus::Created
        } else {
            ClusterStatus::Updated
        };
        let change = ClusterChange::AwsAuth {
            before: current.map(|c| c.data),
            after: edited.after,
            changes: edited.changes.clone(),
            create,
        };
        Ok(ClusterOutcome::changed(
            cluster,
            job.backend(),
            status,
            change,
            edited.changes,
        ))
    }
}

/// The edit `job` calls for on `current`; `None` when there is nothing to write.
fn aws_auth_edit(
    job: AwsAuthJob,
    current: Option<&AwsAuthObject>,
    goal: &ClusterGoal,
    cluster: &ClusterInfo,
) -> Result<Option<AwsAuthWrite<Edited>>, Error> {
    if current.is_none() && job == AwsAuthJob::OffboardOnly {
        return Ok(None);
    }
    let mut doc = AwsAuth::parse(current.map(|c| &c.data));
    // A light read of mapUsers: the verb does the real parse and refuses broken YAML.
    let user_arns = doc.user_arns().unwrap_or_default();
    let offboarded = offboarded_for(goal, &user_arns);
    let changed = match job {
        AwsAuthJob::Own => {
            let mappings: Vec<AdminMapping> =
                goal.tiers_for(cluster).map(|t| t.mapping.clone()).collect();
            doc.ensure_roles(&mappings)?;
            doc.remove_retired_tiers(&goal.live_groups(cluster))?;
            doc.remove_roles(&goal.out_of_scope(cluster))?;
            doc.remove_users(&offboarded)?;
            doc.created() || !doc.changes().is_empty()
        }
        AwsAuthJob::OffboardOnly => {
            if !mentions_offboarded(&user_arns, &offboarded) {
                return Ok(None);
            }
            doc.remove_users(&offboarded)?;
            !doc.changes().is_empty()
        }
    };
    if !changed {
        return Ok(None);
    }
    let changes = doc.changes().iter().map(ToString::to_string).collect();
    let data = doc.into_data();
    Ok(Some(AwsAuthWrite {
        payload: Edited {
            after: data.clone(),
            changes,
        },
        data,
    }))
}

/// Offboarded users for one document: the run's, plus this account's users mapped
/// directly (`user_arns`) who no longer exist.
pub(super) fn offboarded_for(goal: &ClusterGoal, user_arns: &[String]) -> Vec<Offboarded> {
    let mut out = goal.offboarded.clone();
    if let Some(existing) = &goal.existing_users {
        for arn in stale_direct_users(user_arns, &goal.account, existing) {
            tracing::info!(user = %arn, "direct mapping of a user that no longer exists");
            out.push(Offboarded::Arn(arn));
        }
    }
    out
}

/// Whether any of `user_arns` (from `mapUsers`) names an offboarded user.
fn mentions_offboarded(user_arns: &[String], offboarded: &[Offboarded]) -> bool {
    user_arns
        .iter()
        .any(|raw| offboarded.iter().any(|o| o.matches(raw)))
}

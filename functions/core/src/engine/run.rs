//! The run: the trust side and the cluster side read at once, the tiers' trust
//! policies edited and written beside the clusters' reconcile, the report assembled,
//! the access events put.

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::atomic::Ordering;

use crate::engine::clusters::{ClusterGoal, Described};
use crate::engine::outcome::ClusterOutcome;
use crate::engine::shards::{TierRoles, TierWork};
use crate::engine::trust_step::{TrustLease, write_failed};
use crate::engine::{Engine, Error, Outcome, RunInput, RunMode, Scope};
use crate::model::arn::ClusterName;
use crate::output::events::{AccessEvent, Cause, access_events};
use crate::output::plan::{Plan, TrustPolicyPlan};
use crate::output::report::{RunReport, TierReport, TrustPolicyReport};
use crate::ports::{EksApi, IamApi, KubeConnector};

/// Access events put at once: 100 `PutEvents` calls of 10.
const EVENTS_AT_ONCE: usize = 1000;

impl<I: IamApi, E: EksApi, K: KubeConnector> Engine<I, E, K> {
    fn empty_plan(&self, mode: RunMode) -> Plan {
        let tiers: Vec<TrustPolicyPlan> = self
            .config
            .access
            .tiers
            .iter()
            .map(|t| TrustPolicyPlan::empty(t, self.config.trust_policy_max_chars))
            .collect();
        Plan {
            dry_run: mode.is_dry_run(),
            trust_policy: tiers.first().cloned().unwrap_or_else(|| {
                TrustPolicyPlan::empty_for(
                    self.config.admin_role_name.clone(),
                    self.config.trust_policy_max_chars,
                )
            }),
            tiers,
            clusters: Vec::new(),
        }
    }

    /// The run itself, on the fewest sequential round trips: the input (the users or
    /// the event's user) and the admin role are read (under the lease) beside the
    /// cluster list and each cluster's description; then the trust-policy write and the
    /// clusters' reconcile go on side by side.
    ///
    /// `touches`: per tier, whether the run may change it (its role is read and its
    /// mappings ensured); `writes`: the run may write those tiers' trust policies, so
    /// the input and the roles are read under their leases, which are given back once
    /// the writes are done.
    pub(super) async fn run(
        &self,
        input: impl Future<Output = RunInput>,
        touches: Vec<bool>,
        writes: bool,
        scope: &Scope,
        mode: RunMode,
        cause: Cause,
    ) -> Outcome {
        let outcome = self.run_steps(input, &touches, writes, scope, mode).await;
        if self.events.enabled() {
            self.publish(access_events(&outcome.report, &cause)).await;
        }
        outcome
    }

    /// Puts the events [`EVENTS_AT_ONCE`] at a time (the sink batches them), so that a
    /// run granting thousands never holds them all.
    async fn publish(&self, events: impl Iterator<Item = AccessEvent>) {
        let mut events = events.peekable();
        let (mut put, mut lost) = (0usize, 0usize);
        while events.peek().is_some() {
            let chunk: Vec<AccessEvent> = events.by_ref().take(EVENTS_AT_ONCE).collect();
            match self.events.put(&chunk).await {
                Ok(()) => put += chunk.len(),
                Err(e) => {
                    lost += chunk.len();
                    tracing::error!(error = %e, events = chunk.len(), "access events not published");
                }
            }
        }
        if put + lost > 0 {
            tracing::info!(put, lost, "access events");
        }
    }

    async fn run_steps(
        &self,
        input: impl Future<Output = RunInput>,
        touches: &[bool],
        writes: bool,
        scope: &Scope,
        mode: RunMode,
    ) -> Outcome {
        let started = tokio::time::Instant::now();
        let cfg = &self.config;
        let tiers = &cfg.access.tiers;
        let mut report = RunReport::new(
            mode.is_dry_run(),
            cfg.admin_role_name.as_str(),
            cfg.trust_policy_max_chars,
        );
        report.tiers = tiers
            .iter()
            .map(|t| TierReport {
                tier: t.name.to_string(),
                members: 0,
                roles: Vec::new(),
                warnings: Vec::new(),
                trust_policy: TrustPolicyReport {
                    role_name: t.role.to_string(),
                    max_chars: cfg.trust_policy_max_chars,
                    ..TrustPolicyReport::default()
                },
            })
            .collect();
        let mut plan = self.empty_plan(mode);
        // The trust side is the critical path: the clusters are described once its
        // reads are sent (a hundred DescribeCluster requests take the task for
        // milliseconds of signing), the clusters listed meanwhile.
        let (reads_sent, trust_first) = futures::channel::oneshot::channel();
        // Boxed: the nested futures otherwise make the handlers' future types too deep
        // for the compiler's default limit.
        let trust_reads = Box::pin(self.read_trust_side(touches, writes, input, reads_sent));
        let clusters_read = Box::pin(self.read_clusters_for(touches, scope, async {
            // Sent, or dropped by a trust side that read nothing: either way, go.
            let _ = trust_first.await;
        }));
        let ((leases, mut input, roles), (described, failures)) =
            futures::join!(trust_reads, clusters_read);
        for (t, n) in report.tiers.iter_mut().zip(&input.members) {
            t.members = *n;
        }
        settle_input(&mut input, &leases, &mut report);
        // 1. Each tier's trust policy: the edit is pure; the writes go on beside the
        // clusters.
        let mut writes = Vec::new();
        let mut read = Vec::new();
        for (i, (lease, roles)) in leases.into_iter().zip(roles).enumerate() {
            let (t_plan, t_report) = (&mut plan.tiers[i], &mut report.tiers[i]);
            let work = self.tier_work(i, roles, &input, mode, t_plan, t_report);
            read.extend(work.goal.iter().map(|r| (i, r.clone())));
            // New shards first, under the lease: the clusters then map them.
            if !work.creates.is_empty() {
                for (name, r) in self.create_shards(&lease, work.creates).await {
                    match r {
                        Ok(role) => read.push((i, role)),
                        Err(e) => write_failed(t_report, t_plan, &name, &e),
                    }
                }
            }
            writes.push(self.write_and_release(lease, work.updates));
        }
        let write_trust = futures::future::join_all(writes);
        if read.is_empty() {
            write_trust.await;
            return self.finish(plan, report, started);
        }
        // 2. The clusters. Only a deleted user is offboarded: one the event says is
        // gone, or (on a full run) one the listing lacks.
        let mut goal = ClusterGoal::new(cfg, &read, input.offboarded, input.users.as_deref());
        if scope.skip_bindings {
            goal.bindings.clear();
        }
        let clusters = self.reconcile_all(described, &goal, mode);
        let (written, reconciled) = futures::join!(Box::pin(write_trust), clusters);
        for (i, done) in written.into_iter().enumerate() {
            for (role, r) in done {
                if let Err(e) = r {
                    write_failed(&mut report.tiers[i], &plan.tiers[i], &role, &e);
                }
            }
        }
        let outcomes = self.collect_outcomes(scope, reconciled, failures, &goal.account);
        report.conflict_retries = goal.retries.load(Ordering::Relaxed);
        for r in outcomes {
            plan.clusters.extend(r.plan);
            report.clusters.push(r.report);
        }
        self.finish(plan, report, started)
    }

    /// The cluster side of a run, the clusters described once `then` is ready: none
    /// when it touches no tier (an event about no tier's selector has nothing to
    /// ensure on the clusters: they are not listed).
    async fn read_clusters_for(
        &self,
        touches: &[bool],
        scope: &Scope,
        then: impl Future<Output = ()>,
    ) -> (Vec<Described>, Vec<ClusterOutcome>) {
        if touches.iter().any(|t| *t) {
            self.read_cluster_side(scope, then).await
        } else {
            (Vec::new(), Vec::new())
        }
    }

    /// Tier `i`'s trust side as read (`None`: not touched by the run): its plan, or
    /// nothing when its roles could not be read or the input stops the run.
    fn tier_work(
        &self,
        i: usize,
        roles: Option<Result<TierRoles, Error>>,
        input: &RunInput,
        mode: RunMode,
        plan: &mut TrustPolicyPlan,
        report: &mut TierReport,
    ) -> TierWork {
        match roles {
            Some(Ok(roles)) if !input.stop => {
                let change = input.changes.get(i).and_then(Option::as_ref);
                self.plan_tier(&roles, change, mode, plan, report)
            }
            Some(Err(e)) if !input.stop => {
                tracing::error!(role = %report.trust_policy.role_name, error = %e, "cannot read the tier role");
                report.trust_policy.error = Some(e.to_string());
                TierWork::default()
            }
            _ => TierWork::default(),
        }
    }

    /// The reconciled clusters, the failures, and the scope's clusters not found,
    /// sorted by account, region and name; `hub`: the account of those whose account
    /// is not known otherwise (a region of the hub's that could not be listed).
    fn collect_outcomes(
        &self,
        scope: &Scope,
        reconciled: Vec<(ClusterName, Option<ClusterOutcome>)>,
        failures: Vec<ClusterOutcome>,
        hub: &str,
    ) -> Vec<ClusterOutcome> {
        let mut seen = BTreeSet::new();
        let mut results = Vec::new();
        for (name, result) in reconciled {
            if let Some(r) = result {
                seen.insert(name);
                results.push(r);
            }
        }
        results.extend(self.missing_in_scope(scope, &seen));
        results.extend(failures);
        for r in &mut results {
            if r.report.account.is_empty() {
                r.report.account = hub.to_owned();
                if let Some(p) = &mut r.plan {
                    p.account = hub.to_owned();
                }
            }
        }
        results.sort_by(|a, b| {
            let (a, b) = (&a.report, &b.report);
            (&a.account, &a.region, &a.name).cmp(&(&b.account, &b.region, &b.name))
        });
        results
    }

    /// Completes the report (the plan on dry runs, how long the run took since
    /// `started`) and logs its summary.
    fn finish(
        &self,
        mut plan: Plan,
        mut report: RunReport,
        started: tokio::time::Instant,
    ) -> Outcome {
        // The first tier is also reported where the single-tier report had it.
        if let Some(first) = report.tiers.first() {
            report.trust_policy = first.trust_policy.clone();
            report.admin_users = first.members;
        }
        if let Some(first) = plan.tiers.first() {
            plan.trust_policy = first.clone();
        }
        report.duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        if report.dry_run {
            report.plan = Some(plan.clone());
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
}

/// The input's errors and the lease's go into the report; without the lease the
/// trust policy is left alone.
fn settle_input(input: &mut RunInput, leases: &[TrustLease], report: &mut RunReport) {
    for (i, (lease, t)) in leases.iter().zip(report.tiers.iter_mut()).enumerate() {
        let mut errors: Vec<String> = input.error.iter().map(ToString::to_string).collect();
        if let TrustLease::Unavailable(e) = lease {
            errors.push(e.to_string());
            if let Some(c) = input.changes.get_mut(i) {
                *c = None;
            }
        }
        if !errors.is_empty() {
            t.trust_policy.error = Some(errors.join("; "));
        }
    }
}

//! EKS access entries (`API`, `API_AND_CONFIG_MAP`): read the entries that matter,
//! plan with the pure core, apply; in `API_AND_CONFIG_MAP`, offboard from aws-auth too.

use crate::engine::aws_auth::{AwsAuthJob, offboarded_for};
use crate::engine::clusters::ClusterGoal;
use crate::engine::outcome::ClusterOutcome;
use crate::engine::{Engine, Error, RunMode};
use crate::model::arn::{RoleArn, UserArn};
use crate::model::cluster::{AuthMode, Backend, ClusterEndpoint, ClusterInfo};
use crate::model::mapping::Offboarded;
use crate::model::tiers::is_retired_tier;
use crate::output::plan::ClusterChange;
use crate::output::report::ClusterStatus;
use crate::policy::accessentry::{
    AccessEntryPlan, AccessEntryView, offboarded_entries, plan_role_entry,
};
use crate::ports::{EksApi, IamApi, KubeConnector};

impl<I: IamApi, E: EksApi, K: KubeConnector> Engine<I, E, K> {
    pub(super) async fn reconcile_access_entries(
        &self,
        cluster: &ClusterInfo,
        conn: &ClusterEndpoint,
        goal: &ClusterGoal,
        mode: RunMode,
    ) -> Result<ClusterOutcome, Error> {
        let (views, user_arns) = self.read_entries(cluster).await?;
        let offboarded = offboarded_for(goal, &user_arns);
        let ae = plan_cluster_entries(&views, goal, cluster, &offboarded);
        let mut changes = ae.change_lines();
        for stale in std::iter::once(&ae)
            .chain(&ae.more_tiers)
            .filter_map(|p| p.recreate_admin_entry.as_ref())
        {
            tracing::warn!(cluster = %cluster.name, region = %cluster.region, entry_created_at = %stale.entry_created_at, role_created_at = %stale.role_created_at, "a tier role was re-created after its access entry; re-creating the entry");
            changes.insert(0, stale.to_string());
        }
        let status = if ae.create_admin_entry.is_some() && ae.recreate_admin_entry.is_none() {
            ClusterStatus::Created
        } else if ae.is_empty() {
            ClusterStatus::Unchanged
        } else {
            ClusterStatus::Updated
        };
        if mode.is_apply() && !ae.is_empty() {
            for (plan, tier) in std::iter::once(&ae)
                .chain(&ae.more_tiers)
                .zip(goal.tiers_for(cluster))
            {
                let existing = views
                    .iter()
                    .find(|v| {
                        v.principal_arn
                            .parse::<RoleArn>()
                            .is_ok_and(|r| r.eq_ignoring_path_and_case(&tier.role_arn))
                    })
                    .map(|v| v.principal_arn.clone());
                let principal = existing.as_deref().unwrap_or(tier.role_arn.as_str());
                self.apply_access_entries(cluster, plan, principal).await?;
            }
            if goal.tiers_for(cluster).next().is_none() {
                self.apply_access_entries(cluster, &ae, "").await?;
            }
            tracing::info!(cluster = %cluster.name, region = %cluster.region, "access entries written");
        }
        let change = if ae.is_empty() {
            ClusterChange::Unchanged
        } else {
            ClusterChange::AccessEntries(Box::new(ae))
        };
        let outcome =
            ClusterOutcome::changed(cluster, Backend::AccessEntries, status, change, changes);
        if cluster.auth_mode != AuthMode::ApiAndConfigMap {
            return Ok(outcome);
        }
        // API_AND_CONFIG_MAP: aws-auth is still honoured; take offboarded users out.
        let offboard = self
            .reconcile_aws_auth(cluster, conn, goal, mode, AwsAuthJob::OffboardOnly)
            .await?;
        Ok(merge_aws_auth(outcome, offboard))
    }

    /// Every role's entry (described) and every user entry (principal only), and the
    /// user principals.
    async fn read_entries(
        &self,
        cluster: &ClusterInfo,
    ) -> Result<(Vec<AccessEntryView>, Vec<String>), Error> {
        let (at, name) = (&cluster.place(), &cluster.name);
        let principals = self.eks.list_access_entries(at, name).await?;
        // Every role's entry is described (at once): a tier role's, and any other that
        // may be a retired tier's (its groups tell).
        let roles = principals.iter().filter(|p| p.parse::<RoleArn>().is_ok());
        let described = futures::future::try_join_all(
            roles.map(|p| self.eks.describe_access_entry(at, name, p)),
        )
        .await?;
        let mut views: Vec<AccessEntryView> = described.into_iter().flatten().collect();
        let mut user_arns = Vec::new();
        for p in &principals {
            if p.parse::<UserArn>().is_ok() {
                user_arns.push(p.clone());
                views.push(AccessEntryView {
                    principal_arn: p.clone(),
                    username: None,
                    kubernetes_groups: Vec::new(),
                    policies: Vec::new(),
                    policy_namespaces: Default::default(),
                    created_at: None,
                });
            }
        }
        Ok((views, user_arns))
    }

    /// The writes of `ae` (one tier role's plan, without `more_tiers`), in order.
    /// `existing`: the role's principal when no entry is created or updated (the
    /// existing entry's, else the role's ARN).
    async fn apply_access_entries(
        &self,
        cluster: &ClusterInfo,
        ae: &AccessEntryPlan,
        existing: &str,
    ) -> Result<(), Error> {
        let (at, name) = (&cluster.place(), &cluster.name);
        let mut principal = None;
        // A stale entry goes first: the new one may have the same principal ARN.
        if let Some(stale) = &ae.recreate_admin_entry {
            self.eks
                .delete_access_entry(at, name, &stale.principal_arn)
                .await?;
        }
        if let Some(e) = &ae.create_admin_entry {
            let user = e.username.as_deref();
            self.eks
                .create_access_entry(at, name, &e.principal_arn, user, &e.kubernetes_groups)
                .await?;
            principal = Some(e.principal_arn.as_str());
        }
        if let Some(e) = &ae.update_admin_entry {
            let user = e.username.as_deref();
            self.eks
                .update_access_entry(at, name, &e.principal_arn, user, &e.kubernetes_groups)
                .await?;
            principal = Some(e.principal_arn.as_str());
        }
        if ae.associate_admin_policy {
            let principal = principal.unwrap_or(existing);
            self.eks
                .associate_access_policy(at, name, principal, &ae.policy)
                .await?;
        }
        for policy in &ae.disassociate {
            let principal = principal.unwrap_or(existing);
            self.eks
                .disassociate_access_policy(at, name, principal, policy)
                .await?;
        }
        for p in &ae.delete_entries {
            self.eks.delete_access_entry(at, name, p).await?;
        }
        Ok(())
    }
}

/// The cluster's plan: the first tier's entry (with the offboarded users' entries
/// to delete), the other tiers' in `more_tiers`; with no tier on the cluster, only
/// the deletions.
fn plan_cluster_entries(
    views: &[AccessEntryView],
    goal: &ClusterGoal,
    cluster: &ClusterInfo,
    offboarded: &[Offboarded],
) -> AccessEntryPlan {
    let mut plans = goal.tiers_for(cluster).enumerate().map(|(i, t)| {
        let gone = if i == 0 { offboarded } else { &[] };
        plan_role_entry(views, &t.entry, &t.policy, gone, t.role_created)
    });
    let mut first = plans.next().unwrap_or_else(|| AccessEntryPlan {
        delete_entries: offboarded_entries(views, offboarded),
        ..AccessEntryPlan::default()
    });
    first.more_tiers = plans.collect();
    let live = goal.live_groups(cluster);
    first.delete_entries.extend(
        views
            .iter()
            .filter(|e| is_retired_tier(&e.kubernetes_groups, &live))
            .map(|e| e.principal_arn.clone()),
    );
    let out_of_scope = goal.out_of_scope(cluster);
    first.delete_entries.extend(
        views
            .iter()
            .filter(|e| {
                e.principal_arn
                    .parse::<RoleArn>()
                    .is_ok_and(|r| out_of_scope.iter().any(|o| o.eq_ignoring_path_and_case(&r)))
            })
            .map(|e| e.principal_arn.clone()),
    );
    first.delete_entries.sort();
    first.delete_entries.dedup();
    first
}

/// `API_AND_CONFIG_MAP`: the aws-auth offboarding's changes join the access entries'
/// ("aws-auth: " first); if the entries were unchanged, the aws-auth plan is the
/// cluster's.
fn merge_aws_auth(mut outcome: ClusterOutcome, offboard: ClusterOutcome) -> ClusterOutcome {
    let Some(p) = offboard
        .plan
        .filter(|p| matches!(p.change, ClusterChange::AwsAuth { .. }))
    else {
        return outcome;
    };
    let report = &mut outcome.report;
    report.changes.extend(
        offboard
            .report
            .changes
            .iter()
            .map(|c| format!("aws-auth: {c}")),
    );
    if report.status == ClusterStatus::Unchanged {
        report.status = ClusterStatus::Updated;
        outcome.plan = Some(p);
    }
    outcome
}

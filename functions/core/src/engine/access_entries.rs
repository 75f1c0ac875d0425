//! EKS access entries (`API`, `API_AND_CONFIG_MAP`): read the entries that matter,
//! plan with the pure core, apply; in `API_AND_CONFIG_MAP`, offboard from aws-auth too.

use crate::engine::aws_auth::{AwsAuthJob, offboarded_for};
use crate::engine::clusters::ClusterGoal;
use crate::engine::outcome::ClusterOutcome;
use crate::engine::{Engine, Error, RunMode};
use crate::model::arn::{RoleArn, UserArn};
use crate::model::cluster::{AuthMode, Backend, ClusterEndpoint, ClusterInfo};
use crate::output::plan::ClusterChange;
use crate::output::report::ClusterStatus;
use crate::policy::accessentry::{
    AccessEntryPlan, AccessEntryView, CLUSTER_ADMIN_POLICY, plan_access_entries,
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
        let (views, user_arns) = self.read_entries(cluster, goal).await?;
        let offboarded = offboarded_for(goal, &user_arns);
        let ae = plan_access_entries(&views, &goal.admin_entry, &offboarded, goal.role_created);
        let mut changes = ae.change_lines();
        if let Some(stale) = &ae.recreate_admin_entry {
            tracing::warn!(cluster = %cluster.name, region = %cluster.region, entry_created_at = %stale.entry_created_at, role_created_at = %stale.role_created_at, "the admin role was re-created after its access entry; re-creating the entry");
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
            let existing_admin = views
                .iter()
                .find(|v| {
                    v.principal_arn
                        .parse::<RoleArn>()
                        .is_ok_and(|r| r.eq_ignoring_path_and_case(&goal.role_arn))
                })
                .map(|v| v.principal_arn.clone());
            let admin = existing_admin.as_deref().unwrap_or(goal.role_arn.as_str());
            self.apply_access_entries(cluster, &ae, admin).await?;
            tracing::info!(cluster = %cluster.name, region = %cluster.region, "access entries written");
        }
        let change = if ae.is_empty() {
            ClusterChange::Unchanged
        } else {
            ClusterChange::AccessEntries(ae)
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

    /// The admin role's entries (described) and every user entry (principal only),
    /// and the user principals.
    async fn read_entries(
        &self,
        cluster: &ClusterInfo,
        goal: &ClusterGoal,
    ) -> Result<(Vec<AccessEntryView>, Vec<String>), Error> {
        let (region, name) = (cluster.region.as_str(), &cluster.name);
        let principals = self.eks.list_access_entries(region, name).await?;
        let mut views = Vec::new();
        let mut user_arns = Vec::new();
        for p in &principals {
            if let Ok(role) = p.parse::<RoleArn>() {
                if role.eq_ignoring_path_and_case(&goal.role_arn)
                    && let Some(v) = self.eks.describe_access_entry(region, name, p).await?
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
        Ok((views, user_arns))
    }

    /// The writes of `ae`, in order. `existing_admin`: the admin principal when no
    /// entry is created or updated (the existing entry's, else the role's ARN).
    async fn apply_access_entries(
        &self,
        cluster: &ClusterInfo,
        ae: &AccessEntryPlan,
        existing_admin: &str,
    ) -> Result<(), Error> {
        let (region, name) = (cluster.region.as_str(), &cluster.name);
        let mut admin_principal = None;
        // A stale admin entry goes first: the new one may have the same principal ARN.
        if let Some(stale) = &ae.recreate_admin_entry {
            self.eks
                .delete_access_entry(region, name, &stale.principal_arn)
                .await?;
        }
        if let Some(e) = &ae.create_admin_entry {
            let user = e.username.as_deref();
            self.eks
                .create_access_entry(region, name, &e.principal_arn, user, &e.kubernetes_groups)
                .await?;
            admin_principal = Some(e.principal_arn.as_str());
        }
        if let Some(e) = &ae.update_admin_entry {
            let user = e.username.as_deref();
            self.eks
                .update_access_entry(region, name, &e.principal_arn, user, &e.kubernetes_groups)
                .await?;
            admin_principal = Some(e.principal_arn.as_str());
        }
        if ae.associate_admin_policy {
            let principal = admin_principal.unwrap_or(existing_admin);
            self.eks
                .associate_access_policy(region, name, principal, CLUSTER_ADMIN_POLICY)
                .await?;
        }
        for p in &ae.delete_entries {
            self.eks.delete_access_entry(region, name, p).await?;
        }
        Ok(())
    }
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

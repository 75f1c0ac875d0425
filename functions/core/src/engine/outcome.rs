//! What each cluster's reconcile returns, and how its plan and report are built.

use crate::engine::Error;
use crate::model::arn::ClusterName;
use crate::model::cluster::{Backend, ClusterInfo};
use crate::output::plan::{ClusterChange, ClusterPlan};
use crate::output::report::{ClusterReport, ClusterStatus};
use crate::policy::rbac::RbacPlan;

/// One cluster's result: its part of the plan and of the report.
pub(crate) struct ClusterOutcome {
    /// `None` for a region whose clusters could not be listed.
    pub(crate) plan: Option<ClusterPlan>,
    pub(crate) report: ClusterReport,
}

impl ClusterOutcome {
    /// Nothing to do.
    pub(crate) fn unchanged(cluster: &ClusterInfo, backend: Backend) -> Self {
        ClusterOutcome {
            plan: Some(ClusterPlan {
                name: cluster.name.clone(),
                account: cluster.account(),
                region: cluster.region.clone(),
                backend,
                rbac: RbacPlan::default(),
                change: ClusterChange::Unchanged,
            }),
            report: ClusterReport {
                name: cluster.name.to_string(),
                account: cluster.account(),
                region: cluster.region.clone(),
                backend,
                status: ClusterStatus::Unchanged,
                error: None,
                changes: Vec::new(),
                tiers: Vec::new(),
            },
        }
    }

    /// A change (planned, or made); `status` is Created or Updated.
    pub(crate) fn changed(
        cluster: &ClusterInfo,
        backend: Backend,
        status: ClusterStatus,
        change: ClusterChange,
        changes: Vec<String>,
    ) -> Self {
        ClusterOutcome {
            plan: Some(ClusterPlan {
                name: cluster.name.clone(),
                account: cluster.account(),
                region: cluster.region.clone(),
                backend,
                rbac: RbacPlan::default(),
                change,
            }),
            report: ClusterReport {
                name: cluster.name.to_string(),
                account: cluster.account(),
                region: cluster.region.clone(),
                backend,
                status,
                error: None,
                changes,
                tiers: Vec::new(),
            },
        }
    }

    /// A failure; `name` is `None` for a region whose clusters could not be listed
    /// (reported as the cluster `*`). `account`: the cluster's (empty if not known).
    pub(crate) fn failed(
        name: Option<&ClusterName>,
        (account, region): (&str, &str),
        backend: Backend,
        error: &Error,
    ) -> Self {
        let error = error.to_string();
        ClusterOutcome {
            plan: name.map(|name| ClusterPlan {
                name: name.clone(),
                account: account.to_owned(),
                region: region.to_owned(),
                backend,
                rbac: RbacPlan::default(),
                change: ClusterChange::Failed {
                    error: error.clone(),
                },
            }),
            report: ClusterReport {
                name: name.map_or_else(|| "*".to_owned(), ToString::to_string),
                account: account.to_owned(),
                region: region.to_owned(),
                backend,
                status: ClusterStatus::Failed,
                error: Some(error),
                changes: Vec::new(),
                tiers: Vec::new(),
            },
        }
    }

    /// Adds the RBAC plan of the cluster (and its lines to the report); a cluster
    /// unchanged so far is then updated. Refused bindings fail the cluster, with the
    /// writes made kept in the report.
    pub(crate) fn with_rbac(mut self, rbac: RbacPlan) -> Self {
        let writes = !rbac.put.is_empty() || !rbac.delete.is_empty();
        self.report.changes.extend(rbac.change_lines());
        if writes && self.report.status == ClusterStatus::Unchanged {
            self.report.status = ClusterStatus::Updated;
        }
        if !rbac.refused.is_empty() {
            let names: Vec<String> = rbac.refused.iter().map(ToString::to_string).collect();
            self.report.status = ClusterStatus::Failed;
            self.report.error = Some(format!(
                "refusing to edit {}: not labelled {}={}; the tier's rights there are not granted",
                names.join(", "),
                crate::policy::rbac::MANAGED_BY_LABEL,
                crate::policy::rbac::MANAGED_BY
            ));
        }
        if let Some(p) = &mut self.plan {
            p.rbac = rbac;
        }
        self
    }

    /// Left alone, with the reason.
    pub(crate) fn skipped(
        name: &ClusterName,
        (account, region): (&str, &str),
        backend: Backend,
        reason: String,
    ) -> Self {
        ClusterOutcome {
            plan: Some(ClusterPlan {
                name: name.clone(),
                account: account.to_owned(),
                region: region.to_owned(),
                backend,
                rbac: RbacPlan::default(),
                change: ClusterChange::Skipped {
                    reason: reason.clone(),
                },
            }),
            report: ClusterReport {
                name: name.to_string(),
                account: account.to_owned(),
                region: region.to_owned(),
                backend,
                status: ClusterStatus::Skipped,
                error: None,
                changes: vec![reason],
                tiers: Vec::new(),
            },
        }
    }
}

//! The access audit (`eks-access-sync access`, the reconcile function's
//! `{"access": true}`): read-only. IAM's users and roles are read once, every
//! cluster in scope is read at once (bounded), and the pure core explains each grant.

use crate::engine::clusters::per_place;
use crate::engine::{Engine, Error, Scope};
use crate::model::arn::RoleArn;
use crate::model::cluster::{AuthMode, ClusterInfo};
use crate::output::access::{AccessReport, ClusterAccess, Unreadable};
use crate::policy::audit::{Directory, access_entry_grants, aws_auth_grants};
use crate::ports::{AwsAuthStore, EksApi, IamApi, KubeConnector};

/// Which clusters the audit reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditClusters {
    /// The managed (tagged) clusters.
    Managed,
    /// Every cluster the functions may read, tagged or not.
    All,
}

impl<I: IamApi, E: EksApi, K: KubeConnector> Engine<I, E, K> {
    /// Who can reach each cluster in `scope`; writes nothing. Fails only when IAM
    /// cannot be read; a cluster that cannot be read is listed in `unreadable`.
    pub async fn audit(&self, scope: &Scope, which: AuditClusters) -> Result<AccessReport, Error> {
        let (users, roles, (described, failures)) = futures::join!(
            self.iam.list_users(),
            self.iam.list_roles(),
            self.read_cluster_side(scope, async {})
        );
        let (users, roles) = (users?, roles?);
        let roles: Vec<(RoleArn, String)> =
            roles.into_iter().map(|r| (r.arn, r.trust_policy)).collect();
        let dir = Directory {
            users: &users,
            roles: &roles,
            tiers: &self.config.access.tiers,
        };
        let tag = &self.config.cluster_tag;
        let mut report = AccessReport::default();
        for f in failures {
            report.unreadable.push(Unreadable {
                name: f.report.name,
                region: if f.report.account.is_empty() {
                    f.report.region
                } else {
                    format!("{}/{}", f.report.account, f.report.region)
                },
                error: f.report.error.unwrap_or_default(),
            });
        }
        let mut wanted = Vec::new();
        for (at, name, info) in described {
            match info {
                Ok(info) => {
                    let managed = info.has_tag(&tag.key, &tag.value);
                    if managed || which == AuditClusters::All {
                        wanted.push((info, managed));
                    }
                }
                Err(e) => report.unreadable.push(Unreadable {
                    name: name.to_string(),
                    region: at.to_string(),
                    error: e.to_string(),
                }),
            }
        }
        let dir = &dir;
        let wanted = wanted
            .into_iter()
            .map(|(info, managed)| (info.place(), (info, managed)))
            .collect();
        let read: Vec<Result<ClusterAccess, Unreadable>> = per_place(
            wanted,
            self.config.cluster_concurrency,
            |_, (info, managed)| self.audit_cluster(info, managed, dir),
        )
        .await;
        for r in read {
            match r {
                Ok(c) => report.clusters.push(c),
                Err(u) => report.unreadable.push(u),
            }
        }
        report
            .clusters
            .sort_by(|a, b| (&a.region, &a.name).cmp(&(&b.region, &b.name)));
        report
            .unreadable
            .sort_by(|a, b| (&a.region, &a.name).cmp(&(&b.region, &b.name)));
        Ok(report)
    }

    /// One cluster: aws-auth (when the cluster reads it) and its access entries (when
    /// it has them).
    async fn audit_cluster(
        &self,
        info: ClusterInfo,
        managed: bool,
        dir: &Directory<'_>,
    ) -> Result<ClusterAccess, Unreadable> {
        // A member account's cluster is shown at `account/region`.
        let unreadable = |error: String| Unreadable {
            name: info.name.to_string(),
            region: info.place().to_string(),
            error,
        };
        let mut access = ClusterAccess {
            name: info.name.to_string(),
            region: info.place().to_string(),
            auth_mode: info.auth_mode.as_str().to_owned(),
            managed,
            grants: Vec::new(),
            problems: Vec::new(),
        };
        if info.auth_mode != AuthMode::Api {
            let Some(conn) = info.connection() else {
                return Err(unreadable(format!(
                    "cluster is {} and has no endpoint",
                    info.status
                )));
            };
            let store = self
                .kube
                .connect(&conn)
                .await
                .map_err(|e| unreadable(e.to_string()))?;
            let data = store.read().await.map_err(|e| unreadable(e.to_string()))?;
            if let Some(cm) = data {
                let (grants, problems) = aws_auth_grants(dir, &cm.data);
                access.grants.extend(grants);
                access.problems.extend(problems);
            }
        }
        if info.auth_mode.uses_access_entries() {
            let (at, name) = (&info.place(), &info.name);
            let principals = self
                .eks
                .list_access_entries(at, name)
                .await
                .map_err(|e| unreadable(e.to_string()))?;
            let views = futures::future::try_join_all(
                principals
                    .iter()
                    .map(|p| self.eks.describe_access_entry(at, name, p)),
            )
            .await
            .map_err(|e| unreadable(e.to_string()))?;
            let views: Vec<_> = views.into_iter().flatten().collect();
            access.grants.extend(access_entry_grants(dir, &views));
        }
        Ok(access)
    }
}

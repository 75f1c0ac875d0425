//! The tiers' RBAC bindings on aws-auth clusters: read the namespaces and our
//! bindings, plan with the pure core, apply.

use crate::engine::clusters::ClusterGoal;
use crate::engine::outcome::ClusterOutcome;
use crate::engine::{Engine, Error, RunMode};
use crate::model::cluster::{ClusterEndpoint, ClusterInfo};
use crate::policy::rbac::{plan_bindings, wanted_bindings};
use crate::ports::{EksApi, IamApi, KubeConnector, RbacStore};

impl<I: IamApi, E: EksApi, K: KubeConnector> Engine<I, E, K> {
    /// After aws-auth: the bindings the cluster's tiers call for, ours that no tier
    /// wants removed; added to `outcome`.
    pub(super) async fn reconcile_bindings(
        &self,
        cluster: &ClusterInfo,
        conn: &ClusterEndpoint,
        goal: &ClusterGoal,
        mode: RunMode,
        outcome: ClusterOutcome,
    ) -> Result<ClusterOutcome, Error> {
        let store = self.kube.connect(conn).await?;
        let tiers = goal.bindings_for(cluster);
        let names: Vec<String> = tiers.iter().map(|t| t.group.clone()).collect();
        let (namespaces, existing) = futures::join!(store.namespaces(), store.bindings(&names));
        let wanted = wanted_bindings(&tiers, &namespaces?);
        let plan = plan_bindings(&wanted, &existing?);
        if plan.is_empty() {
            return Ok(outcome);
        }
        if mode.is_apply() {
            for at in &plan.delete {
                store.delete_binding(at).await?;
            }
            futures::future::try_join_all(plan.put.iter().map(|spec| store.put_binding(spec)))
                .await?;
            tracing::info!(cluster = %cluster.name, region = %cluster.region, put = plan.put.len(), deleted = plan.delete.len(), "RBAC bindings written");
        }
        Ok(outcome.with_rbac(plan))
    }
}

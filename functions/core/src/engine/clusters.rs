//! The cluster side of a run: list and describe the clusters in scope, then reconcile
//! each tagged one with its backend.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::AtomicU32;

use futures::StreamExt;

use crate::engine::aws_auth::AwsAuthJob;
use crate::engine::outcome::ClusterOutcome;
use crate::engine::{Engine, Error, RunMode, Scope};
use crate::model::arn::{ClusterName, RoleArn};
use crate::model::cluster::{AuthMode, Backend, ClusterInfo, Place};
use crate::model::config::{Config, TagSpec};
use crate::model::mapping::{AdminMapping, Offboarded};
use crate::model::tiers::Tier;
use crate::policy::accessentry::{PolicyAssociation, Timestamp};
use crate::policy::desired::IamUser;
use crate::policy::rbac::TierBinding;
use crate::ports::{EksApi, IamApi, KubeConnector, RoleInfo};

/// One tier's mapping on the clusters.
pub(super) struct TierGoal {
    pub(super) name: String,
    /// For aws-auth: the role ARN without its path.
    pub(super) mapping: AdminMapping,
    /// For access entries: the role's full ARN (EKS accepts paths there).
    pub(super) entry: AdminMapping,
    /// The role's ARN as IAM gives it (with its path).
    pub(super) role_arn: RoleArn,
    /// The role's `CreateDate`: an older access entry of it is stale.
    pub(super) role_created: Option<Timestamp>,
    /// The access policy of the tier role's access entry.
    pub(super) policy: PolicyAssociation,
    /// The managed clusters the tier applies to (`None`: all).
    pub(super) clusters: Option<TagSpec>,
}

impl TierGoal {
    fn new(tier: &Tier, role: &RoleInfo) -> Self {
        let mapping = |role_arn: RoleArn| AdminMapping {
            role_arn,
            username: tier.username.clone(),
            groups: tier.groups.clone(),
        };
        TierGoal {
            name: tier.name.to_string(),
            mapping: mapping(role.arn.without_path()),
            entry: mapping(role.arn.clone()),
            role_arn: role.arn.clone(),
            role_created: role.create_date,
            policy: PolicyAssociation::for_access(&tier.kubernetes, role.arn.partition()),
            clusters: tier.clusters.clone(),
        }
    }

    /// Whether the tier applies to `cluster` (a managed one).
    pub(super) fn applies_to(&self, cluster: &ClusterInfo) -> bool {
        selects(self.clusters.as_ref(), cluster)
    }
}

/// Whether a tier's cluster selector (`None`: every managed cluster) takes `cluster`.
fn selects(selector: Option<&TagSpec>, cluster: &ClusterInfo) -> bool {
    selector.is_none_or(|t| cluster.has_tag(&t.key, &t.value))
}

/// What the clusters must end up with.
pub(super) struct ClusterGoal {
    /// The tiers whose role could be read, in the configuration's order.
    pub(super) tiers: Vec<TierGoal>,
    /// Every configured tier's own group and cluster selector (read or not): a
    /// mapping or entry of a tier group not among those that apply to a cluster is a
    /// retired tier's.
    pub(super) tier_groups: Vec<(String, Option<TagSpec>)>,
    /// The RBAC bindings of the tiers mapped to their own group (aws-auth clusters),
    /// with each tier's cluster selector; empty: the tool manages no binding.
    pub(super) bindings: Vec<(TierBinding, Option<TagSpec>)>,
    pub(super) offboarded: Vec<Offboarded>,
    /// Names of every existing user (lower-case), when the full listing is known:
    /// direct mappings of this account's users not in it are stale.
    pub(super) existing_users: Option<BTreeSet<String>>,
    pub(super) account: String,
    /// aws-auth attempts retried (409, 5xx, 429), every cluster's, failed ones
    /// included.
    pub(super) retries: AtomicU32,
    /// Everything above an aws-auth edit depends on, as one text
    /// ([`crate::engine::in_sync`]).
    pub(super) fingerprint: String,
}

impl ClusterGoal {
    /// `roles`: each tier's index in the configuration and its role, as read.
    pub(super) fn new(
        config: &Config,
        roles: &[(usize, RoleInfo)],
        offboarded: Vec<Offboarded>,
        users: Option<&[IamUser]>,
    ) -> Self {
        let tiers = &config.access.tiers;
        let mut goal = ClusterGoal {
            tiers: roles
                .iter()
                .filter_map(|(i, role)| tiers.get(*i).map(|t| TierGoal::new(t, role)))
                .collect(),
            bindings: tiers
                .iter()
                .filter(|t| t.manages_bindings())
                .map(|t| {
                    let b = TierBinding {
                        group: t.own_group(),
                        cluster_role: t.kubernetes.policy.cluster_role().to_owned(),
                        namespaces: t.kubernetes.namespaces.clone(),
                    };
                    (b, t.clusters.clone())
                })
                .collect(),
            tier_groups: tiers
                .iter()
                .map(|t| (t.own_group(), t.clusters.clone()))
                .collect(),
            account: roles
                .first()
                .map(|(_, r)| r.arn.account().to_owned())
                .unwrap_or_default(),
            offboarded,
            existing_users: users.map(|u| {
                u.iter()
                    .map(|u| u.name.as_str().to_ascii_lowercase())
                    .collect()
            }),
            retries: AtomicU32::new(0),
            fingerprint: String::new(),
        };
        goal.fingerprint = goal.fingerprint();
        goal
    }

    /// The inputs of the aws-auth edit that do not come from the cluster, as one text.
    fn fingerprint(&self) -> String {
        let tiers: Vec<_> = self
            .tiers
            .iter()
            .map(|t| (&t.mapping, &t.role_arn, &t.clusters))
            .collect();
        format!(
            "{:?}",
            (
                tiers,
                &self.tier_groups,
                &self.offboarded,
                &self.existing_users,
                &self.account
            )
        )
    }

    /// The own groups of the configured tiers that apply to `cluster`.
    pub(super) fn live_groups(&self, cluster: &ClusterInfo) -> Vec<String> {
        self.tier_groups
            .iter()
            .filter(|(_, sel)| selects(sel.as_ref(), cluster))
            .map(|(g, _)| g.clone())
            .collect()
    }

    /// The roles of the (read) tiers that do not apply to `cluster`: their mappings
    /// there go (a tier's `clusters` selector narrowed, or the cluster lost the tag).
    pub(super) fn out_of_scope(&self, cluster: &ClusterInfo) -> Vec<RoleArn> {
        self.tiers
            .iter()
            .filter(|t| !t.applies_to(cluster))
            .map(|t| t.role_arn.clone())
            .collect()
    }

    /// The bindings of the tiers that apply to `cluster`.
    pub(super) fn bindings_for(&self, cluster: &ClusterInfo) -> Vec<TierBinding> {
        self.bindings
            .iter()
            .filter(|(_, sel)| selects(sel.as_ref(), cluster))
            .map(|(b, _)| b.clone())
            .collect()
    }

    /// The tiers that apply to `cluster`.
    pub(super) fn tiers_for<'a>(
        &'a self,
        cluster: &'a ClusterInfo,
    ) -> impl Iterator<Item = &'a TierGoal> + 'a {
        self.tiers.iter().filter(|t| t.applies_to(cluster))
    }
}

/// `work` on every item, at most `limit` at once in each place and every place at
/// once: EKS's quotas and throttling are per account and region, so three accounts of
/// two regions each take the time of one.
pub(super) async fn per_place<T, R, F: Future<Output = R>>(
    items: Vec<(Place, T)>,
    limit: usize,
    work: impl Fn(Place, T) -> F,
) -> Vec<R> {
    let mut places: BTreeMap<Place, Vec<T>> = BTreeMap::new();
    for (at, item) in items {
        places.entry(at).or_default().push(item);
    }
    let work = &work;
    let done = futures::future::join_all(places.into_iter().map(|(at, items)| {
        futures::stream::iter(items)
            .map(move |item| work(at.clone(), item))
            .buffer_unordered(limit.max(1))
            .collect::<Vec<R>>()
    }))
    .await;
    done.into_iter().flatten().collect()
}

/// A cluster as `DescribeCluster` answered (where, name, info or the error).
pub(super) type Described = (Place, ClusterName, Result<ClusterInfo, Error>);

impl<I: IamApi, E: EksApi, K: KubeConnector> Engine<I, E, K> {
    /// The cluster list (every region of every account at once), then, once `then`
    /// is ready, each cluster described, at most `cluster_concurrency` at once;
    /// outcomes for the places that could not be listed.
    pub(super) async fn read_cluster_side(
        &self,
        scope: &Scope,
        then: impl Future<Output = ()>,
    ) -> (Vec<Described>, Vec<ClusterOutcome>) {
        let (names, failures) = self.cluster_names(scope).await;
        then.await;
        let described = per_place(
            names,
            self.config.cluster_concurrency,
            |at, name| async move {
                let info = self.eks.describe_cluster(&at, &name).await;
                (at, name, info.map_err(Error::from))
            },
        )
        .await;
        (described, failures)
    }

    /// The clusters in scope, by place (every region of every account listed at once),
    /// and outcomes for the places that could not be listed: one account failing (no
    /// member stack, AccessDenied) never stops the others.
    async fn cluster_names(
        &self,
        scope: &Scope,
    ) -> (Vec<(Place, ClusterName)>, Vec<ClusterOutcome>) {
        let listed =
            futures::future::join_all(self.config.places().into_iter().map(|at| async move {
                let r = self.eks.list_clusters(&at).await;
                (at, r)
            }))
            .await;
        let mut names = Vec::new();
        let mut failures = Vec::new();
        for (at, r) in listed {
            match r {
                Ok(list) => names.extend(
                    list.into_iter()
                        .filter(|n| scope.includes(n))
                        .map(|n| (at.clone(), n)),
                ),
                Err(e) => {
                    tracing::error!(place = %at, error = %e, "cannot list clusters");
                    let e = Error::from(e);
                    failures.push(ClusterOutcome::failed(
                        None,
                        (at.account(), &at.region),
                        Backend::ConfigMap,
                        &e,
                    ));
                }
            }
        }
        (names, failures)
    }

    /// Every described cluster reconciled, at most `cluster_concurrency` at once in
    /// each account and region.
    pub(super) async fn reconcile_all(
        &self,
        described: Vec<Described>,
        goal: &ClusterGoal,
        mode: RunMode,
    ) -> Vec<(ClusterName, Option<ClusterOutcome>)> {
        let described = described
            .into_iter()
            .map(|(at, name, info)| (at, (name, info)))
            .collect();
        per_place(
            described,
            self.config.cluster_concurrency,
            |at, (name, info)| self.reconcile_described(at, name, info, goal, mode),
        )
        .await
    }

    /// Reconciles one described cluster if it carries the cluster tag. `None` (with
    /// the name) for an untagged cluster: it is neither reported nor touched.
    async fn reconcile_described(
        &self,
        at: Place,
        name: ClusterName,
        info: Result<ClusterInfo, Error>,
        goal: &ClusterGoal,
        mode: RunMode,
    ) -> (ClusterName, Option<ClusterOutcome>) {
        match info {
            Ok(info) => {
                if info.has_tag(&self.config.cluster_tag.key, &self.config.cluster_tag.value) {
                    let r = self.reconcile_cluster(info, goal, mode).await;
                    (name, Some(r))
                } else {
                    tracing::debug!(cluster = %name, place = %at, "not tagged; left alone");
                    (name, None)
                }
            }
            Err(e) => {
                tracing::error!(cluster = %name, place = %at, error = %e, kind = e.kind().as_str(), "cannot describe cluster");
                let r = ClusterOutcome::failed(
                    Some(&name),
                    (at.account(), &at.region),
                    Backend::ConfigMap,
                    &e,
                );
                (name, Some(r))
            }
        }
    }

    /// One tagged cluster, by its backend.
    async fn reconcile_cluster(
        &self,
        cluster: ClusterInfo,
        goal: &ClusterGoal,
        mode: RunMode,
    ) -> ClusterOutcome {
        let backend = cluster.auth_mode.backend();
        let Some(conn) = cluster.connection() else {
            let reason = format!(
                "cluster is {} and has no endpoint yet; the next run will bring it in",
                if cluster.status.is_empty() {
                    "not active"
                } else {
                    &cluster.status
                }
            );
            let account = cluster.account();
            return ClusterOutcome::skipped(
                &cluster.name,
                (&account, &cluster.region),
                backend,
                reason,
            );
        };
        let result = match cluster.auth_mode {
            AuthMode::ConfigMap => {
                match self
                    .reconcile_aws_auth(&cluster, &conn, goal, mode, AwsAuthJob::Own)
                    .await
                {
                    Ok(outcome) if !goal.bindings.is_empty() => {
                        self.reconcile_bindings(&cluster, &conn, goal, mode, outcome)
                            .await
                    }
                    other => other,
                }
            }
            AuthMode::Api | AuthMode::ApiAndConfigMap => {
                self.reconcile_access_entries(&cluster, &conn, goal, mode)
                    .await
            }
        };
        let mut tiers: Vec<String> = Vec::new();
        for t in goal.tiers_for(&cluster) {
            if !tiers.contains(&t.name) {
                tiers.push(t.name.clone());
            }
        }
        let mut outcome = result.unwrap_or_else(|e| {
            tracing::error!(cluster = %cluster.name, place = %cluster.place(), error = %e, kind = e.kind().as_str(), "cluster failed");
            let account = cluster.account();
            ClusterOutcome::failed(Some(&cluster.name), (&account, &cluster.region), backend, &e)
        });
        outcome.report.tiers = tiers;
        outcome
    }

    /// Skipped outcomes for the clusters the scope names that were not found tagged.
    pub(super) fn missing_in_scope(
        &self,
        scope: &Scope,
        seen: &BTreeSet<ClusterName>,
    ) -> Vec<ClusterOutcome> {
        let Some(wanted) = &scope.clusters else {
            return Vec::new();
        };
        wanted
            .iter()
            .filter(|n| !seen.contains(*n))
            .map(|name| {
                let reason = format!(
                    "no cluster named {name} carrying the tag {}={} in {}",
                    self.config.cluster_tag.key,
                    self.config.cluster_tag.value,
                    self.config.cluster_regions.join(", ")
                );
                let region = scope.region.as_deref().unwrap_or_default();
                ClusterOutcome::skipped(name, ("", region), Backend::ConfigMap, reason)
            })
            .collect()
    }
}

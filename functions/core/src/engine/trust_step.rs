//! The trust-policy side of a run: the lease, the reads under it, the pure edit and
//! the write.

use std::future::Future;

use crate::adapters::aws::lock::{
    LockError, MIN_LEASE_FOR_WRITE, TRUST_LOCK_TTL, new_owner, trust_policy_lock_id,
};
use crate::engine::shards::{NewShard, TierRoles};
use crate::engine::{Engine, Error, RunInput, RunMode};
use crate::model::arn::RoleName;
use crate::output::plan::TrustPolicyPlan;
use crate::output::report::TierReport;
use crate::policy::trust::{
    PrincipalChange, TrustOptions, edit_trust_policy, policy_size_chars, trusted_user_count,
};
use crate::ports::{EksApi, IamApi, KubeConnector, Lease, RoleInfo};

/// The trust-policy lease of one run.
pub(super) enum TrustLease {
    /// The run does not write the trust policy (dry run, EKS event).
    NotNeeded,
    Held(Lease),
    /// Wanted but not obtained (the error): the trust policy is left alone.
    Unavailable(LockError),
}

/// A trust-policy write the edit calls for: the new document, users added and removed.
pub(super) struct PendingWrite {
    after: String,
    added: usize,
    removed: usize,
}

impl PendingWrite {
    pub(super) fn new(after: String, added: usize, removed: usize) -> Self {
        PendingWrite {
            after,
            added,
            removed,
        }
    }
}

impl<I: IamApi, E: EksApi, K: KubeConnector> Engine<I, E, K> {
    /// The leases (one per tier the run may write: the tiers it `touches`, when it
    /// `writes`; a tier's lease covers its role and its shards), then the run's input
    /// and the touched tiers' roles (each tier role, and the shard roles of all, listed
    /// once), read at once under them. A tier the run does not touch has no role read
    /// (`None`): its trust policy and its mappings on the clusters are left as they
    /// are (an event pays only for the tiers it may change; full runs touch every
    /// tier). `reads_sent` is told once the reads are on their way.
    pub(super) async fn read_trust_side(
        &self,
        touches: &[bool],
        writes: bool,
        input: impl Future<Output = RunInput>,
        reads_sent: futures::channel::oneshot::Sender<()>,
    ) -> (
        Vec<TrustLease>,
        RunInput,
        Vec<Option<Result<TierRoles, Error>>>,
    ) {
        let tiers = &self.config.access.tiers;
        let touched = |i: usize| touches.get(i).copied().unwrap_or(false);
        let leases = futures::future::join_all(
            tiers
                .iter()
                .enumerate()
                .map(|(i, t)| self.acquire_trust_lock(&t.role, writes && touched(i))),
        )
        .await;
        let roles = futures::future::join_all(tiers.iter().enumerate().map(|(i, t)| async move {
            if touched(i) {
                Some(self.iam.get_role(&t.role).await.map_err(Error::from))
            } else {
                None
            }
        }));
        let any = (0..tiers.len()).any(touched);
        let listed = async {
            if any {
                Some(self.iam.list_shard_roles().await)
            } else {
                None
            }
        };
        // Polled last: the reads above are sent by then.
        let sent = async {
            let _ = reads_sent.send(());
        };
        let (input, roles, listed, ()) = futures::join!(input, roles, listed, sent);
        let roles = roles
            .into_iter()
            .map(|r| {
                r.map(|r| {
                    let base = r?;
                    match &listed {
                        Some(Ok(listed)) => Ok(TierRoles::new(base, listed)),
                        Some(Err(e)) => Err(Error::ShardListing(e.to_string())),
                        None => Ok(TierRoles::new(base, &[])),
                    }
                })
            })
            .collect();
        (leases, input, roles)
    }

    /// The shard roles to create, created (under the tier's lease, if it has time
    /// enough left), each as IAM then describes it.
    pub(super) async fn create_shards(
        &self,
        lease: &TrustLease,
        creates: Vec<NewShard>,
    ) -> Vec<(RoleName, Result<RoleInfo, Error>)> {
        let boundary = self.config.shard_permissions_boundary.as_deref();
        futures::future::join_all(creates.into_iter().map(|c| async move {
            if let Err(e) = lease_left(lease) {
                return (c.name, Err(e));
            }
            let r = self
                .iam
                .create_shard_role(&c.name, &c.document, boundary)
                .await
                .map_err(Error::from);
            match &r {
                Ok(_) => tracing::info!(role = %c.name, members = c.members, "shard role created"),
                Err(e) => tracing::error!(role = %c.name, error = %e, "shard role not created"),
            }
            (c.name, r)
        }))
        .await
    }

    /// The pure edit of one tier's trust policy, into its plan and report parts; the
    /// write it calls for (none on a dry run).
    pub(super) fn plan_trust(
        &self,
        role: &RoleInfo,
        change: Option<&PrincipalChange>,
        mode: RunMode,
        plan: &mut TrustPolicyPlan,
        report: &mut TierReport,
    ) -> Option<PendingWrite> {
        let opts = TrustOptions::from(&self.config).with_role(&role.arn);
        let t = &mut report.trust_policy;
        t.size_chars = policy_size_chars(&role.trust_policy);
        let mut write = None;
        if let Some(change) = change {
            match edit_trust_policy(&role.trust_policy, change, &opts) {
                Ok(edit) => {
                    *plan = TrustPolicyPlan::from_edit(plan.role_name.clone(), &edit);
                    t.added = edit.added.iter().map(ToString::to_string).collect();
                    t.removed = edit.removed.clone();
                    t.dangling_removed = edit.dangling_removed.clone();
                    t.foreign_dangling = edit.foreign_dangling.clone();
                    t.size_chars = edit.size_after;
                    t.max_chars = edit.max_chars;
                    if let Some(after) = edit.after {
                        t.changed = true;
                        if mode.is_apply() {
                            write = Some(PendingWrite {
                                after,
                                added: edit.added.len(),
                                removed: edit.removed.len(),
                            });
                        }
                    }
                }
                Err(e) => {
                    tracing::error!(role = %plan.role_name, error = %e, "trust policy edit refused");
                    t.error = Some(Error::from(e).to_string());
                }
            }
        } else {
            plan.before = role.trust_policy.clone();
            plan.size_before = t.size_chars;
            plan.size_after = t.size_chars;
        }
        if report.members == 0 {
            let doc = plan.after.as_ref().unwrap_or(&role.trust_policy);
            if let Some(n) = trusted_user_count(doc, &self.config.trust_statement_sid) {
                report.members = n;
            }
        }
        write
    }

    /// The writes (if any) of a tier's roles, logged, then the lease given back. Each
    /// role with its result.
    pub(super) async fn write_and_release(
        &self,
        lease: TrustLease,
        writes: Vec<(RoleName, PendingWrite)>,
    ) -> Vec<(RoleName, Result<(), Error>)> {
        let done = futures::future::join_all(writes.into_iter().map(|(role, w)| {
            let lease = &lease;
            async move {
                let r = match lease_left(lease) {
                    Ok(()) => self
                        .iam
                        .update_trust_policy(&role, &w.after)
                        .await
                        .map_err(Error::from),
                    Err(e) => Err(e),
                };
                match &r {
                    Ok(()) => {
                        tracing::info!(role = %role, added = w.added, removed = w.removed, "trust policy written")
                    }
                    Err(e) => {
                        tracing::error!(role = %role, error = %e, "trust policy write failed")
                    }
                }
                (role, r)
            }
        }))
        .await;
        self.release_trust_lock(lease).await;
        done
    }

    /// Takes `role`'s trust-policy lease for a run that may write its trust policy
    /// (`wanted`).
    async fn acquire_trust_lock(&self, role: &RoleName, wanted: bool) -> TrustLease {
        if !wanted {
            return TrustLease::NotNeeded;
        }
        let lock_id = trust_policy_lock_id(role.as_str());
        match self
            .lock
            .acquire(&lock_id, &new_owner(), TRUST_LOCK_TTL)
            .await
        {
            Ok(lease) => TrustLease::Held(lease),
            Err(e) => {
                tracing::error!(error = %e, "the trust policy will not be edited: no lock");
                TrustLease::Unavailable(e)
            }
        }
    }

    /// Gives the lease back, if held. A failure is logged: the lease then expires on
    /// its own.
    pub(super) async fn release_trust_lock(&self, lease: TrustLease) {
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
}

/// Whether the lease (when one is held) has time enough left for a write and its
/// retries.
fn lease_left(lease: &TrustLease) -> Result<(), Error> {
    if let TrustLease::Held(lease) = lease {
        let left = lease.remaining();
        if left < MIN_LEASE_FOR_WRITE {
            return Err(Error::LeaseTooShort {
                left_s: left.as_secs(),
                needed_s: MIN_LEASE_FOR_WRITE.as_secs(),
            });
        }
    }
    Ok(())
}

/// A failed write or creation of `role`: nothing was applied to it, so the users its
/// plan added or removed are taken out of the tier's report, the role is reported
/// unchanged (the tier role at its size as it stands), and the error is added.
pub(super) fn write_failed(
    report: &mut TierReport,
    plan: &TrustPolicyPlan,
    role: &RoleName,
    error: &Error,
) {
    let part = if &plan.role_name == role {
        Some(plan)
    } else {
        plan.shards.iter().find(|p| &p.role_name == role)
    };
    let t = &mut report.trust_policy;
    if let Some(p) = part {
        let added: Vec<String> = p.added.iter().map(ToString::to_string).collect();
        t.added.retain(|a| !added.contains(a));
        t.removed.retain(|r| !p.removed.contains(r));
        if &plan.role_name == role {
            t.dangling_removed.clear();
            t.size_chars = policy_size_chars(&p.before);
        }
    }
    let message = if &plan.role_name == role {
        error.to_string()
    } else {
        format!("{role}: {error}")
    };
    t.error = Some(match t.error.take() {
        Some(e) => format!("{e}; {message}"),
        None => message,
    });
    for u in report
        .roles
        .iter_mut()
        .filter(|u| u.role_name == role.as_str())
    {
        u.changed = false;
        if u.created {
            u.members = 0;
        }
    }
    t.changed = if report.roles.is_empty() {
        false
    } else {
        report.roles.iter().any(|u| u.changed)
    };
}

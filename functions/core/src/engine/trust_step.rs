//! The trust-policy side of a run: the lease, the reads under it, the pure edit and
//! the write.

use std::future::Future;

use crate::adapters::aws::lock::{
    LockError, MIN_LEASE_FOR_WRITE, TRUST_LOCK_TTL, new_owner, trust_policy_lock_id,
};
use crate::engine::{Engine, Error, RunInput, RunMode};
use crate::model::arn::RoleName;
use crate::output::plan::TrustPolicyPlan;
use crate::output::report::{TierReport, TrustPolicyReport};
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

impl<I: IamApi, E: EksApi, K: KubeConnector> Engine<I, E, K> {
    /// The leases (one per tier role the run may write: the tiers it `touches`, when
    /// it `writes`), then the run's input and the touched tiers' roles, read at once
    /// under them. A tier the run does not touch has no role read (`None`): its
    /// trust policy and its mappings on the clusters are left as they are (an event
    /// pays only for the tiers it may change; full runs touch every tier).
    pub(super) async fn read_trust_side(
        &self,
        touches: &[bool],
        writes: bool,
        input: impl Future<Output = RunInput>,
    ) -> (Vec<TrustLease>, RunInput, Vec<Option<Result<RoleInfo, Error>>>) {
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
        let (input, roles) = futures::join!(input, roles);
        (leases, input, roles)
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

    /// The write (if any) of `role`'s trust policy, logged, then the lease given
    /// back. `None`: nothing written.
    pub(super) async fn write_and_release(
        &self,
        role: &RoleName,
        lease: TrustLease,
        write: Option<PendingWrite>,
    ) -> Option<Result<(), Error>> {
        let written = match write {
            None => None,
            Some(w) => {
                let r = self.write_trust_policy(role, &lease, &w.after).await;
                match &r {
                    Ok(()) => {
                        tracing::info!(role = %role, added = w.added, removed = w.removed, "trust policy written")
                    }
                    Err(e) => {
                        tracing::error!(role = %role, error = %e, "trust policy write failed")
                    }
                }
                Some(r)
            }
        };
        self.release_trust_lock(lease).await;
        written
    }

    /// `UpdateAssumeRolePolicy`, if the lease (when one is held) has time enough left
    /// for the write and its retries.
    async fn write_trust_policy(
        &self,
        role: &RoleName,
        lease: &TrustLease,
        after: &str,
    ) -> Result<(), Error> {
        if let TrustLease::Held(lease) = lease {
            let left = lease.remaining();
            if left < MIN_LEASE_FOR_WRITE {
                return Err(Error::LeaseTooShort {
                    left_s: left.as_secs(),
                    needed_s: MIN_LEASE_FOR_WRITE.as_secs(),
                });
            }
        }
        self.iam.update_trust_policy(role, after).await?;
        Ok(())
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

/// A failed write: nothing was applied, so no user is reported added or removed, and
/// the size is the policy's as it stands.
pub(super) fn write_failed(t: &mut TrustPolicyReport, role: &RoleInfo, error: &Error) {
    t.changed = false;
    t.error = Some(error.to_string());
    t.added.clear();
    t.removed.clear();
    t.dangling_removed.clear();
    t.size_chars = policy_size_chars(&role.trust_policy);
}

//! The trust-policy side of a run: the lease, the reads under it, the pure edit and
//! the write.

use std::future::Future;

use crate::adapters::aws::lock::{
    LockError, MIN_LEASE_FOR_WRITE, TRUST_LOCK_TTL, new_owner, trust_policy_lock_id,
};
use crate::engine::{Engine, Error, RunInput, RunMode};
use crate::output::plan::{Plan, TrustPolicyPlan};
use crate::output::report::RunReport;
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
    /// The lease (if the run writes the trust policy), then the run's input and the
    /// admin role, read at once under it.
    pub(super) async fn read_trust_side(
        &self,
        writes_trust: bool,
        input: impl Future<Output = RunInput>,
    ) -> (TrustLease, RunInput, Result<RoleInfo, Error>) {
        let lease = self.acquire_trust_lock(writes_trust).await;
        let (input, role) = futures::join!(input, self.iam.get_role(&self.config.admin_role_name));
        (lease, input, role.map_err(Error::from))
    }

    /// The pure edit of the trust policy, into the plan and the report; the write it
    /// calls for (none on a dry run).
    pub(super) fn plan_trust(
        &self,
        role: &RoleInfo,
        change: Option<&PrincipalChange>,
        mode: RunMode,
        plan: &mut Plan,
        report: &mut RunReport,
    ) -> Option<PendingWrite> {
        let opts = TrustOptions::from(&self.config).with_role(&role.arn);
        report.trust_policy.size_chars = policy_size_chars(&role.trust_policy);
        let mut write = None;
        if let Some(change) = change {
            match edit_trust_policy(&role.trust_policy, change, &opts) {
                Ok(edit) => {
                    plan.trust_policy =
                        TrustPolicyPlan::from_edit(self.config.admin_role_name.clone(), &edit);
                    let t = &mut report.trust_policy;
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
                    tracing::error!(error = %e, "trust policy edit refused");
                    report.trust_policy.error = Some(Error::from(e).to_string());
                }
            }
        } else {
            plan.trust_policy.before = role.trust_policy.clone();
            plan.trust_policy.size_before = report.trust_policy.size_chars;
            plan.trust_policy.size_after = report.trust_policy.size_chars;
        }
        if report.admin_users == 0 {
            let doc = plan
                .trust_policy
                .after
                .as_ref()
                .unwrap_or(&role.trust_policy);
            if let Some(n) = trusted_user_count(doc, &self.config.trust_statement_sid) {
                report.admin_users = n;
            }
        }
        write
    }

    /// The write (if any), logged, then the lease given back. `None`: nothing written.
    pub(super) async fn write_and_release(
        &self,
        lease: TrustLease,
        write: Option<PendingWrite>,
    ) -> Option<Result<(), Error>> {
        let written = match write {
            None => None,
            Some(w) => {
                let r = self.write_trust_policy(&lease, &w.after).await;
                match &r {
                    Ok(()) => {
                        tracing::info!(added = w.added, removed = w.removed, "trust policy written")
                    }
                    Err(e) => tracing::error!(error = %e, "trust policy write failed"),
                }
                Some(r)
            }
        };
        self.release_trust_lock(lease).await;
        written
    }

    /// `UpdateAssumeRolePolicy`, if the lease (when one is held) has time enough left
    /// for the write and its retries.
    async fn write_trust_policy(&self, lease: &TrustLease, after: &str) -> Result<(), Error> {
        if let TrustLease::Held(lease) = lease {
            let left = lease.remaining();
            if left < MIN_LEASE_FOR_WRITE {
                return Err(Error::LeaseTooShort {
                    left_s: left.as_secs(),
                    needed_s: MIN_LEASE_FOR_WRITE.as_secs(),
                });
            }
        }
        self.iam
            .update_trust_policy(&self.config.admin_role_name, after)
            .await?;
        Ok(())
    }

    /// Takes the trust-policy lease for a run that may write the trust policy
    /// (`wanted`).
    async fn acquire_trust_lock(&self, wanted: bool) -> TrustLease {
        if !wanted {
            return TrustLease::NotNeeded;
        }
        let lock_id = trust_policy_lock_id(self.config.admin_role_name.as_str());
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
pub(super) fn write_failed(report: &mut RunReport, role: &RoleInfo, error: &Error) {
    let t = &mut report.trust_policy;
    t.changed = false;
    t.error = Some(error.to_string());
    t.added.clear();
    t.removed.clear();
    t.dangling_removed.clear();
    t.size_chars = policy_size_chars(&role.trust_policy);
}

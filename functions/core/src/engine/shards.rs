//! A tier's roles on the trust side (issue 11): the tier role and its shards, read
//! together; the change spread over them by [`crate::policy::shards`]; the writes and
//! the roles to create.

use std::collections::BTreeSet;

use crate::engine::trust_step::PendingWrite;
use crate::engine::{Engine, Error, RunMode};
use crate::model::arn::{RoleName, UserArn};
use crate::output::plan::TrustPolicyPlan;
use crate::output::report::{RoleUsage, TierReport};
use crate::policy::shards::{
    Distribution, Placement, distribute, place_one, shard_document, shard_index, shard_name,
    shard_skeleton,
};
use crate::policy::trust::{
    PrincipalChange, TrustOptions, TrustPolicyError, edit_trust_policy, managed_principals,
    policy_size_chars, trusted_user_count, user_count,
};
use crate::ports::{EksApi, IamApi, KubeConnector, RoleInfo};

/// A tier's roles as read: the tier role, then its shards by number.
#[derive(Debug, Clone)]
pub(super) struct TierRoles {
    pub(super) base: RoleInfo,
    /// `(k, role)` for the shard `<role>-k`, k ≥ 2, ascending.
    pub(super) shards: Vec<(u32, RoleInfo)>,
}

impl TierRoles {
    /// The tier role `base` and the shards of it among `listed` (the roles at the shard
    /// path).
    pub(super) fn new(base: RoleInfo, listed: &[RoleInfo]) -> Self {
        let name = base.arn.name();
        let mut shards: Vec<(u32, RoleInfo)> = listed
            .iter()
            .filter_map(|r| {
                shard_index(&name, r.arn.name().as_str())
                    .filter(|k| *k >= 2)
                    .map(|k| (k, r.clone()))
            })
            .collect();
        shards.sort_by_key(|(k, _)| *k);
        TierRoles { base, shards }
    }
}

/// A shard role to create.
pub(super) struct NewShard {
    pub(super) name: RoleName,
    pub(super) document: String,
    pub(super) members: usize,
}

/// What a tier's trust side calls for.
#[derive(Default)]
pub(super) struct TierWork {
    /// Writes of the tier role (first, if any) and of its shards.
    pub(super) updates: Vec<(RoleName, PendingWrite)>,
    pub(super) creates: Vec<NewShard>,
    /// The roles the clusters must map this run: every role on full runs; on an
    /// event, the tier role and the shards it writes (the others were mapped before).
    pub(super) goal: Vec<RoleInfo>,
}

/// Whether `change` comes from an event (one user), not a full listing.
fn is_event(change: Option<&PrincipalChange>) -> bool {
    matches!(
        change,
        Some(
            PrincipalChange::Add(_)
                | PrincipalChange::RemoveArn(_)
                | PrincipalChange::RemoveName { .. }
        )
    )
}

impl<I: IamApi, E: EksApi, K: KubeConnector> Engine<I, E, K> {
    /// The pure edit of a tier's roles: the tier role's as before ([`Self::plan_trust`]),
    /// the shards' beside it; into the plan and the report.
    pub(super) fn plan_tier(
        &self,
        roles: &TierRoles,
        change: Option<&PrincipalChange>,
        mode: RunMode,
        plan: &mut TrustPolicyPlan,
        report: &mut TierReport,
    ) -> TierWork {
        let mut work = TierWork {
            goal: vec![roles.base.clone()],
            ..TierWork::default()
        };
        let opts = TrustOptions::from(&self.config).with_role(&roles.base.arn);
        let split = match self.split_change(roles, change, &opts) {
            Ok(split) => split,
            Err(e) => {
                tracing::error!(role = %roles.base.arn, error = %e, "the tier's members cannot be placed");
                report.trust_policy.error = Some(Error::from(e).to_string());
                if !is_event(change) {
                    work.goal
                        .extend(roles.shards.iter().map(|(_, r)| r.clone()));
                }
                self.plan_trust(&roles.base, None, mode, plan, report);
                return work;
            }
        };
        if let Some(w) = self.plan_trust(&roles.base, split.base.as_ref(), mode, plan, report) {
            work.updates.push((roles.base.arn.name(), w));
        }
        let max = self.config.trust_policy_max_chars;
        let base_members = trusted_user_count(
            plan.after.as_deref().unwrap_or(&roles.base.trust_policy),
            &self.config.trust_statement_sid,
        )
        .unwrap_or(0);
        let base_size = plan
            .after
            .as_deref()
            .map_or(report.trust_policy.size_chars, policy_size_chars);
        report.roles.push(RoleUsage::new(
            roles.base.arn.name().as_str(),
            1,
            base_members,
            base_size,
            max,
        ));
        if let Some(u) = report.roles.last_mut() {
            u.changed = plan.after.is_some();
        }
        let shards = split.shards.into_iter().zip(split.members).collect();
        let unchanged = self.plan_shards(roles, shards, mode, plan, report, &mut work);
        if !is_event(change) {
            work.goal.extend(unchanged);
        }
        self.plan_new_shards(roles, split.new_shards, mode, plan, report, &mut work);
        report.trust_policy.changed |= !plan.shards.is_empty();
        quota_warning(&roles.base, report);
        work
    }

    /// The existing shards: each one's usage, the writes of those that change (they
    /// join the clusters' goal); the shards left unchanged. `after`: each shard's new
    /// document if it changes, and the users it trusts as read if the split counted
    /// them.
    fn plan_shards(
        &self,
        roles: &TierRoles,
        after: Vec<(Option<String>, Option<usize>)>,
        mode: RunMode,
        plan: &mut TrustPolicyPlan,
        report: &mut TierReport,
        work: &mut TierWork,
    ) -> Vec<RoleInfo> {
        let mut unchanged = Vec::new();
        let max = self.config.trust_policy_max_chars;
        for ((k, role), (after, counted)) in roles.shards.iter().zip(after) {
            let (doc, changed) = match after {
                Some(after) => (after, true),
                None => (role.trust_policy.clone(), false),
            };
            let members = match counted {
                Some(n) if !changed => n,
                _ => trusted_user_count(&doc, &self.config.trust_statement_sid).unwrap_or(0),
            };
            let mut usage = RoleUsage::new(
                role.arn.name().as_str(),
                *k,
                members,
                policy_size_chars(&doc),
                max,
            );
            usage.changed = changed;
            report.roles.push(usage);
            if changed {
                let shard_plan = self.shard_plan(role.arn.name(), &role.trust_policy, &doc);
                note_changes(report, &shard_plan);
                if mode.is_apply() {
                    let (added, removed) = (shard_plan.added.len(), shard_plan.removed.len());
                    work.updates.push((
                        role.arn.name(),
                        PendingWrite::new(doc.clone(), added, removed),
                    ));
                }
                plan.shards.push(shard_plan);
                work.goal.push(role.clone());
            } else {
                unchanged.push(role.clone());
            }
        }
        unchanged
    }

    /// The shards to create: their usage and plans, and (when applying) the creations.
    fn plan_new_shards(
        &self,
        roles: &TierRoles,
        docs: Vec<String>,
        mode: RunMode,
        plan: &mut TrustPolicyPlan,
        report: &mut TierReport,
        work: &mut TierWork,
    ) {
        let max = self.config.trust_policy_max_chars;
        let next = roles.shards.last().map_or(2, |(k, _)| k + 1);
        for (k, doc) in (next..).zip(docs) {
            let Some(name) = shard_name(&roles.base.arn.name(), k) else {
                report.trust_policy.error = Some(format!(
                    "shard {k} of role {} would have a name longer than 64 characters; \
                     choose a shorter tier role name",
                    roles.base.arn.name()
                ));
                break;
            };
            let members = trusted_user_count(&doc, &self.config.trust_statement_sid).unwrap_or(0);
            let mut usage = RoleUsage::new(name.as_str(), k, members, policy_size_chars(&doc), max);
            usage.created = true;
            usage.changed = true;
            report.roles.push(usage);
            let shard_plan = self.shard_plan(name.clone(), "", &doc);
            note_changes(report, &shard_plan);
            plan.shards.push(shard_plan);
            if mode.is_apply() {
                work.creates.push(NewShard {
                    name,
                    document: doc,
                    members,
                });
            }
        }
    }

    /// The change for the tier role, each shard's new document (if it changes) and the
    /// documents of the shards to create.
    fn split_change(
        &self,
        roles: &TierRoles,
        change: Option<&PrincipalChange>,
        opts: &TrustOptions,
    ) -> Result<Split, TrustPolicyError> {
        let sid = &self.config.trust_statement_sid;
        let n = roles.shards.len();
        let mut split = Split {
            base: change.cloned(),
            shards: vec![None; n],
            new_shards: Vec::new(),
            members: vec![None; n],
        };
        let Some(change) = change else {
            return Ok(split);
        };
        let skeleton = shard_skeleton(&roles.base.trust_policy, sid);
        let mut current = vec![managed_principals(&roles.base.trust_policy, sid)?];
        for (_, r) in &roles.shards {
            current.push(managed_principals(&r.trust_policy, sid)?);
        }
        split.members = current
            .iter()
            .skip(1)
            .map(|c| Some(user_count(c)))
            .collect();
        match change {
            PrincipalChange::Set(desired) => {
                // Shards are rebuilt from the tier role's statement: sized on it.
                let mut docs = vec![roles.base.trust_policy.as_str()];
                docs.extend(std::iter::repeat_n(skeleton.as_str(), n));
                let Distribution {
                    roles: per_role,
                    new_shards,
                } = distribute(&docs, &current, desired, &skeleton, opts)?;
                let mut per_role = per_role.into_iter();
                split.base = per_role.next().map(PrincipalChange::Set);
                for (i, ((_, r), members)) in roles.shards.iter().zip(per_role).enumerate() {
                    let doc = shard_document(&skeleton, &members, opts)?;
                    if minified(&r.trust_policy) != doc {
                        split.shards[i] = Some(doc);
                    }
                }
                for members in new_shards {
                    split
                        .new_shards
                        .push(shard_document(&skeleton, &members, opts)?);
                }
            }
            PrincipalChange::Add(arn) => {
                split.base = None;
                match place_one(&roles.base.trust_policy, &current, &skeleton, arn, opts)? {
                    Placement::Trusted => {}
                    Placement::TierRole => split.base = Some(change.clone()),
                    Placement::Shard { index, members } => {
                        split.shards[index] = Some(shard_document(&skeleton, &members, opts)?);
                    }
                    Placement::NewShard => split.new_shards.push(shard_document(
                        &skeleton,
                        &BTreeSet::from([arn.clone()]),
                        opts,
                    )?),
                }
            }
            PrincipalChange::RemoveArn(_) | PrincipalChange::RemoveName { .. } => {
                for (i, (_, r)) in roles.shards.iter().enumerate() {
                    split.shards[i] = edit_trust_policy(&r.trust_policy, change, opts)?.after;
                }
            }
        }
        Ok(split)
    }

    /// The plan part of a shard's write (`before` empty: a role to create).
    fn shard_plan(&self, name: RoleName, before: &str, after: &str) -> TrustPolicyPlan {
        let sid = &self.config.trust_statement_sid;
        let was = if before.is_empty() {
            BTreeSet::new()
        } else {
            managed_principals(before, sid).unwrap_or_default()
        };
        let now = managed_principals(after, sid).unwrap_or_default();
        let lower = |s: &BTreeSet<String>| -> BTreeSet<String> {
            s.iter().map(|p| p.to_ascii_lowercase()).collect()
        };
        let (was_l, now_l) = (lower(&was), lower(&now));
        let mut p = TrustPolicyPlan::empty_for(name, self.config.trust_policy_max_chars);
        p.added = now
            .iter()
            .filter(|a| !was_l.contains(&a.to_ascii_lowercase()))
            .filter_map(|a| a.parse::<UserArn>().ok())
            .collect();
        p.removed = was
            .iter()
            .filter(|a| !now_l.contains(&a.to_ascii_lowercase()) && a.starts_with("arn:"))
            .cloned()
            .collect();
        p.size_before = if before.is_empty() {
            0
        } else {
            policy_size_chars(before)
        };
        p.size_after = policy_size_chars(after);
        p.before = before.to_owned();
        p.after = Some(after.to_owned());
        p
    }
}

/// The tier's change split over its roles.
struct Split {
    /// The tier role's change (`None`: left alone).
    base: Option<PrincipalChange>,
    /// Each shard's new document, when it changes.
    shards: Vec<Option<String>>,
    /// The documents of the shards to create, in order.
    new_shards: Vec<String>,
    /// The users each shard trusts as read, when counted.
    members: Vec<Option<usize>>,
}

/// A warning when the role the next member would go to is at 80 % of its quota or
/// more: the next shard will be created.
fn quota_warning(base: &RoleInfo, report: &mut TierReport) {
    if let Some(last) = report.roles.last()
        && last.percent >= 80
    {
        report.warnings.push(format!(
            "role {} is at {}% of its trust-policy quota ({} of {} characters): \
                 members past it go to a new shard role {}-{} (created by the tool)",
            last.role_name,
            last.percent,
            last.size_chars,
            last.max_chars,
            base.arn.name(),
            last.shard + 1
        ));
    }
}

/// The users a shard's write adds and removes join the tier's report.
fn note_changes(report: &mut TierReport, p: &TrustPolicyPlan) {
    let t = &mut report.trust_policy;
    t.added.extend(p.added.iter().map(ToString::to_string));
    t.removed.extend(p.removed.iter().cloned());
}

/// `doc` as the editor writes it (compact JSON, key order kept); `doc` itself if it is
/// not JSON (then it differs from anything the editor builds).
fn minified(doc: &str) -> String {
    serde_json::from_str::<serde_json::Value>(doc)
        .map(|v| v.to_string())
        .unwrap_or_else(|_| doc.to_owned())
}

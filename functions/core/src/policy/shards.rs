//! Any team size (issue 11): a tier whose members outgrow one trust policy
//! (`ACLSizePerRole`, 2,048 characters by default) is spread over several roles, each
//! an exact list of its members within the quota.
//!
//! - The tier's configured role `R` is shard 1; shards 2, 3, … are roles `R-2`, `R-3`,
//!   … at the path [`SHARD_PATH`], created by the tool when every existing role of the
//!   tier is full (never before: a tier below the quota keeps today's single list).
//! - **Headroom**: once a tier is sharded, full runs keep one empty shard (the
//!   spare) created and mapped, so that an event's newcomer into a full tier writes
//!   one trust policy and maps nothing; only a newcomer past the spare (before the
//!   next full run) creates a shard on the event.
//! - **Stable**: a member stays in the role that already trusts them; a member who
//!   leaves frees room that the next new member takes (first role with room, in
//!   shard order). No member is ever trusted by a role of a tier they are not in,
//!   so scaling never widens access.
//! - A shard's trust policy is entirely ours: on full runs it is rebuilt from the
//!   tier role's managed statement (its conditions and actions included, so a
//!   condition an administrator adds there, such as MFA, also binds every shard)
//!   with the shard's members. Other statements of the tier role are not copied.
//! - Sizes are counted as IAM counts them (minified, [`super::trust::policy_size_chars`]),
//!   through the same editor that writes, so no write can exceed the quota.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use crate::model::arn::{RoleName, UserArn};
use crate::policy::trust::{PrincipalChange, TrustOptions, TrustPolicyError, edit_trust_policy};

/// The IAM path of the shard roles the tool creates (the functions may create roles
/// under this path only, with the stack's permissions boundary).
pub const SHARD_PATH: &str = "/eks-access-sync/";

/// At most this many roles per tier (IAM's default quota is 1,000 roles per account;
/// 5,000 users at ~35 per role need about 145).
pub const MAX_SHARDS: u32 = 500;

/// The shard number of role `name` in the tier whose role is `base`: `base` → 1,
/// `base-<k>` (k ≥ 2, no leading zero) → k; names compared ignoring ASCII case, as
/// IAM does.
pub fn shard_index(base: &RoleName, name: &str) -> Option<u32> {
    if name.eq_ignore_ascii_case(base.as_str()) {
        return Some(1);
    }
    let b = base.as_str();
    let prefix = name.get(..b.len())?;
    let rest = name.get(b.len()..)?.strip_prefix('-')?;
    if !prefix.eq_ignore_ascii_case(b) || rest.starts_with('0') {
        return None;
    }
    if !rest.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    rest.parse::<u32>().ok().filter(|k| *k >= 2)
}

/// The name of shard `k` (≥ 2) of the tier whose role is `base`; `None` when it would
/// not be a valid role name (longer than 64 characters).
pub fn shard_name(base: &RoleName, k: u32) -> Option<RoleName> {
    format!("{base}-{k}").parse().ok()
}

/// The document a shard starts from: the tier role's managed statement(s) alone
/// (our `Sid`), or no statement if the tier role has none. The editor then puts the
/// shard's members in it.
pub fn shard_skeleton(base_doc: &str, sid: &str) -> String {
    let statements: Vec<Value> = serde_json::from_str::<Value>(base_doc)
        .ok()
        .and_then(|v| match v.get("Statement") {
            Some(Value::Array(a)) => Some(a.clone()),
            Some(o @ Value::Object(_)) => Some(vec![o.clone()]),
            _ => None,
        })
        .unwrap_or_default()
        .into_iter()
        .filter(|s| {
            s.get("Sid").and_then(Value::as_str) == Some(sid)
                && s.get("Effect").and_then(Value::as_str) == Some("Allow")
        })
        .collect();
    json!({"Version": "2012-10-17", "Statement": statements}).to_string()
}

/// A shard's whole document with exactly `members`, as the tier role's statement
/// would hold them ([`shard_skeleton`]).
pub fn shard_document(
    skeleton: &str,
    members: &BTreeSet<UserArn>,
    opts: &TrustOptions,
) -> Result<String, TrustPolicyError> {
    let edit = edit_trust_policy(skeleton, &PrincipalChange::Set(members.clone()), opts)?;
    Ok(edit.after.unwrap_or(edit.before))
}

/// The size of `doc` holding exactly `members` in our statement (the editor's own
/// count; an over-quota result still gives its size).
fn size_with(
    doc: &str,
    members: &BTreeSet<UserArn>,
    opts: &TrustOptions,
) -> Result<usize, TrustPolicyError> {
    Ok(edit_trust_policy(
        doc,
        &PrincipalChange::Set(members.clone()),
        &unbounded(opts),
    )?
    .size_after)
}

/// One role's fill while members are placed.
struct Fill<'a> {
    /// The document the size is counted on.
    doc: &'a str,
    members: BTreeSet<UserArn>,
    size: usize,
}

impl Fill<'_> {
    /// Whether `arn` fits within `max` once added. With two members or more the list
    /// grows by exactly the quoted ARN and a comma (ARNs need no JSON escaping); below
    /// that the editor counts it.
    fn fits(&self, arn: &UserArn, opts: &TrustOptions) -> Result<Option<usize>, TrustPolicyError> {
        let size = match self.members.len() {
            0 | 1 => {
                let mut with = self.members.clone();
                with.insert(arn.clone());
                size_with(self.doc, &with, opts)?
            }
            _ => self.size + arn.as_str().len() + 3,
        };
        Ok((size <= opts.max_chars).then_some(size))
    }

    fn add(&mut self, arn: UserArn, size: usize) {
        self.members.insert(arn);
        self.size = size;
    }
}

/// Where a tier's members go.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Distribution {
    /// Per existing role (in the order given), its members.
    pub roles: Vec<BTreeSet<UserArn>>,
    /// The members of each shard to create, in order.
    pub new_shards: Vec<BTreeSet<UserArn>>,
}

/// Spreads `desired` over the tier's roles (`docs`: each role's trust policy as the
/// size is counted on, shard order; `current`: the principals each trusts now).
/// Members stay where they are (the first role naming them, when several do); the
/// others fill the first role with room, then new shards built on `skeleton`.
pub fn distribute(
    docs: &[&str],
    current: &[BTreeSet<String>],
    desired: &BTreeSet<UserArn>,
    skeleton: &str,
    opts: &TrustOptions,
) -> Result<Distribution, TrustPolicyError> {
    // Each principal's first role, by its lower-case form: one pass over the roles.
    let mut owner: BTreeMap<String, usize> = BTreeMap::new();
    for (i, c) in current.iter().enumerate().take(docs.len()) {
        for p in c {
            owner.entry(p.to_ascii_lowercase()).or_insert(i);
        }
    }
    let mut kept: Vec<BTreeSet<UserArn>> = vec![BTreeSet::new(); docs.len()];
    let mut placed: BTreeSet<String> = BTreeSet::new();
    for d in desired {
        let key = d.as_str().to_ascii_lowercase();
        if let Some(&i) = owner.get(&key)
            && placed.insert(key)
        {
            kept[i].insert(d.clone());
        }
    }
    let mut fills = Vec::with_capacity(docs.len());
    for (doc, kept) in docs.iter().zip(kept) {
        let size = size_with(doc, &kept, opts)?;
        fills.push(Fill {
            doc,
            members: kept,
            size,
        });
    }
    let mut new: Vec<Fill> = Vec::new();
    for arn in desired {
        if placed.contains(&arn.as_str().to_ascii_lowercase()) {
            continue;
        }
        place(arn, &mut fills, &mut new, skeleton, opts, docs.len())?;
    }
    let mut out = Distribution {
        roles: fills.into_iter().map(|f| f.members).collect(),
        new_shards: new.into_iter().map(|f| f.members).collect(),
    };
    if out.needs_spare() {
        out.new_shards.push(BTreeSet::new());
    }
    Ok(out)
}

impl Distribution {
    /// Whether the tier is sharded (two roles or more) and none of its roles is empty:
    /// then a full run adds one empty shard, the spare. It trusts no one (an unused
    /// shard's document) and is mapped on every cluster of the tier like the others,
    /// so the next newcomer into a full tier lands in a role that is already mapped:
    /// the event writes one trust policy and no aws-auth (creating a shard on an event
    /// maps it on every cluster). Past [`MAX_SHARDS`] no spare is made.
    fn needs_spare(&self) -> bool {
        let all = || self.roles.iter().chain(&self.new_shards);
        let count = all().count();
        count >= 2 && count < MAX_SHARDS as usize && all().all(|m| !m.is_empty())
    }
}

/// Puts `arn` in the first role with room, else in a new shard.
fn place<'a>(
    arn: &UserArn,
    fills: &mut [Fill<'a>],
    new: &mut Vec<Fill<'a>>,
    skeleton: &'a str,
    opts: &TrustOptions,
    existing: usize,
) -> Result<(), TrustPolicyError> {
    for f in fills.iter_mut().chain(new.iter_mut()) {
        if let Some(size) = f.fits(arn, opts)? {
            f.add(arn.clone(), size);
            return Ok(());
        }
    }
    let mut shard = Fill {
        doc: skeleton,
        members: BTreeSet::new(),
        size: 0,
    };
    let Some(size) = shard.fits(arn, opts)? else {
        // Not even one member fits a fresh shard: the quota is too small for any.
        let size = size_with(skeleton, &BTreeSet::from([arn.clone()]), opts)?;
        return Err(TrustPolicyError::QuotaExceeded {
            size,
            max: opts.max_chars,
            users: 1,
            users_that_fit: 0,
        });
    };
    if existing + new.len() + 1 > MAX_SHARDS as usize {
        return Err(TrustPolicyError::TooManyShards { max: MAX_SHARDS });
    }
    shard.add(arn.clone(), size);
    new.push(shard);
    Ok(())
}

/// Where one new member goes on an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    /// A role of the tier trusts them already: nothing to write.
    Trusted,
    /// The tier role, which has room (its editor adds them).
    TierRole,
    /// The existing shard `index` (0 for the first shard, `<role>-2`), rebuilt on
    /// the skeleton with these members, the newcomer among them, as a full run
    /// would build it (so the tier statement's conditions bind them too).
    Shard {
        index: usize,
        members: BTreeSet<UserArn>,
    },
    /// A new shard, past every role.
    NewShard,
}

/// Where `arn` goes on an event: the first role with room, in shard order (`current`:
/// the principals each role trusts now, the tier role first, whose document is
/// `base_doc`; the shards are sized as [`shard_document`] on `skeleton` would build
/// them, which is what the event writes).
pub fn place_one(
    base_doc: &str,
    current: &[BTreeSet<String>],
    skeleton: &str,
    arn: &UserArn,
    opts: &TrustOptions,
) -> Result<Placement, TrustPolicyError> {
    if current
        .iter()
        .any(|c| c.iter().any(|p| p.eq_ignore_ascii_case(arn.as_str())))
    {
        return Ok(Placement::Trusted);
    }
    let add = PrincipalChange::Add(arn.clone());
    if edit_trust_policy(base_doc, &add, &unbounded(opts))?.size_after <= opts.max_chars {
        return Ok(Placement::TierRole);
    }
    let sizes = ShardSizes::new(skeleton, arn, opts)?;
    for (index, principals) in current.iter().skip(1).enumerate() {
        // The shard's users as the rebuilt document holds them, the newcomer with them.
        let users = || principals.iter().filter(|p| UserArn::is_valid(p));
        let chars: usize = users().map(String::len).sum::<usize>() + arn.as_str().len();
        if sizes.size(users().count() + 1, chars) <= opts.max_chars {
            let mut members: BTreeSet<UserArn> = users().filter_map(|p| p.parse().ok()).collect();
            members.insert(arn.clone());
            return Ok(Placement::Shard { index, members });
        }
    }
    if current.len() >= MAX_SHARDS as usize {
        return Err(TrustPolicyError::TooManyShards { max: MAX_SHARDS });
    }
    Ok(Placement::NewShard)
}

/// `opts` without a quota: the editor then gives the size of any result.
fn unbounded(opts: &TrustOptions) -> TrustOptions {
    TrustOptions {
        max_chars: usize::MAX,
        ..opts.clone()
    }
}

/// The size of a shard's document built on one skeleton ([`shard_document`]),
/// from its members alone: the editor writes one principal as a JSON string and
/// several as a list of strings, everything else staying the same, and an ARN needs
/// no JSON escaping (its characters are IAM name characters), so the size is the
/// rest of the document plus `"a"` or `["a","b",…]`. One document built gives the
/// rest (a test checks the sum against the documents themselves).
struct ShardSizes {
    /// No member: the deny placeholder's document.
    empty: usize,
    /// Everything but the value of `Principal.AWS`.
    rest: usize,
}

impl ShardSizes {
    fn new(skeleton: &str, probe: &UserArn, opts: &TrustOptions) -> Result<Self, TrustPolicyError> {
        let empty = size_with(skeleton, &BTreeSet::new(), opts)?;
        let one = size_with(skeleton, &BTreeSet::from([probe.clone()]), opts)?;
        Ok(ShardSizes {
            empty,
            rest: one.saturating_sub(probe.as_str().len() + 2),
        })
    }

    /// The size with `count` members whose ARNs add up to `chars` characters.
    fn size(&self, count: usize, chars: usize) -> usize {
        match count {
            0 => self.empty,
            1 => self.rest + chars + 2,
            n => self.rest + chars + 3 * n + 1,
        }
    }
}

#[cfg(test)]
mod tests;

//! Access events: every grant and revocation a run made, and a failed run, as custom
//! EventBridge events (`source: eks-access-sync`) for the rest of the organization
//! to route (chat, tickets, a SIEM) with an ordinary rule.
//!
//! - `Access Granted` / `Access Revoked`: one per user and tier whose trust policy
//!   gained or lost the user: `{user, tier, role, clusters, cause}`. `clusters` are the
//!   clusters where the tier's role is mapped, as this run left them (`region/name`).
//! - `Reconcile Failed`: `{failures, cause}` (the report's summary, no secrets).
//!
//! `cause` is the CloudTrail event that caused the run (`eventName`, `eventId`,
//! `eventTime`, `userName`), or `{"eventName": "Reconcile"}` for a full run.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::output::report::{ClusterStatus, RunReport};

/// The `source` of every access event.
pub const SOURCE: &str = "eks-access-sync";
pub const ACCESS_GRANTED: &str = "Access Granted";
pub const ACCESS_REVOKED: &str = "Access Revoked";
pub const RECONCILE_FAILED: &str = "Reconcile Failed";

/// What caused a run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Cause {
    pub event_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_name: Option<String>,
}

impl Cause {
    /// A full reconcile (scheduled, on demand, or an EKS event's).
    pub fn reconcile() -> Self {
        Cause {
            event_name: "Reconcile".to_owned(),
            ..Cause::default()
        }
    }
}

/// One event to put on the bus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessEvent {
    pub detail_type: &'static str,
    pub detail: Value,
}

/// The user name of a principal as the report lists it (an ARN, or a dangling ID).
fn user_of(principal: &str) -> &str {
    principal
        .rsplit_once(":user/")
        .map_or(principal, |(_, path)| {
            path.rsplit('/').next().unwrap_or(path)
        })
}

/// The events of an applied run (none for a dry run), made as they are taken: a first
/// run that adds 5,000 users to a tier of 100 clusters makes 5,000 events, each with
/// the tier's clusters, which the engine publishes a bounded number at a time rather
/// than holding them all (36 MB at once, measured).
pub fn access_events<'a>(
    report: &'a RunReport,
    cause: &'a Cause,
) -> impl Iterator<Item = AccessEvent> + 'a {
    let tiers = report
        .tiers
        .iter()
        .filter(|_| !report.dry_run)
        .filter(|t| t.trust_policy.changed && t.trust_policy.error.is_none())
        .flat_map(move |t| {
            let tp = &t.trust_policy;
            let clusters: Vec<String> = report
                .clusters
                .iter()
                .filter(|c| {
                    c.tiers.contains(&t.tier)
                        && !matches!(c.status, ClusterStatus::Failed | ClusterStatus::Skipped)
                })
                .map(|c| format!("{}/{}", c.region, c.name))
                .collect();
            let event = move |detail_type, principal: &String| AccessEvent {
                detail_type,
                detail: json!({
                    "user": user_of(principal),
                    "principal": principal,
                    "tier": t.tier,
                    "role": tp.role_name,
                    "clusters": clusters,
                    "cause": cause,
                }),
            };
            let granted = tp.added.iter().map(|p| (ACCESS_GRANTED, p));
            let revoked = tp.removed.iter().map(|p| (ACCESS_REVOKED, p));
            granted.chain(revoked).map(move |(kind, p)| event(kind, p))
        });
    let failed = (!report.dry_run && !report.succeeded()).then(|| AccessEvent {
        detail_type: RECONCILE_FAILED,
        detail: json!({ "failures": report.failure_summary(), "cause": cause }),
    });
    tiers.chain(failed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::report::{Backend, ClusterReport, TierReport, TrustPolicyReport};

    fn report() -> RunReport {
        let mut r = RunReport::new(false, "eks-admin", 2048);
        r.tiers.push(TierReport {
            tier: "readers".into(),
            members: 2,
            trust_policy: TrustPolicyReport {
                role_name: "eks-view".into(),
                changed: true,
                added: vec!["arn:aws:iam::111122223333:user/team/erin".into()],
                removed: vec!["arn:aws:iam::111122223333:user/frank".into()],
                ..TrustPolicyReport::default()
            },
            ..TierReport::default()
        });
        for (name, status, tiers) in [
            ("prod", ClusterStatus::Unchanged, vec!["readers".to_owned()]),
            ("dev", ClusterStatus::Updated, vec![]),
            ("old", ClusterStatus::Skipped, vec!["readers".to_owned()]),
        ] {
            r.clusters.push(ClusterReport {
                name: name.into(),
                account: String::new(),
                region: "us-east-1".into(),
                backend: Backend::ConfigMap,
                status,
                error: None,
                changes: vec![],
                tiers,
            });
        }
        r
    }

    #[test]
    fn one_event_per_user_and_tier_with_the_tiers_clusters() {
        let cause = Cause {
            event_name: "RemoveUserFromGroup".into(),
            event_id: Some("e-1".into()),
            ..Cause::default()
        };
        let events: Vec<_> = access_events(&report(), &cause).collect();
        let kinds: Vec<&str> = events.iter().map(|e| e.detail_type).collect();
        assert_eq!(kinds, [ACCESS_GRANTED, ACCESS_REVOKED]);
        let d = &events[0].detail;
        assert_eq!(d["user"], "erin");
        assert_eq!(d["tier"], "readers");
        assert_eq!(d["role"], "eks-view");
        assert_eq!(d["clusters"], json!(["us-east-1/prod"]));
        assert_eq!(d["cause"]["eventName"], "RemoveUserFromGroup");
        assert_eq!(d["cause"]["eventId"], "e-1");
        assert_eq!(events[1].detail["user"], "frank");
    }

    #[test]
    fn dry_runs_say_nothing_and_failures_are_one_event() {
        let mut r = report();
        r.dry_run = true;
        assert!(access_events(&r, &Cause::reconcile()).next().is_none());
        let mut r = report();
        r.tiers[0].trust_policy.changed = false;
        r.clusters[0].status = ClusterStatus::Failed;
        r.clusters[0].error = Some("Unauthorized".into());
        let events: Vec<_> = access_events(&r, &Cause::reconcile()).collect();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].detail_type, RECONCILE_FAILED);
        assert!(
            events[0].detail["failures"]
                .as_str()
                .unwrap()
                .contains("Unauthorized")
        );
    }
}

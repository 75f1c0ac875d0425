//! Access tiers (issue 10): the seeded users in three tiers (the admins by tag, 20
//! developers and 20 auditors by IAM group), a full reconcile through the CLI with the
//! configuration file, and one `AddUserToGroup` event through the iam-events handler.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::time::Instant;

use eks_access_sync::adapters::SdkEngine;
use eks_access_sync::model::config::Config;
use serde_json::{Value, json};

use crate::report::{EventRow, ScaleRow};
use crate::stats::Stat;
use crate::world::{ADMIN_ROLE, ADMIN_TAG, Calls, World, total, writes};
use crate::{BenchError, env_cmd, event_row, ms, proc, progress};

/// Members per group tier (within the trust-policy quota).
pub const GROUP_MEMBERS: usize = 20;

/// What the tier section measured.
#[derive(Debug, Clone)]
pub struct TierSection {
    pub clusters: usize,
    /// The reconcile with changes (three roles to fill), then in sync.
    pub full: Vec<ScaleRow>,
    /// IAM calls of each of those runs, and the trust-policy writes among them.
    pub iam_calls: Vec<(u64, u64)>,
    pub event: EventRow,
}

fn config_text() -> String {
    format!(
        "tiers:\n\
         \x20 - name: admin\n    role: {ADMIN_ROLE}\n    members: {{ tag: {}={} }}\n\
         \x20   kubernetes: {{ policy: AmazonEKSClusterAdminPolicy, groups: [\"system:masters\"] }}\n\
         \x20 - name: developers\n    role: eks-edit\n    members: {{ groups: [developers] }}\n\
         \x20   kubernetes: {{ policy: AmazonEKSEditPolicy, namespaces: [team-a] }}\n\
         \x20 - name: readers\n    role: eks-view\n    members: {{ groups: [auditors] }}\n\
         \x20   kubernetes: {{ policy: AmazonEKSViewPolicy }}\n",
        ADMIN_TAG.0, ADMIN_TAG.1
    )
}

async fn aws<T, E: std::fmt::Display>(
    what: &str,
    r: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, BenchError> {
    r.await.map_err(|e| BenchError::Aws(format!("{what}: {e}")))
}

/// The two group tiers' roles and groups, and their members among the seeded users
/// (after the admins: `user-{admins}`…).
async fn seed_tiers(w: &World, admins: usize, trust: &str) -> Result<(), BenchError> {
    for role in ["eks-edit", "eks-view"] {
        let req = w
            .iam
            .create_role()
            .role_name(role)
            .assume_role_policy_document(trust);
        aws("CreateRole", req.send()).await?;
    }
    for (k, group) in ["developers", "auditors"].into_iter().enumerate() {
        aws("CreateGroup", w.iam.create_group().group_name(group).send()).await?;
        for i in 0..GROUP_MEMBERS {
            let user = format!("user-{:05}", admins + k * GROUP_MEMBERS + i);
            let req = w.iam.add_user_to_group().group_name(group).user_name(user);
            aws("AddUserToGroup", req.send()).await?;
        }
    }
    Ok(())
}

async fn reconcile(
    w: &World,
    bin: &Path,
    file: &Path,
    out: &Path,
    latency: u64,
) -> Result<(proc::Exit, Calls), BenchError> {
    let mut cmd = env_cmd(bin, &w.env());
    cmd.arg("--config")
        .arg(file)
        .args(["reconcile", "--output", "json"]);
    w.reset_calls();
    w.set_latency(latency);
    let exit = proc::run_measured(cmd, out).await;
    w.set_latency(0);
    Ok((exit?, w.calls()))
}

fn group_event(user: &str) -> Result<Value, BenchError> {
    let mut ev: Value =
        serde_json::from_str(include_str!("../../../events/iam-add-user-to-group.json"))?;
    ev["detail"]["requestParameters"] = json!({ "userName": user, "groupName": "developers" });
    Ok(ev)
}

/// One AddUserToGroup event for a new user at `latency`, undone afterwards.
async fn event_run(
    w: &World,
    engine: &SdkEngine,
    user: &str,
    latency: u64,
) -> Result<(Option<f64>, Calls), BenchError> {
    w.set_latency(0);
    aws("CreateUser", w.iam.create_user().user_name(user).send()).await?;
    let add = w
        .iam
        .add_user_to_group()
        .group_name("developers")
        .user_name(user);
    aws("AddUserToGroup", add.send()).await?;
    let ev = group_event(user)?;
    w.reset_calls();
    w.set_latency(latency);
    let start = Instant::now();
    let r = iam_events::handle(engine, ev).await;
    let elapsed = start.elapsed();
    w.set_latency(0);
    let calls = w.calls();
    let rm = w
        .iam
        .remove_user_from_group()
        .group_name("developers")
        .user_name(user);
    aws("RemoveUserFromGroup", rm.send()).await?;
    aws("DeleteUser", w.iam.delete_user().user_name(user).send()).await?;
    match r {
        Ok(_) => Ok((Some(ms(elapsed)), calls)),
        Err(e) => {
            progress(format!("group event failed: {e}"));
            Ok((None, calls))
        }
    }
}

/// The tier section at `clusters` clusters (already created).
pub async fn tiers(
    w: &World,
    bin: &Path,
    admins: usize,
    clusters: usize,
    latency: u64,
    runs: usize,
    dir: &Path,
) -> Result<TierSection, BenchError> {
    w.set_latency(0);
    let trust = w.trust_policy().await?;
    seed_tiers(w, admins, &trust).await?;
    let file = dir.join("access.yaml");
    std::fs::write(&file, config_text())?;
    let out = dir.join("tiers-report.json");
    let mut full = Vec::new();
    let mut iam_calls = Vec::new();
    for in_sync in [false, true] {
        let (exit, calls) = reconcile(w, bin, &file, &out, latency).await?;
        iam_calls.push((
            total(&calls, "iam"),
            calls_of(&calls, "UpdateAssumeRolePolicy"),
        ));
        progress(format!(
            "tiers: reconcile ({}) at {clusters} clusters: {:.0} ms, {} IAM calls",
            if in_sync { "in sync" } else { "with changes" },
            ms(exit.wall),
            total(&calls, "iam")
        ));
        full.push(ScaleRow {
            clusters,
            in_sync,
            wall_ms: Stat::of(&[ms(exit.wall)]),
            rss_mib: Stat::of(&[exit.max_rss_kib as f64 / 1024.0]),
            writes: writes(&calls),
            calls,
            failures: usize::from(!exit.success),
        });
    }
    let env: BTreeMap<String, String> = w.env().into_iter().collect();
    let text = config_text();
    let config = Config::from_lookup(|k| match k {
        "ACCESS_CONFIG" => Some(text.clone()),
        _ => env.get(k).cloned(),
    })
    .map_err(|e| BenchError::Config(e.to_string()))?;
    let engine = SdkEngine::from_sdk(config.clone(), &w.sdk);
    let engine = &engine;
    let event = event_row(
        clusters,
        config.cluster_concurrency,
        runs,
        latency,
        |i, l| async move { event_run(w, engine, &format!("dev-{i}-{l}"), l).await },
    )
    .await?;
    progress(format!(
        "tiers: group event at {clusters} clusters: median {:.0} ms, critical path {:.0} ms",
        event.wall_ms.map(|s| s.median).unwrap_or(f64::NAN),
        event.critical_ms
    ));
    Ok(TierSection {
        clusters,
        full,
        iam_calls,
        event,
    })
}

fn calls_of(calls: &Calls, op: &str) -> u64 {
    calls
        .iter()
        .filter(|((s, o), _)| s == "iam" && o == op)
        .map(|(_, n)| *n)
        .sum()
}

impl TierSection {
    /// The report's section.
    pub fn markdown(&self, users: usize, admins: usize, latency: u64) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "## Access tiers (issue 10)\n");
        let _ = writeln!(
            s,
            "{users} users; three tiers: `admin` ({admins} users by tag), `developers` and `readers` \
             ({GROUP_MEMBERS} users each, by IAM group); {} clusters; {latency} ms per call. The \
             full reconcile runs the CLI with `--config`; the event is `AddUserToGroup` of a new \
             user into `developers` through the iam-events handler.\n",
            self.clusters
        );
        let _ = writeln!(
            s,
            "| run | wall (ms) | peak RSS (MiB) | IAM calls | trust-policy writes | writes in all | failed |\n|---|---|---|---|---|---|---|"
        );
        for (row, (iam, tp)) in self.full.iter().zip(&self.iam_calls) {
            let _ = writeln!(
                s,
                "| full reconcile, {} | {:.0} | {:.1} | {iam} | {tp} | {} | {} |",
                if row.in_sync {
                    "in sync"
                } else {
                    "three roles to fill"
                },
                row.wall_ms.map(|x| x.median).unwrap_or(f64::NAN),
                row.rss_mib.map(|x| x.median).unwrap_or(f64::NAN),
                row.writes,
                row.failures
            );
        }
        let e = &self.event;
        let median = e.wall_ms.map(|x| x.median).unwrap_or(f64::NAN);
        let _ = writeln!(
            s,
            "\n| group event | median (ms) | spread | runs | at 0 ms latency | critical path | ratio |\n|---|---|---|---|---|---|---|"
        );
        let _ = writeln!(
            s,
            "| AddUserToGroup at {} clusters | {median:.0} | {} | {} | {:.0} | {:.0} ms ({}) | {:.2} |",
            e.clusters,
            e.wall_ms.map(|x| x.spread(0)).unwrap_or_default(),
            e.wall_ms.map(|x| x.runs).unwrap_or(0),
            e.wall_zero_ms.map(|x| x.median).unwrap_or(f64::NAN),
            e.critical_ms,
            e.stages.join(" → "),
            median / e.critical_ms
        );
        let _ = writeln!(
            s,
            "\nMarks: IAM calls of a full reconcile ≤ 10 listing calls + one write per changed role \
             ({}); group event within 1.5× its critical path ({}).\n",
            if self.iam_calls.iter().all(|(n, w)| *n <= 10 + *w) {
                "held"
            } else {
                "MISSED"
            },
            if median <= 1.5 * e.critical_ms {
                "held"
            } else {
                "MISSED"
            }
        );
        s
    }
}

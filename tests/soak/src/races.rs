//! Races A (aws-auth writes against conflict injection and a real second writer) and
//! races B (IAM events at once, beside full reconciles, through the lease).

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, PostParams};
use serde_json::{Value, json};

use crate::world::{World, admin_role_arn, event, managed_principals, parse_roles, user_arn};
use crate::{Row, SoakError};

const WRITER2: &str = "arn:aws:iam::123456789012:role/writer2-";

/// What the second writer believes: entries it added and still has, entries it removed.
#[derive(Default)]
struct Writer2 {
    present: BTreeSet<String>,
    removed: BTreeSet<String>,
    writes: u64,
    conflicts: u64,
    errors: u64,
}

/// Adds or removes its own `mapRoles` entry at the resourceVersion it read; on 409 it
/// reads again.
async fn second_writer(api: Api<ConfigMap>, stop: Arc<AtomicBool>) -> Writer2 {
    let mut w = Writer2::default();
    let mut next = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let Ok(mut cm) = api.get("aws-auth").await else {
            w.errors += 1;
            tokio::time::sleep(Duration::from_millis(5)).await;
            continue;
        };
        let data = cm.data.get_or_insert_with(Default::default);
        let mut roles = parse_roles(data.get("mapRoles").map_or("", String::as_str));
        // Between 5 and 10 entries of its own: the document stays the size of a real
        // cluster's over a long soak.
        let remove = w.present.len() >= 10 || (w.present.len() >= 5 && next.is_multiple_of(3));
        let (arn, adding) = if remove {
            (w.present.iter().next().cloned().unwrap_or_default(), false)
        } else {
            (format!("{WRITER2}{next}"), true)
        };
        if adding {
            roles.push(json!({"rolearn": arn, "username": format!("writer2-{next}"), "groups": ["team-writer2"]}));
        } else {
            roles.retain(|r| r["rolearn"] != arn.as_str());
        }
        data.insert(
            "mapRoles".into(),
            serde_saphyr::to_string(&roles).unwrap_or_default(),
        );
        match api.replace("aws-auth", &PostParams::default(), &cm).await {
            Ok(_) => {
                w.writes += 1;
                next += 1;
                if adding {
                    w.present.insert(arn);
                } else {
                    w.present.remove(&arn);
                    w.removed.insert(arn);
                }
            }
            Err(kube::Error::Api(s)) if s.code == 409 => w.conflicts += 1,
            Err(_) => w.errors += 1,
        }
        // A busy controller's pace, not a tight loop: 100 writes a second at most.
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    w
}

fn rolearn(v: &Value) -> &str {
    v["rolearn"].as_str().unwrap_or_default()
}

pub async fn races_a(n: usize) -> Result<Row, SoakError> {
    let started = Instant::now();
    let w = World::start().await?;
    let engine = w.engine()?;
    let first = reconcile::handle(&engine, json!({"clusters": ["prod"]})).await;
    if let Err(e) = first {
        return Err(SoakError::Setup(format!("first reconcile: {e}")));
    }
    let seeded: Vec<Value> = w
        .map_roles("prod")
        .into_iter()
        .filter(|r| rolearn(r) != admin_role_arn())
        .collect();
    let stop = Arc::new(AtomicBool::new(false));
    let api: Api<ConfigMap> = Api::namespaced(w.kube("prod").await?, "kube-system");
    let writer = tokio::spawn(second_writer(api, stop.clone()));

    let mut injected = 0u64;
    // Injected node-role entries found in aws-auth right after the run that raced them.
    let mut race_nodes_kept = 0u64;
    let mut run_failures = Vec::new();
    let mut admin_not_once = 0u64;
    let mut durations = Vec::with_capacity(n);
    for i in 0..n {
        if i % 100 == 99 {
            eprintln!("soak: races A: {} of {n} writes", i + 1);
        }
        // Drift: the admin mapping is gone, so the run has to write aws-auth.
        // The injected node-role entries checked after the previous run go too, so the
        // document stays the size of a real cluster's.
        w.edit_map_roles("prod", |roles| {
            roles.retain(|r| {
                rolearn(r) != admin_role_arn() && !rolearn(r).contains(":role/race-node-")
            })
        });
        w.fault(r#"{"cluster": "prod", "awsAuthConflicts": 1}"#)?;
        let t = Instant::now();
        let r = tokio::time::timeout(
            Duration::from_secs(60),
            reconcile::handle(&engine, json!({"clusters": ["prod"]})),
        )
        .await;
        durations.push(t.elapsed().as_secs_f64() * 1000.0);
        let armed_left = {
            let shared = w.sb.shared();
            let st = eks_sandbox::aws::lock(&shared);
            st.clusters
                .get("prod")
                .map_or(0, |c| c.faults.aws_auth_conflicts)
        };
        if armed_left == 0 {
            injected += 1;
            if w.map_roles("prod")
                .iter()
                .any(|r| rolearn(r).contains(":role/race-node-"))
            {
                race_nodes_kept += 1;
            }
        } else {
            w.fault(r#"{"cluster": "prod", "awsAuthConflicts": 0}"#)?;
        }
        match r {
            Err(_) => run_failures.push(format!("write {i}: did not end in 60 s")),
            Ok(Err(e)) => run_failures.push(format!("write {i}: {e}")),
            Ok(Ok(report)) => {
                let failed = report["clusters"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|c| c["status"] == "failed");
                if let Some(c) = failed {
                    run_failures.push(format!("write {i}: prod failed: {}", c["error"]));
                }
            }
        }
        let admins = w
            .map_roles("prod")
            .iter()
            .filter(|r| rolearn(r) == admin_role_arn())
            .count();
        if admins != 1 {
            admin_not_once += 1;
        }
    }
    stop.store(true, Ordering::Relaxed);
    let w2 = writer
        .await
        .map_err(|e| SoakError::Setup(format!("second writer: {e}")))?;
    let roles = w.map_roles("prod");
    let arns: Vec<&str> = roles.iter().map(rolearn).collect();
    let lost_w2: Vec<&String> = w2
        .present
        .iter()
        .filter(|a| !arns.contains(&a.as_str()))
        .collect();
    let resurrected: Vec<&String> = w2
        .removed
        .iter()
        .filter(|a| arns.contains(&a.as_str()))
        .collect();
    let admin_count = arns.iter().filter(|a| **a == admin_role_arn()).count();
    let race_nodes = race_nodes_kept;
    let seeded_kept = seeded
        .iter()
        .filter(|s| !rolearn(s).contains("writer2-") && !rolearn(s).contains("race-node-"))
        .all(|s| roles.contains(s));
    w.shutdown().await;

    let mut lost = Vec::new();
    if !lost_w2.is_empty() {
        lost.push(format!(
            "{} second-writer entries lost: {:?}",
            lost_w2.len(),
            lost_w2
        ));
    }
    if !resurrected.is_empty() {
        lost.push(format!(
            "{} removed second-writer entries came back",
            resurrected.len()
        ));
    }
    if admin_count != 1 {
        lost.push(format!("admin mapping {admin_count} times at the end"));
    }
    if admin_not_once > 0 {
        lost.push(format!(
            "admin mapping not exactly once after {admin_not_once} runs"
        ));
    }
    if race_nodes < injected {
        lost.push(format!(
            "{} of {injected} injected node-role entries lost",
            injected - race_nodes
        ));
    }
    if !seeded_kept {
        lost.push("the seeded node-role entry changed".into());
    }
    if !run_failures.is_empty() {
        lost.push(format!(
            "{} runs failed (first: {})",
            run_failures.len(),
            run_failures[0]
        ));
    }
    Ok(Row {
        class: "races A: aws-auth writes raced".into(),
        method: format!(
            "{n} runs of reconcile (`{{\"clusters\": [\"prod\"]}}`), each after the admin mapping was removed from prod's aws-auth, each with the sandbox's conflict injection armed (a node-role entry lands before the write: 409), while a second writer (kube client as the operator) kept adding/removing its own mapRoles entries at the resourceVersion it read (one write every 10 ms at most), retrying on 409 and keeping 5 to 10 entries of its own; after each run the injected entry is checked, then removed with the admin mapping, so the document stays the size of a real cluster's"
        ),
        tried: format!(
            "{n} writes; {injected} injected conflicts fired; second writer: {} writes, {} 409s, {} other errors",
            w2.writes, w2.conflicts, w2.errors
        ),
        spread: crate::spread_ms(&mut durations),
        held: format!(
            "admin mapping once after {} of {n} runs; {} second-writer entries present, {} removed ones absent; {race_nodes} injected entries kept; seeded node role {}",
            n as u64 - admin_not_once,
            w2.present.len() - lost_w2.len(),
            w2.removed.len() - resurrected.len(),
            if seeded_kept { "unchanged" } else { "CHANGED" }
        ),
        lost: if lost.is_empty() {
            "0".into()
        } else {
            lost.join("; ")
        },
        ok: lost.is_empty(),
        seconds: started.elapsed().as_secs_f64(),
    })
}

pub async fn races_b(n: usize, repo: &Path) -> Result<Row, SoakError> {
    let started = Instant::now();
    let w = World::start().await?;
    // The trust policy holds at most ~30 users (ACLSizePerRole 2,048): n events end
    // with n/8 tagged users. a: tagged and in the policy, then untagged (UntagUser);
    // b: tagged (half by TagUser, half created tagged: CreateUser); c: tagged then
    // untagged again (two events each, final untagged).
    let a = n / 8;
    let b = n / 8;
    let c = (n - a - b) / 2;
    let na = |i| format!("ra{i}");
    let nb = |i| format!("rb{i}");
    let nc = |i| format!("rc{i}");
    for i in 0..a {
        w.create_user(&na(i), true).await?;
    }
    for i in 0..c {
        w.create_user(&nc(i), false).await?;
    }
    for i in 0..b / 2 {
        w.create_user(&nb(i), false).await?;
    }
    let e0 = w.engine()?;
    if let Err(e) = reconcile::handle(&e0, json!({})).await {
        return Err(SoakError::Setup(format!("first reconcile: {e}")));
    }
    // What IAM does before CloudTrail delivers the events.
    let mut events = Vec::new();
    for i in 0..a {
        w.untag_user(&na(i)).await?;
        events.push(event(repo, "iam-untag-user", &na(i))?);
    }
    for i in 0..b {
        if i < b / 2 {
            w.tag_user(&nb(i)).await?;
            events.push(event(repo, "iam-tag-user", &nb(i))?);
        } else {
            w.create_user(&nb(i), true).await?;
            events.push(event(repo, "iam-create-user-tagged", &nb(i))?);
        }
    }
    for i in 0..c {
        w.tag_user(&nc(i)).await?;
        events.push(event(repo, "iam-tag-user", &nc(i))?);
        w.untag_user(&nc(i)).await?;
        events.push(event(repo, "iam-untag-user", &nc(i))?);
    }
    let sent = events.len();
    let mut expected: BTreeSet<String> = (0..b).map(|i| user_arn(&nb(i))).collect();
    expected.insert(user_arn("alice"));

    // Every event with its own engine (its own Lambda process), three full reconciles
    // beside them, all at once.
    let t = Instant::now();
    let mut runs = Vec::new();
    for ev in events {
        let engine = w.engine()?;
        runs.push(tokio::spawn(async move {
            iam_events::handle(&engine, ev)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        }));
    }
    for _ in 0..3 {
        let engine = w.engine()?;
        runs.push(tokio::spawn(async move {
            reconcile::handle(&engine, json!({}))
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        }));
    }
    let all = tokio::time::timeout(Duration::from_secs(600), futures::future::join_all(runs)).await;
    let took = t.elapsed().as_secs_f64();
    let mut failures = Vec::new();
    match all {
        Err(_) => failures.push("did not end in 600 s".to_string()),
        Ok(results) => {
            for r in results {
                match r {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => failures.push(e),
                    Err(e) => failures.push(format!("task: {e}")),
                }
            }
        }
    }
    let policy = managed_principals(&w.trust_policy().await?);
    w.shutdown().await;
    let lost: Vec<&String> = expected.difference(&policy).collect();
    let extra: Vec<&String> = policy.difference(&expected).collect();
    let mut what = Vec::new();
    if !lost.is_empty() {
        what.push(format!("{} principals lost: {:?}", lost.len(), lost));
    }
    if !extra.is_empty() {
        what.push(format!("{} extra principals: {:?}", extra.len(), extra));
    }
    if !failures.is_empty() {
        what.push(format!(
            "{} of {} runs failed (first: {})",
            failures.len(),
            sent + 3,
            failures[0]
        ));
    }
    Ok(Row {
        class: "races B: IAM events at once".into(),
        method: format!(
            "{sent} IAM events at once through the real iam-events handler, each with its own engine (untag {a}, tag {}, create tagged {}, tag then untag {c} users), with 3 full reconciles beside them; the lease on (DynamoDB table in the sandbox)",
            b / 2,
            b - b / 2
        ),
        tried: format!("{sent} events + 3 reconciles, in {took:.1} s"),
        spread: "one burst".into(),
        held: format!(
            "trust policy = tagged users: {} expected, {} present",
            expected.len(),
            expected.len() - lost.len()
        ),
        lost: if what.is_empty() {
            "0 lost, 0 extra".into()
        } else {
            what.join("; ")
        },
        ok: what.is_empty(),
        seconds: started.elapsed().as_secs_f64(),
    })
}

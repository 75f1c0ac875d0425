//! The fault matrix: every AWS and Kubernetes call an entry point makes (found by a
//! clean run), failing once and always, with throttling, 500, a hang and a reset
//! connection. Each cell runs in its own sandbox world.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::Semaphore;

use crate::SoakError;
use crate::world::{World, admin_role_arn, event};

/// An entry point, the calls a clean run of it makes, and the state it ends in.
pub type Found = (Entry, Vec<(String, String)>, Snapshot);

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Entry {
    Event,
    Reconcile,
}

impl Entry {
    pub fn name(self) -> &'static str {
        match self {
            Entry::Event => "event (TagUser)",
            Entry::Reconcile => "full reconcile",
        }
    }
}

pub const KINDS: [&str; 4] = ["throttle", "error500", "reset", "hang"];

#[derive(Debug, Clone)]
pub struct Cell {
    pub entry: Entry,
    pub service: String,
    pub operation: String,
    pub kind: &'static str,
    pub always: bool,
}

#[derive(Debug, Clone)]
pub struct CellResult {
    pub cell: Cell,
    /// succeeded | failed | hung
    pub outcome: String,
    pub verdict: Verdict,
    pub detail: String,
    pub recovered: String,
    pub seconds: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Held,
    /// A true report, but not what was expected (no retry on once, error without the service).
    Failed,
    Hung,
    /// Half-written state or a report that does not match the state.
    Lost,
}

/// State that a run may change: the trust policy, prod's mapRoles, staging's entries.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    trust: Value,
    map_roles: Vec<Value>,
    entries: BTreeSet<String>,
}

async fn snapshot(w: &World) -> Result<Snapshot, SoakError> {
    Ok(Snapshot {
        trust: w.trust_policy().await?,
        map_roles: w.map_roles("prod"),
        entries: w.access_entries("staging"),
    })
}

/// A fresh world with a tagged user `dave` not yet in the trust policy.
async fn prepared() -> Result<World, SoakError> {
    let w = World::start().await?;
    w.create_user("dave", true).await?;
    Ok(w)
}

/// A cell's world and its state before the fault. A setup that fails (the sandbox's
/// moto under the load of many cells starting at once) is done again once, on a fresh
/// world: a cell judges the run under its fault, not the harness's setup, and a setup
/// failing twice is still reported.
async fn set_up() -> Result<(World, Snapshot), SoakError> {
    async fn once() -> Result<(World, Snapshot), SoakError> {
        let w = prepared().await?;
        let before = snapshot(&w).await?;
        Ok((w, before))
    }
    match once().await {
        Ok(ready) => Ok(ready),
        Err(e) => {
            eprintln!("soak: a cell's setup failed ({e}); once more on a fresh world");
            once().await
        }
    }
}

/// (ok, report JSON if any, error text).
async fn run(
    w: &World,
    entry: Entry,
    repo: &Path,
) -> Result<(bool, Option<Value>, String), SoakError> {
    let engine = w.engine()?;
    Ok(match entry {
        Entry::Event => {
            match iam_events::handle(&engine, event(repo, "iam-tag-user", "dave")?).await {
                Ok(v) => (true, Some(v), String::new()),
                Err(e) => (false, serde_json::to_value(&*e.report).ok(), e.to_string()),
            }
        }
        Entry::Reconcile => match reconcile::handle(&engine, json!({})).await {
            Ok(v) => (true, Some(v), String::new()),
            Err(reconcile::ReconcileError::RunFailed { summary, report }) => {
                (false, serde_json::to_value(&*report).ok(), summary)
            }
            Err(e) => (false, None, e.to_string()),
        },
    })
}

/// The calls each entry point makes on a clean run, and the state it ends in.
pub async fn discover(
    repo: &Path,
) -> Result<Vec<(Entry, Vec<(String, String)>, Snapshot)>, SoakError> {
    let mut out = Vec::new();
    for entry in [Entry::Event, Entry::Reconcile] {
        let w = prepared().await?;
        w.reset_calls();
        let (ok, _, err) = run(&w, entry, repo).await?;
        if !ok {
            return Err(SoakError::Setup(format!("clean {}: {err}", entry.name())));
        }
        let mut ops: Vec<(String, String)> = w
            .calls()
            .into_iter()
            .map(|(s, o, _)| match s.strip_prefix("k8s:") {
                Some(_) => ("kube".to_string(), o),
                None => (s, o),
            })
            .collect();
        ops.sort();
        ops.dedup();
        let snap = snapshot(&w).await?;
        w.shutdown().await;
        out.push((entry, ops, snap));
    }
    Ok(out)
}

fn names_service(text: &str, service: &str, op: &str) -> bool {
    let t = text.to_ascii_lowercase();
    let words: &[&str] = match service {
        "iam" => &["iam"],
        "sts" => &["sts"],
        "eks" => &["eks"],
        "dynamodb" => &["dynamodb", "lease", "lock"],
        _ => &["kubernetes", "aws-auth", "configmap", "k8s", "kube"],
    };
    words.iter().any(|w| t.contains(w))
        || op
            .split(' ')
            .next_back()
            .is_some_and(|o| t.contains(&o.to_ascii_lowercase()))
}

async fn one(cell: Cell, reference: Snapshot, repo: PathBuf, guard: Duration) -> CellResult {
    let t = Instant::now();
    let r = one_inner(&cell, &reference, &repo, guard).await;
    let seconds = t.elapsed().as_secs_f64();
    match r {
        Ok((outcome, verdict, detail, recovered)) => CellResult {
            cell,
            outcome,
            verdict,
            detail,
            recovered,
            seconds,
        },
        Err(e) => CellResult {
            cell,
            outcome: "not run".into(),
            verdict: Verdict::Failed,
            detail: format!("setup: {e}"),
            recovered: "-".into(),
            seconds,
        },
    }
}

async fn one_inner(
    cell: &Cell,
    reference: &Snapshot,
    repo: &Path,
    guard: Duration,
) -> Result<(String, Verdict, String, String), SoakError> {
    let (w, before) = set_up().await?;
    let count = if cell.always { "null" } else { "1" };
    let op = &cell.operation;
    w.fault(&format!(
        r#"{{"service":"{}","operation":{},"kind":"{}","count":{count}}}"#,
        cell.service,
        json!(op),
        cell.kind
    ))?;
    let result = tokio::time::timeout(guard, run(&w, cell.entry, repo)).await;
    w.fault(&format!(
        r#"{{"service":"{}","operation":{},"kind":"off"}}"#,
        cell.service,
        json!(op)
    ))?;
    let after = snapshot(&w).await?;
    // Never half-written: each part is the old or the new state.
    let mut half = Vec::new();
    if after.trust != before.trust && after.trust != reference.trust {
        half.push("trust policy");
    }
    if after.map_roles != before.map_roles && after.map_roles != reference.map_roles {
        half.push("prod aws-auth");
    }
    if after.entries != before.entries && after.entries != reference.entries {
        half.push("staging access entries");
    }
    let admin_once = after
        .map_roles
        .iter()
        .filter(|r| r["rolearn"] == admin_role_arn().as_str())
        .count()
        <= 1;
    if !admin_once {
        half.push("admin mapping twice");
    }
    let (outcome, verdict, mut detail) = match result {
        Err(_) => (
            "hung".to_string(),
            Verdict::Hung,
            format!("no answer within {} s", guard.as_secs()),
        ),
        Ok(Err(e)) => return Err(e),
        Ok(Ok((ok, report, err))) => {
            // A true report: what it says succeeded is in the new state.
            let mut lies = Vec::new();
            if let Some(rep) = &report {
                let trust_ok = rep["trustPolicy"].get("error").is_none_or(Value::is_null);
                if trust_ok && after.trust != reference.trust {
                    lies.push("trust policy reported done but is not");
                }
                for c in rep["clusters"].as_array().into_iter().flatten() {
                    let failed = c["status"] == "failed";
                    if failed {
                        continue;
                    }
                    if c["name"] == "prod" && after.map_roles != reference.map_roles {
                        lies.push("prod reported done but aws-auth is not");
                    }
                    if c["name"] == "staging" && after.entries != reference.entries {
                        lies.push("staging reported done but its access entry is not");
                    }
                }
            } else if ok {
                lies.push("no report");
            }
            let failures_named = report
                .as_ref()
                .map(|r| {
                    let mut t = r["trustPolicy"]["error"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string();
                    for c in r["clusters"].as_array().into_iter().flatten() {
                        t.push(' ');
                        t.push_str(c["error"].as_str().unwrap_or_default());
                    }
                    t
                })
                .unwrap_or_default()
                + " "
                + &err;
            if !lies.is_empty() {
                ("lied".to_string(), Verdict::Lost, lies.join("; "))
            } else if ok {
                let d = if cell.always {
                    "succeeded without the call".to_string()
                } else {
                    "retried and succeeded".to_string()
                };
                ("succeeded".to_string(), Verdict::Held, d)
            } else {
                let short: String = err.chars().take(160).collect();
                if !names_service(&failures_named, &cell.service, op) {
                    (
                        "failed".to_string(),
                        Verdict::Failed,
                        format!("error does not name {}: {short}", cell.service),
                    )
                } else if cell.always {
                    (
                        "failed".to_string(),
                        Verdict::Held,
                        format!("clear failure: {short}"),
                    )
                } else {
                    (
                        "failed".to_string(),
                        Verdict::Failed,
                        format!("no retry after one fault: {short}"),
                    )
                }
            }
        }
    };
    let verdict = if half.is_empty() {
        verdict
    } else {
        detail = format!("HALF-WRITTEN ({}); {detail}", half.join(", "));
        Verdict::Lost
    };
    // Recovery: with the fault gone, the same entry point converges.
    let recovered = match tokio::time::timeout(guard, run(&w, cell.entry, repo)).await {
        Err(_) => "hung".to_string(),
        Ok(Err(e)) => format!("error: {e}"),
        Ok(Ok((true, _, _))) => {
            let s = snapshot(&w).await?;
            if s == *reference {
                "yes".into()
            } else {
                "ran, state differs".into()
            }
        }
        Ok(Ok((false, _, e))) => format!("no: {}", e.chars().take(80).collect::<String>()),
    };
    w.shutdown().await;
    Ok((
        outcome,
        verdict,
        detail.replace('|', "/").replace('\n', " "),
        recovered,
    ))
}

/// Every cell. `quick`: hang cells for the first operation of each service only.
pub fn cells(found: &[Found], quick: bool) -> Vec<Cell> {
    let mut out = Vec::new();
    for (entry, ops, _) in found {
        let mut hang_done = BTreeSet::new();
        for (service, operation) in ops {
            for kind in KINDS {
                if kind == "hang" && quick && !hang_done.insert(service.clone()) {
                    continue;
                }
                for always in [false, true] {
                    out.push(Cell {
                        entry: *entry,
                        service: service.clone(),
                        operation: operation.clone(),
                        kind,
                        always,
                    });
                }
            }
        }
    }
    out
}

/// Runs every cell, `parallel` at once (a hang costs up to `guard`).
pub async fn run_matrix(
    found: Vec<Found>,
    quick: bool,
    repo: &Path,
    guard: Duration,
    parallel: usize,
) -> Vec<CellResult> {
    let cells = cells(&found, quick);
    let sem = Arc::new(Semaphore::new(parallel.max(1)));
    // Cells that may wait out the guard (hangs; kube's client retries a 429 up to 15
    // times with a growing backoff) wait beside the others, in their own pool.
    let slow = Arc::new(Semaphore::new(16));
    let total = cells.len();
    let mut tasks = Vec::new();
    for (i, cell) in cells.into_iter().enumerate() {
        let reference = found
            .iter()
            .find(|(e, _, _)| *e == cell.entry)
            .map(|(_, _, s)| s.clone());
        let sem = if cell.kind == "hang" || (cell.service == "kube" && cell.kind == "throttle") {
            slow.clone()
        } else {
            sem.clone()
        };
        let repo = repo.to_path_buf();
        tasks.push(tokio::spawn(async move {
            let _permit = sem.acquire_owned().await;
            let reference = reference?;
            let r = one(cell, reference, repo, guard).await;
            eprintln!(
                "soak: cell {}/{total}: {} {} {} {} {}: {:?} ({:.1} s)",
                i + 1,
                r.cell.entry.name(),
                r.cell.service,
                r.cell.operation,
                r.cell.kind,
                if r.cell.always { "always" } else { "once" },
                r.verdict,
                r.seconds
            );
            Some(r)
        }));
    }
    let mut out = Vec::new();
    for t in tasks {
        if let Ok(Some(r)) = t.await {
            out.push(r);
        }
    }
    out
}

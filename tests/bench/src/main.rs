//! `bench`: the numbers of issue 6, measured against the sandbox and written to
//! `BENCHMARKS.md`. Run through `make bench` (release builds of everything measured).

mod accounts;
mod coldstart;
mod invoke;
mod proc;
mod report;
mod stats;
mod team;
mod tiers;
mod world;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use clap::Parser;
use eks_access_sync::adapters::SdkEngine;
use eks_access_sync::model::config::Config;
use serde_json::{Value, json};

use crate::coldstart::RuntimeApi;
use crate::report::{ColdRow, EventRow, Machine, ManualRow, Report, ScaleRow};
use crate::stats::Stat;
use crate::world::{ADMIN_TAG, Calls, World, cluster_name, user_arn, writes};

/// Why the bench stopped.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("sandbox: {0}")]
    Sandbox(String),
    #[error("AWS call: {0}")]
    Aws(String),
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("child process: {0}")]
    Child(String),
    #[error("configuration: {0}")]
    Config(String),
    #[error("JSON: {0}")]
    Json(#[from] serde_json::Error),
}

#[derive(Debug, Parser)]
#[command(name = "bench", about = "Benchmarks of eks-access-sync (issue 6)")]
struct Args {
    /// Where to write the report.
    #[arg(long, default_value = "BENCHMARKS.md")]
    out: PathBuf,
    /// Directory of the binaries measured (iam-events, reconcile, bench-hello, eks-access-sync).
    #[arg(long, default_value = "target/release")]
    bin_dir: PathBuf,
    #[arg(long, default_value_t = 15)]
    cold_runs: usize,
    #[arg(long, default_value_t = 7)]
    event_runs: usize,
    /// Runs of the in-sync full reconcile per cluster count.
    #[arg(long, default_value_t = 3)]
    sync_runs: usize,
    #[arg(long, default_value_t = 3)]
    manual_runs: usize,
    #[arg(long, default_value_t = 5000)]
    users: usize,
    #[arg(long, default_value_t = 30)]
    admins: usize,
    #[arg(long, value_delimiter = ',', default_value = "1,10,100")]
    clusters: Vec<usize>,
    /// Cluster counts of the manual procedure (100 gets one run; it takes minutes).
    #[arg(long, value_delimiter = ',', default_value = "1,10,100")]
    manual_clusters: Vec<usize>,
    #[arg(long, default_value_t = 20)]
    latency_ms: u64,
    /// Cold + warm invoke pairs per binary (section 1).
    #[arg(long, default_value_t = 7)]
    invoke_runs: usize,
    /// Measure section 1 only (cold start, cold and warm invoke) and replace it, and the
    /// cold-start marks, in the existing `--out` file; the other sections stay as they are.
    #[arg(long)]
    cold_only: bool,
    /// Another build of iam-events to measure beside the default one, as `LABEL=PATH`
    /// (e.g. `AWS_LC_SYS_NO_JITTER_ENTROPY=1=/tmp/nojitter/iam-events`: the label is
    /// everything before the last `=`).
    #[arg(long = "extra-bin", value_parser = parse_extra)]
    extra_bins: Vec<(String, PathBuf)>,
    /// Run one section alone (after the users and the largest cluster count are set
    /// up) and write only it, with its marks, to `--out` (which must then be given and
    /// not be `BENCHMARKS.md`).
    #[arg(long, value_enum)]
    only: Option<Only>,
    /// Member accounts of the "Member accounts" section (issue 12).
    #[arg(long, default_value_t = 3)]
    member_accounts: usize,
    /// Regions of each member account.
    #[arg(long, value_delimiter = ',', default_value = "us-east-1,eu-west-1")]
    member_regions: Vec<String>,
    /// Tagged clusters per member account and region.
    #[arg(long, default_value_t = 50)]
    member_clusters: usize,
}

/// A section `--only` runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Only {
    /// "Access tiers (issue 10)": three tiers, the group event.
    Tiers,
    /// "Any team size (issue 11)": the sharded tier.
    Team,
    /// "Member accounts (issue 12)": clusters in member accounts; the hub gets none.
    Accounts,
}

fn parse_extra(s: &str) -> Result<(String, PathBuf), String> {
    s.rsplit_once('=')
        .map(|(label, path)| (label.to_owned(), PathBuf::from(path)))
        .ok_or_else(|| format!("{s:?} is not LABEL=PATH"))
}

fn ms(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn progress(msg: impl AsRef<str>) {
    eprintln!(
        "[bench {}] {}",
        time::OffsetDateTime::now_utc()
            .time()
            .format(time::macros::format_description!(
                "[hour]:[minute]:[second]"
            ))
            .unwrap_or_default(),
        msg.as_ref()
    );
}

fn env_cmd(program: impl AsRef<std::ffi::OsStr>, env: &[(String, String)]) -> Command {
    let mut c = Command::new(program);
    c.env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_PROFILE")
        .env_remove("KUBECONFIG")
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    c
}

fn machine() -> Machine {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let field = |text: &str, key: &str| {
        text.lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split(':').nth(1))
            .map(|v| v.trim().to_string())
            .unwrap_or_default()
    };
    let cmd_out = |prog: &str, args: &[&str]| {
        Command::new(prog)
            .args(args)
            .output()
            .ok()
            .map(|o| {
                String::from_utf8_lossy(if o.stdout.is_empty() {
                    &o.stderr
                } else {
                    &o.stdout
                })
                .lines()
                .next()
                .unwrap_or_default()
                .trim()
                .to_string()
            })
            .unwrap_or_else(|| "not found".into())
    };
    Machine {
        cpus: std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        cpu_model: field(&read("/proc/cpuinfo"), "model name"),
        memory: field(&read("/proc/meminfo"), "MemTotal"),
        rustc: cmd_out("rustc", &["--version"]),
        aws_cli: cmd_out("aws", &["--version"]),
        kubectl: cmd_out("kubectl", &["version", "--client"]),
        date: time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
    }
}

async fn cold_starts(args: &Args, env: &[(String, String)]) -> Result<Vec<ColdRow>, BenchError> {
    let mut api = RuntimeApi::start().await?;
    let mut rows = Vec::new();
    let mut runs: Vec<(PathBuf, &str, Option<String>)> = ["bench-hello", "iam-events", "reconcile"]
        .into_iter()
        .map(|name| (args.bin_dir.join(name), name, None))
        .collect();
    for (label, bin) in &args.extra_bins {
        runs.push((bin.clone(), "iam-events", Some(label.clone())));
    }
    for (bin, name, variant) in runs {
        let size = std::fs::metadata(&bin)
            .map_err(|e| BenchError::Child(format!("{}: {e} (build it first)", bin.display())))?
            .len();
        // One warm-up run (page cache), not counted.
        api.measure(&bin, env).await?;
        let mut times = Vec::new();
        let mut rss = Vec::new();
        for _ in 0..args.cold_runs {
            let r = api.measure(&bin, env).await?;
            times.push(ms(r.to_next));
            rss.push(r.max_rss_kib as f64 / 1024.0);
        }
        let row = ColdRow {
            name: name.to_string(),
            variant,
            size_bytes: size,
            to_next_ms: Stat::of(&times),
            rss_mib: Stat::of(&rss),
        };
        progress(format!(
            "cold start {name} {}: median {:.1} ms",
            row.variant.as_deref().unwrap_or(""),
            row.to_next_ms.map(|s| s.median).unwrap_or(f64::NAN)
        ));
        rows.push(row);
    }
    Ok(rows)
}

fn tag_user_event(user: &str) -> Result<Value, BenchError> {
    let mut ev: Value = serde_json::from_str(include_str!("../../../events/iam-tag-user.json"))?;
    ev["detail"]["requestParameters"]["userName"] = json!(user);
    Ok(ev)
}

/// The fewest sequential round trips the calls made allow, as stage names, each stage
/// counted only when the counters show its call. Two chains run side by side: IAM
/// (PutItem (lease) → GetUser ∥ GetRole → UpdateAssumeRolePolicy → DeleteItem (lease))
/// and the clusters ([AssumeRole of each member account's role ∥ …, issue 12, when the
/// engine has no session yet] → ListClusters → DescribeCluster ∥ …, while the lease and
/// the reads are under way; then, once the role is known, GET aws-auth ∥ … → write
/// aws-auth ∥ …). The longer chain is the critical path.
pub fn critical_stages(calls: &Calls) -> Vec<&'static str> {
    let has = |s: &str, o: &str| {
        calls
            .iter()
            .any(|((cs, co), n)| cs == s && co.starts_with(o) && *n > 0)
    };
    let mut reads = Vec::new();
    if has("dynamodb", "PutItem") {
        reads.push("PutItem (lease)");
    }
    if has("iam", "GetUser") || has("iam", "GetRole") {
        reads.push("GetUser ∥ GetRole");
    }
    let mut iam = reads.clone();
    if has("iam", "UpdateAssumeRolePolicy") {
        iam.push("UpdateAssumeRolePolicy");
    }
    if has("dynamodb", "DeleteItem") {
        iam.push("DeleteItem (lease)");
    }
    let mut listing = Vec::new();
    for (s, o, label) in [
        ("sts", "AssumeRole", "AssumeRole (member accounts)"),
        ("eks", "ListClusters", "ListClusters"),
        ("eks", "DescribeCluster", "DescribeCluster"),
    ] {
        if has(s, o) {
            listing.push(label);
        }
    }
    // The clusters are reconciled once both the listing and the reads are done.
    let mut clusters = if reads.len() > listing.len() {
        reads
    } else {
        listing
    };
    if has("k8s", "GET configmaps") {
        clusters.push("GET aws-auth");
    }
    if has("k8s", "PUT configmaps")
        || has("k8s", "POST configmaps")
        || has("k8s", "PATCH configmaps")
    {
        clusters.push("write aws-auth");
    }
    if iam.len() > clusters.len() {
        iam
    } else {
        clusters
    }
}

/// One TagUser event for a new admin `user` at `latency`; the world is put back
/// afterwards. None when the handler failed.
async fn event_run(
    w: &World,
    engine: &SdkEngine,
    user: &str,
    latency: u64,
) -> Result<(Option<f64>, Calls), BenchError> {
    w.set_latency(0);
    let before = w.trust_policy().await?;
    w.create_user(user, ADMIN_TAG).await?;
    let ev = tag_user_event(user)?;
    w.reset_calls();
    w.set_latency(latency);
    let start = Instant::now();
    let r = iam_events::handle(engine, ev).await;
    let elapsed = start.elapsed();
    w.set_latency(0);
    let calls = w.calls();
    // Undo: the next run starts from the same trust policy.
    w.set_trust_policy(&before).await?;
    w.delete_user(user).await?;
    match r {
        Ok(_) => Ok((Some(ms(elapsed)), calls)),
        Err(e) => {
            progress(format!("event run failed: {e}"));
            Ok((None, calls))
        }
    }
}

async fn one_event(
    w: &World,
    args: &Args,
    clusters: usize,
    concurrency: Option<usize>,
    tag: &str,
) -> Result<EventRow, BenchError> {
    let mut env: BTreeMap<String, String> = w.env().into_iter().collect();
    if let Some(c) = concurrency {
        env.insert("CLUSTER_CONCURRENCY".into(), c.to_string());
    }
    let config = Config::from_lookup(|k| env.get(k).cloned())
        .map_err(|e| BenchError::Config(e.to_string()))?;
    let engine = SdkEngine::from_sdk(config.clone(), &w.sdk);
    let engine = &engine;
    let row = event_row(
        clusters,
        config.cluster_concurrency,
        args.event_runs,
        args.latency_ms,
        |i, latency| async move {
            let user = format!("new-admin-{tag}-{clusters}-{i}-{latency}");
            event_run(w, engine, &user, latency).await
        },
    )
    .await?;
    progress(format!(
        "event at {clusters} clusters (concurrency {}): median {:.0} ms, critical path {:.0} ms",
        row.concurrency,
        row.wall_ms.map(|s| s.median).unwrap_or(f64::NAN),
        row.critical_ms
    ));
    Ok(row)
}

/// `runs` events (`one(i, latency)`), each once at `latency` and once at 0 (the
/// sandbox's and the engine's own processing time, no network latency), as a row: the
/// wall times, the calls of the last run at `latency` and the critical path they show.
async fn event_row<F, Fut>(
    clusters: usize,
    concurrency: usize,
    runs: usize,
    latency: u64,
    mut one: F,
) -> Result<EventRow, BenchError>
where
    F: FnMut(usize, u64) -> Fut,
    Fut: std::future::Future<Output = Result<(Option<f64>, Calls), BenchError>>,
{
    let (mut times, mut times_zero, mut last, mut failures) = (vec![], vec![], Calls::new(), 0);
    for i in 0..runs {
        for l in [latency, 0] {
            let (took, calls) = one(i, l).await?;
            match took {
                Some(t) if l == 0 => times_zero.push(t),
                Some(t) => {
                    times.push(t);
                    last = calls;
                }
                None => failures += 1,
            }
        }
    }
    let stages: Vec<String> = critical_stages(&last)
        .into_iter()
        .map(String::from)
        .collect();
    Ok(EventRow {
        clusters,
        concurrency,
        wall_ms: Stat::of(&times),
        wall_zero_ms: Stat::of(&times_zero),
        critical_ms: stages.len() as f64 * latency as f64,
        stages,
        calls: last,
        failures,
    })
}

async fn reconcile_once(
    w: &World,
    args: &Args,
    dir: &Path,
) -> Result<(proc::Exit, Calls, Option<Value>), BenchError> {
    let out = dir.join("report.json");
    let mut cmd = env_cmd(args.bin_dir.join("eks-access-sync"), &w.env());
    cmd.args(["reconcile", "--output", "json"]);
    w.reset_calls();
    w.set_latency(args.latency_ms);
    let exit = proc::run_measured(cmd, &out).await;
    w.set_latency(0);
    let exit = exit?;
    let report = std::fs::read_to_string(&out)
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok());
    Ok((exit, w.calls(), report))
}

async fn full_reconcile(
    w: &World,
    args: &Args,
    clusters: usize,
    base_trust: &str,
    dir: &Path,
) -> Result<Vec<ScaleRow>, BenchError> {
    // A run with changes: the trust policy back to its seed state (every admin to add)
    // and the new clusters without aws-auth.
    w.set_latency(0);
    w.set_trust_policy(base_trust).await?;
    let (exit, calls, _) = reconcile_once(w, args, dir).await?;
    let changes = ScaleRow {
        clusters,
        in_sync: false,
        wall_ms: Stat::of(&[ms(exit.wall)]),
        rss_mib: Stat::of(&[exit.max_rss_kib as f64 / 1024.0]),
        writes: writes(&calls),
        calls,
        failures: usize::from(!exit.success),
    };
    progress(format!(
        "reconcile with changes at {clusters} clusters: {:.0} ms, {} writes",
        ms(exit.wall),
        changes.writes
    ));
    let mut times = Vec::new();
    let mut rss = Vec::new();
    let mut max_writes = 0;
    let mut failures = 0;
    let mut last = Calls::new();
    for _ in 0..args.sync_runs {
        let (exit, calls, _) = reconcile_once(w, args, dir).await?;
        times.push(ms(exit.wall));
        rss.push(exit.max_rss_kib as f64 / 1024.0);
        max_writes = max_writes.max(writes(&calls));
        failures += usize::from(!exit.success);
        last = calls;
    }
    let sync = ScaleRow {
        clusters,
        in_sync: true,
        wall_ms: Stat::of(&times),
        rss_mib: Stat::of(&rss),
        writes: max_writes,
        calls: last,
        failures,
    };
    progress(format!(
        "reconcile in sync at {clusters} clusters: median {:.0} ms, {} writes",
        sync.wall_ms.map(|s| s.median).unwrap_or(f64::NAN),
        sync.writes
    ));
    Ok(vec![changes, sync])
}

/// The trust policy a person would write: the current one with `arn` added to the
/// managed statement (or a new statement when there is none).
fn with_principal(doc: &str, arn: &str) -> Result<String, BenchError> {
    let mut v: Value = serde_json::from_str(doc)?;
    let sid = eks_access_sync::model::config::DEFAULT_TRUST_STATEMENT_SID;
    let statements = v["Statement"]
        .as_array_mut()
        .ok_or_else(|| BenchError::Config("trust policy without a Statement list".into()))?;
    match statements.iter_mut().find(|s| s["Sid"] == sid) {
        Some(s) => {
            let p = &mut s["Principal"]["AWS"];
            let mut list = match p.take() {
                Value::Array(a) => a,
                Value::String(one) => vec![Value::String(one)],
                _ => Vec::new(),
            };
            list.push(json!(arn));
            *p = Value::Array(list);
        }
        None => statements.push(json!({
            "Sid": sid, "Effect": "Allow", "Principal": {"AWS": [arn]}, "Action": "sts:AssumeRole"
        })),
    }
    Ok(serde_json::to_string_pretty(&v)?)
}

async fn manual(
    w: &World,
    args: &Args,
    clusters: usize,
    runs: usize,
    dir: &Path,
) -> Result<ManualRow, BenchError> {
    let env = w.env();
    let mut totals = Vec::new();
    let mut kube_only = Vec::new();
    let mut error = None;
    for i in 0..runs {
        let user = format!("manual-admin-{clusters}-{i}");
        w.set_latency(0);
        let before = w.trust_policy().await?;
        w.create_user(&user, ADMIN_TAG).await?;
        let trust_file = dir.join("trust.json");
        std::fs::write(&trust_file, with_principal(&before, &user_arn(&user))?)?;
        let mut manifests = Vec::new();
        for c in 0..clusters {
            let name = cluster_name(c);
            let data = w.aws_auth_data(&name).unwrap_or(Value::Null);
            let cm = json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "aws-auth", "namespace": "kube-system"},
                "data": data,
            });
            // JSON is YAML: the file a person keeps in their repository.
            let file = dir.join(format!("aws-auth-{name}.yaml"));
            std::fs::write(&file, serde_json::to_string_pretty(&cm)?)?;
            manifests.push((name, file));
        }
        w.set_latency(args.latency_ms);
        let start = Instant::now();
        let mut kube_ms = 0.0;
        let mut step = async || -> Result<(), String> {
            let mut c = env_cmd("aws", &env);
            c.args([
                "iam",
                "update-assume-role-policy",
                "--role-name",
                world::ADMIN_ROLE,
            ])
            .arg("--policy-document")
            .arg(format!("file://{}", trust_file.display()));
            proc::run_timed(c).await?;
            for (name, file) in &manifests {
                let kubeconfig = dir.join(format!("kubeconfig-{name}"));
                let mut c = env_cmd("aws", &env);
                c.args(["eks", "update-kubeconfig", "--name", name])
                    .arg("--kubeconfig")
                    .arg(&kubeconfig);
                proc::run_timed(c).await?;
                let mut c = env_cmd("kubectl", &env);
                c.arg("--kubeconfig")
                    .arg(&kubeconfig)
                    .arg("apply")
                    .arg("-f")
                    .arg(file);
                kube_ms += ms(proc::run_timed(c).await?);
            }
            Ok(())
        };
        let r = step().await;
        let total = ms(start.elapsed());
        w.set_latency(0);
        match r {
            Ok(()) => {
                totals.push(total);
                kube_only.push(kube_ms);
            }
            Err(e) => {
                progress(format!("manual run failed: {e}"));
                error = Some(e.lines().last().unwrap_or_default().to_string());
            }
        }
        w.set_trust_policy(&before).await?;
        w.delete_user(&user).await?;
    }
    let row = ManualRow {
        clusters,
        total_ms: Stat::of(&totals),
        kubectl_ms: Stat::of(&kube_only),
        error,
    };
    progress(format!(
        "manual way at {clusters} clusters: median {:.0} ms",
        row.total_ms.map(|s| s.median).unwrap_or(f64::NAN)
    ));
    Ok(row)
}

/// Section 1's invokes: iam-events and each `--extra-bin`, on one tagged cluster.
async fn invokes(
    w: &mut World,
    args: &Args,
    env: &[(String, String)],
) -> Result<Vec<invoke::InvokeRow>, BenchError> {
    w.ensure_clusters(1).await?;
    let mut bins = vec![(args.bin_dir.join("iam-events"), None)];
    bins.extend(
        args.extra_bins
            .iter()
            .map(|(label, bin)| (bin.clone(), Some(label.clone()))),
    );
    let mut rows = Vec::new();
    for (bin, variant) in bins {
        progress(format!(
            "cold and warm invoke of {} {}: {} runs",
            bin.display(),
            variant.as_deref().unwrap_or(""),
            args.invoke_runs
        ));
        let row = invoke::invokes(w, &bin, variant, env, args.latency_ms, args.invoke_runs).await?;
        progress(format!(
            "cold invoke median {:.1} ms, warm {:.1} ms, {} failed",
            row.cold_ms.map(|s| s.median).unwrap_or(f64::NAN),
            row.warm_ms.map(|s| s.median).unwrap_or(f64::NAN),
            row.failures
        ));
        rows.push(row);
    }
    w.remove_aws_auth(&cluster_name(0));
    Ok(rows)
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "unknown".into())
}

/// `--cold-only`: section 1 and the cold-start marks replaced in the existing report.
async fn write_cold_only(
    args: &Args,
    mut report: Report,
    w: World,
    load: &str,
) -> Result<(), BenchError> {
    report.cold_only = Some(format!(
        "This section was measured alone (`bench --cold-only`, `make bench-cold`) on {}, load average \
         {} at its start, on the machine above; the other sections are from the full run.",
        report.machine.date, load
    ));
    let existing = std::fs::read_to_string(&args.out)?;
    let text = report.splice_cold(&existing).ok_or_else(|| {
        BenchError::Config(format!(
            "{} has no sections 1 and 2 to splice into: run the whole bench",
            args.out.display()
        ))
    })?;
    std::fs::write(&args.out, text)?;
    progress(format!("wrote section 1 of {}", args.out.display()));
    w.sb.shutdown().await;
    Ok(())
}

async fn run(args: Args) -> Result<(), BenchError> {
    let started = Instant::now();
    let load = load_average();
    let mut report = Report {
        machine: machine(),
        latency_ms: args.latency_ms,
        users: args.users,
        admins: args.admins,
        ..Report::default()
    };
    progress("starting the sandbox (moto + front door)");
    let mut w = World::start().await?;
    if let Some(only) = args.only {
        return run_only(&args, only, w, report, started).await;
    }
    let env = w.env();
    let base_trust = w.trust_policy().await?;

    progress(format!("cold starts: {} runs per binary", args.cold_runs));
    report.cold = cold_starts(&args, &env).await?;
    report.cli_size_bytes = std::fs::metadata(args.bin_dir.join("eks-access-sync"))
        .map(|m| m.len())
        .unwrap_or(0);
    report.invokes = invokes(&mut w, &args, &env).await?;
    if args.cold_only {
        return write_cold_only(&args, report, w, &load).await;
    }

    progress(format!(
        "seeding {} users ({} admins) at latency 0",
        args.users, args.admins
    ));
    let t = Instant::now();
    w.seed_users(args.users, args.admins).await?;
    report.seed_secs = t.elapsed().as_secs_f64();
    progress(format!("seeded in {:.1} s", report.seed_secs));
    let t = Instant::now();
    let (listed, pages) = w.list_all_users().await?;
    report.list_users = (ms(t.elapsed()), listed, pages);
    progress(format!(
        "listing {listed} users with tags through the sandbox: {:.0} ms, {pages} page(s)",
        report.list_users.0
    ));

    let dir = tempfile::tempdir()?;
    let mut sizes = args.clusters.clone();
    sizes.sort_unstable();
    sizes.dedup();
    let largest_manual = args.manual_clusters.iter().copied().max().unwrap_or(0);
    let have_tools = report.machine.aws_cli != "not found" && report.machine.kubectl != "not found";
    for &n in &sizes {
        progress(format!("creating clusters up to {n}"));
        w.ensure_clusters(n).await?;
        report
            .scale
            .extend(full_reconcile(&w, &args, n, &base_trust, dir.path()).await?);
        report
            .events
            .push(one_event(&w, &args, n, None, "d").await?);
        if n == *sizes.last().unwrap_or(&0)
            && n > eks_access_sync::model::config::DEFAULT_CLUSTER_CONCURRENCY
        {
            report
                .events
                .push(one_event(&w, &args, n, Some(n), "c").await?);
        }
        if have_tools && args.manual_clusters.contains(&n) {
            let runs = if n == largest_manual && n >= 100 {
                1
            } else {
                args.manual_runs
            };
            report
                .manual
                .push(manual(&w, &args, n, runs, dir.path()).await?);
        }
    }
    if let Some(&n) = sizes.last() {
        progress(format!("access tiers at {n} clusters"));
        report.tiers = Some(tiers_section(&w, &args, n, dir.path()).await?);
        progress(format!("any team size at {n} clusters"));
        report.team = Some(team_section(&w, &args, n, dir.path()).await?);
    }
    progress("member accounts");
    report.accounts = Some(accounts_section(&w, &args, dir.path()).await?);
    report.total_secs = started.elapsed().as_secs_f64();
    std::fs::write(&args.out, report.markdown())?;
    progress(format!(
        "wrote {} in {:.0} s",
        args.out.display(),
        report.total_secs
    ));
    w.sb.shutdown().await;
    Ok(())
}

/// The "Access tiers" section at `clusters` clusters (already created), as text.
async fn tiers_section(
    w: &World,
    args: &Args,
    clusters: usize,
    dir: &Path,
) -> Result<String, BenchError> {
    let bin = args.bin_dir.join("eks-access-sync");
    let section = tiers::tiers(
        w,
        &bin,
        args.admins,
        clusters,
        args.latency_ms,
        args.event_runs,
        dir,
    )
    .await?;
    Ok(section.markdown(args.users, args.admins, args.latency_ms))
}

/// The any-team-size section (issue 11) at `clusters` clusters (already created).
async fn team_section(
    w: &World,
    args: &Args,
    clusters: usize,
    dir: &Path,
) -> Result<team::TeamSection, BenchError> {
    team::team(
        w,
        &args.bin_dir.join("eks-access-sync"),
        args.admins,
        clusters,
        args.latency_ms,
        args.sync_runs,
        args.event_runs,
        dir,
    )
    .await
}

/// The member-accounts section (issue 12): its organization built, then measured.
async fn accounts_section(
    w: &World,
    args: &Args,
    dir: &Path,
) -> Result<accounts::AccountsSection, BenchError> {
    let size = accounts::Size {
        accounts: args.member_accounts,
        regions: args.member_regions.clone(),
        per_region: args.member_clusters,
    };
    accounts::accounts(
        w,
        &args.bin_dir.join("eks-access-sync"),
        size,
        args.latency_ms,
        args.sync_runs,
        args.event_runs,
        (args.users, args.admins),
        dir,
    )
    .await
}

/// `--only SECTION`: the users seeded, the largest cluster count created (in the hub;
/// none for `accounts`, whose clusters are in member accounts), that section alone,
/// written with its marks to `--out`.
async fn run_only(
    args: &Args,
    only: Only,
    mut w: World,
    mut report: Report,
    started: Instant,
) -> Result<(), BenchError> {
    if args.out.file_name() == Some(std::ffi::OsStr::new("BENCHMARKS.md")) {
        w.sb.shutdown().await;
        return Err(BenchError::Config(
            "--only writes one section alone: give another --out than BENCHMARKS.md".into(),
        ));
    }
    progress(format!(
        "seeding {} users ({} admins) at latency 0",
        args.users, args.admins
    ));
    w.seed_users(args.users, args.admins).await?;
    let n = match only {
        Only::Accounts => 0,
        Only::Team | Only::Tiers => args.clusters.iter().copied().max().unwrap_or(0),
    };
    if n > 0 {
        progress(format!("creating {n} clusters"));
        w.ensure_clusters(n).await?;
    }
    let dir = tempfile::tempdir()?;
    let text = match only {
        Only::Tiers => {
            let text = tiers_section(&w, args, n, dir.path()).await?;
            report.tiers = Some(text.clone());
            text
        }
        Only::Team => {
            let t = team_section(&w, args, n, dir.path()).await?;
            let text = t.markdown(", `--only team`");
            report.team = Some(t);
            text
        }
        Only::Accounts => {
            let a = accounts_section(&w, args, dir.path()).await?;
            let text = a.markdown(", `--only accounts`");
            report.accounts = Some(a);
            text
        }
    };
    report.total_secs = started.elapsed().as_secs_f64();
    let mut out = format!(
        "# Benchmarks: one section alone (`bench --only`, {:.0} s, {})\n\n",
        report.total_secs, report.machine.date
    );
    out.push_str(&text);
    std::fs::write(&args.out, out)?;
    progress(format!("wrote {}", args.out.display()));
    w.sb.shutdown().await;
    Ok(())
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    match run(args).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench failed: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_person_adds_the_user_to_the_managed_statement() {
        let doc = r#"{"Version":"2012-10-17","Statement":[{"Sid":"BreakGlass","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::1:root"},"Action":"sts:AssumeRole"},{"Sid":"EksAccessSyncAdmins","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::1:user/a"},"Action":"sts:AssumeRole"}]}"#;
        let v: Value =
            serde_json::from_str(&with_principal(doc, "arn:aws:iam::1:user/b").unwrap()).unwrap();
        assert_eq!(
            v["Statement"][1]["Principal"]["AWS"],
            json!(["arn:aws:iam::1:user/a", "arn:aws:iam::1:user/b"])
        );
        assert_eq!(v["Statement"][0]["Principal"]["AWS"], "arn:aws:iam::1:root");
        let bare = r#"{"Version":"2012-10-17","Statement":[]}"#;
        let v: Value =
            serde_json::from_str(&with_principal(bare, "arn:aws:iam::1:user/b").unwrap()).unwrap();
        assert_eq!(
            v["Statement"][0]["Principal"]["AWS"],
            json!(["arn:aws:iam::1:user/b"])
        );
    }

    #[test]
    fn critical_stages_follow_the_calls_made() {
        let calls = |list: &[(&str, &str, u64)]| -> Calls {
            list.iter()
                .map(|(s, o, n)| ((s.to_string(), o.to_string()), *n))
                .collect()
        };
        let no_lease = calls(&[
            ("iam", "GetUser", 1),
            ("iam", "GetRole", 1),
            ("iam", "UpdateAssumeRolePolicy", 1),
            ("eks", "ListClusters", 1),
            ("eks", "DescribeCluster", 10),
            ("k8s", "GET configmaps", 10),
        ]);
        assert_eq!(
            critical_stages(&no_lease),
            ["ListClusters", "DescribeCluster", "GET aws-auth"]
        );
        let mut leased = no_lease.clone();
        leased.insert(("dynamodb".into(), "PutItem".into()), 1);
        leased.insert(("dynamodb".into(), "DeleteItem".into()), 1);
        assert_eq!(
            critical_stages(&leased),
            [
                "PutItem (lease)",
                "GetUser ∥ GetRole",
                "UpdateAssumeRolePolicy",
                "DeleteItem (lease)"
            ]
        );
        leased.insert(("k8s".into(), "PUT configmaps".into()), 10);
        assert_eq!(critical_stages(&leased).len(), 4);
        assert_eq!(critical_stages(&leased).last(), Some(&"write aws-auth"));
        let iam_only = calls(&[
            ("iam", "GetUser", 1),
            ("iam", "GetRole", 1),
            ("iam", "UpdateAssumeRolePolicy", 1),
        ]);
        assert_eq!(
            critical_stages(&iam_only),
            ["GetUser ∥ GetRole", "UpdateAssumeRolePolicy"]
        );
        // Member accounts on a cold engine: their AssumeRoles (at once) before listing.
        let mut cold = no_lease.clone();
        cold.insert(("sts".into(), "AssumeRole".into()), 3);
        assert_eq!(
            critical_stages(&cold),
            [
                "AssumeRole (member accounts)",
                "ListClusters",
                "DescribeCluster",
                "GET aws-auth"
            ]
        );
    }

    #[test]
    fn the_sample_event_is_retargeted() {
        let ev = tag_user_event("zed").unwrap();
        assert_eq!(ev["detail"]["requestParameters"]["userName"], "zed");
        assert_eq!(ev["detail"]["eventName"], "TagUser");
    }
}

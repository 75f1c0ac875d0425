//! Member accounts (issue 12): clusters in other accounts of the organization, reached
//! through one `sts:AssumeRole` of each member account's role. The engine runs as the
//! hub's function role (a session the operator assumes), as deployed; each member
//! account is built by the sandbox's member seed (its member role trusting that function
//! role), its sample clusters deleted, then `--member-clusters` tagged CONFIG_MAP
//! clusters created in each of its regions by its administrator and bootstrapped for
//! the member role (`eks_access_sync::bootstrap`, as `make bootstrap` does). Measured:
//! full reconciles through the CLI (a new process, so a cold engine: the first run with
//! everything to write, then in sync) and in-process on a warm engine, and one TagUser
//! event on a cold engine (the AssumeRoles on its path) and on a warm one.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::Mutex;
use std::time::Instant;

use aws_credential_types::Credentials;
use eks_access_sync::adapters::SdkEngine;
use eks_access_sync::engine::Scope;
use eks_access_sync::model::arn::{ClusterName, RoleArn};
use eks_access_sync::model::config::{Config, DEFAULT_CLUSTER_CONCURRENCY};
use eks_access_sync::output::report::{ClusterStatus, RunReport};
use eks_sandbox::aws::seed::{MemberSeed, admin_trust_policy};
use eks_sandbox::state::{ACCOUNT_ID, StoredObject, cluster_key};
use futures::StreamExt;

use crate::report::{EventRow, Mark, write_marks};
use crate::stats::Stat;
use crate::world::{
    ADMIN_ROLE, ADMIN_TAG, CLUSTER_TAG, Calls, SEED_CONCURRENCY, World, create_clusters, describe,
    total, writes,
};
use crate::{BenchError, env_cmd, event_row, event_run, ms, proc, progress};

/// The member role's session name the operator's session of the function role takes.
const FUNCTION_SESSION: &str = "eks-access-sync";

/// How big the organization is.
#[derive(Debug, Clone)]
pub struct Size {
    pub accounts: usize,
    pub regions: Vec<String>,
    /// Tagged clusters per account and region.
    pub per_region: usize,
}

impl Size {
    pub fn clusters(&self) -> usize {
        self.accounts * self.regions.len() * self.per_region
    }

    fn describe(&self) -> String {
        format!(
            "{} accounts × {} regions ({}) × {} clusters = {}",
            self.accounts,
            self.regions.len(),
            self.regions.join(", "),
            self.per_region,
            self.clusters()
        )
    }
}

/// The `i`-th member account's ID (12 digits).
pub fn account_id(i: usize) -> String {
    format!("{:012}", 210_000_000_001u64 + i as u64)
}

/// The `j`-th tagged cluster of member account `i` in `region`.
pub fn member_cluster_name(i: usize, region: &str, j: usize) -> String {
    format!("m{}-{region}-{j:03}", i + 1)
}

/// A region where the hub has no cluster (its own `CLUSTER_REGIONS` in this section,
/// so that the hub's clusters of the other sections are not reconciled with it).
fn empty_hub_region(sandbox_region: &str, members: &[String]) -> String {
    ["us-west-2", "ap-southeast-2", "sa-east-1"]
        .into_iter()
        .find(|r| *r != sandbox_region && !members.iter().any(|m| m == r))
        .unwrap_or("ca-central-1")
        .to_string()
}

fn config_text(size: &Size) -> String {
    let mut s = format!(
        "tiers:\n\
         \x20 - name: admin\n    role: {ADMIN_ROLE}\n    members: {{ tag: {}={} }}\n\
         \x20   kubernetes: {{ policy: AmazonEKSClusterAdminPolicy, groups: [\"system:masters\"] }}\n\
         accounts:\n",
        ADMIN_TAG.0, ADMIN_TAG.1
    );
    for i in 0..size.accounts {
        let _ = writeln!(
            s,
            "  - id: \"{}\"\n    regions: [{}]",
            account_id(i),
            size.regions.join(", ")
        );
    }
    s
}

fn aws_err(what: &str, e: impl std::error::Error) -> BenchError {
    BenchError::Aws(format!(
        "{what}: {}",
        aws_sdk_iam::error::DisplayErrorContext(e)
    ))
}

fn sandbox_err(e: impl std::fmt::Display) -> BenchError {
    BenchError::Sandbox(e.to_string())
}

fn count(calls: &Calls, service: &str, op: &str) -> u64 {
    calls
        .get(&(service.to_string(), op.to_string()))
        .copied()
        .unwrap_or(0)
}

/// `(VmRSS in KiB, open file descriptors)` of the bench process (the sandbox with its
/// clusters' API servers runs in it).
fn own_footprint() -> (u64, usize) {
    let rss = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0);
    let fds = std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0);
    (rss, fds)
}

/// The organization the section runs against.
struct Org<'a> {
    w: &'a World,
    size: Size,
    accounts: Vec<String>,
    function_role: String,
    /// The member clusters' keys in the sandbox's store.
    keys: Vec<String>,
    /// Their aws-auth as the bootstrap left it (the first run's starting point).
    baseline: Vec<(String, Option<StoredObject>)>,
    hub_region: String,
    text: String,
    setup_secs: f64,
    footprint: (u64, usize),
}

/// One full reconcile: how it went.
struct Run {
    wall_ms: f64,
    rss_mib: Option<f64>,
    exit_ok: bool,
    calls: Calls,
    report: Option<RunReport>,
}

impl Run {
    fn ok(&self) -> bool {
        self.exit_ok && self.report.as_ref().is_some_and(RunReport::succeeded)
    }

    /// Member clusters the report lists (a failed account is one `*` line).
    fn member_clusters(&self) -> usize {
        self.report.as_ref().map_or(0, |r| {
            r.clusters
                .iter()
                .filter(|c| !c.account.is_empty() && c.account != ACCOUNT_ID && c.name != "*")
                .count()
        })
    }

    fn failed_clusters(&self) -> usize {
        self.report.as_ref().map_or(0, |r| {
            r.clusters
                .iter()
                .filter(|c| c.status == ClusterStatus::Failed)
                .count()
        })
    }

    fn first_error(&self) -> Option<String> {
        let r = self.report.as_ref()?;
        r.clusters
            .iter()
            .find_map(|c| c.error.clone())
            .or_else(|| (!r.succeeded()).then(|| r.failure_summary()))
    }
}

/// Full reconciles of one kind.
#[derive(Debug, Clone, Default)]
pub struct FullRow {
    pub label: String,
    /// A CLI process (cold engine), else in-process on a warm engine.
    pub cli: bool,
    pub in_sync: bool,
    pub wall_ms: Option<Stat>,
    pub rss_mib: Option<Stat>,
    /// AssumeRole calls per run: (fewest, most).
    pub assume_roles: (u64, u64),
    pub iam: u64,
    pub list_clusters: u64,
    pub describe: u64,
    pub k8s: u64,
    /// The most writes of any run.
    pub writes: u64,
    /// The fewest member clusters any run's report listed.
    pub clusters_reported: usize,
    pub failures: usize,
    pub failed_clusters: usize,
    pub error: Option<String>,
    pub calls: Calls,
}

impl FullRow {
    fn of(label: &str, cli: bool, in_sync: bool, runs: &[Run]) -> FullRow {
        let max = |f: &dyn Fn(&Run) -> u64| runs.iter().map(f).max().unwrap_or(0);
        let assume: Vec<u64> = runs
            .iter()
            .map(|r| count(&r.calls, "sts", "AssumeRole"))
            .collect();
        let rss: Vec<f64> = runs.iter().filter_map(|r| r.rss_mib).collect();
        FullRow {
            label: label.to_string(),
            cli,
            in_sync,
            wall_ms: Stat::of(&runs.iter().map(|r| r.wall_ms).collect::<Vec<_>>()),
            rss_mib: Stat::of(&rss),
            assume_roles: (
                assume.iter().copied().min().unwrap_or(0),
                assume.iter().copied().max().unwrap_or(0),
            ),
            iam: max(&|r| total(&r.calls, "iam")),
            list_clusters: max(&|r| count(&r.calls, "eks", "ListClusters")),
            describe: max(&|r| count(&r.calls, "eks", "DescribeCluster")),
            k8s: max(&|r| total(&r.calls, "k8s")),
            writes: max(&|r| writes(&r.calls)),
            clusters_reported: runs.iter().map(Run::member_clusters).min().unwrap_or(0),
            failures: runs.iter().filter(|r| !r.ok()).count(),
            failed_clusters: runs.iter().map(Run::failed_clusters).max().unwrap_or(0),
            error: runs.iter().find_map(Run::first_error),
            calls: runs.last().map(|r| r.calls.clone()).unwrap_or_default(),
        }
    }

    fn runs(&self) -> usize {
        self.wall_ms.map_or(0, |s| s.runs)
    }
}

/// One TagUser event case.
#[derive(Debug, Clone)]
pub struct EventCase {
    pub cold: bool,
    pub row: EventRow,
    /// AssumeRole calls per run (at the set latency and at 0): (fewest, most).
    pub assume_roles: (u64, u64),
}

impl EventCase {
    pub fn ratio(&self) -> f64 {
        self.row.wall_ms.map(|s| s.median).unwrap_or(f64::NAN) / self.row.critical_ms
    }

    fn label(&self) -> String {
        format!(
            "{} engine, concurrency {}",
            if self.cold { "cold" } else { "warm" },
            self.row.concurrency
        )
    }
}

/// What the section measured.
#[derive(Debug, Clone, Default)]
pub struct AccountsSection {
    pub accounts: usize,
    pub regions: Vec<String>,
    pub per_region: usize,
    pub clusters: usize,
    pub hub_region: String,
    pub latency_ms: u64,
    pub users: usize,
    pub admins: usize,
    pub setup_secs: f64,
    /// The bench process after setup: (VmRSS KiB, open file descriptors).
    pub footprint: (u64, usize),
    pub full: Vec<FullRow>,
    pub events: Vec<EventCase>,
}

impl<'a> Org<'a> {
    /// The member accounts, their clusters created and bootstrapped (latency 0).
    async fn build(w: &'a World, size: Size) -> Result<Org<'a>, BenchError> {
        let t = Instant::now();
        w.set_latency(0);
        let mut accounts = Vec::new();
        let mut keys = Vec::new();
        let mut function_role = String::new();
        for i in 0..size.accounts {
            let id = account_id(i);
            let seeded =
                w.sb.seed_member(&MemberSeed {
                    account_id: id.clone(),
                    cluster_prefix: Some(format!("seed{}", i + 1)),
                    ..MemberSeed::default()
                })
                .await
                .map_err(sandbox_err)?;
            let admin = Credentials::new(
                seeded.admin.access_key_id.clone(),
                seeded.admin.secret_access_key.clone(),
                None,
                None,
                "member-admin",
            );
            // The seed's sample clusters go: only the section's are in the account.
            let home = aws_sdk_eks::Client::new(&w.sdk_as(admin.clone(), &w.sb.region()).await);
            for name in seeded
                .managed_clusters
                .iter()
                .chain(&seeded.unmanaged_clusters)
            {
                home.delete_cluster()
                    .name(name)
                    .send()
                    .await
                    .map_err(|e| aws_err(&format!("DeleteCluster {id}/{name}"), e))?;
            }
            let member_role: RoleArn = seeded
                .member_role_arn
                .parse()
                .map_err(|e| BenchError::Config(format!("member role ARN: {e}")))?;
            for region in &size.regions {
                let sdk = w.sdk_as(admin.clone(), region).await;
                let names: Vec<String> = (0..size.per_region)
                    .map(|j| member_cluster_name(i, region, j))
                    .collect();
                create_clusters(&aws_sdk_eks::Client::new(&sdk), &id, &names).await?;
                bootstrap_all(&sdk, region, &names, &member_role).await?;
                keys.extend(names.iter().map(|n| cluster_key(&id, n)));
            }
            progress(format!(
                "accounts: member account {id}: {} clusters created and bootstrapped",
                size.regions.len() * size.per_region
            ));
            function_role = seeded.hub_function_role_arn;
            accounts.push(id);
        }
        let baseline = w.snapshot_aws_auth_of(&keys);
        let hub_region = empty_hub_region(&w.sb.region(), &size.regions);
        let text = config_text(&size);
        Ok(Org {
            w,
            size,
            accounts,
            function_role,
            keys,
            baseline,
            hub_region,
            text,
            setup_secs: t.elapsed().as_secs_f64(),
            footprint: own_footprint(),
        })
    }

    /// A new session of the hub's function role, assumed with the operator's
    /// credentials (latency 0, before the calls are counted).
    async fn function_session(&self) -> Result<Credentials, BenchError> {
        let out = aws_sdk_sts::Client::new(&self.w.sdk)
            .assume_role()
            .role_arn(&self.function_role)
            .role_session_name(FUNCTION_SESSION)
            .send()
            .await
            .map_err(|e| aws_err("AssumeRole (function role)", e))?;
        let c = out.credentials().ok_or_else(|| {
            BenchError::Aws("AssumeRole (function role) returned no credentials".into())
        })?;
        Ok(Credentials::new(
            c.access_key_id(),
            c.secret_access_key(),
            Some(c.session_token().to_string()),
            None,
            "function-role",
        ))
    }

    /// The functions' environment as the function role, with the section's access
    /// configuration and the hub's empty region.
    fn env(&self, session: &Credentials, concurrency: Option<usize>) -> Vec<(String, String)> {
        let mut env: BTreeMap<String, String> = self.w.env().into_iter().collect();
        env.insert("AWS_ACCESS_KEY_ID".into(), session.access_key_id().into());
        env.insert(
            "AWS_SECRET_ACCESS_KEY".into(),
            session.secret_access_key().into(),
        );
        if let Some(token) = session.session_token() {
            env.insert("AWS_SESSION_TOKEN".into(), token.into());
        }
        env.insert("ACCESS_CONFIG".into(), self.text.clone());
        env.insert("CLUSTER_REGIONS".into(), self.hub_region.clone());
        if let Some(c) = concurrency {
            env.insert("CLUSTER_CONCURRENCY".into(), c.to_string());
        }
        env.into_iter().collect()
    }

    /// The configuration and the SDK configuration of an in-process engine.
    async fn engine_parts(
        &self,
        concurrency: Option<usize>,
    ) -> Result<(Config, aws_config::SdkConfig), BenchError> {
        let session = self.function_session().await?;
        let env: BTreeMap<String, String> = self.env(&session, concurrency).into_iter().collect();
        let config = Config::from_lookup(|k| env.get(k).cloned())
            .map_err(|e| BenchError::Config(e.to_string()))?;
        let sdk = self.w.sdk_as(session, &self.w.sb.region()).await;
        Ok((config, sdk))
    }

    /// Back to before the first run: the admin role's trust policy as seeded, the
    /// member clusters' aws-auth as bootstrapped.
    async fn reset(&self) -> Result<(), BenchError> {
        self.w.set_latency(0);
        self.w.set_trust_policy(&admin_trust_policy()).await?;
        self.w.restore_aws_auth(&self.baseline);
        Ok(())
    }

    async fn cli_run(&self, bin: &Path, out: &Path, latency: u64) -> Result<Run, BenchError> {
        let session = self.function_session().await?;
        let mut cmd = env_cmd(bin, &self.env(&session, None));
        cmd.args(["reconcile", "--output", "json"]);
        self.w.reset_calls();
        self.w.set_latency(latency);
        let exit = proc::run_measured(cmd, out).await;
        self.w.set_latency(0);
        let exit = exit?;
        let report: Option<RunReport> = std::fs::read_to_string(out)
            .ok()
            .and_then(|s| serde_json::from_str(&s).ok());
        let run = Run {
            wall_ms: ms(exit.wall),
            rss_mib: Some(exit.max_rss_kib as f64 / 1024.0),
            exit_ok: exit.success,
            calls: self.w.calls(),
            report,
        };
        self.log_failure(&run);
        Ok(run)
    }

    async fn warm_run(&self, engine: &SdkEngine, latency: u64) -> Run {
        self.w.reset_calls();
        self.w.set_latency(latency);
        let start = Instant::now();
        let report = engine.apply_full(&Scope::all()).await;
        let wall = start.elapsed();
        self.w.set_latency(0);
        let run = Run {
            wall_ms: ms(wall),
            rss_mib: None,
            exit_ok: true,
            calls: self.w.calls(),
            report: Some(report),
        };
        self.log_failure(&run);
        run
    }

    fn log_failure(&self, run: &Run) {
        if !run.ok() {
            progress(format!(
                "accounts: a full reconcile failed (exit {}): {}",
                if run.exit_ok { "0" } else { "non-zero" },
                run.report
                    .as_ref()
                    .map_or("no report".into(), RunReport::failure_summary)
            ));
        }
    }

    fn log_row(&self, r: &FullRow) {
        progress(format!(
            "accounts: {} at {} member clusters: median {:.0} ms, {} reported, AssumeRole {}–{}, \
             {} writes, {} failed runs",
            r.label,
            self.keys.len(),
            r.wall_ms.map(|s| s.median).unwrap_or(f64::NAN),
            r.clusters_reported,
            r.assume_roles.0,
            r.assume_roles.1,
            r.writes,
            r.failures
        ));
    }

    /// CLI runs with everything to write, CLI runs in sync, in-process in-sync runs on
    /// a warm engine; `runs` of each.
    async fn full(
        &self,
        bin: &Path,
        dir: &Path,
        latency: u64,
        runs: usize,
    ) -> Result<Vec<FullRow>, BenchError> {
        let out = dir.join("accounts-report.json");
        let mut first = Vec::new();
        for _ in 0..runs {
            self.reset().await?;
            first.push(self.cli_run(bin, &out, latency).await?);
        }
        let first = FullRow::of("first run (CLI)", true, false, &first);
        self.log_row(&first);
        let mut sync = Vec::new();
        for _ in 0..runs {
            sync.push(self.cli_run(bin, &out, latency).await?);
        }
        let sync = FullRow::of("in sync (CLI)", true, true, &sync);
        self.log_row(&sync);
        let (config, sdk) = self.engine_parts(None).await?;
        let engine = SdkEngine::from_sdk(config, &sdk);
        // Warm-up (untimed, latency 0): the member sessions and connections.
        self.warm_run(&engine, 0).await;
        let mut warm = Vec::new();
        for _ in 0..runs {
            warm.push(self.warm_run(&engine, latency).await);
        }
        let warm = FullRow::of("in sync (warm engine, in-process)", false, true, &warm);
        self.log_row(&warm);
        Ok(vec![first, sync, warm])
    }

    /// One TagUser event of a new admin, `runs` times at `latency` and at 0, on a new
    /// engine each run (`cold`) or on one engine warmed up first.
    async fn event_case(
        &self,
        cold: bool,
        concurrency: Option<usize>,
        runs: usize,
        latency: u64,
    ) -> Result<EventCase, BenchError> {
        let (config, sdk) = self.engine_parts(concurrency).await?;
        let warm = SdkEngine::from_sdk(config.clone(), &sdk);
        let tag = if cold { "c" } else { "w" };
        let conc = config.cluster_concurrency;
        if !cold {
            let user = format!("acct-warmup-{conc}");
            event_run(self.w, &warm, &user, 0).await?;
        }
        let assumed = Mutex::new(Vec::new());
        let (w, config, sdk, warm, assumed_ref) = (self.w, &config, &sdk, &warm, &assumed);
        let row = event_row(self.keys.len(), conc, runs, latency, |i, l| async move {
            let user = format!("acct-{tag}{conc}-{i}-{l}");
            let r = if cold {
                let engine = SdkEngine::from_sdk(config.clone(), sdk);
                event_run(w, &engine, &user, l).await?
            } else {
                event_run(w, warm, &user, l).await?
            };
            if let Ok(mut a) = assumed_ref.lock() {
                a.push(count(&r.1, "sts", "AssumeRole"));
            }
            Ok(r)
        })
        .await?;
        let assumed = assumed.into_inner().unwrap_or_default();
        let case = EventCase {
            cold,
            row,
            assume_roles: (
                assumed.iter().copied().min().unwrap_or(0),
                assumed.iter().copied().max().unwrap_or(0),
            ),
        };
        progress(format!(
            "accounts: TagUser event, {}: median {:.0} ms, critical path {:.0} ms ({:.2}×), \
             AssumeRole {}–{} per run, {} failed",
            case.label(),
            case.row.wall_ms.map(|s| s.median).unwrap_or(f64::NAN),
            case.row.critical_ms,
            case.ratio(),
            case.assume_roles.0,
            case.assume_roles.1,
            case.row.failures
        ));
        Ok(case)
    }
}

/// `eks_access_sync::bootstrap` of every cluster in `names` (in `region`, the caller's
/// account) for `role`, [`SEED_CONCURRENCY`] at once.
async fn bootstrap_all(
    sdk: &aws_config::SdkConfig,
    region: &str,
    names: &[String],
    role: &RoleArn,
) -> Result<(), BenchError> {
    let results: Vec<Result<(), BenchError>> = futures::stream::iter(names)
        .map(|name| async move {
            let cluster: ClusterName = name
                .parse()
                .map_err(|e| BenchError::Config(format!("cluster name {name}: {e}")))?;
            eks_access_sync::bootstrap::bootstrap(sdk, region, &cluster, role)
                .await
                .map_err(|e| BenchError::Aws(format!("bootstrap {region}/{name}: {e}")))?;
            Ok(())
        })
        .buffer_unordered(SEED_CONCURRENCY)
        .collect()
        .await;
    results.into_iter().collect()
}

/// The section: the organization of `size` built, then the full reconciles (`sync_runs` of each kind) and the events (`event_runs` of
/// each case).
#[allow(clippy::too_many_arguments)]
pub async fn accounts(
    w: &World,
    bin: &Path,
    size: Size,
    latency: u64,
    sync_runs: usize,
    event_runs: usize,
    (users, admins): (usize, usize),
    dir: &Path,
) -> Result<AccountsSection, BenchError> {
    progress(format!("accounts: building {}", size.describe()));
    let org = Org::build(w, size).await?;
    progress(format!(
        "accounts: {} member clusters ready in {:.1} s; bench process {:.0} MiB, {} fds",
        org.keys.len(),
        org.setup_secs,
        org.footprint.0 as f64 / 1024.0,
        org.footprint.1
    ));
    let full = org.full(bin, dir, latency, sync_runs).await?;
    let n = org.keys.len();
    let mut events = Vec::new();
    let mut concurrencies = vec![None];
    if n > DEFAULT_CLUSTER_CONCURRENCY {
        concurrencies.push(Some(n));
    }
    for c in concurrencies {
        for cold in [true, false] {
            events.push(org.event_case(cold, c, event_runs, latency).await?);
        }
    }
    Ok(AccountsSection {
        accounts: org.accounts.len(),
        regions: org.size.regions.clone(),
        per_region: org.size.per_region,
        clusters: n,
        hub_region: org.hub_region.clone(),
        latency_ms: latency,
        users,
        admins,
        setup_secs: org.setup_secs,
        footprint: org.footprint,
        full,
        events,
    })
}

impl AccountsSection {
    fn size(&self) -> String {
        format!(
            "{} accounts × {} regions × {} clusters ({} clusters)",
            self.accounts,
            self.regions.len(),
            self.per_region,
            self.clusters
        )
    }

    fn max_rss(&self) -> f64 {
        self.full
            .iter()
            .filter_map(|r| r.rss_mib.map(|s| s.max))
            .fold(0.0, f64::max)
    }

    /// The cold event at the default concurrency: the mark.
    fn cold_default(&self) -> Option<&EventCase> {
        self.events
            .iter()
            .find(|e| e.cold && e.row.concurrency == DEFAULT_CLUSTER_CONCURRENCY)
    }

    /// The section's marks (issue 12).
    pub fn marks(&self) -> Vec<Mark> {
        let mut out = Vec::new();
        let a = self.accounts as u64;
        if let Some(e) = self.cold_default() {
            let others: Vec<String> = self
                .events
                .iter()
                .filter(|o| !std::ptr::eq(*o, e))
                .map(|o| format!("{}: {:.2}×", o.label(), o.ratio()))
                .collect();
            out.push(Mark {
                name: format!(
                    "one TagUser event at {} within 1.5× its critical path, cold engine (AssumeRole once per account on it), default concurrency (issue 12)",
                    self.size()
                ),
                met: e.ratio() <= 1.5 && e.row.failures == 0 && e.assume_roles == (a, a),
                detail: format!(
                    "{:.2}× ({:.0} ms against {:.0} ms, {} AssumeRole per run){}",
                    e.ratio(),
                    e.row.wall_ms.map(|s| s.median).unwrap_or(f64::NAN),
                    e.row.critical_ms,
                    e.assume_roles.1,
                    if others.is_empty() {
                        String::new()
                    } else {
                        format!("; {}", others.join("; "))
                    }
                ),
            });
        }
        let ok = !self.full.is_empty()
            && self.full.iter().all(|r| {
                r.runs() > 0
                    && r.failures == 0
                    && r.clusters_reported == self.clusters
                    && (!r.in_sync || r.writes == 0)
            });
        out.push(Mark {
            name: format!(
                "a full reconcile at {}: every member cluster reconciled, then zero writes in sync (issue 12)",
                self.size()
            ),
            met: ok,
            detail: self
                .full
                .iter()
                .map(|r| {
                    format!(
                        "{}: {:.0} ms, {} clusters reported, {} writes, {} failed runs",
                        r.label,
                        r.wall_ms.map(|s| s.median).unwrap_or(f64::NAN),
                        r.clusters_reported,
                        r.writes,
                        r.failures
                    )
                })
                .collect::<Vec<_>>()
                .join("; "),
        });
        let assume_ok = self
            .full
            .iter()
            .all(|r| r.assume_roles == if r.cli { (a, a) } else { (0, 0) })
            && self
                .events
                .iter()
                .all(|e| e.assume_roles == if e.cold { (a, a) } else { (0, 0) });
        out.push(Mark {
            name: format!(
                "AssumeRole once per member account on a cold engine ({a}), none on a warm one (issue 12)"
            ),
            met: assume_ok && !self.full.is_empty() && !self.events.is_empty(),
            detail: self
                .full
                .iter()
                .map(|r| (r.label.clone(), r.assume_roles))
                .chain(
                    self.events
                        .iter()
                        .map(|e| (format!("event, {}", e.label()), e.assume_roles)),
                )
                .map(|(l, (lo, hi))| {
                    if lo == hi {
                        format!("{l}: {lo}")
                    } else {
                        format!("{l}: {lo}–{hi}")
                    }
                })
                .collect::<Vec<_>>()
                .join("; "),
        });
        let rss = self.max_rss();
        out.push(Mark {
            name: format!(
                "peak memory under 64 MB (CLI full reconcile at {}, issue 12)",
                self.size()
            ),
            met: rss > 0.0 && rss < 64.0 * 1_000_000.0 / (1024.0 * 1024.0),
            detail: format!("{rss:.1} MiB at most"),
        });
        out
    }

    /// The report's section.
    pub fn markdown(&self, note: &str) -> String {
        let mut s = String::new();
        let l = self.latency_ms;
        let _ = writeln!(s, "## Member accounts (issue 12)\n");
        let _ = writeln!(
            s,
            "Method: {} member accounts ({}), each built by the sandbox's member seed (its \
             `eks-access-sync-member` role trusting the hub's function role \
             `eks-access-sync-function` within the organization; the seed's sample clusters \
             deleted), then {} tagged (`{}={}`) CONFIG_MAP clusters in each of its regions ({}), \
             created through the EKS API by the account's administrator and bootstrapped for the \
             member role (`eks_access_sync::bootstrap`, as `make bootstrap` does): {} clusters, \
             each with its own TLS Kubernetes API server in the sandbox. The access configuration \
             (`ACCESS_CONFIG`) has one tier, `admin` (role `{ADMIN_ROLE}`, members by `{}={}`, \
             `system:masters`), and `accounts:` listing the {} accounts with their regions; the \
             hub's own regions (`CLUSTER_REGIONS`) are `{}`, where it has no cluster (one \
             ListClusters), so only the member clusters are reconciled. The engine runs as a \
             session of the hub's function role (the operator assumes it before each run or \
             engine; that call is not counted), so each member account costs one `sts:AssumeRole` \
             of its member role, kept by a warm engine. {} users ({} admins){note}. Building the \
             organization took {:.1} s; after it the bench process (the sandbox, its API servers \
             included) had {:.0} MiB resident and {} open file descriptors.\n",
            self.accounts,
            (0..self.accounts)
                .map(account_id)
                .collect::<Vec<_>>()
                .join(", "),
            self.per_region,
            CLUSTER_TAG.0,
            CLUSTER_TAG.1,
            self.regions.join(", "),
            self.clusters,
            ADMIN_TAG.0,
            ADMIN_TAG.1,
            self.accounts,
            self.hub_region,
            self.users,
            self.admins,
            self.setup_secs,
            self.footprint.0 as f64 / 1024.0,
            self.footprint.1
        );
        let _ = writeln!(
            s,
            "Full reconciles at {l} ms per call: the release CLI `eks-access-sync reconcile \
             --output json` (a new process: a cold engine), timed from spawn to exit, peak RSS the \
             last `VmHWM` sampled every 5 ms (as section 3); *first run*: the admin role's trust \
             policy back to its seed document and every member cluster's aws-auth back to what the \
             bootstrap wrote before each run, so each adds the {} admins and maps the role on every \
             cluster; *in sync*: the same CLI again. *Warm engine*: `apply_full` in-process on one \
             engine after an untimed run at latency 0 (a warm `reconcile` Lambda). *Clusters \
             reported*: member clusters in the run's report (the fewest of any run).\n",
            self.admins
        );
        let _ = writeln!(
            s,
            "| run | wall, ms (median) | spread | runs | peak RSS, MiB (max) | AssumeRole | IAM calls | ListClusters | DescribeCluster | Kubernetes calls | writes (most) | clusters reported | failed runs |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|"
        );
        for r in &self.full {
            let (med, spread) = match r.wall_ms {
                Some(w) => (format!("{:.0}", w.median), w.spread(0)),
                None => ("n/a".into(), "n/a".into()),
            };
            let (lo, hi) = r.assume_roles;
            let _ = writeln!(
                s,
                "| {} | {med} | {spread} | {} | {} | {} | {} | {} | {} | {} | {} | {} of {} | {}{} |",
                r.label,
                r.runs(),
                r.rss_mib
                    .map_or("n/a (in-process)".into(), |x| format!("{:.1}", x.max)),
                if lo == hi {
                    lo.to_string()
                } else {
                    format!("{lo}–{hi}")
                },
                r.iam,
                r.list_clusters,
                r.describe,
                r.k8s,
                r.writes,
                r.clusters_reported,
                self.clusters,
                r.failures,
                if r.failed_clusters > 0 {
                    format!(" ({} failed clusters at most)", r.failed_clusters)
                } else {
                    String::new()
                }
            );
        }
        for r in &self.full {
            if let Some(e) = &r.error {
                let _ = writeln!(s, "\nAn error ({}): `{e}`", r.label);
            }
        }
        if let Some(r) = self.full.first() {
            let _ = writeln!(s, "\nCalls of the last first run: {}.", describe(&r.calls));
        }
        let _ = writeln!(
            s,
            "\nThe event: as section 2 (a new user with the admin tag, `events/iam-tag-user.json` \
             through the iam-events handler in-process, at {l} ms per call and at 0; the trust \
             policy put back and the user deleted after each run). The clusters already map the \
             role, so they are read, not written. *Cold engine*: a new engine (`SdkEngine::from_sdk`) \
             for each run, as a new Lambda instance: no member session yet, so the {} AssumeRoles \
             (at once) are on the path. *Warm engine*: one engine, warmed by an untimed event. \
             Critical path: IAM, PutItem (lease) → GetUser ∥ GetRole → UpdateAssumeRolePolicy → \
             DeleteItem (lease); the clusters, [AssumeRole of every member account at once, cold] → \
             ListClusters (every account and region at once) → DescribeCluster ∥ … → GET aws-auth ∥ …; \
             the longer chain × {l} ms, from the stages the calls show.{}\n",
            self.accounts,
            if self.clusters > DEFAULT_CLUSTER_CONCURRENCY {
                format!(
                    " The default concurrency ({DEFAULT_CLUSTER_CONCURRENCY} clusters at once) \
                     handles the {} clusters in waves; the rows at concurrency {} show the path \
                     without them.",
                    self.clusters, self.clusters
                )
            } else {
                String::new()
            }
        );
        let _ = writeln!(
            s,
            "| TagUser event | wall, ms (median) | spread | runs | at 0 ms latency, ms (median) | critical path | ratio | AssumeRole per run | calls (last run) |\n|---|---|---|---|---|---|---|---|---|"
        );
        for e in &self.events {
            let r = &e.row;
            let fail = if r.failures > 0 {
                format!(" ({} failed)", r.failures)
            } else {
                String::new()
            };
            let (lo, hi) = e.assume_roles;
            let _ = writeln!(
                s,
                "| {} at {} clusters | {:.0} | {} | {}{fail} | {:.0} | {:.0} ms ({}) | {:.2} | {} | {} |",
                e.label(),
                r.clusters,
                r.wall_ms.map(|x| x.median).unwrap_or(f64::NAN),
                r.wall_ms.map(|x| x.spread(0)).unwrap_or_default(),
                r.wall_ms.map(|x| x.runs).unwrap_or(0),
                r.wall_zero_ms.map(|x| x.median).unwrap_or(f64::NAN),
                r.critical_ms,
                r.stages.join(" → "),
                e.ratio(),
                if lo == hi {
                    lo.to_string()
                } else {
                    format!("{lo}–{hi}")
                },
                describe(&r.calls)
            );
        }
        write_marks(&mut s, &self.marks());
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_configuration_lists_the_member_accounts() {
        let size = Size {
            accounts: 3,
            regions: vec!["us-east-1".into(), "eu-west-1".into()],
            per_region: 50,
        };
        assert_eq!(size.clusters(), 300);
        let text = config_text(&size);
        let config = Config::from_lookup(|k| match k {
            "ACCESS_CONFIG" => Some(text.clone()),
            "AWS_REGION" => Some("us-east-1".into()),
            _ => None,
        })
        .unwrap();
        let places = config.places();
        // The hub's region, then each account's two.
        assert_eq!(places.len(), 7, "{places:?}");
        assert_eq!(config.access.accounts.len(), 3);
        assert_eq!(account_id(0), "210000000001");
        assert_eq!(account_id(2).len(), 12);
        assert!(
            member_cluster_name(2, "eu-west-1", 49)
                .parse::<ClusterName>()
                .is_ok()
        );
    }

    #[test]
    fn the_hub_region_is_one_without_clusters() {
        let members = vec!["us-east-1".to_string(), "us-west-2".to_string()];
        let r = empty_hub_region("us-east-1", &members);
        assert!(r != "us-east-1" && !members.contains(&r), "{r}");
    }
}

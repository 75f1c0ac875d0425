//! The figures and their rendering as `BENCHMARKS.md`.

use std::fmt::Write as _;

use crate::invoke::InvokeRow;
use crate::stats::Stat;
use crate::world::{Calls, describe, total};

#[derive(Debug, Clone, Default)]
pub struct Machine {
    pub cpus: usize,
    pub cpu_model: String,
    pub memory: String,
    pub rustc: String,
    pub aws_cli: String,
    pub kubectl: String,
    pub date: String,
}

#[derive(Debug, Clone)]
pub struct ColdRow {
    pub name: String,
    /// Set for a run in another environment than the functions' default (the label).
    pub variant: Option<String>,
    pub size_bytes: u64,
    pub to_next_ms: Option<Stat>,
    pub rss_mib: Option<Stat>,
}

#[derive(Debug, Clone)]
pub struct EventRow {
    pub clusters: usize,
    pub concurrency: usize,
    pub wall_ms: Option<Stat>,
    /// The same event at latency 0.
    pub wall_zero_ms: Option<Stat>,
    pub critical_ms: f64,
    pub stages: Vec<String>,
    pub calls: Calls,
    pub failures: usize,
}

#[derive(Debug, Clone)]
pub struct ScaleRow {
    pub clusters: usize,
    pub in_sync: bool,
    pub wall_ms: Option<Stat>,
    pub rss_mib: Option<Stat>,
    pub writes: u64,
    pub calls: Calls,
    pub failures: usize,
}

#[derive(Debug, Clone)]
pub struct ManualRow {
    pub clusters: usize,
    pub total_ms: Option<Stat>,
    pub kubectl_ms: Option<Stat>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct Report {
    pub machine: Machine,
    pub latency_ms: u64,
    pub users: usize,
    pub admins: usize,
    pub seed_secs: f64,
    /// (ms, users, pages) of one listing of every user with tags at latency 0.
    pub list_users: (f64, usize, usize),
    pub total_secs: f64,
    pub cli_size_bytes: u64,
    pub cold: Vec<ColdRow>,
    /// Cold and warm invokes of the function binaries (section 1).
    pub invokes: Vec<InvokeRow>,
    /// Set when section 1 was measured alone (`bench --cold-only`): when, and the load.
    pub cold_only: Option<String>,
    pub events: Vec<EventRow>,
    pub scale: Vec<ScaleRow>,
    pub manual: Vec<ManualRow>,
    /// The access-tier section (issue 10), rendered.
    pub tiers: Option<String>,
    /// The any-team-size section (issue 11).
    pub team: Option<crate::team::TeamSection>,
    /// The member-accounts section (issue 12).
    pub accounts: Option<crate::accounts::AccountsSection>,
}

fn cell(s: Option<Stat>, digits: usize) -> (String, String, String) {
    match s {
        Some(s) => (
            format!("{:.digits$}", s.median),
            s.spread(digits),
            s.runs.to_string(),
        ),
        None => ("n/a".into(), "n/a".into(), "0".into()),
    }
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn verdict(ok: bool) -> &'static str {
    if ok { "**met**" } else { "**not met**" }
}

/// A mark of issue 6 and whether it was met.
#[derive(Debug, Clone, PartialEq)]
pub struct Mark {
    pub name: String,
    pub met: bool,
    pub detail: String,
}

/// A section's marks as a list after its tables (they also stand in the marks table
/// at the top).
pub fn write_marks(s: &mut String, marks: &[Mark]) {
    use std::fmt::Write as _;
    let _ = writeln!(s, "\nMarks (also in the marks table at the top):\n");
    for m in marks {
        let _ = writeln!(
            s,
            "- {}: {} ({}).",
            m.name,
            if m.met { "met" } else { "NOT MET" },
            m.detail
        );
    }
    let _ = writeln!(s);
}

impl Report {
    fn median(s: Option<Stat>) -> f64 {
        s.map(|s| s.median).unwrap_or(f64::NAN)
    }

    fn ratio_to_hello(&self, row: &ColdRow) -> f64 {
        let hello = self
            .cold
            .iter()
            .find(|r| r.name == "bench-hello")
            .and_then(|r| r.to_next_ms);
        Self::median(row.to_next_ms) / Self::median(hello)
    }

    /// The event row at `clusters` with the default concurrency (pushed before any
    /// other row at that count).
    fn event_at(&self, clusters: usize) -> Option<&EventRow> {
        self.events.iter().find(|e| e.clusters == clusters)
    }

    /// IAM calls of a run that made `here` calls on the sandbox, had it been AWS:
    /// moto answers GetAccountAuthorizationDetails in one page whatever `MaxItems`;
    /// AWS returns at most 1,000 users a page.
    fn iam_calls_in_aws(&self, here: u64) -> u64 {
        let (_, users, pages) = self.list_users;
        let aws_pages = users.div_ceil(1000) as u64;
        (here + aws_pages).saturating_sub(pages as u64)
    }

    /// The marks of issue 6.
    pub fn marks(&self) -> Vec<Mark> {
        let mut out = Vec::new();
        for row in self
            .cold
            .iter()
            .filter(|r| r.name != "bench-hello" && r.variant.is_none())
        {
            let ratio = self.ratio_to_hello(row);
            out.push(Mark {
                name: format!(
                    "cold start of {} within 1.5× the hello-world floor",
                    row.name
                ),
                met: ratio <= 1.5,
                detail: format!("{ratio:.2}×"),
            });
        }
        let largest = self.events.iter().map(|e| e.clusters).max().unwrap_or(0);
        if let Some(e) = self.event_at(largest) {
            let ratio = Self::median(e.wall_ms) / e.critical_ms;
            out.push(Mark {
                name: format!(
                    "an event within 1.5× its critical path at {largest} clusters (default concurrency {})",
                    e.concurrency
                ),
                met: ratio <= 1.5 && e.failures == 0,
                detail: format!("{ratio:.2}×"),
            });
        }
        let iam_max = self
            .scale
            .iter()
            .map(|r| total(&r.calls, "iam"))
            .max()
            .unwrap_or(0);
        let in_aws = self.iam_calls_in_aws(iam_max);
        out.push(Mark {
            name: format!(
                "IAM calls of a full reconcile of {} users at most 10",
                self.users
            ),
            met: iam_max <= 10 && in_aws <= 10 && !self.scale.is_empty(),
            detail: format!(
                "{iam_max} at most here ({} page(s) of users from moto); {in_aws} in AWS (1,000 users a page)",
                self.list_users.2
            ),
        });
        let rss_max = self
            .scale
            .iter()
            .filter_map(|r| r.rss_mib.map(|s| s.max))
            .chain(
                self.cold
                    .iter()
                    .filter(|r| r.name != "bench-hello")
                    .filter_map(|r| r.rss_mib.map(|s| s.max)),
            )
            .fold(0.0, f64::max);
        out.push(Mark {
            name: "peak memory under 64 MB (functions at cold start, CLI full reconcile)".into(),
            met: rss_max < 64.0 * 1_000_000.0 / (1024.0 * 1024.0),
            detail: format!("{rss_max:.1} MiB at most"),
        });
        let sync: Vec<&ScaleRow> = self.scale.iter().filter(|r| r.in_sync).collect();
        let writes: u64 = sync.iter().map(|r| r.writes).sum();
        let failures: usize = self.scale.iter().map(|r| r.failures).sum();
        out.push(Mark {
            name: "zero writes when in sync".into(),
            met: writes == 0 && failures == 0 && !sync.is_empty(),
            detail: format!(
                "{writes} writes in {} in-sync runs, {failures} failed runs",
                sync.iter()
                    .filter_map(|r| r.wall_ms.map(|s| s.runs))
                    .sum::<usize>()
            ),
        });
        if let Some(t) = &self.team {
            out.extend(t.marks());
        }
        if let Some(a) = &self.accounts {
            out.extend(a.marks());
        }
        out
    }

    /// Section 1: cold start (to the first `next`), the cold and warm invokes.
    pub fn cold_section(&self) -> String {
        let mut s = String::new();
        let l = self.latency_ms;
        let _ = writeln!(s, "## 1. Cold start, size, memory\n");
        if let Some(note) = &self.cold_only {
            let _ = writeln!(s, "{note}\n");
        }
        let _ = writeln!(
            s,
            "Method: the bench serves a minimal Lambda Runtime API on 127.0.0.1:0, spawns each release \
             binary with `AWS_LAMBDA_RUNTIME_API` and the other `AWS_LAMBDA_*` variables, the functions' \
             configuration and the sandbox's endpoints and credentials, and times from `spawn` to the \
             arrival of the first `GET /2018-06-01/runtime/invocation/next`, which it holds unanswered. \
             Then it reads the process's peak RSS (`VmHWM` in `/proc/<pid>/status`; not `wait4`'s `ru_maxrss`, which on Linux starts from the spawning parent's RSS) and kills it. One warm-up run \
             per binary is not counted. The floor is `bench-hello` (`lambda_runtime` + `tokio`, same \
             profile, and linked like the functions: a fixed-address executable, `-no-pie`, from each \
             crate's `build.rs`).\n\n\
             What the functions do before `next` that the floor does not: read and check the \
             configuration and start JSON logging. The AWS SDK clients are built by the first invocation, \
             and their HTTPS client's trusted roots are compiled in (`webpki-root-certs`, Mozilla's set; \
             README, \"TLS roots\"): no certificate file is read at start-up. Rows with a label are the \
             same function built another way (`--extra-bin`).\n"
        );
        let _ = writeln!(
            s,
            "| binary | to first `next`, ms (median) | spread (min–max) | runs | × hello | size, bytes | size, MiB | peak RSS, MiB (median) | RSS spread |\n|---|---|---|---|---|---|---|---|---|"
        );
        for r in &self.cold {
            let (med, spread, runs) = cell(r.to_next_ms, 2);
            let (rss, rss_spread, _) = cell(r.rss_mib, 1);
            let _ = writeln!(
                s,
                "| `{}`{} | {med} | {spread} | {runs} | {:.2} | {} | {:.1} | {rss} | {rss_spread} |",
                r.name,
                r.variant
                    .as_deref()
                    .map(|v| format!(", {v}"))
                    .unwrap_or_default(),
                self.ratio_to_hello(r),
                r.size_bytes,
                mib(r.size_bytes)
            );
        }
        let _ = writeln!(
            s,
            "\nThe operator CLI `eks-access-sync` (release): {} bytes ({:.1} MiB). Its peak RSS over a full \
             reconcile is in section 3.\n",
            self.cli_size_bytes,
            mib(self.cli_size_bytes)
        );
        self.invoke_table(&mut s, l);
        s
    }

    fn invoke_table(&self, s: &mut String, l: u64) {
        if self.invokes.is_empty() {
            return;
        }
        let _ = writeln!(
            s,
            "### Cold and warm invoke\n\n\
             Method: what a user waits for when the event lands on a new instance. The bench serves a \
             local Lambda Runtime API (`tests/runtime`, the one the shipped-binary test uses) that \
             answers `next` with an event, creates two users carrying the admin tag, sets the sandbox \
             latency to {l} ms on every AWS and Kubernetes call (one tagged CONFIG_MAP cluster, whose \
             aws-auth already maps the admin role), spawns the release `iam-events` and hands it \
             `events/iam-tag-user.json` for the first user. *Cold invoke* is spawn → that response \
             (init, the first TLS handshake to the cluster, the run); *init* is spawn → the first \
             `next` of the same runs. Then the same process gets the event for the second user: *warm \
             invoke* is `next` answered → response (what Lambda bills as its duration). Every response \
             is checked to name its user as added. The trust policy is put back and both users deleted \
             after each run; one run first is not counted. The critical path of such an event is 4 \
             round trips ({} ms at {l} ms, section 2).\n",
            4 * l
        );
        let _ = writeln!(
            s,
            "| binary | init, ms (median, spread) | cold invoke, ms (median) | spread | warm invoke, ms (median) | spread | runs | cold − warm, ms | failed runs |\n|---|---|---|---|---|---|---|---|---|"
        );
        for r in &self.invokes {
            let (init, init_spread, _) = cell(r.init_ms, 2);
            let (cold, cold_spread, runs) = cell(r.cold_ms, 1);
            let (warm, warm_spread, _) = cell(r.warm_ms, 1);
            let _ = writeln!(
                s,
                "| `{}`{} | {init} ({init_spread}) | {cold} | {cold_spread} | {warm} | {warm_spread} | {runs} | {:.1} | {} |",
                r.name,
                r.variant
                    .as_deref()
                    .map(|v| format!(", {v}"))
                    .unwrap_or_default(),
                Self::median(r.cold_ms) - Self::median(r.warm_ms),
                r.failures
            );
        }
        let _ = writeln!(s);
    }

    /// `existing` (a whole BENCHMARKS.md) with section 1 and the cold-start marks
    /// replaced by this report's: what `bench --cold-only` writes. None if `existing`
    /// lacks section 1 or 2 (then the whole bench must run).
    pub fn splice_cold(&self, existing: &str) -> Option<String> {
        let start = existing.find("## 1. ")?;
        let end = existing.find("## 2. ")?;
        if end < start {
            return None;
        }
        let mut out = String::new();
        let mut marks_done = false;
        for line in existing[..start].lines() {
            if line.starts_with("| cold start of ") {
                if !marks_done {
                    for m in self
                        .marks()
                        .iter()
                        .filter(|m| m.name.starts_with("cold start of "))
                    {
                        let _ = writeln!(out, "| {} | {} | {} |", m.name, m.detail, verdict(m.met));
                    }
                    marks_done = true;
                }
            } else {
                let _ = writeln!(out, "{line}");
            }
        }
        out.push_str(&self.cold_section());
        out.push('\n');
        out.push_str(&existing[end..]);
        Some(out)
    }

    pub fn markdown(&self) -> String {
        let mut s = String::new();
        let m = &self.machine;
        let l = self.latency_ms;
        let _ = writeln!(s, "# Benchmarks\n");
        let _ = writeln!(
            s,
            "Written by `tests/bench` (`make bench`: release builds of `iam-events`, `reconcile`, \
             `eks-access-sync`, `bench-hello` and `bench`, then `target/release/bench --out BENCHMARKS.md`). \
             Every figure below comes from one run of it; the whole run took {:.0} s.\n",
            self.total_secs
        );
        let _ = writeln!(s, "## Machine\n");
        let _ = writeln!(s, "| | |\n|---|---|");
        let _ = writeln!(s, "| date (UTC) | {} |", m.date);
        let _ = writeln!(s, "| CPUs (`nproc`) | {} |", m.cpus);
        let _ = writeln!(s, "| CPU model | {} |", m.cpu_model);
        let _ = writeln!(s, "| memory | {} |", m.memory);
        let _ = writeln!(s, "| rustc | {} |", m.rustc);
        let _ = writeln!(s, "| aws CLI | {} |", m.aws_cli);
        let _ = writeln!(s, "| kubectl | {} |\n", m.kubectl);
        let _ = writeln!(
            s,
            "The machine is shared (2 cores, other builds may run at the same time): read spreads, not \
             single numbers. The sandbox (moto_server behind the in-process front door, one TLS Kubernetes \
             API server per cluster) runs on the same cores as the code measured; in the bench process it \
             has its own runtime (its own threads), so that its tasks do not queue with the measured \
             code's, as a remote service's do not.\n\n\
             Latency: with `latencyMs` L set, every AWS and Kubernetes call the sandbox answers \
             takes L from the moment it arrives, as a call to a service whose answers take L: \
             the sandbox's own work on the call (moto's Python, the EKS emulator, a Kubernetes \
             server) is inside L, and a call whose work takes longer answers when it is done \
             (`tests/sandbox/src/latency.rs`). Until 2026-12-07 the sandbox added L on top of that \
             work, so every call of a critical path also carried moto's few milliseconds; the \
             critical paths below count L per call, which is what they are now measured against. \
             The time a call waits for the 2 cores (the sandbox's servers, moto and the code \
             measured all at once) is still in every figure.\n"
        );

        let _ = writeln!(s, "## Marks (issues 6, 11 and 12)\n");
        let _ = writeln!(s, "| mark | result | |\n|---|---|---|");
        for mark in self.marks() {
            let _ = writeln!(
                s,
                "| {} | {} | {} |",
                mark.name,
                mark.detail,
                verdict(mark.met)
            );
        }
        let _ = writeln!(s);

        s.push_str(&self.cold_section());

        // 2
        let _ = writeln!(s, "## 2. One event: TagUser of a new admin\n");
        let _ = writeln!(
            s,
            "Method: a user carrying the admin tag is created (latency 0), the call counters are reset, the \
             sandbox latency is set to {l} ms on every AWS and Kubernetes call, and the `iam-events` handler \
             (`iam_events::handle`, called **in-process** on an engine built by `SdkEngine::from_sdk`, as the \
             Lambda's warm path does) processes `events/iam-tag-user.json` naming that user. Wall time is the \
             handler call. Afterwards the trust policy is put back and the user deleted, so every run adds \
             one admin to the same document. All clusters are CONFIG_MAP and already map the admin role \
             (section 3 ran first), so the clusters are read, not written: adding an admin only changes the \
             trust policy.\n\n\
             Critical path: the engine takes the trust-policy lease (DynamoDB PutItem, \
             `TRUST_LOCK_TABLE`, as deployed), reads the event's user (GetUser) and the admin role \
             (GetRole) at once, writes the trust policy (UpdateAssumeRolePolicy) and gives the lease back \
             (DeleteItem: a Lambda cannot leave it for later). Beside that chain it lists the clusters \
             (ListClusters) while the lease is taken and describes each (DescribeCluster), all at once, \
             beside the reads; once the role is known, \
             each cluster is read (GET aws-auth) and, only when it needs a change, written. The longer \
             of the two chains is the fewest sequential round trips the APIs allow a safe write (IAM has \
             no conditional write, hence the lease). The bench counts the stages of each chain that the \
             run's calls show and multiplies the longer chain by {l} ms. (A TLS handshake to each \
             cluster's API server is real work here but the sandbox's latency is per request, not \
             per connection.) The engine runs `CLUSTER_CONCURRENCY` clusters at a time in each account \
             and region (default 100, the EKS quota per region); \
             `functions/core/tests/round_trips.rs` checks the round-trip \
             count on a paused clock. The same event at latency 0 shows what is not \
             network: the engine's own work plus the sandbox's (moto is a single Python process; the \
             Kubernetes servers share the 2 cores).\n"
        );
        let _ = writeln!(
            s,
            "| clusters | concurrency | wall, ms (median) | spread | runs | critical path, ms | ratio | same at latency 0, ms (median, spread) | stages | calls (last run) |\n|---|---|---|---|---|---|---|---|---|---|"
        );
        for e in &self.events {
            let (med, spread, runs) = cell(e.wall_ms, 0);
            let (zmed, zspread, _) = cell(e.wall_zero_ms, 0);
            let fail = if e.failures > 0 {
                format!(" ({} failed)", e.failures)
            } else {
                String::new()
            };
            let _ = writeln!(
                s,
                "| {} | {} | {med} | {spread} | {runs}{fail} | {:.0} | {:.2} | {zmed} ({zspread}) | {} | {} |",
                e.clusters,
                e.concurrency,
                e.critical_ms,
                Self::median(e.wall_ms) / e.critical_ms,
                e.stages.join(" → "),
                describe(&e.calls)
            );
        }
        let _ = writeln!(s);

        // 3
        let _ = writeln!(
            s,
            "## 3. Full reconcile: {} users ({} admins)\n",
            self.users, self.admins
        );
        let _ = writeln!(
            s,
            "Method: {} users are created in the sandbox (moto) through the SDK, 16 at a time, at latency 0 \
             ({:.0} s). Clusters are created through EKS CreateCluster (tagged, CONFIG_MAP, each with its own \
             TLS API server), 1, then 10, then 100 in all. For each count, with {l} ms latency: one run with \
             changes (the trust policy reset to its seed state first, so all {} admins are added, and the \
             new clusters have no aws-auth yet), then runs already in sync. Each run is the release CLI \
             `eks-access-sync reconcile --output json` (the same engine as the reconcile Lambda), timed \
             from spawn to exit (process start included); peak RSS is the last `VmHWM` sampled every 5 ms until exit. Writes are \
             UpdateAssumeRolePolicy, EKS Create/Delete/Associate/Update calls, and Kubernetes \
             PUT/PATCH/POST/DELETE: changes to what eks-access-sync manages. The trust-policy lease \
             (DynamoDB PutItem and DeleteItem on the lock table) is bookkeeping, not counted as a \
             write; it shows in the calls column.\n",
            self.users, self.seed_secs, self.admins
        );
        let _ = writeln!(
            s,
            "For scale: the bench itself lists every user with tags through the sandbox, as the engine \
             does (GetAccountAuthorizationDetails, `User` filter, MaxItems 1000), at latency 0: {:.0} ms \
             for {} users in {} page(s). That time is moto's (one Python process) and the sandbox's, and it \
             is part of every full reconcile below. moto answers in one page whatever `MaxItems`; AWS \
             returns at most 1,000 users a page, so in AWS the listing takes {} calls, one after the \
             other (the marks count them so).\n",
            self.list_users.0,
            self.list_users.1,
            self.list_users.2,
            self.list_users.1.div_ceil(1000)
        );
        let _ = writeln!(
            s,
            "| clusters | run | wall, ms (median) | spread | runs | peak RSS, MiB | IAM calls | writes | calls (last run) |\n|---|---|---|---|---|---|---|---|---|"
        );
        for r in &self.scale {
            let (med, spread, runs) = cell(r.wall_ms, 0);
            let rss = r
                .rss_mib
                .map(|s| format!("{:.1}", s.max))
                .unwrap_or_default();
            let fail = if r.failures > 0 {
                format!(" ({} failed)", r.failures)
            } else {
                String::new()
            };
            let _ = writeln!(
                s,
                "| {} | {} | {med} | {spread} | {runs}{fail} | {rss} | {} | {} | {} |",
                r.clusters,
                if r.in_sync { "in sync" } else { "with changes" },
                total(&r.calls, "iam"),
                r.writes,
                describe(&r.calls)
            );
        }
        let _ = writeln!(s);

        // 4
        let _ = writeln!(s, "## 4. The manual way\n");
        let _ = writeln!(
            s,
            "Method: for one new admin, what a person's script does, sequentially, against the same sandbox \
             at {l} ms latency: `aws iam update-assume-role-policy --role-name eks-admin --policy-document \
             file://trust.json` (the full document, with the new user added), then for each cluster \
             `aws eks update-kubeconfig --name C --kubeconfig K` and `kubectl --kubeconfig K apply -f \
             aws-auth.yaml` (the full ConfigMap; kubectl authenticates through `aws eks get-token`). Timed \
             from the first command to the last exit. Compared with the event path of section 2 at the same \
             cluster count (default concurrency). At 100 clusters one run only.\n"
        );
        let _ = writeln!(
            s,
            "| clusters | manual, ms (median) | spread | runs | of which kubectl apply, ms | event path, ms | manual ÷ event |\n|---|---|---|---|---|---|---|"
        );
        for r in &self.manual {
            let (med, spread, runs) = cell(r.total_ms, 0);
            let (kube, _, _) = cell(r.kubectl_ms, 0);
            let ev = self.event_at(r.clusters).and_then(|e| e.wall_ms);
            let ratio = Self::median(r.total_ms) / Self::median(ev);
            let err = r
                .error
                .as_ref()
                .map(|e| format!(" (failed: {e})"))
                .unwrap_or_default();
            let _ = writeln!(
                s,
                "| {} | {med}{err} | {spread} | {runs} | {kube} | {:.0} | {ratio:.1} |",
                r.clusters,
                Self::median(ev)
            );
        }
        if self.manual.is_empty() {
            let _ = writeln!(s, "\nNot run: `aws` or `kubectl` was not found on PATH.");
        }
        if let Some(t) = &self.tiers {
            let _ = writeln!(s);
            s.push_str(t);
        }
        if let Some(t) = &self.team {
            let _ = writeln!(s);
            s.push_str(&t.markdown(""));
        }
        if let Some(a) = &self.accounts {
            let _ = writeln!(s);
            s.push_str(&a.markdown(""));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stat(v: f64) -> Option<Stat> {
        Stat::of(&[v])
    }

    #[test]
    fn iam_calls_are_counted_as_aws_would_page_the_users() {
        let r = Report {
            list_users: (1.0, 5001, 1),
            ..Report::default()
        };
        // GetAccountAuthorizationDetails once here, 6 times in AWS; GetRole, Update.
        assert_eq!(r.iam_calls_in_aws(3), 8);
        let paged = Report {
            list_users: (1.0, 2500, 3),
            ..Report::default()
        };
        assert_eq!(paged.iam_calls_in_aws(5), 5);
    }

    #[test]
    fn marks_follow_the_figures() {
        let mut r = Report {
            users: 5000,
            latency_ms: 20,
            ..Report::default()
        };
        r.cold = vec![
            ColdRow {
                variant: None,
                name: "bench-hello".into(),
                size_bytes: 1,
                to_next_ms: stat(2.0),
                rss_mib: stat(3.0),
            },
            ColdRow {
                variant: None,
                name: "iam-events".into(),
                size_bytes: 1,
                to_next_ms: stat(4.0),
                rss_mib: stat(10.0),
            },
        ];
        let calls: Calls = [(("iam".to_string(), "GetRole".to_string()), 1u64)]
            .into_iter()
            .collect();
        r.scale = vec![ScaleRow {
            clusters: 1,
            in_sync: true,
            wall_ms: stat(100.0),
            rss_mib: stat(70.0),
            writes: 0,
            calls,
            failures: 0,
        }];
        let marks = r.marks();
        assert!(!marks[0].met, "4 ms is 2× the 2 ms floor");
        assert_eq!(marks[0].detail, "2.00×");
        let mem = marks
            .iter()
            .find(|m| m.name.starts_with("peak memory"))
            .unwrap();
        assert!(!mem.met, "70 MiB is over 64 MB");
        let sync = marks
            .iter()
            .find(|m| m.name.starts_with("zero writes"))
            .unwrap();
        assert!(sync.met);
        let md = r.markdown();
        assert!(md.contains("| `iam-events` | 4.00 |"), "{md}");
        assert!(md.contains("**not met**"));

        // --cold-only: section 1 and the cold-start marks replaced, the rest kept.
        let old = "# B\n\n| mark | result | |\n|---|---|---|\n\
                   | cold start of iam-events within 1.5× the hello-world floor | 9.99× | **not met** |\n\
                   | zero writes when in sync | x | **met** |\n\n## 1. Cold\n\nold figures\n\n\
                   ## 2. One event\n\nkept\n";
        let new = r.splice_cold(old).expect("sections 1 and 2");
        assert!(
            new.contains("| cold start of iam-events within 1.5× the hello-world floor | 2.00× |"),
            "{new}"
        );
        assert!(
            !new.contains("9.99×") && !new.contains("old figures"),
            "{new}"
        );
        assert!(
            new.contains("| zero writes when in sync | x | **met** |"),
            "{new}"
        );
        assert!(new.ends_with("## 2. One event\n\nkept\n"), "{new}");
        assert!(new.contains("| `iam-events` | 4.00 |"), "{new}");
        assert_eq!(r.splice_cold("# no sections\n"), None);
    }
}

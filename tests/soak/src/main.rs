//! `soak`: starts the sandbox in-process, runs the reliability classes (races A and B,
//! the fault matrix), reads the other helpers' outputs (fuzzing, generated aws-auth
//! documents, secrets) and writes `RELIABILITY.md`. Exits 1 when anything was lost or a
//! class did not hold; `--quick` is the short version CI runs.

mod matrix;
mod races;
mod world;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Parser;

#[derive(Debug, thiserror::Error)]
pub enum SoakError {
    #[error("sandbox: {0}")]
    Sandbox(String),
    #[error("AWS: {0}")]
    Aws(String),
    #[error("setup: {0}")]
    Setup(String),
    #[error("input: {0}")]
    Input(String),
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
}

#[derive(Debug, Parser)]
#[command(
    about = "Races, fault matrix and reliability rows against the sandbox; writes RELIABILITY.md"
)]
struct Args {
    /// The short version (CI): 50 raced writes, 20 events, one hang cell per service.
    #[arg(long)]
    quick: bool,
    #[arg(long, default_value = "RELIABILITY.md")]
    out: PathBuf,
    /// Raced aws-auth writes (default 1,000; quick 50).
    #[arg(long)]
    writes: Option<usize>,
    /// IAM events at once (default 200; quick 20).
    #[arg(long)]
    events: Option<usize>,
    /// Seconds a matrix run may take before it counts as hung.
    #[arg(long, default_value_t = 45)]
    guard_secs: u64,
    /// Matrix cells at once (each in its own sandbox).
    #[arg(long, default_value_t = 4)]
    parallel: usize,
    /// `tests/fuzz/summary.tsv` (target, executions, seconds, exec/s, crashes).
    #[arg(long, default_value = "tests/fuzz/summary.tsv")]
    fuzz_summary: PathBuf,
    /// Output of the aws-auth corpus test (its `docs=N edits=M ...` line).
    #[arg(long)]
    corpus_log: Option<PathBuf>,
    /// Output of the secrets test (its `secrets: lines=N ...` line).
    #[arg(long)]
    secrets_log: Option<PathBuf>,
    /// Skip the races and the matrix (only the rows read from files).
    #[arg(long)]
    inputs_only: bool,
}

/// One row of the summary table.
#[derive(Debug, Clone)]
pub struct Row {
    pub class: String,
    pub method: String,
    pub tried: String,
    pub spread: String,
    pub held: String,
    pub lost: String,
    pub ok: bool,
    pub seconds: f64,
}

/// "min / median / p95 / max ms" of durations.
pub fn spread_ms(v: &mut [f64]) -> String {
    if v.is_empty() {
        return "-".into();
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    format!(
        "per run: min {:.0} / median {:.0} / p95 {:.0} / max {:.0} ms",
        v[0],
        at(0.5),
        at(0.95),
        v[v.len() - 1]
    )
}

fn not_run(class: &str, why: &str) -> Row {
    Row {
        class: class.into(),
        method: why.into(),
        tried: "not run".into(),
        spread: "-".into(),
        held: "not run".into(),
        lost: "not run".into(),
        ok: true,
        seconds: 0.0,
    }
}

/// `key=value` pairs of the first line of `text` that contains `marker`.
fn summary_fields(text: &str, marker: &str) -> Option<Vec<(String, String)>> {
    let line = text.lines().find(|l| l.contains(marker))?;
    let from = line.find(marker)?;
    Some(
        line[from..]
            .split_whitespace()
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.trim_end_matches(':').to_string(), v.to_string()))
            .collect(),
    )
}

fn field<'a>(f: &'a [(String, String)], k: &str) -> Option<&'a str> {
    f.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str())
}

fn fuzz_row(path: &Path) -> Row {
    const CLASS: &str = "fuzzing";
    let Ok(text) = std::fs::read_to_string(path) else {
        return not_run(CLASS, &format!("{} not found", path.display()));
    };
    let mut targets = Vec::new();
    let (mut execs, mut secs, mut crashes) = (0u64, 0f64, 0u64);
    for line in text.lines() {
        let cols: Vec<&str> = line.split('\t').collect();
        if cols.len() < 5 || cols[0] == "target" {
            continue;
        }
        let (Ok(e), Ok(s), Ok(c)) = (
            cols[1].trim().parse::<u64>(),
            cols[2].trim().parse::<f64>(),
            cols[4].trim().parse::<u64>(),
        ) else {
            continue;
        };
        targets.push(format!(
            "{} {e} execs, {} exec/s, {c} crashes",
            cols[0],
            cols[3].trim()
        ));
        execs += e;
        secs += s;
        crashes += c;
    }
    if targets.is_empty() {
        return not_run(CLASS, &format!("{} has no rows", path.display()));
    }
    Row {
        class: CLASS.into(),
        method: format!("cargo fuzz targets, read from `{}`", path.display()),
        tried: format!(
            "{} targets, {execs} executions in {secs:.0} s",
            targets.len()
        ),
        spread: targets.join("; "),
        held: format!(
            "{} targets without a crash",
            targets.len() as u64 - crashes.min(targets.len() as u64)
        ),
        lost: format!("{crashes} crashes"),
        ok: crashes == 0,
        seconds: 0.0,
    }
}

fn log_row(
    class: &str,
    path: Option<&Path>,
    marker: &str,
    describe: impl Fn(&[(String, String)]) -> Row,
) -> Row {
    let Some(path) = path else {
        return not_run(class, "no log given");
    };
    let Ok(text) = std::fs::read_to_string(path) else {
        return not_run(class, &format!("{} not found", path.display()));
    };
    match summary_fields(&text, marker) {
        Some(f) if !f.is_empty() => describe(&f),
        _ => not_run(
            class,
            &format!("no `{marker}` summary line in {}", path.display()),
        ),
    }
}

fn corpus_row(path: Option<&Path>) -> Row {
    log_row("generated aws-auth documents", path, "docs=", |f| {
        let g = |k| field(f, k).unwrap_or("?").to_string();
        let failures = g("failures");
        Row {
            class: "generated aws-auth documents".into(),
            method: "the aws-auth corpus test (`AWSAUTH_CORPUS_DOCS`), its summary line".into(),
            tried: format!("{} documents, {} edits", g("docs"), g("edits")),
            spread: "-".into(),
            held: format!("{} foreign entries checked", g("foreign_entries_checked")),
            lost: format!("{failures} failures"),
            ok: failures == "0",
            seconds: 0.0,
        }
    })
}

fn secrets_row(path: Option<&Path>) -> Row {
    log_row("secrets", path, "secrets:", |f| {
        let g = |k| field(f, k).unwrap_or("?").to_string();
        let hits = g("hits");
        Row {
            class: "secrets".into(),
            method: "the secrets test, its summary line".into(),
            tried: format!("{} log lines", g("lines")),
            spread: "-".into(),
            held: format!("{} secrets looked for", g("scanned_secrets")),
            lost: format!("{hits} hits"),
            ok: hits == "0",
            seconds: 0.0,
        }
    })
}

fn machine() -> String {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let field = |text: &str, key: &str| {
        text.lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split(':').nth(1))
            .map(|v| v.trim().to_string())
            .unwrap_or_else(|| "?".into())
    };
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!(
        "{} × {}, {} memory, {} {}",
        cpus,
        field(&read("/proc/cpuinfo"), "model name"),
        field(&read("/proc/meminfo"), "MemTotal"),
        std::env::consts::OS,
        read("/proc/sys/kernel/osrelease").trim()
    )
}

fn kind_label(k: &str) -> &str {
    match k {
        "error500" => "500",
        other => other,
    }
}

fn render(
    args: &Args,
    rows: &[Row],
    cells: &[matrix::CellResult],
    ops: &[(matrix::Entry, Vec<(String, String)>)],
    took: Duration,
) -> String {
    let now = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let mut md = String::new();
    md.push_str("# Reliability\n\n");
    md.push_str(&format!(
        "Generated by `make {}` (`tests/soak`; do not edit by hand) on {now}, in {:.0} s.  \nMachine: {}.  \n",
        if args.quick { "soak-quick" } else { "soak" },
        took.as_secs_f64(),
        machine()
    ));
    md.push_str(if args.quick {
        "Sizes: **quick** (CI): the full run (`make soak`) uses 1,000 raced writes, 200 events and a hang cell per operation.\n\n"
    } else {
        "Sizes: **full**.\n\n"
    });
    let failed = rows.iter().filter(|r| !r.ok).count();
    md.push_str(&format!(
        "**Result: {}.** A row holds when nothing was lost and every run ended with a true report.\n\n",
        if failed == 0 { "every row held".to_string() } else { format!("{failed} of {} rows did not hold", rows.len()) }
    ));
    md.push_str("| class | tried | held | lost / failed | ok | time |\n| --- | --- | --- | --- | --- | --- |\n");
    for r in rows {
        md.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} |\n",
            r.class,
            r.tried,
            r.held,
            r.lost.replace('|', "/"),
            if r.tried == "not run" {
                "not run"
            } else if r.ok {
                "yes"
            } else {
                "**NO**"
            },
            if r.seconds > 0.0 {
                format!("{:.0} s", r.seconds)
            } else {
                "-".into()
            }
        ));
    }
    md.push_str("\n## Method\n\n");
    for r in rows {
        md.push_str(&format!(
            "- **{}**: {}. Spread: {}.\n",
            r.class, r.method, r.spread
        ));
    }
    md.push_str(
        "\nThe sandbox (`tests/sandbox`) injects the faults: `POST /_sandbox/faults` with \
         `{\"service\", \"operation\", \"kind\": throttle|error500|hang|reset, \"count\": N|null}` \
         (IAM/STS `Throttling` 400, EKS `ThrottlingException` 429, DynamoDB `ThrottlingException` 400, \
         Kubernetes 429; 500s in each protocol; a hang never answers; a reset closes the connection \
         with RST), and `awsAuthConflicts` for the aws-auth race.\n",
    );
    if !cells.is_empty() {
        md.push_str("\n## Fault matrix\n\n");
        md.push_str("Calls found by a clean run of each entry point (each cell: a fresh sandbox, a tagged user `dave` not yet in the trust policy, the fault armed on that call, one run, the fault removed, the state checked, then one more run that must converge):\n\n");
        for (e, o) in ops {
            let list: Vec<String> = o.iter().map(|(s, op)| format!("{s} `{op}`")).collect();
            md.push_str(&format!("- {}: {}\n", e.name(), list.join(", ")));
        }
        md.push_str("\nExpected: *once* → the run succeeds after a retry; *always* → the run fails with an error naming the service, or succeeds without the call; never half-written (trust policy, prod aws-auth, staging access entries each old or new); the report matches the state; no run hangs.\n\n");
        md.push_str("| entry point | service | operation | fault | count | outcome | verdict | detail | converged after | s |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n");
        let mut sorted: Vec<&matrix::CellResult> = cells.iter().collect();
        sorted.sort_by(|a, b| {
            (
                a.cell.entry,
                &a.cell.service,
                &a.cell.operation,
                a.cell.kind,
                a.cell.always,
            )
                .cmp(&(
                    b.cell.entry,
                    &b.cell.service,
                    &b.cell.operation,
                    b.cell.kind,
                    b.cell.always,
                ))
        });
        for c in sorted {
            md.push_str(&format!(
                "| {} | {} | `{}` | {} | {} | {} | {} | {} | {} | {:.1} |\n",
                c.cell.entry.name(),
                c.cell.service,
                c.cell.operation,
                kind_label(c.cell.kind),
                if c.cell.always { "always" } else { "once" },
                c.outcome,
                match c.verdict {
                    matrix::Verdict::Held => "held",
                    matrix::Verdict::Failed => "**failed**",
                    matrix::Verdict::Hung => "**hung**",
                    matrix::Verdict::Lost => "**LOST**",
                },
                c.detail,
                c.recovered.replace('|', "/"),
                c.seconds
            ));
        }
    }
    md
}

fn matrix_row(cells: &[matrix::CellResult], seconds: f64) -> Row {
    use matrix::Verdict::*;
    let n = |v| cells.iter().filter(|c| c.verdict == v).count();
    let (held, failed, hung, lost) = (n(Held), n(Failed), n(Hung), n(Lost));
    let mut d: Vec<f64> = cells
        .iter()
        .filter(|c| c.verdict != Hung)
        .map(|c| c.seconds * 1000.0)
        .collect();
    Row {
        class: "faults matrix".into(),
        method: "every AWS and Kubernetes call of an IAM event and of a full reconcile × throttle, 500, hang, reset × once, always; see the matrix below".into(),
        tried: format!("{} cells", cells.len()),
        spread: spread_ms(&mut d),
        held: format!("{held} held"),
        lost: format!("{lost} lost (half-written or untrue report), {hung} hung, {failed} failed expectation (true report, but no retry or no service named)"),
        ok: failed + hung + lost == 0,
        seconds,
    }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let args = Args::parse();
    match soak(&args).await {
        Ok(true) => {}
        Ok(false) => {
            eprintln!("soak: some rows did not hold; see {}", args.out.display());
            std::process::exit(1);
        }
        Err(e) => {
            eprintln!("soak: {e}");
            std::process::exit(2);
        }
    }
}

async fn soak(args: &Args) -> Result<bool, SoakError> {
    let started = Instant::now();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let writes = args.writes.unwrap_or(if args.quick { 50 } else { 1000 });
    let events = args.events.unwrap_or(if args.quick { 20 } else { 200 });
    let mut rows = Vec::new();
    let mut cells = Vec::new();
    let mut ops = Vec::new();
    if !args.inputs_only {
        eprintln!("soak: races A ({writes} writes)");
        rows.push(match races::races_a(writes).await {
            Ok(r) => r,
            Err(e) => failed_row("races A: aws-auth writes raced", &e),
        });
        eprintln!("soak: races B ({events} events)");
        rows.push(match races::races_b(events, &repo).await {
            Ok(r) => r,
            Err(e) => failed_row("races B: IAM events at once", &e),
        });
        eprintln!("soak: fault matrix");
        let t = Instant::now();
        match matrix::discover(&repo).await {
            Ok(found) => {
                ops = found.iter().map(|(e, o, _)| (*e, o.clone())).collect();
                cells = matrix::run_matrix(
                    found,
                    args.quick,
                    &repo,
                    Duration::from_secs(args.guard_secs),
                    args.parallel,
                )
                .await;
                rows.push(matrix_row(&cells, t.elapsed().as_secs_f64()));
            }
            Err(e) => rows.push(failed_row("faults matrix", &e)),
        }
    }
    rows.push(fuzz_row(&args.fuzz_summary));
    rows.push(corpus_row(args.corpus_log.as_deref()));
    rows.push(secrets_row(args.secrets_log.as_deref()));
    let md = render(args, &rows, &cells, &ops, started.elapsed());
    std::fs::write(&args.out, md)?;
    eprintln!("soak: wrote {}", args.out.display());
    Ok(rows.iter().all(|r| r.ok))
}

fn failed_row(class: &str, e: &SoakError) -> Row {
    Row {
        class: class.into(),
        method: "did not complete".into(),
        tried: "aborted".into(),
        spread: "-".into(),
        held: "-".into(),
        lost: format!("could not run: {e}"),
        ok: false,
        seconds: 0.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_lines_are_read_and_missing_inputs_say_not_run() {
        let dir = std::env::temp_dir().join(format!("soak-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("corpus.log");
        std::fs::write(&log, "running 1 test\ndocs=100000 edits=250000 foreign_entries_checked=900000 failures=0\ntest ok\n").unwrap();
        let r = corpus_row(Some(&log));
        assert_eq!(r.tried, "100000 documents, 250000 edits");
        assert_eq!(r.lost, "0 failures");
        assert!(r.ok);
        std::fs::write(
            &log,
            "docs=10 edits=20 foreign_entries_checked=30 failures=2\n",
        )
        .unwrap();
        assert!(!corpus_row(Some(&log)).ok);

        let sec = dir.join("secrets.log");
        std::fs::write(&sec, "x\nsecrets: lines=5000 scanned_secrets=12 hits=0\n").unwrap();
        let r = secrets_row(Some(&sec));
        assert_eq!(
            (r.tried.as_str(), r.lost.as_str(), r.ok),
            ("5000 log lines", "0 hits", true)
        );
        std::fs::write(&sec, "no summary here\n").unwrap();
        assert_eq!(secrets_row(Some(&sec)).tried, "not run");
        assert_eq!(secrets_row(Some(&dir.join("absent"))).tried, "not run");
        assert_eq!(secrets_row(None).tried, "not run");

        let tsv = dir.join("summary.tsv");
        std::fs::write(&tsv, "target\texecutions\tseconds\texec/s\tcrashes\nawsauth\t1000\t10\t100\t0\ntrust\t500\t5\t100\t1\n").unwrap();
        let r = fuzz_row(&tsv);
        assert_eq!(r.tried, "2 targets, 1500 executions in 15 s");
        assert_eq!(r.lost, "1 crashes");
        assert!(!r.ok);
        assert_eq!(fuzz_row(&dir.join("none.tsv")).tried, "not run");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn spread_is_ordered() {
        let mut v = vec![5.0, 1.0, 3.0];
        assert_eq!(
            spread_ms(&mut v),
            "per run: min 1 / median 3 / p95 5 / max 5 ms"
        );
        assert_eq!(spread_ms(&mut []), "-");
    }
}

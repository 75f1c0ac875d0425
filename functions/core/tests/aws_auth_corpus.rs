//! The generated aws-auth corpus (defect 8): every generated document through
//! the edit, then:
//! - entries we do not own are in the output with their exact text, in order;
//! - keys we do not change stay byte-for-byte;
//! - the admin mapping is present exactly once (as read back) with our values;
//! - a second edit is a no-op;
//! - under YAML 1.1 (PyYAML `safe_load`, `tests/yaml11/check_awsauth.py`), the
//!   entries we do not own read the same before and after, and ours reads as
//!   strings.
//!
//! `AWSAUTH_CORPUS_DOCS` (default 1,000) and `AWSAUTH_CORPUS_SEED` set the size
//! and seed; the soak runs 100,000. Prints one summary line (with
//! `--nocapture`): `docs=N edits=M foreign_entries_checked=K failures=0`, where
//! `edits` counts the documents the first edit changed and `K` the foreign
//! entries checked as text (the YAML 1.1 script prints its own count).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::awsauth_gen::{GenDoc, GenEntry, Owner, generate};
use eks_access_sync::{
    model::mapping::AdminMapping,
    policy::awsauth::{edit_aws_auth, parse_entries},
};
use serde_json::{Value, json};

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The first `python3` on PATH that imports `yaml` (the test venv in `make test`).
fn python_with_yaml() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        let py = dir.join("python3");
        if !py.is_file() {
            continue;
        }
        let ok = Command::new(&py)
            .args(["-c", "import yaml"])
            .output()
            .is_ok_and(|o| o.status.success());
        if ok {
            return py;
        }
    }
    panic!(
        "no python3 with PyYAML on PATH: the YAML 1.1 check of the aws-auth corpus needs it. \
         Put the test venv first on PATH (`make tools`, then \
         `export PATH=$PWD/.tools/venv/bin:$PATH`, as `make test` does)."
    )
}

fn field<'a>(e: &'a Value, name: &str) -> Option<&'a Value> {
    e.as_object()?
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

/// Each kept entry's text, found in order in `after`.
fn texts_in_order(after: &str, kept: &[&GenEntry]) -> Result<(), String> {
    let mut at = 0;
    for e in kept {
        match after[at..].find(&e.text) {
            Some(i) => at += i + e.text.len(),
            None => return Err(format!("foreign entry text lost or moved: {:?}", e.text)),
        }
    }
    Ok(())
}

/// Positions (before, after) of the foreign entries and of ours after the edit.
fn positions(entries: &[GenEntry], ours_appended: bool) -> (Vec<usize>, Vec<usize>, Option<usize>) {
    let (mut fb, mut fa, mut ours) = (Vec::new(), Vec::new(), None);
    let mut j = 0;
    for (i, e) in entries.iter().enumerate() {
        match e.owner {
            Owner::Foreign => {
                fb.push(i);
                fa.push(j);
                j += 1;
            }
            Owner::Admin if ours.is_none() => {
                ours = Some(j);
                j += 1;
            }
            Owner::Admin | Owner::Offboarded => {}
        }
    }
    if ours_appended && ours.is_none() {
        ours = Some(j);
    }
    (fb, fa, ours)
}

struct Record {
    key: &'static str,
    before: String,
    after: String,
    foreign_before: Vec<usize>,
    foreign_after: Vec<usize>,
    ours_after: Option<usize>,
}

fn check_ours(after: &str, at: usize, admin: &AdminMapping) -> Result<(), String> {
    let entries = parse_entries("mapRoles", after).map_err(|e| e.to_string())?;
    let want_arn = admin.role_arn.without_path().to_string();
    let admins: Vec<&Value> = entries
        .iter()
        .filter(|e| {
            field(e, "rolearn")
                .and_then(Value::as_str)
                .is_some_and(|a| {
                    a.eq_ignore_ascii_case(&want_arn)
                        || a.to_ascii_lowercase().ends_with("/eksadmin")
                })
        })
        .collect();
    if admins.len() != 1 {
        return Err(format!("{} admin entries after the edit", admins.len()));
    }
    let ours = &entries[at];
    let got = (
        field(ours, "rolearn"),
        field(ours, "username"),
        field(ours, "groups"),
    );
    let want = (
        Some(&json!(want_arn)),
        Some(&json!(admin.username)),
        Some(&json!(admin.groups)),
    );
    if got != want {
        return Err(format!("admin entry reads {ours}"));
    }
    Ok(())
}

/// Checks one document; pushes its YAML 1.1 records (before its own checks,
/// so the YAML 1.1 script judges every edit), returns whether the edit changed
/// something and the count of foreign entries checked.
fn check(doc: &GenDoc, records: &mut Vec<Record>) -> Result<(bool, usize), String> {
    let e = edit_aws_auth(doc.data.as_ref(), &doc.admin, &doc.offboarded)
        .map_err(|e| format!("edit refused: {e}"))?;
    let before = doc.data.clone().unwrap_or_default();
    let mut checked = 0;
    for (key, entries) in [("mapRoles", &doc.roles), ("mapUsers", &doc.users)] {
        let (Some(after), b) = (
            e.data.get(key),
            before.get(key).cloned().unwrap_or_default(),
        ) else {
            continue;
        };
        let (fb, fa, ours) = positions(entries, key == "mapRoles");
        records.push(Record {
            key,
            before: b.clone(),
            after: after.clone(),
            foreign_before: fb,
            foreign_after: fa.clone(),
            ours_after: ours.filter(|_| key == "mapRoles"),
        });
        let kept: Vec<&GenEntry> = entries
            .iter()
            .filter(|x| x.owner == Owner::Foreign)
            .collect();
        texts_in_order(after, &kept)?;
        checked += kept.len();
        if key == "mapRoles" {
            check_ours(after, ours.unwrap_or(0), &doc.admin)?;
        }
        let n_after = parse_entries(key, after).map_err(|e| e.to_string())?.len();
        if n_after != fa.len() + usize::from(ours.is_some()) {
            return Err(format!("{key}: {n_after} entries after the edit"));
        }
        if key == "mapUsers" && !entries.iter().any(|x| x.owner == Owner::Offboarded) && *after != b
        {
            return Err("mapUsers changed with nobody to remove".into());
        }
    }
    for (k, v) in &before {
        if k != "mapRoles" && k != "mapUsers" && e.data.get(k) != Some(v) {
            return Err(format!("{k} changed"));
        }
    }
    let again = edit_aws_auth(Some(&e.data), &doc.admin, &doc.offboarded)
        .map_err(|e| format!("second edit refused: {e}"))?;
    if again.changed() || again.data != e.data {
        return Err(format!("second edit not a no-op: {:?}", again.changes));
    }
    Ok((e.changed(), checked))
}

fn write_record(out: &mut impl std::io::Write, r: &Record, admin: &AdminMapping) {
    let line = json!({
        "key": r.key, "before": r.before, "after": r.after,
        "foreign_before": r.foreign_before, "foreign_after": r.foreign_after,
        "ours_after": r.ours_after,
        "ours": {"rolearn": admin.role_arn.without_path().to_string(), "username": admin.username, "groups": admin.groups},
    });
    writeln!(out, "{line}").unwrap();
}

fn run_yaml11(py: &Path, jsonl: &Path) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/yaml11/check_awsauth.py");
    let out = Command::new(py).arg(&script).arg(jsonl).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "YAML 1.1 check failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn generated_aws_auth_corpus() {
    let docs = env_u64("AWSAUTH_CORPUS_DOCS", 1_000);
    let seed = env_u64("AWSAUTH_CORPUS_SEED", 0x00A5_A07E);
    let py = python_with_yaml();
    let dir = tempfile::tempdir().unwrap();
    let jsonl = dir.path().join("awsauth.jsonl");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&jsonl).unwrap());
    let (mut edits, mut checked, mut failures) = (0usize, 0usize, Vec::new());
    let started = std::time::Instant::now();
    for i in 0..docs {
        let doc = generate(seed, i);
        let mut records = Vec::new();
        match check(&doc, &mut records) {
            Ok((changed, k)) => {
                edits += usize::from(changed);
                checked += k;
            }
            Err(e) => failures.push(format!("doc {i} (seed {seed}): {e}\n{:#?}", doc.data)),
        }
        for r in &records {
            write_record(&mut out, r, &doc.admin);
        }
    }
    out.flush().unwrap();
    drop(out);
    let rust_secs = started.elapsed().as_secs_f64();
    println!(
        "docs={docs} edits={edits} foreign_entries_checked={checked} failures={}",
        failures.len()
    );
    let yaml11 = run_yaml11(&py, &jsonl);
    println!(
        "{} (rust {rust_secs:.1}s, total {:.1}s)",
        yaml11.trim_end(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        failures.is_empty(),
        "{} failures; first ones:\n{}",
        failures.len(),
        failures
            .iter()
            .take(3)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n\n")
    );
    assert!(edits > 0 && checked > 0);
}

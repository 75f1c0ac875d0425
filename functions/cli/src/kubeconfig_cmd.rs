//! `kubeconfig`: a member writes one context per cluster they may reach, with the role
//! of their tier (the finding is `eks_access_sync::adapters::aws::member::discover`, the
//! document `eks_access_sync::output::kubeconfig`); this file only picks the file,
//! reads, writes and prints.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use eks_access_sync::adapters::aws::member::{Discovery, MemberAws, discover};
use eks_access_sync::model::config::Config;
use eks_access_sync::output::kubeconfig::merge_kubeconfig;

use crate::cli::{EXIT_FAILED, EXIT_OK};

/// What a member needs, for the error messages.
const PERMISSIONS: &str = "a member needs sts:GetCallerIdentity, iam:GetRole, iam:ListRoles, \
eks:ListClusters and eks:DescribeCluster";

/// The file to merge into: `--kubeconfig`, else the first path of `KUBECONFIG`, else
/// `~/.kube/config`.
pub fn kubeconfig_path(
    flag: Option<&Path>,
    kubeconfig_env: Option<&std::ffi::OsStr>,
    home: Option<&Path>,
) -> Option<PathBuf> {
    if let Some(p) = flag {
        return Some(p.to_path_buf());
    }
    if let Some(first) =
        kubeconfig_env.and_then(|v| std::env::split_paths(v).find(|p| !p.as_os_str().is_empty()))
    {
        return Some(first);
    }
    home.map(|h| h.join(".kube").join("config"))
}

/// Writes `text` to `path`, creating its directory and the file (mode 0600) if missing;
/// an existing file keeps its mode.
fn write_file(path: &Path, text: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut f = options.open(path)?;
    f.write_all(text.as_bytes())?;
    f.flush()
}

/// The summary: who, which tiers, one line per context, what was skipped.
fn summary(d: &Discovery) -> String {
    let mut out = format!("you are {}\n", d.user);
    for (tier, role) in &d.tiers {
        out.push_str(&format!("tier {tier}: role {role}\n"));
    }
    if d.contexts.is_empty() {
        out.push_str("no cluster to write a context for\n");
    }
    for c in &d.contexts {
        out.push_str(&format!(
            "context {}\n  cluster {}  region {}  tier {}  role {}{}\n",
            c.name,
            c.cluster,
            c.region,
            c.tier,
            c.role,
            c.namespace
                .as_deref()
                .map(|n| format!("  namespace {n}"))
                .unwrap_or_default()
        ));
    }
    for s in &d.skipped {
        out.push_str(&format!(
            "skipped {} ({}): {}\n",
            s.cluster, s.region, s.reason
        ));
    }
    for n in &d.notes {
        out.push_str(&format!("note: {n}\n"));
    }
    out
}

/// `kubeconfig [--kubeconfig FILE] [--dry-run]`.
pub async fn run(config: &Config, aws: &MemberAws, file: Option<&Path>, dry_run: bool) -> u8 {
    let found = match discover(config, aws).await {
        Ok(d) => d,
        Err(e @ eks_access_sync::adapters::aws::member::MemberError::Iam(_)) => {
            eprintln!("error: {e} ({PERMISSIONS})");
            return EXIT_FAILED;
        }
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_FAILED;
        }
    };
    let done = if found.incomplete {
        eprintln!("error: some clusters could not be read ({PERMISSIONS}); see the notes");
        EXIT_FAILED
    } else {
        EXIT_OK
    };
    let Some(path) = kubeconfig_path(
        file,
        std::env::var_os("KUBECONFIG").as_deref(),
        std::env::var_os("HOME").as_deref().map(Path::new),
    ) else {
        eprintln!(
            "error: no kubeconfig file: pass --kubeconfig FILE (HOME and KUBECONFIG are unset)"
        );
        return EXIT_FAILED;
    };
    let existing = match std::fs::read_to_string(&path) {
        Ok(text) => Some(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            eprintln!("error: {}: cannot read it: {e}", path.display());
            return EXIT_FAILED;
        }
    };
    let merged = match merge_kubeconfig(existing.as_deref(), &found.contexts) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("error: {}: {e}", path.display());
            return EXIT_FAILED;
        }
    };
    if dry_run {
        eprint!("{}", summary(&found));
        eprintln!("(dry run: {} not written)", path.display());
        print!("{}", merged.text);
        return done;
    }
    print!("{}", summary(&found));
    if found.contexts.is_empty() {
        return done;
    }
    if let Err(e) = write_file(&path, &merged.text) {
        eprintln!("error: {}: cannot write it: {e}", path.display());
        return EXIT_FAILED;
    }
    println!(
        "wrote {} context(s) to {}",
        found.contexts.len(),
        path.display()
    );
    if let Some(current) = &merged.current_context_set {
        println!("current-context set to {current} (the file had none)");
    }
    if let Some(c) = found.contexts.first() {
        println!("try: kubectl --context {} auth whoami", c.name);
    }
    done
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_is_the_flag_then_kubeconfig_then_home() {
        let home = Path::new("/home/ann");
        let flag = Path::new("/tmp/k");
        let env = std::ffi::OsString::from("/a/one:/a/two");
        assert_eq!(
            kubeconfig_path(Some(flag), Some(&env), Some(home)),
            Some(PathBuf::from("/tmp/k"))
        );
        assert_eq!(
            kubeconfig_path(None, Some(&env), Some(home)),
            Some(PathBuf::from("/a/one"))
        );
        let empty_first = std::ffi::OsString::from(":/a/two");
        assert_eq!(
            kubeconfig_path(None, Some(&empty_first), Some(home)),
            Some(PathBuf::from("/a/two"))
        );
        let empty = std::ffi::OsString::new();
        assert_eq!(
            kubeconfig_path(None, Some(&empty), Some(home)),
            Some(PathBuf::from("/home/ann/.kube/config"))
        );
        assert_eq!(kubeconfig_path(None, None, None), None);
    }

    #[cfg(unix)]
    #[test]
    fn a_new_file_is_private_and_an_existing_one_keeps_its_mode() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("new/.kube/config");
        write_file(&path, "a: 1\n").expect("write");
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).expect("chmod");
        write_file(&path, "b: 2\n").expect("write again");
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o640);
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "b: 2\n");
    }
}

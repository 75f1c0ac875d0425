//! Command-line parsing and the commands.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};
use eks_access_sync::adapters::aws::member::MemberAws;
use eks_access_sync::bootstrap;
use eks_access_sync::intake::{IntakeError, parse_event, read_event};
use eks_access_sync::model::arn::{ClusterName, RoleArn};
use eks_access_sync::{
    adapters::SdkEngine,
    engine::{AuditClusters, EventResult, RunMode, Scope},
};

/// Exit code: success.
pub const EXIT_OK: u8 = 0;
/// Exit code: failure.
pub const EXIT_FAILED: u8 = 1;
/// Exit code of `plan --exit-code` when changes are pending.
pub const EXIT_CHANGES: u8 = 2;
/// Exit code of a usage error (clap's).
pub const EXIT_USAGE: u8 = 2;

/// Keeps EKS cluster-admin access in step with IAM.
///
/// Configuration comes from the environment (ADMIN_ROLE_NAME, ADMIN_USER_TAG,
/// CLUSTER_TAG, CLUSTER_REGIONS, …) and the access configuration file (--config, else
/// ACCESS_CONFIG), AWS credentials and endpoints from the standard AWS chain.
#[derive(Debug, Parser)]
#[command(name = "eks-access-sync", version, about)]
pub struct Cli {
    /// The access configuration file (YAML: the tiers); it stands in for ACCESS_CONFIG.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Output {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum AccessOutput {
    #[default]
    Text,
    Json,
    Csv,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show what a reconcile would change (a dry run; nothing is written).
    Plan {
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
        /// Exit 2 when changes are pending.
        #[arg(long)]
        exit_code: bool,
        /// Limit to these clusters (repeatable).
        #[arg(long = "cluster", value_name = "NAME")]
        clusters: Vec<ClusterName>,
    },
    /// Apply: trust policy, then every tagged cluster.
    Reconcile {
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
        /// Limit to these clusters (repeatable).
        #[arg(long = "cluster", value_name = "NAME")]
        clusters: Vec<ClusterName>,
        /// Write the trust policy without the lease (TRUST_LOCK_TABLE unset): safe
        /// only when nothing else writes it.
        #[arg(long)]
        no_lease: bool,
    },
    /// Process an EventBridge event exactly as the iam-events function would.
    HandleEvent {
        /// A JSON file, or `-` for stdin (at most 256 KiB, as EventBridge delivers).
        file: String,
        /// Write the trust policy without the lease (TRUST_LOCK_TABLE unset): safe
        /// only when nothing else writes it.
        #[arg(long)]
        no_lease: bool,
    },
    /// Give the functions' role access to a cluster (run once, as a cluster admin).
    Bootstrap {
        #[arg(long)]
        cluster: ClusterName,
        #[arg(long, env = "AWS_REGION")]
        region: String,
        /// The functions' IAM role.
        #[arg(long)]
        role_arn: RoleArn,
    },
    /// Who can reach each cluster, with which rights, and why (read-only).
    Access {
        #[arg(long, value_enum, default_value_t = AccessOutput::Text)]
        output: AccessOutput,
        /// Limit to these clusters (repeatable).
        #[arg(long = "cluster", value_name = "NAME")]
        clusters: Vec<ClusterName>,
        /// Only what reaches these IAM users (repeatable; case ignored).
        #[arg(long = "user", value_name = "NAME")]
        users: Vec<String>,
        /// Also the clusters without the cluster tag (that the credentials may read).
        #[arg(long)]
        all_clusters: bool,
    },
    /// Write a kubeconfig context for each cluster you may reach (run as a member, with
    /// your own IAM user's credentials; read-only in AWS).
    ///
    /// Finds, in each tier of the configuration, the role that trusts you: the tier's
    /// role or one of its shards (`<role>-<k>` at the IAM path /eks-access-sync/). Then
    /// one context per managed cluster (CLUSTER_TAG, in CLUSTER_REGIONS) one of your
    /// tiers applies to, exactly as `aws eks update-kubeconfig --name <cluster>
    /// --region <region> --role-arn <role>` writes it: context, cluster and user named
    /// by the cluster ARN, the user an exec plugin running `aws eks get-token` with the
    /// role. When several of your tiers apply to one cluster, its one context uses the
    /// widest rights: cluster-admin > admin > edit > view, then cluster scope >
    /// namespaces, then the first tier in the configuration. A namespace-scoped tier's
    /// context starts in its first namespace that is not a wildcard.
    ///
    /// Entries of the same name are replaced, every other entry is kept; the file
    /// (mode 0600) and its directory are created if missing; current-context is set only
    /// if the file has none. Needs sts:GetCallerIdentity, iam:GetRole, iam:ListRoles,
    /// eks:ListClusters and eks:DescribeCluster. Exits 1 when you are in no tier.
    Kubeconfig {
        /// The kubeconfig to merge into; default: the first path of KUBECONFIG, else
        /// ~/.kube/config.
        #[arg(long, value_name = "FILE")]
        kubeconfig: Option<PathBuf>,
        /// Print the merged kubeconfig (stdout) and the summary (stderr) without
        /// writing the file.
        #[arg(long)]
        dry_run: bool,
    },
    /// Work with the access configuration file.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate an access configuration file and print one line per tier (needs no
    /// AWS credentials). Exits 1 when the file is invalid, naming the line.
    Check {
        /// The file; default: the one given with --config.
        file: Option<PathBuf>,
    },
}

fn scope_of(clusters: Vec<ClusterName>) -> Scope {
    if clusters.is_empty() {
        Scope::all()
    } else {
        Scope::clusters(clusters)
    }
}

/// The message when a command would write the trust policy without the lease.
pub const NO_LEASE_MESSAGE: &str = "refusing to write the trust policy without the lease: \
TRUST_LOCK_TABLE is not set, and two writers at once lose updates (IAM has no conditional \
write). Set TRUST_LOCK_TABLE to the stack's TrustLockTable (aws cloudformation \
describe-stack-resource --stack-name <stack> --logical-resource-id TrustLockTable --query \
StackResourceDetail.PhysicalResourceId --output text), or pass --no-lease to write without \
serialization (safe only when nothing else writes the trust policy)";

/// Whether a writing command may go on: with the lease's table, or told `--no-lease`.
fn lease_or_told(engine: &SdkEngine, no_lease: bool) -> bool {
    if no_lease || engine.config().trust_lock_table.is_some() {
        true
    } else {
        eprintln!("error: {NO_LEASE_MESSAGE}");
        false
    }
}

/// The event of `handle-event`: a file or stdin, refused unread over the cap.
fn read_event_arg(file: &str) -> Result<serde_json::Value, IntakeError> {
    let bytes = if file == "-" {
        read_event(std::io::stdin().lock())?
    } else {
        read_event(std::fs::File::open(file)?)?
    };
    parse_event(&bytes)
}

fn print_json(v: &impl serde::Serialize) {
    match serde_json::to_string_pretty(v) {
        Ok(s) => println!("{s}"),
        Err(e) => eprintln!("error: cannot render JSON: {e}"),
    }
}

pub async fn run(cli: Cli) -> u8 {
    if let Command::Config {
        command: ConfigCommand::Check { file },
    } = &cli.command
    {
        return crate::config_file::check(file.as_deref().or(cli.config.as_deref()));
    }
    let access_text = match &cli.config {
        Some(path) => match crate::config_file::read(path) {
            Ok((text, _)) => Some(text),
            Err(e) => {
                eprintln!("error: {e}");
                return EXIT_FAILED;
            }
        },
        None => None,
    };
    if let Command::Bootstrap {
        cluster,
        region,
        role_arn,
    } = &cli.command
    {
        return cmd_bootstrap(cluster, region, role_arn).await;
    }
    let config = match crate::config_file::load_config(access_text.as_deref()) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("error: invalid configuration: {e}");
            return EXIT_FAILED;
        }
    };
    let sdk = eks_access_sync::adapters::aws::sdk::load_sdk_config().await;
    if let Command::Kubeconfig {
        kubeconfig,
        dry_run,
    } = &cli.command
    {
        let aws = MemberAws::new(&sdk, config.cluster_regions.first().map(String::as_str));
        return crate::kubeconfig_cmd::run(&config, &aws, kubeconfig.as_deref(), *dry_run).await;
    }
    let engine = SdkEngine::from_sdk(config, &sdk);
    match cli.command {
        Command::Plan {
            output,
            exit_code,
            clusters,
        } => cmd_plan(&engine, output, exit_code, clusters).await,
        Command::Reconcile {
            output,
            clusters,
            no_lease,
        } => {
            if !lease_or_told(&engine, no_lease) {
                return EXIT_FAILED;
            }
            cmd_reconcile(&engine, output, clusters).await
        }
        Command::HandleEvent { file, no_lease } => {
            if !lease_or_told(&engine, no_lease) {
                return EXIT_FAILED;
            }
            cmd_handle_event(&engine, &file).await
        }
        Command::Access {
            output,
            clusters,
            users,
            all_clusters,
        } => cmd_access(&engine, output, clusters, &users, all_clusters).await,
        Command::Bootstrap { .. } | Command::Config { .. } | Command::Kubeconfig { .. } => {
            EXIT_FAILED
        }
    }
}

async fn cmd_bootstrap(cluster: &ClusterName, region: &str, role_arn: &RoleArn) -> u8 {
    let sdk = eks_access_sync::adapters::aws::sdk::load_sdk_config().await;
    match bootstrap::bootstrap(&sdk, region, cluster, role_arn).await {
        Ok(lines) => {
            for l in lines {
                println!("{l}");
            }
            EXIT_OK
        }
        Err(e) => {
            eprintln!("error: {e}");
            EXIT_FAILED
        }
    }
}

async fn cmd_plan(
    engine: &SdkEngine,
    output: Output,
    exit_code: bool,
    clusters: Vec<ClusterName>,
) -> u8 {
    let outcome = engine.run_full(&scope_of(clusters), RunMode::DryRun).await;
    match output {
        Output::Text => {
            print!("{}", outcome.plan.render_text());
            print!("{}", outcome.report.render_text());
        }
        Output::Json => print_json(&outcome.report),
    }
    if !outcome.report.succeeded() {
        EXIT_FAILED
    } else if exit_code && outcome.plan.has_changes() {
        EXIT_CHANGES
    } else {
        EXIT_OK
    }
}

async fn cmd_reconcile(engine: &SdkEngine, output: Output, clusters: Vec<ClusterName>) -> u8 {
    let report = engine.apply_full(&scope_of(clusters)).await;
    match output {
        Output::Text => print!("{}", report.render_text()),
        Output::Json => print_json(&report),
    }
    if report.succeeded() {
        EXIT_OK
    } else {
        EXIT_FAILED
    }
}

async fn cmd_access(
    engine: &SdkEngine,
    output: AccessOutput,
    clusters: Vec<ClusterName>,
    users: &[String],
    all_clusters: bool,
) -> u8 {
    let which = if all_clusters {
        AuditClusters::All
    } else {
        AuditClusters::Managed
    };
    let mut report = match engine.audit(&scope_of(clusters), which).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot read IAM: {e}");
            return EXIT_FAILED;
        }
    };
    if !users.is_empty() {
        report.only_users(users);
    }
    match output {
        AccessOutput::Text => print!("{}", report.render_text()),
        AccessOutput::Json => print_json(&report),
        AccessOutput::Csv => print!("{}", report.render_csv()),
    }
    if report.unreadable.is_empty() {
        EXIT_OK
    } else {
        EXIT_FAILED
    }
}

async fn cmd_handle_event(engine: &SdkEngine, file: &str) -> u8 {
    let event = match read_event_arg(file) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("error: {file}: {e}");
            return EXIT_FAILED;
        }
    };
    match engine
        .handle_iam_events_payload(&event, RunMode::Apply)
        .await
    {
        EventResult::Ignored(reason) => {
            print_json(&serde_json::json!({ "ignored": reason }));
            EXIT_OK
        }
        EventResult::Ran(report) => {
            print_json(&report);
            if report.succeeded() {
                EXIT_OK
            } else {
                EXIT_FAILED
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_commands() {
        let c = Cli::try_parse_from([
            "eks-access-sync",
            "plan",
            "--output",
            "json",
            "--exit-code",
            "--cluster",
            "a",
            "--cluster",
            "b",
        ])
        .expect("plan");
        match c.command {
            Command::Plan {
                output,
                exit_code,
                clusters,
            } => {
                assert_eq!(output, Output::Json);
                assert!(exit_code);
                assert_eq!(clusters.len(), 2);
            }
            other => panic!("unexpected {other:?}"),
        }
        let c = Cli::try_parse_from(["eks-access-sync", "handle-event", "-"]).expect("event");
        assert!(matches!(c.command, Command::HandleEvent { file, no_lease: false } if file == "-"));
        let c = Cli::try_parse_from(["eks-access-sync", "reconcile", "--no-lease"])
            .expect("reconcile --no-lease");
        assert!(matches!(
            c.command,
            Command::Reconcile { no_lease: true, .. }
        ));
        let c = Cli::try_parse_from([
            "eks-access-sync",
            "bootstrap",
            "--cluster",
            "prod",
            "--region",
            "eu-west-1",
            "--role-arn",
            "arn:aws:iam::111122223333:role/service/eks-access-sync",
        ])
        .expect("bootstrap");
        assert!(matches!(c.command, Command::Bootstrap { .. }));
        assert!(
            Cli::try_parse_from([
                "eks-access-sync",
                "bootstrap",
                "--cluster",
                "p",
                "--region",
                "r",
                "--role-arn",
                "nope"
            ])
            .is_err()
        );
        assert!(Cli::try_parse_from(["eks-access-sync", "plan", "--output", "yaml"]).is_err());
    }

    #[test]
    fn every_command_takes_config_and_config_check_takes_a_file() {
        for args in [
            &["plan"][..],
            &["reconcile"],
            &["handle-event", "-"],
            &[
                "bootstrap",
                "--cluster",
                "p",
                "--region",
                "r",
                "--role-arn",
                "arn:aws:iam::111122223333:role/x",
            ],
            &["config", "check"],
            &["kubeconfig", "--kubeconfig", "k", "--dry-run"],
        ] {
            for before in [true, false] {
                let mut argv = vec!["eks-access-sync"];
                if before {
                    argv.extend(["--config", "a.yaml"]);
                    argv.extend_from_slice(args);
                } else {
                    argv.extend_from_slice(args);
                    argv.extend(["--config", "a.yaml"]);
                }
                let c = Cli::try_parse_from(&argv).unwrap_or_else(|e| panic!("{argv:?}: {e}"));
                assert_eq!(c.config, Some(PathBuf::from("a.yaml")), "{argv:?}");
            }
        }
        let c = Cli::try_parse_from(["eks-access-sync", "config", "check", "b.yaml"]).unwrap();
        match c.command {
            Command::Config {
                command: ConfigCommand::Check { file },
            } => assert_eq!(file.as_deref(), Some(std::path::Path::new("b.yaml"))),
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(c.config, None);
    }
}

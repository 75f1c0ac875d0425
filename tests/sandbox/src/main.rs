//! `eks-sandbox`: run the local IAM/STS/EKS sandbox, seed it, inject faults.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use eks_sandbox::aws::{Sandbox, SandboxOptions, with_env_var};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

#[derive(Debug, Parser)]
#[command(
    name = "eks-sandbox",
    about = "Local IAM/STS (over moto_server) + EKS + Kubernetes API sandbox"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Start moto and the sandbox in the foreground until SIGTERM/SIGINT.
    Up {
        /// Where to write env, sandbox.pid and moto.pid.
        #[arg(long, default_value = ".sandbox")]
        dir: PathBuf,
        /// Front-door port (0 = any free port).
        #[arg(long, default_value_t = 0)]
        port: u16,
        /// Use an already running moto_server instead of starting one.
        #[arg(long)]
        moto_url: Option<String>,
        #[arg(long, default_value = "us-east-1")]
        region: String,
        /// Seed the example world after starting (the env file then sets
        /// TRUST_LOCK_TABLE too).
        #[arg(long)]
        seed: bool,
    },
    /// Create the README's example world in the running sandbox, and add its
    /// lease table (TRUST_LOCK_TABLE) to the env file.
    Seed {
        #[arg(long, default_value = ".sandbox")]
        dir: PathBuf,
    },
    /// Inject faults, e.g. '{"latencyMs": 20}' or '{"cluster": "prod", "awsAuthConflicts": 2}'.
    Faults {
        json: String,
        #[arg(long, default_value = ".sandbox")]
        dir: PathBuf,
    },
}

#[derive(Debug, thiserror::Error)]
enum CliError {
    #[error(transparent)]
    Sandbox(#[from] eks_sandbox::aws::SandboxError),
    #[error("{path}: {source}")]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("no AWS_ENDPOINT_URL_EKS in {0}: is the sandbox up (eks-sandbox up)?")]
    NoEndpoint(PathBuf),
    #[error("request to the sandbox failed: {0}")]
    Http(String),
    #[error("the sandbox answered {status}: {body}")]
    Status { status: u16, body: String },
    #[error("the seed report names no lockTable: {0}")]
    NoLockTable(String),
}

fn file_err(path: &Path) -> impl FnOnce(std::io::Error) -> CliError + '_ {
    move |source| CliError::File {
        path: path.to_path_buf(),
        source,
    }
}

/// Sets `export NAME=value` in the env file; written aside and renamed, so a
/// concurrent `source` reads the old file or the new one.
fn set_env_var(path: &Path, name: &str, value: &str) -> Result<(), CliError> {
    let text = std::fs::read_to_string(path).map_err(file_err(path))?;
    let tmp = path.with_extension("tmp");
    write_private(&tmp, &with_env_var(&text, name, value))?;
    std::fs::rename(&tmp, path).map_err(file_err(path))
}

fn write_private(path: &Path, content: &str) -> Result<(), CliError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(file_err(path))?;
    f.write_all(content.as_bytes()).map_err(file_err(path))
}

async fn up(
    dir: PathBuf,
    port: u16,
    moto_url: Option<String>,
    region: String,
    seed: bool,
) -> Result<(), CliError> {
    std::fs::create_dir_all(&dir).map_err(file_err(&dir))?;
    let sandbox = Sandbox::start(SandboxOptions {
        port,
        moto_url,
        region,
        ..SandboxOptions::default()
    })
    .await?;
    let env = dir.join("env");
    let pid = dir.join("sandbox.pid");
    let moto_pid = dir.join("moto.pid");
    let mut env_lines = sandbox.env_lines();
    // Seeded before the env file appears (callers wait for it), so that it is whole.
    if seed {
        let report = sandbox.seed().await?;
        tracing::info!(clusters = ?report.clusters, lock_table = %report.lock_table, "seeded");
        env_lines = with_env_var(&env_lines, "TRUST_LOCK_TABLE", &report.lock_table);
    }
    write_private(&env, &env_lines)?;
    write_private(&pid, &format!("{}\n", std::process::id()))?;
    if let Some(m) = sandbox.moto_pid() {
        write_private(&moto_pid, &format!("{m}\n"))?;
    }
    println!(
        "eks-sandbox up: {} (moto {}); source {}",
        sandbox.aws_endpoint(),
        sandbox.moto_url(),
        env.display()
    );
    let result = wait_for_signal().await;
    tracing::info!("stopping");
    sandbox.shutdown().await;
    for f in [&env, &pid, &moto_pid] {
        let _ = std::fs::remove_file(f);
    }
    result
}

async fn wait_for_signal() -> Result<(), CliError> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).map_err(file_err(Path::new("SIGTERM")))?;
    let mut int = signal(SignalKind::interrupt()).map_err(file_err(Path::new("SIGINT")))?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}

fn endpoint_from_env(dir: &Path) -> Result<String, CliError> {
    let path = dir.join("env");
    let text = std::fs::read_to_string(&path).map_err(file_err(&path))?;
    text.lines()
        .find_map(|l| l.strip_prefix("export AWS_ENDPOINT_URL_EKS="))
        .map(|v| v.trim().to_string())
        .ok_or(CliError::NoEndpoint(path))
}

async fn post(dir: &Path, path: &str, body: String) -> Result<String, CliError> {
    let url = format!("{}{path}", endpoint_from_env(dir)?);
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let req = http::Request::post(url)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| CliError::Http(e.to_string()))?;
    let resp = client
        .request(req)
        .await
        .map_err(|e| CliError::Http(e.to_string()))?;
    let status = resp.status();
    let bytes = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| CliError::Http(e.to_string()))?
        .to_bytes();
    let body = String::from_utf8_lossy(&bytes).into_owned();
    if !status.is_success() {
        return Err(CliError::Status {
            status: status.as_u16(),
            body,
        });
    }
    Ok(body)
}

/// Seeds the running sandbox and sets `TRUST_LOCK_TABLE` in its env file, so that
/// the functions and the CLI take the trust-policy lease as deployed.
async fn seed(dir: &Path) -> Result<(), CliError> {
    let body = post(dir, "/_sandbox/seed", String::new()).await?;
    let table = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.get("lockTable")?.as_str().map(str::to_owned))
        .ok_or_else(|| CliError::NoLockTable(body.clone()))?;
    set_env_var(&dir.join("env"), "TRUST_LOCK_TABLE", &table)?;
    println!("{body}");
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.cmd {
        Cmd::Up {
            dir,
            port,
            moto_url,
            region,
            seed,
        } => up(dir, port, moto_url, region, seed).await,
        Cmd::Seed { dir } => seed(&dir).await,
        Cmd::Faults { json, dir } => post(&dir, "/_sandbox/faults", json)
            .await
            .map(|b| println!("{b}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("eks-sandbox: {e}");
            ExitCode::FAILURE
        }
    }
}

//! `lambda-invoke --bin target/release/iam-events --env-file .sandbox/env events/iam-tag-user.json`:
//! runs a function binary against a local Lambda Runtime API, hands it each payload
//! in turn (one process: the first is the cold invoke), and prints each outcome as
//! one JSON line (`{"response": …}` or `{"errorType": …, "errorMessage": …}`).
//! Exits 1 if any invocation failed. `make invoke-local EVENT=…` runs it on the sandbox.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use lambda_runtime_api::{Function, Launch, Outcome, RuntimeApi, parse_env_file};
use serde_json::json;

#[derive(Parser)]
struct Args {
    /// The function binary (`bootstrap`).
    #[arg(long)]
    bin: PathBuf,
    /// The function name (default: the binary's parent directory for a `bootstrap`,
    /// else its file name).
    #[arg(long)]
    name: Option<String>,
    /// `export K=V` lines to add to its environment (e.g. the sandbox's `.sandbox/env`).
    #[arg(long)]
    env_file: Vec<PathBuf>,
    /// `K=V` to add to its environment.
    #[arg(long = "env", value_parser = parse_kv)]
    env: Vec<(String, String)>,
    /// A program that runs the binary, e.g. `qemu-aarch64-static -L /usr/aarch64-linux-gnu`.
    #[arg(long, default_value = "")]
    runner: String,
    /// Print the function's own output (logs) to stderr afterwards.
    #[arg(long)]
    logs: bool,
    /// Payload files, sent in order.
    #[arg(required = true)]
    events: Vec<PathBuf>,
}

fn parse_kv(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("{s:?} is not K=V"))
}

fn default_name(bin: &std::path::Path) -> String {
    let file = bin.file_name().map(|n| n.to_string_lossy().into_owned());
    match file.as_deref() {
        Some("bootstrap") => bin
            .parent()
            .and_then(|p| p.file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "bootstrap".into()),
        Some(f) => f.to_owned(),
        None => "function".into(),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let name = args.name.clone().unwrap_or_else(|| default_name(&args.bin));
    let mut env = Vec::new();
    for f in &args.env_file {
        match std::fs::read_to_string(f) {
            Ok(text) => env.extend(parse_env_file(&text)),
            Err(e) => {
                eprintln!("{}: {e}", f.display());
                return ExitCode::from(2);
            }
        }
    }
    env.extend(args.env.iter().cloned());
    let api = match RuntimeApi::start(&name).await {
        Ok(api) => api,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let launch = Launch::new(&args.bin, &name).with_runner(&args.runner);
    let function = match Function::spawn(&launch, &api, &env) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let mut failed = false;
    for event in &args.events {
        let payload = match std::fs::read(event) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("{}: {e}", event.display());
                return ExitCode::from(2);
            }
        };
        eprintln!("invoking {name} with {}", event.display());
        let line = match api.invoke(payload).await {
            Ok(Outcome::Response(v)) => json!({ "response": v }),
            Ok(Outcome::Error {
                error_type,
                error_message,
                ..
            }) => {
                failed = true;
                json!({ "errorType": error_type, "errorMessage": error_message })
            }
            Ok(Outcome::InitError { error_type, body }) => {
                failed = true;
                json!({ "initError": error_type, "body": body })
            }
            Err(e) => {
                failed = true;
                json!({ "invokeError": e.to_string() })
            }
        };
        println!("{line}");
    }
    if args.logs || failed {
        eprintln!("--- {name} output ---\n{}", function.output());
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

//! `eks-access-sync`: the operator CLI. Same configuration and engine as the Lambda
//! functions. Output (plan, diff, report) goes to stdout, logs (JSON) to stderr.
//!
//! Exit codes: 0 success, 1 failure (also an invalid configuration file, for `config
//! check` too), 2 a usage error or, with `plan --exit-code`, changes pending.
#![warn(clippy::too_many_lines)]

mod cli;
mod config_file;
mod kubeconfig_cmd;

fn main() -> std::process::ExitCode {
    eks_access_sync::telemetry::init_tracing(eks_access_sync::telemetry::LogTarget::Stderr);
    let args = <cli::Cli as clap::Parser>::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::from(1);
        }
    };
    let code = runtime.block_on(cli::run(args));
    std::process::ExitCode::from(code)
}

//! The cold invoke as a user pays it: a function process started against a local
//! Lambda Runtime API (`lambda-runtime-api`, the one the shipped-binary test uses),
//! timed from `spawn` to the response of its first invocation (init + a TagUser event
//! for a new admin, every AWS and Kubernetes call at the bench latency); then a
//! second TagUser event (another new admin) in the same process: the warm invoke.

use std::path::Path;
use std::time::Instant;

use lambda_runtime_api::{Function, Launch, Outcome, RuntimeApi};
use serde_json::{Value, json};

use crate::stats::Stat;
use crate::world::{ADMIN_TAG, World, user_arn};
use crate::{BenchError, ms, tag_user_event};

/// One binary's invokes.
#[derive(Debug, Clone)]
pub struct InvokeRow {
    pub name: String,
    pub variant: Option<String>,
    /// spawn → first `next`, in these runs.
    pub init_ms: Option<Stat>,
    /// spawn → response of the first event.
    pub cold_ms: Option<Stat>,
    /// The second event: `next` answered → its response.
    pub warm_ms: Option<Stat>,
    pub failures: usize,
}

/// The first event's response names `user` as added.
fn added(outcome: &Outcome, user: &str) -> bool {
    match outcome {
        Outcome::Response(v) => v["trustPolicy"]["added"] == json!([user_arn(user)]),
        _ => false,
    }
}

async fn one(
    w: &World,
    launch: &Launch,
    env: &[(String, String)],
    latency: u64,
    users: [&str; 2],
) -> Result<Option<(f64, f64, f64)>, BenchError> {
    w.set_latency(0);
    let before = w.trust_policy().await?;
    for u in users {
        w.create_user(u, ADMIN_TAG).await?;
    }
    let events: Vec<Value> = users
        .iter()
        .map(|u| tag_user_event(u))
        .collect::<Result<_, _>>()?;
    let api = RuntimeApi::start(&launch.name)
        .await
        .map_err(|e| BenchError::Child(e.to_string()))?;
    w.set_latency(latency);
    let start = Instant::now();
    let process =
        Function::spawn(launch, &api, env).map_err(|e| BenchError::Child(e.to_string()))?;
    let first = api.invoke(events[0].to_string()).await;
    let cold = start.elapsed();
    let init = api.first_next().map(|t| t.saturating_duration_since(start));
    let second = api.invoke(events[1].to_string()).await;
    let warm = api.last_invocation_time();
    w.set_latency(0);
    drop(process);
    w.set_trust_policy(&before).await?;
    for u in users {
        w.delete_user(u).await?;
    }
    let (first, second) = (
        first.map_err(|e| BenchError::Child(e.to_string()))?,
        second.map_err(|e| BenchError::Child(e.to_string()))?,
    );
    if !added(&first, users[0]) || !added(&second, users[1]) {
        crate::progress(format!("invoke run failed: {first:?} / {second:?}"));
        return Ok(None);
    }
    Ok(match (init, warm) {
        (Some(init), Some(warm)) => Some((ms(init), ms(cold), ms(warm))),
        _ => None,
    })
}

/// `runs` cold + warm invokes of `bin` (one more first, not counted: it also writes
/// aws-auth on the clusters, which the counted runs then only read).
pub async fn invokes(
    w: &World,
    bin: &Path,
    variant: Option<String>,
    env: &[(String, String)],
    latency: u64,
    runs: usize,
) -> Result<InvokeRow, BenchError> {
    let name = "iam-events";
    let launch = Launch::new(bin, name);
    let tag = variant.as_deref().map(|v| v.len()).unwrap_or(0);
    let mut init = Vec::new();
    let mut cold = Vec::new();
    let mut warm = Vec::new();
    let mut failures = 0;
    for i in 0..=runs {
        let a = format!("cold-{tag}-{i}");
        let b = format!("warm-{tag}-{i}");
        match one(w, &launch, env, latency, [&a, &b]).await? {
            Some(_) if i == 0 => {}
            Some((i_ms, c_ms, w_ms)) => {
                init.push(i_ms);
                cold.push(c_ms);
                warm.push(w_ms);
            }
            None => failures += 1,
        }
    }
    Ok(InvokeRow {
        name: name.to_owned(),
        variant,
        init_ms: Stat::of(&init),
        cold_ms: Stat::of(&cold),
        warm_ms: Stat::of(&warm),
        failures,
    })
}

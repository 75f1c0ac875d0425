//! Cold start: a minimal local Lambda Runtime API. The instant the first
//! `GET /2018-06-01/runtime/invocation/next` arrives is recorded and the request is
//! held (never answered), as Lambda holds it until an invocation comes.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use crate::BenchError;
use crate::proc::{vm_hwm_kib, wait_sampling};

const NEXT: &str = "GET /2018-06-01/runtime/invocation/next";

/// What the runtime API saw.
#[derive(Debug)]
enum Seen {
    Next(Instant),
    InitError(String),
}

/// One cold start.
#[derive(Debug, Clone, Copy)]
pub struct ColdRun {
    pub to_next: Duration,
    pub max_rss_kib: u64,
}

/// The fake runtime API on 127.0.0.1:0.
pub struct RuntimeApi {
    port: u16,
    rx: mpsc::UnboundedReceiver<Seen>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve_conn(mut s: TcpStream, tx: mpsc::UnboundedSender<Seen>) {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        match s.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        if buf.windows(4).any(|w| w == b"\r\n\r\n") {
            break;
        }
    }
    let now = Instant::now();
    let head = String::from_utf8_lossy(&buf).to_string();
    if head.starts_with(NEXT) {
        let _ = tx.send(Seen::Next(now));
        // Hold the request until the function is killed.
        while let Ok(n) = s.read(&mut chunk).await {
            if n == 0 {
                break;
            }
        }
    } else {
        let line = head.lines().next().unwrap_or_default().to_string();
        let _ = tx.send(Seen::InitError(line));
        let _ = s
            .write_all(b"HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\n\r\n")
            .await;
    }
}

impl RuntimeApi {
    pub async fn start() -> Result<RuntimeApi, BenchError> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let port = listener.local_addr()?.port();
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            while let Ok((s, _)) = listener.accept().await {
                tokio::spawn(serve_conn(s, tx.clone()));
            }
        });
        Ok(RuntimeApi { port, rx, task })
    }

    /// Spawns `bin` with `env` plus the Lambda variables and times spawn → first `next`.
    pub async fn measure(
        &mut self,
        bin: &Path,
        env: &[(String, String)],
    ) -> Result<ColdRun, BenchError> {
        while self.rx.try_recv().is_ok() {}
        let name = bin
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let mut cmd = Command::new(bin);
        cmd.env_clear()
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("AWS_LAMBDA_RUNTIME_API", format!("127.0.0.1:{}", self.port))
            .env("AWS_LAMBDA_FUNCTION_NAME", &name)
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "2026/11/29/[$LATEST]bench")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let start = Instant::now();
        let mut child = cmd
            .spawn()
            .map_err(|e| BenchError::Child(format!("{}: {e}", bin.display())))?;
        let pid = child.id();
        let seen = tokio::time::timeout(Duration::from_secs(20), self.rx.recv()).await;
        // Idle in `next` now: its high-water mark is its peak so far.
        let hwm = vm_hwm_kib(pid).unwrap_or(0);
        // Killing a child we have not reaped yet cannot fail in a way that matters here.
        let _ = child.kill();
        let (_, reaped_hwm) = tokio::task::spawn_blocking(move || wait_sampling(child))
            .await
            .map_err(|e| BenchError::Child(e.to_string()))??;
        match seen {
            Ok(Some(Seen::Next(at))) => Ok(ColdRun {
                to_next: at.saturating_duration_since(start),
                max_rss_kib: hwm.max(reaped_hwm),
            }),
            Ok(Some(Seen::InitError(line))) => Err(BenchError::Child(format!(
                "{name} did not reach `next`; it sent {line}"
            ))),
            Ok(None) | Err(_) => Err(BenchError::Child(format!(
                "{name} made no `next` request within 20 s"
            ))),
        }
    }
}

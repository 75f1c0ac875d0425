//! A local Lambda Runtime API: what a `provided.al2023` function's `bootstrap` talks
//! to, so that the shipped binaries run here as Lambda runs them.
//!
//! Served on 127.0.0.1:0 (the function gets it as `AWS_LAMBDA_RUNTIME_API`):
//! - `GET /2018-06-01/runtime/invocation/next`: held until [`RuntimeApi::invoke`]
//!   queues a payload, then answered with it and the headers Lambda sends
//!   (`Lambda-Runtime-Aws-Request-Id`, `Lambda-Runtime-Deadline-Ms`,
//!   `Lambda-Runtime-Invoked-Function-Arn`, `Lambda-Runtime-Trace-Id`);
//! - `POST /2018-06-01/runtime/invocation/{id}/response`: the invocation's result;
//! - `POST /2018-06-01/runtime/invocation/{id}/error`: its structured error
//!   (`{"errorType", "errorMessage"}`, and the `Lambda-Runtime-Function-Error-Type` header);
//! - `POST /2018-06-01/runtime/init/error`: the function could not start.
//!
//! A result for an id that was not handed out is refused with 400, as Lambda does
//! (`InvalidRequestID`), and recorded: [`RuntimeApi::protocol_errors`].
//! [`Function`] spawns a binary with the environment Lambda gives it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use tokio::io::AsyncReadExt;
use tokio::sync::{mpsc, oneshot};

/// The account of the invoked function's ARN (the sandbox's).
pub const ACCOUNT: &str = "123456789012";
/// How long an invocation may take before [`RuntimeApi::invoke`] gives up (the
/// functions' timeout in infra/template.yaml is shorter).
pub const INVOKE_GUARD: Duration = Duration::from_secs(120);

/// What became of one invocation.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// `/response`: the body, as JSON.
    Response(Value),
    /// `/error`: the body's `errorType` and `errorMessage`, and the
    /// `Lambda-Runtime-Function-Error-Type` header.
    Error {
        error_type: String,
        error_message: String,
        header: Option<String>,
    },
    /// `/init/error` before the invocation was taken.
    InitError { error_type: String, body: String },
}

impl Outcome {
    /// The response, or a panic that says what came instead (tests).
    pub fn response(self) -> Value {
        match self {
            Outcome::Response(v) => v,
            other => panic!("expected a response, got {other:?}"),
        }
    }

    /// `(errorType, errorMessage)`, or a panic that says what came instead (tests).
    pub fn error(self) -> (String, String) {
        match self {
            Outcome::Error {
                error_type,
                error_message,
                ..
            } => (error_type, error_message),
            other => panic!("expected an error, got {other:?}"),
        }
    }
}

/// Why an invocation got no outcome.
#[derive(Debug, thiserror::Error)]
pub enum InvokeError {
    #[error("the function did not answer within {0:?}")]
    Timeout(Duration),
    #[error("the runtime API stopped")]
    Stopped,
    #[error("cannot serve the runtime API: {0}")]
    Io(#[from] std::io::Error),
    #[error("cannot start {bin}: {source}")]
    Spawn { bin: String, source: std::io::Error },
}

struct Invocation {
    id: String,
    body: Bytes,
    reply: oneshot::Sender<Outcome>,
}

#[derive(Default)]
struct Book {
    pending: HashMap<String, oneshot::Sender<Outcome>>,
    init_error: Option<Outcome>,
    init_waiters: Vec<oneshot::Sender<Outcome>>,
    protocol_errors: Vec<String>,
    /// When the first `next` arrived (the end of the function's init).
    first_next: Option<Instant>,
    /// When each pending invocation was handed out.
    served_at: HashMap<String, Instant>,
    /// Handed out → result, of the last invocation that got one.
    last_duration: Option<Duration>,
}

#[derive(Clone)]
struct Shared {
    queue: Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<Invocation>>>,
    book: Arc<Mutex<Book>>,
    function_arn: String,
}

impl Shared {
    fn book(&self) -> std::sync::MutexGuard<'_, Book> {
        self.book.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The runtime API of one function.
pub struct RuntimeApi {
    addr: std::net::SocketAddr,
    tx: mpsc::UnboundedSender<Invocation>,
    shared: Shared,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn request_id() -> String {
    let n: u128 = rand::random();
    let h = format!("{n:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

fn header(v: &str) -> HeaderValue {
    HeaderValue::from_str(v).unwrap_or(HeaderValue::from_static("invalid"))
}

async fn next(State(s): State<Shared>) -> Response {
    s.book().first_next.get_or_insert_with(Instant::now);
    let inv = s.queue.lock().await.recv().await;
    let Some(inv) = inv else {
        return StatusCode::GONE.into_response();
    };
    {
        let mut book = s.book();
        book.pending.insert(inv.id.clone(), inv.reply);
        book.served_at.insert(inv.id.clone(), Instant::now());
    }
    let deadline = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        + Duration::from_secs(60);
    let trace = format!(
        "Root=1-{:08x}-{:024x};Parent={:016x};Sampled=0",
        deadline.as_secs(),
        rand::random::<u128>() >> 32,
        rand::random::<u64>()
    );
    let mut h = HeaderMap::new();
    h.insert("content-type", HeaderValue::from_static("application/json"));
    h.insert("lambda-runtime-aws-request-id", header(&inv.id));
    h.insert(
        "lambda-runtime-deadline-ms",
        header(&deadline.as_millis().to_string()),
    );
    h.insert(
        "lambda-runtime-invoked-function-arn",
        header(&s.function_arn),
    );
    h.insert("lambda-runtime-trace-id", header(&trace));
    (StatusCode::OK, h, inv.body).into_response()
}

fn refuse(s: &Shared, what: String) -> Response {
    s.book().protocol_errors.push(what.clone());
    let body = json!({"errorMessage": what, "errorType": "InvalidRequestID"});
    (StatusCode::BAD_REQUEST, axum::Json(body)).into_response()
}

/// The reply channel of `id`, and the time it took since it was handed out.
fn settle(s: &Shared, id: &str) -> Option<oneshot::Sender<Outcome>> {
    let mut book = s.book();
    let reply = book.pending.remove(id)?;
    if let Some(at) = book.served_at.remove(id) {
        book.last_duration = Some(at.elapsed());
    }
    Some(reply)
}

fn accepted() -> Response {
    (StatusCode::ACCEPTED, axum::Json(json!({"status": "OK"}))).into_response()
}

async fn response(State(s): State<Shared>, UrlPath(id): UrlPath<String>, body: Bytes) -> Response {
    let Some(reply) = settle(&s, &id) else {
        return refuse(&s, format!("response for unknown request id {id}"));
    };
    let value = serde_json::from_slice(&body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
    let _ = reply.send(Outcome::Response(value));
    accepted()
}

fn error_outcome(headers: &HeaderMap, body: &[u8]) -> Outcome {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let field = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
    Outcome::Error {
        error_type: field("errorType"),
        error_message: field("errorMessage"),
        header: headers
            .get("lambda-runtime-function-error-type")
            .and_then(|h| h.to_str().ok())
            .map(str::to_owned),
    }
}

async fn error(
    State(s): State<Shared>,
    UrlPath(id): UrlPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(reply) = settle(&s, &id) else {
        return refuse(&s, format!("error for unknown request id {id}"));
    };
    let _ = reply.send(error_outcome(&headers, &body));
    accepted()
}

async fn init_error(State(s): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let outcome = match error_outcome(&headers, &body) {
        Outcome::Error {
            error_type, header, ..
        } => Outcome::InitError {
            error_type: header.unwrap_or(error_type),
            body: String::from_utf8_lossy(&body).into_owned(),
        },
        other => other,
    };
    let mut book = s.book();
    for w in book.init_waiters.drain(..) {
        let _ = w.send(outcome.clone());
    }
    book.init_error = Some(outcome);
    accepted()
}

impl RuntimeApi {
    /// Serves the API on 127.0.0.1:0 for a function named `function_name`.
    pub async fn start(function_name: &str) -> Result<RuntimeApi, InvokeError> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let (tx, rx) = mpsc::unbounded_channel();
        let shared = Shared {
            queue: Arc::new(tokio::sync::Mutex::new(rx)),
            book: Arc::default(),
            function_arn: format!("arn:aws:lambda:us-east-1:{ACCOUNT}:function:{function_name}"),
        };
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(response),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(shared.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(RuntimeApi {
            addr,
            tx,
            shared,
            server,
        })
    }

    /// `host:port`, what `AWS_LAMBDA_RUNTIME_API` holds.
    pub fn address(&self) -> String {
        self.addr.to_string()
    }

    /// Hands `payload` (bytes as sent, JSON or not) to the function's next `next`
    /// and waits for its response or error (or an init error), at most [`INVOKE_GUARD`].
    pub async fn invoke(&self, payload: impl Into<Bytes>) -> Result<Outcome, InvokeError> {
        let (reply, rx) = oneshot::channel();
        let (init_tx, init_rx) = oneshot::channel();
        {
            let mut book = self.shared.book();
            if let Some(e) = &book.init_error {
                return Ok(e.clone());
            }
            book.init_waiters.push(init_tx);
        }
        self.tx
            .send(Invocation {
                id: request_id(),
                body: payload.into(),
                reply,
            })
            .map_err(|_| InvokeError::Stopped)?;
        let wait = async {
            tokio::select! {
                r = rx => r.map_err(|_| InvokeError::Stopped),
                r = init_rx => r.map_err(|_| InvokeError::Stopped),
            }
        };
        tokio::time::timeout(INVOKE_GUARD, wait)
            .await
            .map_err(|_| InvokeError::Timeout(INVOKE_GUARD))?
    }

    /// When the function's first `next` arrived: the end of its init.
    pub fn first_next(&self) -> Option<Instant> {
        self.shared.book().first_next
    }

    /// How long the last invocation with a result took, from the moment `next`
    /// handed it out to its response or error (what Lambda bills as its duration).
    pub fn last_invocation_time(&self) -> Option<Duration> {
        self.shared.book().last_duration
    }

    /// Results posted for request ids that were never handed out.
    pub fn protocol_errors(&self) -> Vec<String> {
        self.shared.book().protocol_errors.clone()
    }
}

/// A function process: a `bootstrap` binary (optionally under a runner such as
/// `qemu-aarch64-static -L /usr/aarch64-linux-gnu`) with the environment Lambda sets,
/// the caller's variables, and nothing else from this process but `PATH`. Its stdout
/// and stderr are kept ([`Function::output`]). Killed when dropped.
pub struct Function {
    child: tokio::process::Child,
    output: Arc<Mutex<String>>,
}

/// How a function binary is run.
#[derive(Debug, Clone)]
pub struct Launch {
    pub bin: PathBuf,
    /// A program (and its arguments) that runs `bin`: e.g. qemu-user for arm64.
    pub runner: Vec<String>,
    pub name: String,
}

impl Launch {
    pub fn new(bin: &Path, name: &str) -> Launch {
        Launch {
            bin: bin.to_path_buf(),
            runner: Vec::new(),
            name: name.to_owned(),
        }
    }

    /// `runner` split on whitespace (empty: none).
    pub fn with_runner(mut self, runner: &str) -> Launch {
        self.runner = runner.split_whitespace().map(str::to_owned).collect();
        self
    }
}

fn keep(output: Arc<Mutex<String>>, mut from: impl tokio::io::AsyncRead + Unpin + Send + 'static) {
    tokio::spawn(async move {
        let mut buf = [0u8; 4096];
        while let Ok(n) = from.read(&mut buf).await {
            if n == 0 {
                break;
            }
            output
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
}

impl Function {
    /// Spawns `launch` against `api` with `env` on top of the Lambda variables.
    pub fn spawn(
        launch: &Launch,
        api: &RuntimeApi,
        env: &[(String, String)],
    ) -> Result<Function, InvokeError> {
        let (program, args) = match launch.runner.split_first() {
            Some((p, rest)) => (PathBuf::from(p), rest.to_vec()),
            None => (launch.bin.clone(), Vec::new()),
        };
        let mut cmd = tokio::process::Command::new(&program);
        cmd.args(&args);
        if !launch.runner.is_empty() {
            cmd.arg(&launch.bin);
        }
        let name = &launch.name;
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("AWS_LAMBDA_RUNTIME_API", api.address())
            .env("AWS_LAMBDA_FUNCTION_NAME", name)
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "2026/11/29/[$LATEST]local")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}"))
            .env("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand")
            .env("AWS_EXECUTION_ENV", "AWS_Lambda_provided.al2023")
            .env("_HANDLER", "bootstrap")
            .env("TZ", ":UTC")
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd.spawn().map_err(|source| InvokeError::Spawn {
            bin: launch.bin.display().to_string(),
            source,
        })?;
        let output = Arc::new(Mutex::new(String::new()));
        if let Some(o) = child.stdout.take() {
            keep(output.clone(), o);
        }
        if let Some(e) = child.stderr.take() {
            keep(output.clone(), e);
        }
        Ok(Function { child, output })
    }

    /// What it wrote so far (stdout and stderr, interleaved).
    pub fn output(&self) -> String {
        self.output
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Whether it has exited, and how.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }
}

/// `export K=V` / `unset K` lines (the sandbox's env file) as variables to set.
pub fn parse_env_file(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("export "))
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.trim_matches(['"', '\'']).to_owned()))
        .collect()
}

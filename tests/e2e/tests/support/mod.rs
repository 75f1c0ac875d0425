//! Shared by the end-to-end tests: one in-process sandbox per test (its own moto),
//! seeded; SDK configurations built the standard way; the real engine; helpers to
//! read the sandbox's state and call counters, and to act as a user (AssumeRole,
//! EKS token, kube client, SelfSubjectReview).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use base64::Engine as _;
use eks_access_sync::adapters::SdkEngine;
use eks_access_sync::model::config::Config;
use eks_access_sync::policy::awsauth::parse_entries;
use eks_sandbox::aws::{Sandbox, SandboxOptions, lock};
use eks_sandbox::state::ACCOUNT_ID;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use k8s_openapi::api::authentication::v1::SelfSubjectReview;
use kube::api::{Api, PostParams};
use serde_json::Value;

pub const ADMIN_ROLE: &str = "eks-admin";
pub const ADMIN_TAG: (&str, &str) = ("eks-access", "admin");

/// The key of aws-auth in a cluster's object store.
fn aws_auth_key() -> (String, String, String, String) {
    (
        "api/v1".into(),
        "configmaps".into(),
        "kube-system".into(),
        "aws-auth".into(),
    )
}

pub fn role_arn() -> String {
    format!("arn:aws:iam::{ACCOUNT_ID}:role/{ADMIN_ROLE}")
}

pub fn user_arn(name: &str) -> String {
    format!("arn:aws:iam::{ACCOUNT_ID}:user/{name}")
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `events/NAME.json` with the sample user `dave` replaced by `user`.
pub fn event(name: &str, user: &str) -> Value {
    let path = repo_root().join("events").join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    let text = text
        .replace("\"dave\"", &format!("\"{user}\""))
        .replace("user/dave\"", &format!("user/{user}\""));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path:?}: {e}"))
}

/// The configuration the functions get from their environment.
pub fn config() -> Config {
    config_with(&[])
}

/// [`config`] with more variables set (e.g. `TRUST_LOCK_TABLE`).
pub fn config_with(vars: &[(&str, &str)]) -> Config {
    Config::from_lookup(|k| match k {
        "ADMIN_ROLE_NAME" => Some(ADMIN_ROLE.to_owned()),
        "AWS_REGION" => Some("us-east-1".to_owned()),
        _ => vars
            .iter()
            .find(|(var, _)| *var == k)
            .map(|(_, v)| (*v).to_owned()),
    })
    .expect("config")
}

/// An SDK configuration pointing at the sandbox the standard way (what
/// `AWS_ENDPOINT_URL_*`, `AWS_REGION` and the key variables give).
pub async fn sdk_config(sb: &Sandbox, creds: Credentials) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(sb.region()))
        .endpoint_url(sb.aws_endpoint())
        .credentials_provider(creds)
        .load()
        .await
}

/// A started, seeded sandbox with the operator's clients and the real engine.
pub struct World {
    pub sb: Sandbox,
    pub sdk: SdkConfig,
    pub iam: aws_sdk_iam::Client,
    pub eks: aws_sdk_eks::Client,
    pub engine: SdkEngine,
}

/// The identity a cluster's API server reports (SelfSubjectReview).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WhoAmI {
    pub username: String,
    pub groups: Vec<String>,
}

impl World {
    pub async fn start() -> World {
        let sb = Sandbox::start(SandboxOptions::default())
            .await
            .expect("sandbox starts (needs moto_server on PATH: pip install 'moto[server]')");
        sb.seed().await.expect("seed");
        let (ak, sk) = sb.operator_credentials();
        let sdk = sdk_config(&sb, Credentials::new(ak, sk, None, None, "operator")).await;
        World {
            iam: aws_sdk_iam::Client::new(&sdk),
            eks: aws_sdk_eks::Client::new(&sdk),
            engine: SdkEngine::from_sdk(config(), &sdk),
            sdk,
            sb,
        }
    }

    /// Creates a user (with the admin tag when `admin`) and an access key for them.
    pub async fn create_user(&self, name: &str, admin: bool) -> Credentials {
        let mut req = self.iam.create_user().user_name(name);
        if admin {
            req = req.tags(
                aws_sdk_iam::types::Tag::builder()
                    .key(ADMIN_TAG.0)
                    .value(ADMIN_TAG.1)
                    .build()
                    .expect("tag"),
            );
        }
        req.send().await.expect("CreateUser");
        self.access_key(name).await
    }

    /// Creates `name`, an `API`-mode cluster (no aws-auth) tagged for eks-access-sync.
    pub async fn create_api_cluster(&self, name: &str) {
        self.eks
            .create_cluster()
            .name(name)
            .role_arn("arn:aws:iam::123456789012:role/eks-cluster-role")
            .access_config(
                aws_sdk_eks::types::CreateAccessConfigRequest::builder()
                    .authentication_mode(aws_sdk_eks::types::AuthenticationMode::Api)
                    .build(),
            )
            .tags("eks-access-sync/managed", "true")
            .send()
            .await
            .expect("CreateCluster");
    }

    /// Deletes the user as an offboarding runbook does: its access keys, then the user.
    pub async fn delete_user(&self, name: &str) {
        let keys = self
            .iam
            .list_access_keys()
            .user_name(name)
            .send()
            .await
            .expect("ListAccessKeys");
        for k in keys.access_key_metadata() {
            self.iam
                .delete_access_key()
                .user_name(name)
                .access_key_id(k.access_key_id().unwrap_or_default())
                .send()
                .await
                .expect("DeleteAccessKey");
        }
        self.iam
            .delete_user()
            .user_name(name)
            .send()
            .await
            .expect("DeleteUser");
    }

    pub async fn access_key(&self, name: &str) -> Credentials {
        let key = self
            .iam
            .create_access_key()
            .user_name(name)
            .send()
            .await
            .expect("CreateAccessKey")
            .access_key
            .expect("access key");
        Credentials::new(key.access_key_id, key.secret_access_key, None, None, "user")
    }

    /// `sts:AssumeRole` on the admin role as `user`: the session's credentials, or
    /// the error code.
    pub async fn assume_admin(
        &self,
        user: &Credentials,
        session: &str,
    ) -> Result<Credentials, String> {
        self.assume(user, ADMIN_ROLE, session).await
    }

    /// `sts:AssumeRole` on the role `role` (a name) as `user`: the session's
    /// credentials, or the error code.
    pub async fn assume(
        &self,
        user: &Credentials,
        role: &str,
        session: &str,
    ) -> Result<Credentials, String> {
        self.assume_arn(
            user,
            &format!("arn:aws:iam::{ACCOUNT_ID}:role/{role}"),
            session,
        )
        .await
    }

    /// [`World::assume`] by the role's full ARN (with its path).
    pub async fn assume_arn(
        &self,
        user: &Credentials,
        role_arn: &str,
        session: &str,
    ) -> Result<Credentials, String> {
        use aws_sdk_sts::error::ProvideErrorMetadata as _;
        let conf = sdk_config(&self.sb, user.clone()).await;
        let sts = aws_sdk_sts::Client::new(&conf);
        match sts
            .assume_role()
            .role_arn(role_arn)
            .role_session_name(session)
            .send()
            .await
        {
            Ok(out) => {
                let c = out.credentials.expect("credentials");
                Ok(Credentials::new(
                    c.access_key_id,
                    c.secret_access_key,
                    Some(c.session_token),
                    None,
                    "assumed",
                ))
            }
            Err(e) => Err(e
                .as_service_error()
                .and_then(|s| s.code())
                .map_or_else(|| format!("{e:?}"), str::to_owned)),
        }
    }

    /// (endpoint, base64 PEM CA) of a cluster, from DescribeCluster.
    pub async fn describe(&self, cluster: &str) -> (String, String) {
        self.describe_in(&self.eks, cluster).await
    }

    /// [`World::describe`] through `eks` (another account's client: a member's cluster).
    pub async fn describe_in(&self, eks: &aws_sdk_eks::Client, cluster: &str) -> (String, String) {
        let c = eks
            .describe_cluster()
            .name(cluster)
            .send()
            .await
            .expect("DescribeCluster")
            .cluster
            .expect("cluster");
        (
            c.endpoint.expect("endpoint"),
            c.certificate_authority
                .and_then(|ca| ca.data)
                .expect("CA data"),
        )
    }

    /// An EKS token for `cluster` signed with `creds`.
    pub fn token(
        &self,
        creds: &Credentials,
        cluster: &str,
    ) -> eks_access_sync::adapters::kube::token::EksToken {
        eks_access_sync::adapters::kube::token::eks_token(
            creds,
            &self.sb.region(),
            cluster,
            Some(&self.sb.aws_endpoint()),
            SystemTime::now(),
        )
        .expect("token")
    }

    /// A kube client for `cluster` authenticated as `creds`.
    pub async fn kube_as(&self, creds: &Credentials, cluster: &str) -> kube::Client {
        self.kube_as_in(&self.eks, creds, cluster).await
    }

    /// [`World::kube_as`], the cluster described through `eks`.
    pub async fn kube_as_in(
        &self,
        eks: &aws_sdk_eks::Client,
        creds: &Credentials,
        cluster: &str,
    ) -> kube::Client {
        let (endpoint, ca) = self.describe_in(eks, cluster).await;
        let pem = base64::engine::general_purpose::STANDARD
            .decode(ca)
            .expect("CA is base64");
        eks_access_sync::adapters::kube::client::kube_client(
            &endpoint,
            &pem,
            &self.token(creds, cluster),
        )
        .expect("kube client")
    }

    /// What `kubectl auth whoami` asks: a SelfSubjectReview, through the kube client.
    pub async fn whoami(&self, creds: &Credentials, cluster: &str) -> Result<WhoAmI, String> {
        self.whoami_in(&self.eks, creds, cluster).await
    }

    /// [`World::whoami`], the cluster described through `eks`.
    pub async fn whoami_in(
        &self,
        eks: &aws_sdk_eks::Client,
        creds: &Credentials,
        cluster: &str,
    ) -> Result<WhoAmI, String> {
        let client = self.kube_as_in(eks, creds, cluster).await;
        let api: Api<SelfSubjectReview> = Api::all(client);
        let review = api
            .create(&PostParams::default(), &SelfSubjectReview::default())
            .await
            .map_err(|e| e.to_string())?;
        let user = review
            .status
            .and_then(|s| s.user_info)
            .ok_or("no userInfo in the review")?;
        Ok(WhoAmI {
            username: user.username.unwrap_or_default(),
            groups: user.groups.unwrap_or_default(),
        })
    }

    /// The whole aws-auth object of a cluster, as the sandbox stores it.
    pub fn aws_auth(&self, cluster: &str) -> Option<Value> {
        let shared = self.sb.shared();
        let st = lock(&shared);
        st.clusters
            .get(cluster)?
            .objects
            .get(&aws_auth_key())
            .map(|o| o.json.clone())
    }

    /// `data` of aws-auth (empty when absent).
    pub fn aws_auth_data(&self, cluster: &str) -> BTreeMap<String, String> {
        self.aws_auth(cluster)
            .and_then(|o| o.get("data").cloned())
            .and_then(|d| serde_json::from_value(d).ok())
            .unwrap_or_default()
    }

    pub fn resource_version(&self, cluster: &str) -> Option<String> {
        self.aws_auth(cluster)
            .and_then(|o| o["metadata"]["resourceVersion"].as_str().map(str::to_owned))
    }

    /// Sets one `data` key of aws-auth directly in the sandbox's store (another writer,
    /// e.g. a person with kubectl), bumping the resourceVersion.
    pub fn set_aws_auth_key(&self, cluster: &str, key: &str, value: &str) {
        let shared = self.sb.shared();
        let mut st = lock(&shared);
        let c = st.clusters.get_mut(cluster).expect("cluster");
        c.resource_version += 1;
        let rv = c.resource_version.to_string();
        let obj = c.objects.get_mut(&aws_auth_key()).expect("aws-auth exists");
        obj.json["data"][key] = Value::String(value.to_owned());
        obj.json["metadata"]["resourceVersion"] = Value::String(rv);
    }

    /// The call counters (what `GET /_sandbox/calls` lists).
    pub fn calls(&self) -> BTreeMap<(String, String), u64> {
        lock(&self.sb.shared()).calls.clone()
    }

    /// The entries `events:PutEvents` accepted (what `GET /_sandbox/events` lists).
    pub fn put_events(&self) -> Vec<Value> {
        lock(&self.sb.shared()).put_events.clone()
    }

    /// `POST /_sandbox/calls/reset`.
    pub async fn reset_calls(&self) {
        let (status, body) = self.control("/_sandbox/calls/reset", "{}").await;
        assert_eq!(status, 200, "{body}");
    }

    /// How often `service`/`operation` was called.
    pub fn count(&self, service: &str, operation: &str) -> u64 {
        self.calls()
            .get(&(service.to_owned(), operation.to_owned()))
            .copied()
            .unwrap_or(0)
    }

    /// Kubernetes write calls (POST/PUT/PATCH/DELETE, reviews excepted) on `cluster`.
    pub fn k8s_writes(&self, cluster: &str) -> Vec<String> {
        let svc = format!("k8s:{cluster}");
        self.calls()
            .into_iter()
            .filter(|((s, op), n)| {
                *s == svc
                    && *n > 0
                    && ["POST ", "PUT ", "PATCH ", "DELETE "]
                        .iter()
                        .any(|m| op.starts_with(m))
                    && !op.contains("selfsubject")
            })
            .map(|((_, op), n)| format!("{op} x{n}"))
            .collect()
    }

    /// Every k8s write anywhere plus IAM and EKS writes: what a no-op run must not do.
    pub fn all_writes(&self) -> Vec<String> {
        let mut out = Vec::new();
        for ((s, op), n) in self.calls() {
            let write = if s.starts_with("k8s:") {
                ["POST ", "PUT ", "PATCH ", "DELETE "]
                    .iter()
                    .any(|m| op.starts_with(m))
                    && !op.contains("selfsubject")
            } else if s == "iam" || s == "eks" {
                !(op.starts_with("Get") || op.starts_with("List") || op.starts_with("Describe"))
            } else {
                false
            };
            if write && n > 0 {
                out.push(format!("{s} {op} x{n}"));
            }
        }
        out
    }

    /// POSTs to a control endpoint; (status, body).
    pub async fn control(&self, path: &str, body: &str) -> (u16, String) {
        let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
        let req = http::Request::post(format!("{}{path}", self.sb.aws_endpoint()))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body.to_owned())))
            .expect("request");
        let resp = client.request(req).await.expect("control endpoint");
        let status = resp.status().as_u16();
        let bytes = resp.into_body().collect().await.expect("body").to_bytes();
        (status, String::from_utf8_lossy(&bytes).into_owned())
    }

    /// The admin role's trust policy, decoded.
    pub async fn trust_policy(&self) -> Value {
        self.role_trust_policy(ADMIN_ROLE).await
    }

    /// The trust policy of the role `role` (a name), decoded.
    pub async fn role_trust_policy(&self, role: &str) -> Value {
        let doc = self
            .iam
            .get_role()
            .role_name(role)
            .send()
            .await
            .expect("GetRole")
            .role
            .expect("role")
            .assume_role_policy_document
            .expect("trust policy");
        let decoded = percent_decode(&doc);
        serde_json::from_str(&decoded).expect("trust policy JSON")
    }

    /// Asserts what must hold after every run on prod and legacy: the node-role
    /// mapping is the first `mapRoles` entry with exactly the seeded fields, the
    /// keys in `untouched` are byte-for-byte as given, and legacy (untagged) has not
    /// been written (its resourceVersion is `legacy_rv`, no k8s writes there).
    pub fn assert_invariants(&self, untouched: &BTreeMap<String, String>, legacy_rv: &str) {
        let data = self.aws_auth_data("prod");
        let roles = parse_entries("mapRoles", data.get("mapRoles").expect("prod mapRoles"))
            .expect("prod mapRoles parses");
        let seeded = parse_entries("mapRoles", &eks_sandbox::aws::seed::node_role_map_roles())
            .expect("seed parses");
        assert_eq!(
            roles.first(),
            seeded.first(),
            "the node-role entry is first and unchanged; mapRoles:\n{}",
            data["mapRoles"]
        );
        let seeded_text = eks_sandbox::aws::seed::node_role_map_roles();
        assert!(
            data["mapRoles"].starts_with(&seeded_text),
            "the node-role entry's text is unchanged and first; mapRoles:\n{}",
            data["mapRoles"]
        );
        assert_eq!(
            roles
                .iter()
                .filter(|r| r["rolearn"]
                    .as_str()
                    .is_some_and(|a| a.ends_with("role/eks-node-role")))
                .count(),
            1,
            "one node-role entry"
        );
        for (k, v) in untouched {
            assert_eq!(data.get(k), Some(v), "prod aws-auth key {k} byte-for-byte");
        }
        assert_eq!(
            self.resource_version("legacy").as_deref(),
            Some(legacy_rv),
            "legacy's aws-auth resourceVersion"
        );
        assert_eq!(
            self.k8s_writes("legacy"),
            Vec::<String>::new(),
            "writes on legacy"
        );
    }
}

/// Decodes `%XX` escapes (GetRole's trust policy is URL-encoded).
pub fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .expect("UTF-8")
        .into_owned()
}

/// The principals the statement eks-access-sync owns allows.
pub fn managed_principals(policy: &Value) -> Vec<String> {
    let stmts = policy["Statement"].as_array().cloned().unwrap_or_default();
    let mut out = Vec::new();
    for s in stmts
        .iter()
        .filter(|s| s["Sid"] == eks_access_sync::model::config::DEFAULT_TRUST_STATEMENT_SID)
        // Our Deny placeholder (an empty list: the account root denied) trusts no one.
        .filter(|s| s["Effect"] == "Allow")
    {
        match &s["Principal"]["AWS"] {
            Value::String(a) => out.push(a.clone()),
            Value::Array(a) => out.extend(a.iter().filter_map(|v| v.as_str().map(str::to_owned))),
            _ => {}
        }
    }
    out.sort();
    out
}

/// Parses `export K=V` / `unset K` lines of `.sandbox/env` into (set, unset).
pub fn parse_env(lines: &str) -> (Vec<(String, String)>, Vec<String>) {
    let mut set = Vec::new();
    let mut unset = Vec::new();
    for l in lines.lines() {
        if let Some(kv) = l.strip_prefix("export ") {
            let (k, v) = kv.split_once('=').expect("K=V");
            set.push((k.to_string(), v.to_string()));
        } else if let Some(k) = l.strip_prefix("unset ") {
            unset.push(k.trim().to_string());
        }
    }
    (set, unset)
}

/// A command with the sandbox's environment, an empty HOME and no AWS config files.
pub fn command(sb: &Sandbox, program: &str, home: &Path) -> tokio::process::Command {
    let (set, unset) = parse_env(&sb.env_lines());
    let mut cmd = tokio::process::Command::new(program);
    cmd.env("HOME", home)
        .env("AWS_CONFIG_FILE", home.join("none"))
        .env("AWS_SHARED_CREDENTIALS_FILE", home.join("none"))
        .env("AWS_PAGER", "")
        .env("ADMIN_ROLE_NAME", ADMIN_ROLE)
        .env_remove("KUBECONFIG");
    for (k, v) in set {
        cmd.env(k, v);
    }
    for k in unset {
        cmd.env_remove(k);
    }
    cmd
}

/// A command with the sandbox's endpoints, as the member (their own keys), the test venv
/// (the AWS CLI) first on PATH.
pub fn as_member(
    w: &World,
    program: &Path,
    home: &Path,
    creds: &Credentials,
) -> tokio::process::Command {
    let mut c = command(&w.sb, program.to_str().expect("utf-8"), home);
    let venv = repo_root().join(".tools/venv/bin");
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut paths = vec![venv];
    paths.extend(std::env::split_paths(&path));
    c.env("PATH", std::env::join_paths(paths).expect("PATH"))
        .env("AWS_ACCESS_KEY_ID", creds.access_key_id())
        .env("AWS_SECRET_ACCESS_KEY", creds.secret_access_key());
    match creds.session_token() {
        Some(t) => c.env("AWS_SESSION_TOKEN", t),
        None => c.env_remove("AWS_SESSION_TOKEN"),
    };
    c
}

/// The operator CLI (`eks-access-sync`, another package's binary), looked up next to
/// the test's executable (`target/<profile>/`). `cargo test --workspace` (what `make
/// test` runs) builds it; on its own, run `cargo build -p eks-access-sync-cli` first.
/// `EKS_ACCESS_SYNC_BIN` names another binary (e.g. a copy, when a target directory is
/// shared by several checkouts).
pub fn cli_binary() -> PathBuf {
    if let Some(bin) = std::env::var_os("EKS_ACCESS_SYNC_BIN") {
        return PathBuf::from(bin);
    }
    let exe = std::env::current_exe().expect("test executable");
    // target/<profile>/deps/<test>-<hash> -> target/<profile>/eks-access-sync
    let bin = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target dir")
        .join("eks-access-sync");
    assert!(
        bin.is_file(),
        "{} not found: build it with `cargo build -p eks-access-sync-cli` (make test does)",
        bin.display()
    );
    bin
}

/// Runs a command; (exit code, stdout, stderr).
pub async fn run(mut cmd: tokio::process::Command) -> (i32, String, String) {
    let out = cmd
        .output()
        .await
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

//! One sandbox world: started in-process (its own moto), seeded (admin role, users,
//! clusters `prod` CONFIG_MAP, `staging` API_AND_CONFIG_MAP, `legacy` untagged, the
//! lease table), with the operator's clients and engines built as the functions build
//! them; state read straight from the sandbox's store (no faults apply there).

use std::collections::BTreeSet;
use std::path::Path;
use std::time::SystemTime;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use base64::Engine as _;
use eks_access_sync::adapters::SdkEngine;
use eks_access_sync::model::config::Config;
use eks_sandbox::aws::{Sandbox, SandboxOptions, lock};
use eks_sandbox::state::ACCOUNT_ID;
use serde_json::Value;

use crate::SoakError;

pub const ADMIN_ROLE: &str = "eks-admin";
pub const ADMIN_TAG: (&str, &str) = ("eks-access", "admin");
pub const LOCK_TABLE: &str = eks_sandbox::aws::seed::LOCK_TABLE;

static STARTS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

fn aws_err(what: &str, e: impl std::error::Error) -> SoakError {
    SoakError::Aws(format!(
        "{what}: {}",
        aws_sdk_iam::error::DisplayErrorContext(e)
    ))
}

pub fn user_arn(name: &str) -> String {
    format!("arn:aws:iam::{ACCOUNT_ID}:user/{name}")
}

pub fn admin_role_arn() -> String {
    format!("arn:aws:iam::{ACCOUNT_ID}:role/{ADMIN_ROLE}")
}

fn aws_auth_key() -> (String, String, String, String) {
    (
        "api/v1".into(),
        "configmaps".into(),
        "kube-system".into(),
        "aws-auth".into(),
    )
}

pub struct World {
    pub sb: Sandbox,
    pub sdk: SdkConfig,
    pub iam: aws_sdk_iam::Client,
    pub eks: aws_sdk_eks::Client,
}

impl World {
    /// Starts and seeds a sandbox. Starts are taken two at a time (moto's start is
    /// CPU-bound; many at once on two cores miss its start deadline) and retried twice.
    pub async fn start() -> Result<World, SoakError> {
        let mut last = String::new();
        for _ in 0..3 {
            let permit = STARTS.acquire().await;
            let started = match Sandbox::start(SandboxOptions::default()).await {
                Ok(sb) => match sb.seed().await {
                    Ok(_) => Ok(sb),
                    Err(e) => Err(e.to_string()),
                },
                Err(e) => Err(e.to_string()),
            };
            drop(permit);
            match started {
                Ok(sb) => return World::with(sb).await,
                Err(e) => last = e,
            }
        }
        Err(SoakError::Sandbox(last))
    }

    async fn with(sb: Sandbox) -> Result<World, SoakError> {
        let (ak, sk) = sb.operator_credentials();
        let sdk = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(sb.region()))
            .endpoint_url(sb.aws_endpoint())
            .credentials_provider(Credentials::new(ak, sk, None, None, "operator"))
            .load()
            .await;
        Ok(World {
            iam: aws_sdk_iam::Client::new(&sdk),
            eks: aws_sdk_eks::Client::new(&sdk),
            sdk,
            sb,
        })
    }

    /// An engine as a function builds it from its environment, with the lease.
    pub fn engine(&self) -> Result<SdkEngine, SoakError> {
        let config = Config::from_lookup(|k| match k {
            "ADMIN_ROLE_NAME" => Some(ADMIN_ROLE.to_owned()),
            "AWS_REGION" => Some(self.sb.region()),
            "TRUST_LOCK_TABLE" => Some(LOCK_TABLE.to_owned()),
            _ => None,
        })
        .map_err(|e| SoakError::Sandbox(format!("config: {e}")))?;
        Ok(SdkEngine::from_sdk(config, &self.sdk))
    }

    pub async fn create_user(&self, name: &str, tagged: bool) -> Result<(), SoakError> {
        let mut req = self.iam.create_user().user_name(name);
        if tagged {
            req = req.tags(tag()?);
        }
        req.send().await.map_err(|e| aws_err("CreateUser", e))?;
        Ok(())
    }

    pub async fn tag_user(&self, name: &str) -> Result<(), SoakError> {
        self.iam
            .tag_user()
            .user_name(name)
            .tags(tag()?)
            .send()
            .await
            .map_err(|e| aws_err("TagUser", e))?;
        Ok(())
    }

    pub async fn untag_user(&self, name: &str) -> Result<(), SoakError> {
        self.iam
            .untag_user()
            .user_name(name)
            .tag_keys(ADMIN_TAG.0)
            .send()
            .await
            .map_err(|e| aws_err("UntagUser", e))?;
        Ok(())
    }

    /// The admin role's trust policy, decoded (through IAM: call it with no IAM fault armed).
    pub async fn trust_policy(&self) -> Result<Value, SoakError> {
        let doc = self
            .iam
            .get_role()
            .role_name(ADMIN_ROLE)
            .send()
            .await
            .map_err(|e| aws_err("GetRole", e))?
            .role
            .and_then(|r| r.assume_role_policy_document)
            .unwrap_or_default();
        let decoded = percent_encoding::percent_decode_str(&doc)
            .decode_utf8_lossy()
            .into_owned();
        serde_json::from_str(&decoded).map_err(|e| SoakError::Sandbox(format!("trust policy: {e}")))
    }

    /// `mapRoles` of a cluster's aws-auth, parsed (empty when absent).
    pub fn map_roles(&self, cluster: &str) -> Vec<Value> {
        let text = self
            .aws_auth(cluster)
            .and_then(|o| o["data"]["mapRoles"].as_str().map(str::to_owned))
            .unwrap_or_default();
        parse_roles(&text)
    }

    pub fn aws_auth(&self, cluster: &str) -> Option<Value> {
        let shared = self.sb.shared();
        let st = lock(&shared);
        st.clusters
            .get(cluster)?
            .objects
            .get(&aws_auth_key())
            .map(|o| o.json.clone())
    }

    /// Rewrites a cluster's `mapRoles` in the store (a writer outside the API, atomic),
    /// bumping the resourceVersion.
    pub fn edit_map_roles(&self, cluster: &str, edit: impl FnOnce(&mut Vec<Value>)) {
        let shared = self.sb.shared();
        let mut st = lock(&shared);
        let Some(c) = st.clusters.get_mut(cluster) else {
            return;
        };
        c.resource_version += 1;
        let rv = c.resource_version.to_string();
        let Some(obj) = c.objects.get_mut(&aws_auth_key()) else {
            return;
        };
        let mut roles = parse_roles(obj.json["data"]["mapRoles"].as_str().unwrap_or_default());
        edit(&mut roles);
        obj.json["data"]["mapRoles"] =
            Value::String(serde_saphyr::to_string(&roles).unwrap_or_default());
        obj.json["metadata"]["resourceVersion"] = Value::String(rv);
    }

    /// The access entries' principals on a cluster.
    pub fn access_entries(&self, cluster: &str) -> BTreeSet<String> {
        let shared = self.sb.shared();
        let st = lock(&shared);
        st.clusters
            .get(cluster)
            .map(|c| c.access_entries.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// How often `service`/`operation` was called, by service.
    pub fn calls(&self) -> Vec<(String, String, u64)> {
        lock(&self.sb.shared())
            .calls
            .iter()
            .map(|((s, o), n)| (s.clone(), o.clone(), *n))
            .collect()
    }

    pub fn reset_calls(&self) {
        lock(&self.sb.shared()).calls.clear();
    }

    /// Applies a `/_sandbox/faults` body through the sandbox's own parser.
    pub fn fault(&self, body: &str) -> Result<(), SoakError> {
        let req: eks_sandbox::aws::control::FaultRequest =
            serde_json::from_str(body).map_err(|e| SoakError::Sandbox(format!("{body}: {e}")))?;
        self.sb
            .apply_faults(&req)
            .map_err(|e| SoakError::Sandbox(format!("{body}: {e}")))
    }

    /// A kube client on `cluster` as the operator (the clusters' creator, cluster-admin).
    pub async fn kube(&self, cluster: &str) -> Result<kube::Client, SoakError> {
        let c = self
            .eks
            .describe_cluster()
            .name(cluster)
            .send()
            .await
            .map_err(|e| aws_err("DescribeCluster", e))?
            .cluster
            .ok_or_else(|| SoakError::Sandbox("no cluster".into()))?;
        let pem = base64::engine::general_purpose::STANDARD
            .decode(
                c.certificate_authority
                    .and_then(|a| a.data)
                    .unwrap_or_default(),
            )
            .map_err(|e| SoakError::Sandbox(format!("CA: {e}")))?;
        let (ak, sk) = self.sb.operator_credentials();
        let token = eks_access_sync::adapters::kube::token::eks_token(
            &Credentials::new(ak, sk, None, None, "operator"),
            &self.sb.region(),
            cluster,
            Some(&self.sb.aws_endpoint()),
            SystemTime::now(),
        )
        .map_err(|e| SoakError::Sandbox(format!("token: {e}")))?;
        eks_access_sync::adapters::kube::client::kube_client(
            &c.endpoint.unwrap_or_default(),
            &pem,
            &token,
        )
        .map_err(|e| SoakError::Sandbox(format!("kube client: {e}")))
    }

    pub async fn shutdown(self) {
        self.sb.shutdown().await;
    }
}

fn tag() -> Result<aws_sdk_iam::types::Tag, SoakError> {
    aws_sdk_iam::types::Tag::builder()
        .key(ADMIN_TAG.0)
        .value(ADMIN_TAG.1)
        .build()
        .map_err(|e| SoakError::Sandbox(format!("tag: {e}")))
}

pub fn parse_roles(text: &str) -> Vec<Value> {
    serde_saphyr::from_str::<Option<Vec<Value>>>(text)
        .ok()
        .flatten()
        .unwrap_or_default()
}

/// User ARNs in the statement eks-access-sync owns.
pub fn managed_principals(policy: &Value) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for s in policy["Statement"].as_array().into_iter().flatten() {
        if s["Sid"] != eks_access_sync::model::config::DEFAULT_TRUST_STATEMENT_SID {
            continue;
        }
        match &s["Principal"]["AWS"] {
            Value::String(a) => {
                out.insert(a.clone());
            }
            Value::Array(a) => out.extend(a.iter().filter_map(|v| v.as_str().map(str::to_owned))),
            _ => {}
        }
    }
    out
}

/// `events/NAME.json` with the sample user `dave` replaced by `user`.
pub fn event(repo: &Path, name: &str, user: &str) -> Result<Value, SoakError> {
    let path = repo.join("events").join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path)
        .map_err(|e| SoakError::Input(format!("{}: {e}", path.display())))?
        .replace("\"dave\"", &format!("\"{user}\""))
        .replace("user/dave\"", &format!("user/{user}\""));
    serde_json::from_str(&text).map_err(|e| SoakError::Input(format!("{}: {e}", path.display())))
}

//! The sandbox world the bench runs against: the admin role, users, clusters,
//! latency and call counters (read in-process from the sandbox's shared state).

use std::collections::BTreeMap;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use aws_sdk_eks::types::{AuthenticationMode, CreateAccessConfigRequest, VpcConfigRequest};
use aws_sdk_iam::types::Tag;
use eks_sandbox::aws::{Sandbox, SandboxOptions, lock, seed::admin_trust_policy};
use eks_sandbox::state::{ACCOUNT_ID, StoredObject};
use futures::StreamExt;
use serde_json::Value;

use crate::BenchError;

pub const ADMIN_ROLE: &str = "eks-admin";
/// The trust-policy lease table, shaped as `infra/template.yaml` declares it: the
/// bench runs the functions as deployed, lease included.
pub const LOCK_TABLE: &str = eks_sandbox::aws::seed::LOCK_TABLE;
pub const ADMIN_TAG: (&str, &str) = ("eks-access", "admin");
pub const CLUSTER_TAG: (&str, &str) = ("eks-access-sync/managed", "true");
/// Requests at once when the bench builds its world (users, clusters).
pub const SEED_CONCURRENCY: usize = 16;

fn aws_err(what: &str, e: impl std::error::Error) -> BenchError {
    BenchError::Aws(format!(
        "{what}: {}",
        aws_sdk_iam::error::DisplayErrorContext(e)
    ))
}

/// Calls by (service, operation); every cluster's Kubernetes calls folded into `k8s`.
pub type Calls = BTreeMap<(String, String), u64>;

pub fn user_arn(name: &str) -> String {
    format!("arn:aws:iam::{ACCOUNT_ID}:user/{name}")
}

pub fn cluster_name(i: usize) -> String {
    format!("bench-{i:03}")
}

pub struct World {
    pub sb: Sandbox,
    pub sdk: SdkConfig,
    pub iam: aws_sdk_iam::Client,
    pub eks: aws_sdk_eks::Client,
    pub clusters: usize,
    /// The sandbox's own runtime (its threads): the services it stands in for are
    /// not in the measured process, so their tasks do not queue with the engine's.
    /// Last, so that it outlives the sandbox.
    _rt: SandboxRuntime,
}

/// A runtime given up without blocking when dropped (the bench drops it on its own
/// runtime, which may not block on another).
struct SandboxRuntime(Option<tokio::runtime::Runtime>);

impl SandboxRuntime {
    fn new() -> Result<Self, BenchError> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("sandbox")
            .enable_all()
            .build()
            .map_err(|e| BenchError::Sandbox(e.to_string()))?;
        Ok(SandboxRuntime(Some(rt)))
    }

    /// The sandbox, started on this runtime: its servers (and the Kubernetes API
    /// servers its `CreateCluster` starts) run there.
    async fn start(&self) -> Result<Sandbox, BenchError> {
        let rt = self
            .0
            .as_ref()
            .ok_or_else(|| BenchError::Sandbox("the sandbox runtime is gone".into()))?;
        rt.spawn(Sandbox::start(SandboxOptions::default()))
            .await
            .map_err(|e| BenchError::Sandbox(e.to_string()))?
            .map_err(|e| BenchError::Sandbox(e.to_string()))
    }
}

impl Drop for SandboxRuntime {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

impl World {
    pub async fn start() -> Result<World, BenchError> {
        let rt = SandboxRuntime::new()?;
        let sb = rt.start().await?;
        let (ak, sk) = sb.operator_credentials();
        let sdk = sdk_config(
            &sb,
            Credentials::new(ak, sk, None, None, "bench"),
            &sb.region(),
        )
        .await;
        let iam = aws_sdk_iam::Client::new(&sdk);
        let eks = aws_sdk_eks::Client::new(&sdk);
        iam.create_role()
            .role_name(ADMIN_ROLE)
            .assume_role_policy_document(admin_trust_policy())
            .max_session_duration(3600)
            .send()
            .await
            .map_err(|e| aws_err("CreateRole", e))?;
        sb.create_lock_table()
            .await
            .map_err(|e| BenchError::Sandbox(e.to_string()))?;
        Ok(World {
            _rt: rt,
            sb,
            sdk,
            iam,
            eks,
            clusters: 0,
        })
    }

    /// The environment of the functions and the CLI: configuration, sandbox
    /// endpoints and the operator's credentials.
    pub fn env(&self) -> Vec<(String, String)> {
        let (ak, sk) = self.sb.operator_credentials();
        let ep = self.sb.aws_endpoint();
        let region = self.sb.region();
        [
            ("ADMIN_ROLE_NAME", ADMIN_ROLE.to_string()),
            ("ADMIN_USER_TAG", format!("{}={}", ADMIN_TAG.0, ADMIN_TAG.1)),
            (
                "CLUSTER_TAG",
                format!("{}={}", CLUSTER_TAG.0, CLUSTER_TAG.1),
            ),
            ("AWS_ENDPOINT_URL_IAM", ep.clone()),
            ("AWS_ENDPOINT_URL_STS", ep.clone()),
            ("AWS_ENDPOINT_URL_EKS", ep.clone()),
            ("AWS_ENDPOINT_URL_DYNAMODB", ep),
            ("TRUST_LOCK_TABLE", LOCK_TABLE.to_string()),
            ("AWS_REGION", region.clone()),
            ("AWS_DEFAULT_REGION", region),
            ("AWS_ACCESS_KEY_ID", ak),
            ("AWS_SECRET_ACCESS_KEY", sk),
            ("AWS_EC2_METADATA_DISABLED", "true".to_string()),
            ("AWS_PAGER", String::new()),
            ("RUST_LOG", "warn".to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    pub fn set_latency(&self, ms: u64) {
        lock(&self.sb.shared()).global_faults.latency_ms = ms;
    }

    pub fn reset_calls(&self) {
        lock(&self.sb.shared()).calls.clear();
    }

    pub fn calls(&self) -> Calls {
        let mut out = Calls::new();
        for ((s, o), n) in &lock(&self.sb.shared()).calls {
            let service = if s.starts_with("k8s:") { "k8s" } else { s };
            *out.entry((service.to_string(), o.clone())).or_default() += n;
        }
        out
    }

    /// Creates `user-00000` … (`total`), the first `admins` with the admin tag.
    pub async fn seed_users(&self, total: usize, admins: usize) -> Result<(), BenchError> {
        let results: Vec<Result<(), BenchError>> = futures::stream::iter(0..total)
            .map(|i| {
                let name = format!("user-{i:05}");
                let tag = if i < admins {
                    ADMIN_TAG
                } else {
                    ("team", "engineering")
                };
                async move { self.create_user(&name, tag).await }
            })
            .buffer_unordered(SEED_CONCURRENCY)
            .collect()
            .await;
        results.into_iter().collect()
    }

    pub async fn create_user(&self, name: &str, tag: (&str, &str)) -> Result<(), BenchError> {
        let tag = Tag::builder()
            .key(tag.0)
            .value(tag.1)
            .build()
            .map_err(|e| aws_err("Tag", e))?;
        self.iam
            .create_user()
            .user_name(name)
            .tags(tag)
            .send()
            .await
            .map_err(|e| aws_err("CreateUser", e))?;
        Ok(())
    }

    pub async fn delete_user(&self, name: &str) -> Result<(), BenchError> {
        self.iam
            .delete_user()
            .user_name(name)
            .send()
            .await
            .map_err(|e| aws_err("DeleteUser", e))?;
        Ok(())
    }

    /// Brings the number of tagged CONFIG_MAP clusters up to `n`.
    pub async fn ensure_clusters(&mut self, n: usize) -> Result<(), BenchError> {
        let names: Vec<String> = (self.clusters..n).map(cluster_name).collect();
        create_clusters(&self.eks, ACCOUNT_ID, &names).await?;
        self.clusters = self.clusters.max(n);
        Ok(())
    }

    /// An SDK configuration on the sandbox as `creds`, signing for `region`.
    pub async fn sdk_as(&self, creds: Credentials, region: &str) -> SdkConfig {
        sdk_config(&self.sb, creds, region).await
    }

    /// Lists every user with tags the way the engine does (GetAccountAuthorizationDetails,
    /// pages of 1,000); returns (users, pages).
    pub async fn list_all_users(&self) -> Result<(usize, usize), BenchError> {
        let mut marker: Option<String> = None;
        let (mut users, mut pages) = (0, 0);
        loop {
            let out = self
                .iam
                .get_account_authorization_details()
                .filter(aws_sdk_iam::types::EntityType::User)
                .max_items(1000)
                .set_marker(marker.take())
                .send()
                .await
                .map_err(|e| aws_err("GetAccountAuthorizationDetails", e))?;
            pages += 1;
            users += out.user_detail_list().len();
            match out.marker() {
                Some(m) if out.is_truncated() => marker = Some(m.to_string()),
                _ => return Ok((users, pages)),
            }
        }
    }

    /// The admin role's trust policy, decoded.
    pub async fn trust_policy(&self) -> Result<String, BenchError> {
        let out = self
            .iam
            .get_role()
            .role_name(ADMIN_ROLE)
            .send()
            .await
            .map_err(|e| aws_err("GetRole", e))?;
        let raw = out
            .role()
            .and_then(|r| r.assume_role_policy_document())
            .unwrap_or_default();
        Ok(percent_encoding::percent_decode_str(raw)
            .decode_utf8_lossy()
            .to_string())
    }

    pub async fn set_trust_policy(&self, doc: &str) -> Result<(), BenchError> {
        self.iam
            .update_assume_role_policy()
            .role_name(ADMIN_ROLE)
            .policy_document(doc)
            .send()
            .await
            .map_err(|e| aws_err("UpdateAssumeRolePolicy", e))?;
        Ok(())
    }

    /// `data` of a cluster's aws-auth ConfigMap, if it has one.
    pub fn aws_auth_data(&self, cluster: &str) -> Option<Value> {
        let shared = self.sb.shared();
        let st = lock(&shared);
        let c = st.clusters.get(cluster)?;
        let key = (
            "api/v1".to_string(),
            "configmaps".to_string(),
            "kube-system".to_string(),
            "aws-auth".to_string(),
        );
        c.objects.get(&key).map(|o| o.json["data"].clone())
    }

    /// Every created cluster's aws-auth as stored (`None`: it has none), to put back
    /// with [`World::restore_aws_auth`].
    pub fn snapshot_aws_auth(&self) -> Vec<(String, Option<StoredObject>)> {
        let keys: Vec<String> = (0..self.clusters).map(cluster_name).collect();
        self.snapshot_aws_auth_of(&keys)
    }

    /// The aws-auth of the clusters stored under `keys` (`state::cluster_key`: a hub
    /// cluster's name, `account/name` in a member account), as
    /// [`World::snapshot_aws_auth`].
    pub fn snapshot_aws_auth_of(&self, keys: &[String]) -> Vec<(String, Option<StoredObject>)> {
        let shared = self.sb.shared();
        let st = lock(&shared);
        keys.iter()
            .map(|key| {
                let obj = st
                    .clusters
                    .get(key)
                    .and_then(|c| c.objects.get(&aws_auth_key()))
                    .cloned();
                (key.clone(), obj)
            })
            .collect()
    }

    /// Puts back the aws-auth objects of a [`World::snapshot_aws_auth`].
    pub fn restore_aws_auth(&self, snapshot: &[(String, Option<StoredObject>)]) {
        let shared = self.sb.shared();
        let mut st = lock(&shared);
        for (name, obj) in snapshot {
            if let Some(c) = st.clusters.get_mut(name) {
                match obj {
                    Some(o) => {
                        c.objects.insert(aws_auth_key(), o.clone());
                    }
                    None => {
                        c.objects.remove(&aws_auth_key());
                    }
                }
            }
        }
    }

    /// Deletes `cluster`'s aws-auth (section 1 leaves cluster 0 as section 3 expects
    /// a new cluster: without one).
    pub fn remove_aws_auth(&self, cluster: &str) {
        let shared = self.sb.shared();
        let mut st = lock(&shared);
        if let Some(c) = st.clusters.get_mut(cluster) {
            c.objects.remove(&(
                "api/v1".to_string(),
                "configmaps".to_string(),
                "kube-system".to_string(),
                "aws-auth".to_string(),
            ));
        }
    }
}

/// An SDK configuration on `sb`'s endpoint as `creds`, signing for `region`.
async fn sdk_config(sb: &Sandbox, creds: Credentials, region: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(region.to_string()))
        .endpoint_url(sb.aws_endpoint())
        .credentials_provider(creds)
        .load()
        .await
}

/// Creates the tagged CONFIG_MAP clusters `names` through the EKS API, as `eks`'s
/// caller (their creator, so cluster-admin), in its signing region and its account
/// `account` (the cluster role's ARN names it); [`SEED_CONCURRENCY`] at once.
pub async fn create_clusters(
    eks: &aws_sdk_eks::Client,
    account: &str,
    names: &[String],
) -> Result<(), BenchError> {
    let role_arn = format!("arn:aws:iam::{account}:role/eks-cluster-role");
    let results: Vec<Result<(), BenchError>> = futures::stream::iter(names)
        .map(|name| {
            let req = eks
                .create_cluster()
                .name(name)
                .role_arn(&role_arn)
                .resources_vpc_config(VpcConfigRequest::builder().subnet_ids("subnet-1").build())
                .tags(CLUSTER_TAG.0, CLUSTER_TAG.1)
                .access_config(
                    CreateAccessConfigRequest::builder()
                        .authentication_mode(AuthenticationMode::ConfigMap)
                        .build(),
                );
            async move {
                req.send()
                    .await
                    .map_err(|e| aws_err(&format!("CreateCluster {name}"), e))?;
                Ok(())
            }
        })
        .buffer_unordered(SEED_CONCURRENCY)
        .collect()
        .await;
    results.into_iter().collect()
}

/// The key of the aws-auth ConfigMap in a sandbox cluster's store.
fn aws_auth_key() -> (String, String, String, String) {
    (
        "api/v1".to_string(),
        "configmaps".to_string(),
        "kube-system".to_string(),
        "aws-auth".to_string(),
    )
}

/// Sum of calls whose service is `service`.
pub fn total(calls: &Calls, service: &str) -> u64 {
    calls
        .iter()
        .filter(|((s, _), _)| s == service)
        .map(|(_, n)| n)
        .sum()
}

/// Writes: IAM trust-policy updates, EKS access-entry changes, Kubernetes PUT/PATCH/POST/DELETE.
pub fn writes(calls: &Calls) -> u64 {
    calls
        .iter()
        .filter(|((s, o), _)| match s.as_str() {
            "iam" => o == "UpdateAssumeRolePolicy",
            "eks" => {
                o.starts_with("Create")
                    || o.starts_with("Delete")
                    || o.starts_with("Associate")
                    || o.starts_with("Disassociate")
                    || o.starts_with("Update")
            }
            "k8s" => ["PUT", "PATCH", "POST", "DELETE"]
                .iter()
                .any(|m| o.starts_with(m) && !o.contains("selfsubject")),
            _ => false,
        })
        .map(|(_, n)| n)
        .sum()
}

/// `service op×n, …` for a table cell.
pub fn describe(calls: &Calls) -> String {
    calls
        .iter()
        .map(|((s, o), n)| format!("{s} {o}×{n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn calls(list: &[(&str, &str, u64)]) -> Calls {
        list.iter()
            .map(|(s, o, n)| ((s.to_string(), o.to_string()), *n))
            .collect()
    }

    #[test]
    fn writes_count_only_mutations() {
        let c = calls(&[
            ("iam", "GetRole", 1),
            ("iam", "UpdateAssumeRolePolicy", 1),
            ("eks", "DescribeCluster", 10),
            ("eks", "CreateAccessEntry", 2),
            ("k8s", "GET configmaps", 10),
            ("k8s", "PUT configmaps", 3),
            ("k8s", "POST selfsubjectreviews", 5),
        ]);
        assert_eq!(writes(&c), 6);
        assert_eq!(total(&c, "k8s"), 18);
        let read_only = calls(&[("iam", "GetRole", 1), ("k8s", "GET configmaps", 4)]);
        assert_eq!(writes(&read_only), 0);
        assert_eq!(describe(&read_only), "iam GetRole×1, k8s GET configmaps×4");
    }
}

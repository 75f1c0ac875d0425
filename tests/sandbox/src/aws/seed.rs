//! The README's example world.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::json;
use time::macros::format_description;

use super::eks::{NewCluster, create_cluster_record};
use super::iam::register_user;
use super::{ClusterExtra, FrontDoor, SandboxError, canonical_arn, lock, request_id};
use crate::state::{ACCOUNT_ID, AuthMode, StoredObject};

/// What the seed made (or found already there).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SeedReport {
    pub admin_role_arn: String,
    /// The trust-policy lease's DynamoDB table ([`LOCK_TABLE`]): what
    /// `TRUST_LOCK_TABLE` names.
    pub lock_table: String,
    pub node_role_arn: String,
    pub users: Vec<String>,
    pub clusters: Vec<String>,
}

/// The DynamoDB table of the trust-policy lease, shaped like the template's
/// `TrustLockTable`. Not the name the e2e lease tests create for themselves
/// (`eks-access-sync-trust-lock`), so that they can still create theirs after a seed.
pub const LOCK_TABLE: &str = "eks-sandbox-trust-lock";

/// The trust policy of `eks-admin` before eks-access-sync touches it: one
/// statement we do not own.
pub fn admin_trust_policy() -> String {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "BreakGlass",
            "Effect": "Allow",
            "Principal": {"AWS": format!("arn:aws:iam::{ACCOUNT_ID}:root")},
            "Action": "sts:AssumeRole",
            "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "true"}}
        }]
    })
    .to_string()
}

/// aws-auth `mapRoles` for the node role, exactly as EKS writes it.
pub fn node_role_map_roles() -> String {
    format!(
        "- groups:\n  - system:bootstrappers\n  - system:nodes\n  rolearn: arn:aws:iam::{ACCOUNT_ID}:role/eks-node-role\n  username: system:node:{{{{EC2PrivateDNSName}}}}\n"
    )
}

async fn ensure_role(
    fd: &FrontDoor,
    name: &str,
    trust: &str,
    description: &str,
) -> Result<String, SandboxError> {
    let r = fd
        .moto
        .call(
            "iam",
            "CreateRole",
            &[
                ("RoleName", name),
                ("Path", "/"),
                ("AssumeRolePolicyDocument", trust),
                ("MaxSessionDuration", "3600"),
                ("Description", description),
            ],
        )
        .await?;
    if !r.ok() && !r.text().contains("EntityAlreadyExists") {
        return Err(SandboxError::Moto(format!(
            "CreateRole {name}: {}",
            r.text()
        )));
    }
    Ok(format!("arn:aws:iam::{ACCOUNT_ID}:role/{name}"))
}

async fn ensure_user(
    fd: &FrontDoor,
    name: &str,
    tags: &[(&str, &str)],
) -> Result<String, SandboxError> {
    let mut params: Vec<(String, String)> = vec![("UserName".into(), name.into())];
    for (i, (k, v)) in tags.iter().enumerate() {
        params.push((format!("Tags.member.{}.Key", i + 1), (*k).into()));
        params.push((format!("Tags.member.{}.Value", i + 1), (*v).into()));
    }
    let refs: Vec<(&str, &str)> = params
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let r = fd.moto.call("iam", "CreateUser", &refs).await?;
    if r.ok() {
        register_user(fd, &r.text());
    } else if !r.text().contains("EntityAlreadyExists") {
        return Err(SandboxError::Moto(format!(
            "CreateUser {name}: {}",
            r.text()
        )));
    }
    Ok(format!("arn:aws:iam::{ACCOUNT_ID}:user/{name}"))
}

/// Creates [`LOCK_TABLE`] in moto (key `lockId` S, on demand, TTL on `expiresAt`);
/// a table already there is kept.
pub(crate) async fn ensure_lock_table(fd: &FrontDoor) -> Result<String, SandboxError> {
    let create = json!({
        "TableName": LOCK_TABLE,
        "BillingMode": "PAY_PER_REQUEST",
        "KeySchema": [{"AttributeName": "lockId", "KeyType": "HASH"}],
        "AttributeDefinitions": [{"AttributeName": "lockId", "AttributeType": "S"}],
    });
    let r = fd
        .moto
        .call_json(
            "dynamodb",
            "DynamoDB_20120810.CreateTable",
            &fd.region,
            &create,
        )
        .await?;
    if !r.ok() && !r.text().contains("ResourceInUseException") {
        return Err(SandboxError::Moto(format!(
            "CreateTable {LOCK_TABLE}: {}",
            r.text()
        )));
    }
    let ttl = json!({
        "TableName": LOCK_TABLE,
        "TimeToLiveSpecification": {"AttributeName": "expiresAt", "Enabled": true},
    });
    let r = fd
        .moto
        .call_json(
            "dynamodb",
            "DynamoDB_20120810.UpdateTimeToLive",
            &fd.region,
            &ttl,
        )
        .await?;
    // DynamoDB (unlike moto) refuses to enable a TTL twice.
    if !r.ok() && !r.text().contains("already enabled") {
        return Err(SandboxError::Moto(format!(
            "UpdateTimeToLive {LOCK_TABLE}: {}",
            r.text()
        )));
    }
    Ok(LOCK_TABLE.to_string())
}

fn put_aws_auth(fd: &FrontDoor, cluster: &str, data: BTreeMap<&str, String>) {
    let ts = time::OffsetDateTime::now_utc()
        .format(format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second]Z"
        ))
        .unwrap_or_default();
    let mut st = lock(&fd.shared);
    let Some(c) = st.clusters.get_mut(cluster) else {
        return;
    };
    let key = (
        "api/v1".to_string(),
        "configmaps".to_string(),
        "kube-system".to_string(),
        "aws-auth".to_string(),
    );
    if c.objects.contains_key(&key) {
        return;
    }
    c.resource_version += 1;
    let obj = json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "aws-auth",
            "namespace": "kube-system",
            "uid": request_id(),
            "resourceVersion": c.resource_version.to_string(),
            "creationTimestamp": ts,
        },
        "data": data,
    });
    c.objects.insert(key, StoredObject { json: obj });
}

/// Namespaces the seed adds to the managed clusters (`prod`, `staging`) besides
/// the four every cluster has.
pub const SEED_NAMESPACES: [&str; 2] = ["team-a", "team-b-web"];

/// Creates the example world; seeding twice is not an error.
pub async fn seed(fd: &FrontDoor) -> Result<SeedReport, SandboxError> {
    let admin_role_arn = ensure_role(
        fd,
        "eks-admin",
        &admin_trust_policy(),
        "Cluster-admin role managed by eks-access-sync",
    )
    .await?;
    let node_trust = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
    .to_string();
    let node_role_arn = ensure_role(fd, "eks-node-role", &node_trust, "EKS worker nodes").await?;
    let users = vec![
        ensure_user(fd, "alice", &[("eks-access", "admin")]).await?,
        ensure_user(fd, "bob", &[]).await?,
        ensure_user(fd, "carol", &[("team", "data")]).await?,
    ];
    let lock_table = ensure_lock_table(fd).await?;
    let creator = fd
        .operator()
        .map(|c| canonical_arn(&c.principal))
        .unwrap_or_default();
    let managed = BTreeMap::from([("eks-access-sync/managed".to_string(), "true".to_string())]);
    let specs = [
        ("prod", AuthMode::ConfigMap, managed.clone()),
        ("staging", AuthMode::ApiAndConfigMap, managed),
        ("legacy", AuthMode::ConfigMap, BTreeMap::new()),
    ];
    let region = fd.region.clone();
    for (name, mode, tags) in specs {
        let exists = lock(&fd.shared).clusters.contains_key(name);
        if !exists {
            let extra = ClusterExtra {
                role_arn: format!("arn:aws:iam::{ACCOUNT_ID}:role/eks-cluster-role"),
                bootstrap_admin: true,
            };
            let spec = NewCluster {
                name,
                creator_arn: &creator,
                mode,
                tags,
                extra,
                version: "1.33",
            };
            create_cluster_record(fd, &region, spec).await?;
        }
    }
    {
        // Team namespaces on the managed clusters, for namespace-scoped tiers.
        let mut st = lock(&fd.shared);
        for name in ["prod", "staging"] {
            if let Some(c) = st.clusters.get_mut(name) {
                for ns in SEED_NAMESPACES {
                    crate::kube::seed_namespace(c, ns);
                }
            }
        }
    }
    put_aws_auth(
        fd,
        "prod",
        BTreeMap::from([("mapRoles", node_role_map_roles())]),
    );
    put_aws_auth(
        fd,
        "legacy",
        BTreeMap::from([
            ("mapRoles", node_role_map_roles()),
            (
                "mapUsers",
                format!(
                    "- userarn: arn:aws:iam::{ACCOUNT_ID}:user/carol\n  username: carol\n  groups:\n  - legacy-viewers\n"
                ),
            ),
        ]),
    );
    Ok(SeedReport {
        admin_role_arn,
        lock_table,
        node_role_arn,
        users,
        clusters: vec!["prod".into(), "staging".into(), "legacy".into()],
    })
}

//! The README's example world ([`seed`], in the hub account) and a member
//! account of the multi-account setup ([`seed_member`]).

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::json;
use time::macros::format_description;

use super::eks::{NewCluster, Place, cluster_admin_entry, create_cluster_record};
use super::iam::{principal_id, register_user};
use super::{
    AccountCredentials, ClusterExtra, FrontDoor, SandboxError, canonical_arn, lock, now_secs,
    request_id,
};
use crate::state::{ACCOUNT_ID, AuthMode, ORGANIZATION_ID, StoredObject, cluster_key};

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

/// aws-auth `mapRoles` for the hub's node role, exactly as EKS writes it.
pub fn node_role_map_roles() -> String {
    node_role_map_roles_in(ACCOUNT_ID)
}

/// aws-auth `mapRoles` for the node role of `account`, exactly as EKS writes it.
pub fn node_role_map_roles_in(account: &str) -> String {
    format!(
        "- groups:\n  - system:bootstrappers\n  - system:nodes\n  rolearn: arn:aws:iam::{account}:role/eks-node-role\n  username: system:node:{{{{EC2PrivateDNSName}}}}\n"
    )
}

async fn ensure_role(
    fd: &FrontDoor,
    account: &str,
    name: &str,
    trust: &str,
    description: &str,
) -> Result<String, SandboxError> {
    let r = fd
        .moto
        .call(
            account,
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
    Ok(format!("arn:aws:iam::{account}:role/{name}"))
}

async fn ensure_user(
    fd: &FrontDoor,
    account: &str,
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
    let r = fd.moto.call(account, "iam", "CreateUser", &refs).await?;
    if r.ok() {
        register_user(fd, &r.text());
    } else if !r.text().contains("EntityAlreadyExists") {
        return Err(SandboxError::Moto(format!(
            "CreateUser {name}: {}",
            r.text()
        )));
    }
    Ok(format!("arn:aws:iam::{account}:user/{name}"))
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

/// Puts an aws-auth ConfigMap holding `data` on the cluster keyed `cluster`
/// ([`cluster_key`]) unless it has one.
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
        ACCOUNT_ID,
        "eks-admin",
        &admin_trust_policy(),
        "Cluster-admin role managed by eks-access-sync",
    )
    .await?;
    let node_trust = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
    .to_string();
    let node_role_arn = ensure_role(
        fd,
        ACCOUNT_ID,
        "eks-node-role",
        &node_trust,
        "EKS worker nodes",
    )
    .await?;
    let users = vec![
        ensure_user(fd, ACCOUNT_ID, "alice", &[("eks-access", "admin")]).await?,
        ensure_user(fd, ACCOUNT_ID, "bob", &[]).await?,
        ensure_user(fd, ACCOUNT_ID, "carol", &[("team", "data")]).await?,
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
            let at = Place {
                region: &region,
                account: ACCOUNT_ID,
            };
            create_cluster_record(fd, at, spec).await?;
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

/// The hub's function role [`seed_member`] creates when it is missing.
pub const HUB_FUNCTION_ROLE: &str = "eks-access-sync-function";

/// The member role's default name (infra/member.yaml's `MemberRoleName`).
pub const MEMBER_ROLE: &str = "eks-access-sync-member";

/// Kubernetes username and group the member role gets on the member's managed
/// clusters (what `eks-access-sync bootstrap` names the functions' identity).
pub const MEMBER_K8S_IDENTITY: &str = "eks-access-sync";

/// What [`seed_member`] builds (`POST /_sandbox/seed-member`).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MemberSeed {
    /// The member account (12 digits), created if needed.
    pub account_id: String,
    /// The role the member role trusts; default the hub's
    /// `arn:aws:iam::123456789012:role/eks-access-sync-function` (created when
    /// it is a hub role that does not exist).
    pub hub_function_role_arn: Option<String>,
    /// Default [`MEMBER_ROLE`].
    pub member_role_name: Option<String>,
    /// Prefix of the member's cluster names; default `member`.
    pub cluster_prefix: Option<String>,
}

/// What [`seed_member`] made (or found).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MemberSeedReport {
    /// The member account's administrator (`sandbox-operator`), creator of its clusters.
    pub admin: AccountCredentials,
    pub organization_id: String,
    pub hub_function_role_arn: String,
    pub member_role_arn: String,
    pub node_role_arn: String,
    /// `<prefix>-prod` (CONFIG_MAP) and `<prefix>-api` (API), tagged
    /// `eks-access-sync/managed=true`.
    pub managed_clusters: Vec<String>,
    /// `<prefix>-untagged` (API).
    pub unmanaged_clusters: Vec<String>,
}

/// The function role's inline policy: everything (as the hub's function role in
/// the e2e tests acts as the operator), and by name `sts:AssumeRole` on the member
/// role of every account.
fn function_policy(member_role: &str) -> String {
    json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "*", "Resource": "*"},
        {"Sid": "AssumeMemberRoles", "Effect": "Allow", "Action": "sts:AssumeRole",
         "Resource": format!("arn:aws:iam::*:role/{member_role}")}
    ]})
    .to_string()
}

/// The member role's trust policy: the hub's function role, inside the organization
/// (infra/member.yaml).
pub fn member_trust_policy(hub_function_role_arn: &str) -> String {
    json!({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow",
        "Principal": {"AWS": hub_function_role_arn},
        "Action": "sts:AssumeRole",
        "Condition": {"StringEquals": {"aws:PrincipalOrgID": ORGANIZATION_ID}}
    }]})
    .to_string()
}

/// The member role's inline policy: read the account's clusters, manage access entries.
fn member_policy() -> String {
    json!({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow",
        "Action": [
            "eks:ListClusters", "eks:DescribeCluster", "eks:ListTagsForResource",
            "eks:ListAccessEntries", "eks:DescribeAccessEntry", "eks:CreateAccessEntry",
            "eks:UpdateAccessEntry", "eks:DeleteAccessEntry", "eks:AssociateAccessPolicy",
            "eks:DisassociateAccessPolicy", "eks:ListAssociatedAccessPolicies"
        ],
        "Resource": "*"
    }]})
    .to_string()
}

async fn put_role_policy(
    fd: &FrontDoor,
    account: &str,
    role: &str,
    policy_name: &str,
    doc: &str,
) -> Result<(), SandboxError> {
    let r = fd
        .moto
        .call(
            account,
            "iam",
            "PutRolePolicy",
            &[
                ("RoleName", role),
                ("PolicyName", policy_name),
                ("PolicyDocument", doc),
            ],
        )
        .await?;
    if !r.ok() {
        return Err(SandboxError::Moto(format!(
            "PutRolePolicy {role}: {}",
            r.text()
        )));
    }
    Ok(())
}

/// Whether role `name` exists in `account`.
async fn role_exists(fd: &FrontDoor, account: &str, name: &str) -> Result<bool, SandboxError> {
    let r = fd
        .moto
        .call(account, "iam", "GetRole", &[("RoleName", name)])
        .await?;
    Ok(r.ok())
}

/// Builds member account `spec.account_id` as the multi-account setup has it
/// (idempotent):
/// * the account and its administrator `sandbox-operator` ([`FrontDoor::create_account`]);
/// * in the hub, the function role when `hub_function_role_arn` is a hub role that does
///   not exist: trust the hub account's root, inline policy [`function_policy`];
/// * the member role (path `/`): trust [`member_trust_policy`], inline policy
///   [`member_policy`]; and the member's `eks-node-role`;
/// * clusters created by the member's administrator (so it is their creator and
///   cluster-admin): `<prefix>-prod` (CONFIG_MAP, aws-auth holding the node role and the
///   member role as [`MEMBER_K8S_IDENTITY`] in `system:masters`), `<prefix>-api` (API, an
///   access entry for the member role with `AmazonEKSClusterAdminPolicy`, besides the
///   creator's own entry, which the tool must leave alone), both tagged
///   `eks-access-sync/managed=true` and with the seed's team namespaces, and
///   `<prefix>-untagged` (API, untagged).
pub async fn seed_member(
    fd: &FrontDoor,
    spec: &MemberSeed,
) -> Result<MemberSeedReport, SandboxError> {
    let account = spec.account_id.as_str();
    if account == ACCOUNT_ID {
        return Err(SandboxError::Aws {
            code: "ValidationError".into(),
            message: "the hub account cannot be seeded as a member".into(),
        });
    }
    let admin = fd.create_account(account).await?;
    let member_role = spec.member_role_name.as_deref().unwrap_or(MEMBER_ROLE);
    let prefix = spec.cluster_prefix.as_deref().unwrap_or("member");
    let hub_function_role_arn = spec
        .hub_function_role_arn
        .clone()
        .unwrap_or_else(|| format!("arn:aws:iam::{ACCOUNT_ID}:role/{HUB_FUNCTION_ROLE}"));
    if let Some((ACCOUNT_ID, "role", name)) = super::moto::iam_arn_parts(&hub_function_role_arn)
        && !role_exists(fd, ACCOUNT_ID, name).await?
    {
        let trust = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
            "Principal": {"AWS": format!("arn:aws:iam::{ACCOUNT_ID}:root")},
            "Action": "sts:AssumeRole"}]})
        .to_string();
        ensure_role(fd, ACCOUNT_ID, name, &trust, "eks-access-sync functions").await?;
        put_role_policy(
            fd,
            ACCOUNT_ID,
            name,
            "eks-access-sync-function",
            &function_policy(member_role),
        )
        .await?;
    }
    let member_role_arn = ensure_role(
        fd,
        account,
        member_role,
        &member_trust_policy(&hub_function_role_arn),
        "eks-access-sync member role",
    )
    .await?;
    put_role_policy(
        fd,
        account,
        member_role,
        "eks-access-sync-member",
        &member_policy(),
    )
    .await?;
    let node_trust = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
    .to_string();
    let node_role_arn = ensure_role(
        fd,
        account,
        "eks-node-role",
        &node_trust,
        "EKS worker nodes",
    )
    .await?;

    let creator = fd
        .operator_of(account)
        .map(|c| canonical_arn(&c.principal))
        .unwrap_or_default();
    let managed = BTreeMap::from([("eks-access-sync/managed".to_string(), "true".to_string())]);
    let (prod, api, untagged) = (
        format!("{prefix}-prod"),
        format!("{prefix}-api"),
        format!("{prefix}-untagged"),
    );
    let specs = [
        (prod.as_str(), AuthMode::ConfigMap, managed.clone()),
        (api.as_str(), AuthMode::Api, managed),
        (untagged.as_str(), AuthMode::Api, BTreeMap::new()),
    ];
    let region = fd.region.clone();
    let at = Place {
        region: &region,
        account,
    };
    for (name, mode, tags) in specs {
        if lock(&fd.shared)
            .clusters
            .contains_key(&cluster_key(account, name))
        {
            continue;
        }
        let spec = NewCluster {
            name,
            creator_arn: &creator,
            mode,
            tags,
            extra: ClusterExtra {
                role_arn: format!("arn:aws:iam::{account}:role/eks-cluster-role"),
                bootstrap_admin: true,
            },
            version: "1.33",
        };
        create_cluster_record(fd, at, spec).await?;
    }
    let member_mapping = format!(
        "- rolearn: {member_role_arn}\n  username: {MEMBER_K8S_IDENTITY}\n  groups:\n  - system:masters\n"
    );
    put_aws_auth(
        fd,
        &cluster_key(account, &prod),
        BTreeMap::from([(
            "mapRoles",
            format!("{}{member_mapping}", node_role_map_roles_in(account)),
        )]),
    );
    let member_role_id = principal_id(fd, &member_role_arn)
        .await
        .map_err(SandboxError::from)?;
    {
        let now = now_secs();
        let mut st = lock(&fd.shared);
        for name in [&prod, &api] {
            if let Some(c) = st.clusters.get_mut(&cluster_key(account, name)) {
                for ns in SEED_NAMESPACES {
                    crate::kube::seed_namespace(c, ns);
                }
            }
        }
        if let Some(c) = st.clusters.get_mut(&cluster_key(account, &api)) {
            c.access_entries
                .entry(member_role_arn.clone())
                .or_insert_with(|| {
                    cluster_admin_entry(
                        &member_role_arn,
                        MEMBER_K8S_IDENTITY.to_string(),
                        vec![MEMBER_K8S_IDENTITY.to_string()],
                        member_role_id,
                        now,
                    )
                });
        }
    }
    Ok(MemberSeedReport {
        admin,
        organization_id: ORGANIZATION_ID.to_string(),
        hub_function_role_arn,
        member_role_arn,
        node_role_arn,
        managed_clusters: vec![prod, api],
        unmanaged_clusters: vec![untagged],
    })
}

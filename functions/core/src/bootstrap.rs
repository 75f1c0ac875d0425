//! `bootstrap`: gives the functions' role access to one cluster, run once by a
//! cluster admin (issue 5 §2).
//!
//! - RBAC in `kube-system`: a Role allowing `get`, `update`, `patch` on the ConfigMap
//!   `aws-auth` only, bound to the group `eks-access-sync`.
//! - RBAC for the access tiers' bindings: a ClusterRole and ClusterRoleBinding
//!   `eks-access-sync:functions-rbac` for the same group allowing `list` namespaces
//!   (to expand namespace patterns); `get`, `list`, `create`, `update`, `delete`
//!   RoleBindings and ClusterRoleBindings; and `bind` on the ClusterRoles
//!   `cluster-admin`, `admin`, `edit`, `view` only (Kubernetes refuses a binding to
//!   rights its writer does not hold otherwise). Nothing else: the functions cannot
//!   edit a ClusterRole, nor bind any other one.
//! - `CONFIG_MAP` clusters: an aws-auth `mapRoles` entry for the role (path stripped,
//!   as the authenticator requires) with username and group `eks-access-sync`, made by
//!   the same editor as every other write (other entries are kept as they are).
//! - `API` / `API_AND_CONFIG_MAP` clusters: an access entry for the role (its full ARN:
//!   access entries accept paths) with `kubernetesGroups: [eks-access-sync]`.
//!
//! Every step is idempotent: a second run changes nothing.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::engine::{AwsAuthWrite, Error, RetryBudget, write_with_retry};
use crate::policy::awsauth::AwsAuth;
use crate::ports::AwsAuthObject;

use crate::adapters::kube::client::EksKubeConnector;
use crate::adapters::kube::store::{AWS_AUTH_NAME, K8sError, KUBE_SYSTEM, KubeAwsAuth};
use crate::model::arn::{ClusterName, RoleArn};
use crate::model::cluster::Place;
use crate::model::mapping::AdminMapping;
use crate::model::tiers::AccessPolicy;
use crate::{adapters::aws::eks::SdkEks, ports::EksApi};
use aws_types::SdkConfig;
use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, PostParams};

/// Kubernetes user and group of the functions' role; name of the Role and RoleBinding.
pub const FUNCTIONS_IDENTITY: &str = "eks-access-sync";

/// Name of the ClusterRole and ClusterRoleBinding of the tiers' RBAC rights.
pub const FUNCTIONS_RBAC: &str = "eks-access-sync:functions-rbac";

/// First pause after an aws-auth conflict during the bootstrap.
const BOOTSTRAP_BACKOFF: Duration = Duration::from_millis(200);

#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    #[error("EKS: {0}")]
    Eks(#[from] crate::adapters::aws::eks::EksError),
    #[error("Kubernetes: {0}")]
    K8s(#[from] K8sError),
    /// The aws-auth edit was refused, or its write kept failing.
    #[error(transparent)]
    AwsAuth(#[from] crate::engine::Error),
    #[error("cluster {0} has no endpoint yet (status {1}); retry when it is ACTIVE")]
    NotActive(String, String),
}

fn labels() -> BTreeMap<String, String> {
    BTreeMap::from([(
        "app.kubernetes.io/managed-by".to_owned(),
        FUNCTIONS_IDENTITY.to_owned(),
    )])
}

/// The Role: `get`, `update`, `patch` on `configmaps/aws-auth` in kube-system.
pub fn rbac_role() -> Role {
    Role {
        metadata: ObjectMeta {
            name: Some(FUNCTIONS_IDENTITY.to_owned()),
            namespace: Some(KUBE_SYSTEM.to_owned()),
            labels: Some(labels()),
            ..ObjectMeta::default()
        },
        rules: Some(vec![PolicyRule {
            api_groups: Some(vec![String::new()]),
            resources: Some(vec!["configmaps".to_owned()]),
            resource_names: Some(vec![AWS_AUTH_NAME.to_owned()]),
            verbs: vec!["get".to_owned(), "update".to_owned(), "patch".to_owned()],
            ..PolicyRule::default()
        }]),
    }
}

/// The RoleBinding of [`rbac_role`] to the group `eks-access-sync`.
pub fn rbac_binding() -> RoleBinding {
    RoleBinding {
        metadata: ObjectMeta {
            name: Some(FUNCTIONS_IDENTITY.to_owned()),
            namespace: Some(KUBE_SYSTEM.to_owned()),
            labels: Some(labels()),
            ..ObjectMeta::default()
        },
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".to_owned(),
            kind: "Role".to_owned(),
            name: FUNCTIONS_IDENTITY.to_owned(),
        },
        subjects: Some(vec![Subject {
            api_group: Some("rbac.authorization.k8s.io".to_owned()),
            kind: "Group".to_owned(),
            name: FUNCTIONS_IDENTITY.to_owned(),
            namespace: None,
        }]),
    }
}

fn rule(group: &str, resources: &[&str], names: &[&str], verbs: &[&str]) -> PolicyRule {
    let strings = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    PolicyRule {
        api_groups: Some(vec![group.to_owned()]),
        resources: Some(strings(resources)),
        resource_names: (!names.is_empty()).then(|| strings(names)),
        verbs: strings(verbs),
        ..PolicyRule::default()
    }
}

/// The ClusterRole of the tiers' bindings: list namespaces; read and write
/// RoleBindings and ClusterRoleBindings; bind the four ClusterRoles of the EKS
/// access policies (and no other).
pub fn rbac_cluster_role() -> ClusterRole {
    const RBAC_GROUP: &str = "rbac.authorization.k8s.io";
    let bindable: Vec<&str> = AccessPolicy::ALL.map(AccessPolicy::cluster_role).to_vec();
    ClusterRole {
        metadata: ObjectMeta {
            name: Some(FUNCTIONS_RBAC.to_owned()),
            labels: Some(labels()),
            ..ObjectMeta::default()
        },
        rules: Some(vec![
            rule("", &["namespaces"], &[], &["list"]),
            rule(
                RBAC_GROUP,
                &["rolebindings", "clusterrolebindings"],
                &[],
                &["get", "list", "create", "update", "delete"],
            ),
            rule(RBAC_GROUP, &["clusterroles"], &bindable, &["bind"]),
        ]),
        aggregation_rule: None,
    }
}

/// The ClusterRoleBinding of [`rbac_cluster_role`] to the group `eks-access-sync`.
pub fn rbac_cluster_binding() -> ClusterRoleBinding {
    let b = rbac_binding();
    ClusterRoleBinding {
        metadata: ObjectMeta {
            name: Some(FUNCTIONS_RBAC.to_owned()),
            labels: Some(labels()),
            ..ObjectMeta::default()
        },
        role_ref: RoleRef {
            kind: "ClusterRole".to_owned(),
            name: FUNCTIONS_RBAC.to_owned(),
            ..b.role_ref
        },
        subjects: b.subjects,
    }
}

/// The aws-auth entry of the functions' role.
pub fn functions_mapping(role_arn: &RoleArn) -> AdminMapping {
    AdminMapping {
        role_arn: role_arn.without_path(),
        username: FUNCTIONS_IDENTITY.to_owned(),
        groups: vec![FUNCTIONS_IDENTITY.to_owned()],
    }
}

/// Creates `obj`, or replaces it (at the version read) when it differs.
async fn upsert<K>(
    api: &Api<K>,
    mut obj: K,
    same: impl Fn(&K, &K) -> bool,
) -> Result<&'static str, K8sError>
where
    K: kube::Resource + Clone + serde::Serialize + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let name = obj.meta().name.clone().unwrap_or_default();
    match api.get_opt(&name).await? {
        None => {
            api.create(&PostParams::default(), &obj).await?;
            Ok("created")
        }
        Some(current) if same(&current, &obj) => Ok("unchanged"),
        Some(current) => {
            obj.meta_mut().resource_version = current.meta().resource_version.clone();
            api.replace(&name, &PostParams::default(), &obj).await?;
            Ok("updated")
        }
    }
}

async fn ensure_rbac(client: &kube::Client, out: &mut Vec<String>) -> Result<(), K8sError> {
    let roles: Api<Role> = Api::namespaced(client.clone(), KUBE_SYSTEM);
    let s = upsert(&roles, rbac_role(), |a, b| a.rules == b.rules).await?;
    out.push(format!("Role {KUBE_SYSTEM}/{FUNCTIONS_IDENTITY}: {s}"));
    let bindings: Api<RoleBinding> = Api::namespaced(client.clone(), KUBE_SYSTEM);
    let s = upsert(&bindings, rbac_binding(), |a, b| {
        a.role_ref == b.role_ref && a.subjects == b.subjects
    })
    .await?;
    out.push(format!(
        "RoleBinding {KUBE_SYSTEM}/{FUNCTIONS_IDENTITY}: {s}"
    ));
    let roles: Api<ClusterRole> = Api::all(client.clone());
    let s = upsert(&roles, rbac_cluster_role(), |a, b| a.rules == b.rules).await?;
    out.push(format!(
        "ClusterRole {FUNCTIONS_RBAC}: {s} (list namespaces; get, list, create, update, delete rolebindings and clusterrolebindings; bind clusterroles {})",
        AccessPolicy::ALL.map(AccessPolicy::cluster_role).join(", ")
    ));
    let bindings: Api<ClusterRoleBinding> = Api::all(client.clone());
    let s = upsert(&bindings, rbac_cluster_binding(), |a, b| {
        a.role_ref == b.role_ref && a.subjects == b.subjects
    })
    .await?;
    out.push(format!(
        "ClusterRoleBinding {FUNCTIONS_RBAC}: {s} (to group {FUNCTIONS_IDENTITY})"
    ));
    Ok(())
}

async fn ensure_aws_auth(
    store: &KubeAwsAuth,
    mapping: &AdminMapping,
) -> Result<String, BootstrapError> {
    let edit = |current: Option<&AwsAuthObject>| {
        let mut doc = AwsAuth::parse(current.map(|c| &c.data));
        doc.ensure_role(mapping).map_err(Error::from)?;
        if !doc.created() && doc.changes().is_empty() {
            return Ok(None);
        }
        Ok(Some(AwsAuthWrite {
            data: doc.into_data(),
            payload: (),
        }))
    };
    let budget = RetryBudget::new(BOOTSTRAP_BACKOFF);
    let written = write_with_retry(store, budget, true, edit, |_, _| {}).await?;
    Ok(match written {
        None => "aws-auth: functions' role already mapped".to_owned(),
        Some((current, ())) => format!(
            "aws-auth: {} mapped as {FUNCTIONS_IDENTITY} (group {FUNCTIONS_IDENTITY}){}",
            mapping.role_arn,
            if current.is_none() {
                "; ConfigMap created"
            } else {
                ""
            }
        ),
    })
}

/// Runs the bootstrap with the caller's credentials. Returns one line per step.
pub async fn bootstrap(
    sdk: &SdkConfig,
    region: &str,
    cluster: &ClusterName,
    role_arn: &RoleArn,
) -> Result<Vec<String>, BootstrapError> {
    let eks = SdkEks::new(sdk.clone());
    let at = &Place::hub(region);
    let info = eks.describe_cluster(at, cluster).await?;
    let Some(conn) = info.connection() else {
        return Err(BootstrapError::NotActive(
            cluster.to_string(),
            info.status.clone(),
        ));
    };
    let mut out = vec![format!(
        "cluster {region}/{cluster}: authentication mode {}",
        info.auth_mode.as_str()
    )];
    let connector = EksKubeConnector::new(sdk.clone());
    let client = connector.client(&conn).await?;
    ensure_rbac(&client, &mut out).await?;
    if info.auth_mode.uses_access_entries() {
        let groups = vec![FUNCTIONS_IDENTITY.to_owned()];
        let principal = role_arn.as_str();
        match eks.describe_access_entry(at, cluster, principal).await? {
            None => {
                eks.create_access_entry(at, cluster, principal, None, &groups)
                    .await?;
                out.push(format!("access entry for {principal}: created"));
            }
            Some(v) if v.kubernetes_groups == groups => {
                out.push(format!("access entry for {principal}: unchanged"));
            }
            Some(_) => {
                eks.update_access_entry(at, cluster, principal, None, &groups)
                    .await?;
                out.push(format!("access entry for {principal}: updated"));
            }
        }
    } else {
        let store = KubeAwsAuth::new(client);
        out.push(ensure_aws_auth(&store, &functions_mapping(role_arn)).await?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_is_narrowed_to_aws_auth() {
        let role = rbac_role();
        let rules = role.rules.expect("rules");
        assert_eq!(rules.len(), 1);
        assert_eq!(
            rules[0].resources.as_deref(),
            Some(&["configmaps".to_owned()][..])
        );
        assert_eq!(
            rules[0].resource_names.as_deref(),
            Some(&["aws-auth".to_owned()][..])
        );
        assert_eq!(rules[0].verbs, ["get", "update", "patch"]);
        assert_eq!(role.metadata.namespace.as_deref(), Some("kube-system"));
        let b = rbac_binding();
        assert_eq!(b.role_ref.name, "eks-access-sync");
        let subjects = b.subjects.expect("subjects");
        assert_eq!(subjects[0].kind, "Group");
        assert_eq!(subjects[0].name, "eks-access-sync");
    }

    #[test]
    fn cluster_role_grants_exactly_what_tier_bindings_need() {
        let role = rbac_cluster_role();
        assert_eq!(role.metadata.name.as_deref(), Some(FUNCTIONS_RBAC));
        // "api group | resources | resource names | verbs" per rule.
        let rules: Vec<String> = role
            .rules
            .expect("rules")
            .into_iter()
            .map(|r| {
                format!(
                    "{} | {} | {} | {}",
                    r.api_groups.expect("groups").join(","),
                    r.resources.expect("resources").join(","),
                    r.resource_names.map(|n| n.join(",")).unwrap_or_default(),
                    r.verbs.join(",")
                )
            })
            .collect();
        assert_eq!(
            rules,
            [
                " | namespaces |  | list",
                "rbac.authorization.k8s.io | rolebindings,clusterrolebindings |  | get,list,create,update,delete",
                "rbac.authorization.k8s.io | clusterroles | cluster-admin,admin,edit,view | bind",
            ]
        );
        let b = rbac_cluster_binding();
        assert_eq!(b.metadata.name.as_deref(), Some(FUNCTIONS_RBAC));
        assert_eq!(
            (b.role_ref.kind.as_str(), b.role_ref.name.as_str()),
            ("ClusterRole", FUNCTIONS_RBAC)
        );
        assert_eq!(b.subjects, rbac_binding().subjects);
        assert_eq!(b.metadata.labels, Some(labels()));
    }

    #[test]
    fn mapping_strips_the_path() {
        let arn: RoleArn = "arn:aws:iam::111122223333:role/service/eks-access-sync"
            .parse()
            .expect("arn");
        let m = functions_mapping(&arn);
        assert_eq!(
            m.role_arn.as_str(),
            "arn:aws:iam::111122223333:role/eks-access-sync"
        );
        assert_eq!(m.groups, ["eks-access-sync"]);
    }
}

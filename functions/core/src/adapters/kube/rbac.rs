//! The tiers' RBAC bindings through the kube client ([`RbacStore`] on the same
//! connection as aws-auth).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::rbac::v1::{ClusterRoleBinding, RoleBinding, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DeleteParams, ListParams, PostParams};

use crate::adapters::kube::store::{K8sError, KubeAwsAuth, within};
use crate::policy::rbac::{BindingRef, BindingSpec, BindingView, MANAGED_BY, MANAGED_BY_LABEL};
use crate::ports::RbacStore;

const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

fn meta(at: &BindingRef, resource_version: Option<String>) -> ObjectMeta {
    ObjectMeta {
        name: Some(at.name.clone()),
        namespace: at.namespace.clone(),
        labels: Some(BTreeMap::from([(
            MANAGED_BY_LABEL.to_owned(),
            MANAGED_BY.to_owned(),
        )])),
        resource_version,
        ..ObjectMeta::default()
    }
}

fn role_ref(spec: &BindingSpec) -> RoleRef {
    RoleRef {
        api_group: RBAC_GROUP.to_owned(),
        kind: "ClusterRole".to_owned(),
        name: spec.cluster_role.clone(),
    }
}

fn subjects(spec: &BindingSpec) -> Option<Vec<Subject>> {
    Some(vec![Subject {
        api_group: Some(RBAC_GROUP.to_owned()),
        kind: "Group".to_owned(),
        name: spec.group.clone(),
        namespace: None,
    }])
}

/// Creates the binding at `at` (`build` given its metadata), or replaces it at the
/// version read.
async fn put<K>(
    api: &Api<K>,
    at: &BindingRef,
    build: impl FnOnce(ObjectMeta) -> K,
) -> Result<(), K8sError>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    let pp = PostParams::default();
    let current = within("GET", api.get_opt(&at.name)).await?;
    let version = current.and_then(|c| c.meta().resource_version.clone());
    let object = build(meta(at, version.clone()));
    match version {
        None => within("POST", api.create(&pp, &object)).await.map(drop),
        Some(_) => within("PUT", api.replace(&at.name, &pp, &object))
            .await
            .map(drop),
    }
}

fn view(
    meta: &ObjectMeta,
    role_ref: &RoleRef,
    subjects: Option<&Vec<Subject>>,
) -> Option<BindingView> {
    Some(BindingView {
        at: BindingRef {
            namespace: meta.namespace.clone(),
            name: meta.name.clone()?,
        },
        managed: meta
            .labels
            .as_ref()
            .and_then(|l| l.get(MANAGED_BY_LABEL))
            .is_some_and(|v| v == MANAGED_BY),
        role_ref: (role_ref.kind.clone(), role_ref.name.clone()),
        groups: subjects
            .into_iter()
            .flatten()
            .filter(|s| s.kind == "Group")
            .map(|s| s.name.clone())
            .collect(),
    })
}

impl RbacStore for KubeAwsAuth {
    async fn namespaces(&self) -> Result<Vec<String>, K8sError> {
        let api: Api<Namespace> = Api::all(self.client.clone());
        let list = within("LIST", api.list(&ListParams::default())).await?;
        Ok(list
            .items
            .into_iter()
            .filter_map(|n| n.metadata.name)
            .collect())
    }

    async fn bindings(&self, names: &[String]) -> Result<Vec<BindingView>, K8sError> {
        let crbs: Api<ClusterRoleBinding> = Api::all(self.client.clone());
        let rbs: Api<RoleBinding> = Api::all(self.client.clone());
        let lp = ListParams::default();
        let (crbs, rbs) = futures::join!(
            within("LIST", crbs.list(&lp)),
            within("LIST", rbs.list(&lp))
        );
        let cluster = crbs?
            .items
            .into_iter()
            .filter_map(|b| view(&b.metadata, &b.role_ref, b.subjects.as_ref()));
        let namespaced = rbs?
            .items
            .into_iter()
            .filter_map(|b| view(&b.metadata, &b.role_ref, b.subjects.as_ref()));
        Ok(cluster
            .chain(namespaced)
            .filter(|v| v.managed || names.contains(&v.at.name))
            .collect())
    }

    async fn put_binding(&self, spec: &BindingSpec) -> Result<(), K8sError> {
        match &spec.at.namespace {
            None => {
                let api: Api<ClusterRoleBinding> = Api::all(self.client.clone());
                put(&api, &spec.at, |metadata| ClusterRoleBinding {
                    metadata,
                    role_ref: role_ref(spec),
                    subjects: subjects(spec),
                })
                .await
            }
            Some(ns) => {
                let api: Api<RoleBinding> = Api::namespaced(self.client.clone(), ns);
                put(&api, &spec.at, |metadata| RoleBinding {
                    metadata,
                    role_ref: role_ref(spec),
                    subjects: subjects(spec),
                })
                .await
            }
        }
    }

    async fn delete_binding(&self, at: &BindingRef) -> Result<(), K8sError> {
        let dp = DeleteParams::default();
        let r = match &at.namespace {
            None => {
                let api: Api<ClusterRoleBinding> = Api::all(self.client.clone());
                within("DELETE", api.delete(&at.name, &dp)).await.map(drop)
            }
            Some(ns) => {
                let api: Api<RoleBinding> = Api::namespaced(self.client.clone(), ns);
                within("DELETE", api.delete(&at.name, &dp)).await.map(drop)
            }
        };
        match r {
            Err(e) if e.is_not_found() => Ok(()),
            other => other,
        }
    }
}

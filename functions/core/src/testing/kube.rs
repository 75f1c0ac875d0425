//! The fake clusters' aws-auth ConfigMaps.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::adapters::kube::store::K8sError;
use crate::model::cluster::ClusterEndpoint;
use crate::policy::rbac::{BindingRef, BindingSpec, BindingView};
use crate::ports::{AwsAuthObject, AwsAuthStore, KubeConnector, RbacStore};

use super::{locked, round_trip};

#[derive(Default, Debug)]
pub struct CmState {
    pub data: Option<BTreeMap<String, String>>,
    pub version: u64,
    pub writes: usize,
    /// Before the next replace, another writer sets this key (and the replace conflicts).
    pub race: Option<(String, String)>,
    pub connects: usize,
    pub rtt: Duration,
    /// HTTP statuses the next reads/writes answer with, one per call, in order
    /// (0: answer normally; 409 is a conflict; others as the API server sends them).
    pub faults: VecDeque<u16>,
    /// Reads, replaces and creates attempted (faulted ones included).
    pub calls: usize,
    pub namespaces: Vec<String>,
    /// RoleBindings and ClusterRoleBindings.
    pub bindings: BTreeMap<BindingRef, BindingView>,
    pub rbac_writes: usize,
}

/// A reset connection, injected as this pseudo status.
pub const RESET: u16 = 1;
/// A request that timed out, injected as this pseudo status.
pub const TIMEOUT: u16 = 2;
/// A call that used up its whole bound, injected as this pseudo status.
pub const CALL_TIMEOUT: u16 = 3;

/// The error the kube client gives for an API status `code` (or [`RESET`],
/// [`TIMEOUT`]).
fn status_error(code: u16) -> K8sError {
    match code {
        RESET => {
            return K8sError::Network {
                timed_out: false,
                message: "connection failed (connection reset)".into(),
            };
        }
        TIMEOUT => {
            return K8sError::Network {
                timed_out: true,
                message: "timed out (injected)".into(),
            };
        }
        CALL_TIMEOUT => return K8sError::Timeout { operation: "GET" },
        _ => {}
    }
    let reason = match code {
        409 => "Conflict",
        429 => "TooManyRequests",
        503 => "ServiceUnavailable",
        _ => "InternalError",
    };
    K8sError::from_status(code, reason, &format!("injected {code}"))
}

impl CmState {
    /// Counts the call; the next injected fault, if any.
    fn fault(&mut self) -> Result<(), K8sError> {
        self.calls += 1;
        match self.faults.pop_front() {
            Some(code) if code != 0 => Err(status_error(code)),
            _ => Ok(()),
        }
    }
}

#[derive(Clone, Default)]
pub struct FakeKube(pub Arc<Mutex<BTreeMap<String, Arc<Mutex<CmState>>>>>);

impl FakeKube {
    pub fn set(&self, cluster: &str, data: Option<BTreeMap<String, String>>) {
        let st = CmState {
            data,
            version: 1,
            ..CmState::default()
        };
        self.0
            .lock()
            .expect("lock")
            .insert(cluster.to_owned(), Arc::new(Mutex::new(st)));
    }
    pub fn state(&self, cluster: &str) -> Arc<Mutex<CmState>> {
        self.0
            .lock()
            .expect("lock")
            .entry(cluster.to_owned())
            .or_default()
            .clone()
    }
    /// The cluster's namespaces (none unless set).
    pub fn set_namespaces(&self, cluster: &str, namespaces: &[&str]) {
        locked(&self.state(cluster)).namespaces =
            namespaces.iter().map(|n| n.to_string()).collect();
    }
    /// The cluster's bindings.
    pub fn bindings(&self, cluster: &str) -> BTreeMap<BindingRef, BindingView> {
        locked(&self.state(cluster)).bindings.clone()
    }
    /// Adds a binding as someone else made it (`managed`: with our label).
    pub fn put_binding(&self, cluster: &str, view: BindingView) {
        locked(&self.state(cluster))
            .bindings
            .insert(view.at.clone(), view);
    }
    pub fn data(&self, cluster: &str) -> Option<BTreeMap<String, String>> {
        locked(&self.state(cluster)).data.clone()
    }
    pub fn writes(&self, cluster: &str) -> usize {
        locked(&self.state(cluster)).writes
    }
    pub fn total_writes(&self) -> usize {
        let map = locked(&self.0);
        map.values().map(|s| locked(s).writes).sum()
    }
}

pub struct FakeStore(Arc<Mutex<CmState>>);

impl AwsAuthStore for FakeStore {
    async fn read(&self) -> Result<Option<AwsAuthObject>, K8sError> {
        let rtt = locked(&self.0).rtt;
        round_trip(rtt).await;
        let mut s = locked(&self.0);
        s.fault()?;
        Ok(s.data.as_ref().map(|d| AwsAuthObject {
            data: d.clone(),
            resource_version: s.version.to_string(),
        }))
    }
    async fn replace(
        &self,
        data: BTreeMap<String, String>,
        resource_version: &str,
    ) -> Result<(), K8sError> {
        let rtt = locked(&self.0).rtt;
        round_trip(rtt).await;
        let mut s = locked(&self.0);
        s.fault()?;
        if let Some((k, v)) = s.race.take() {
            s.data.get_or_insert_with(BTreeMap::new).insert(k, v);
            s.version += 1;
        }
        if s.version.to_string() != resource_version {
            return Err(K8sError::Conflict("the object has been modified".into()));
        }
        s.data = Some(data);
        s.version += 1;
        s.writes += 1;
        Ok(())
    }
    async fn create(&self, data: BTreeMap<String, String>) -> Result<(), K8sError> {
        let rtt = locked(&self.0).rtt;
        round_trip(rtt).await;
        let mut s = locked(&self.0);
        s.fault()?;
        if s.data.is_some() {
            return Err(K8sError::Conflict("already exists".into()));
        }
        s.data = Some(data);
        s.version += 1;
        s.writes += 1;
        Ok(())
    }
}

impl RbacStore for FakeStore {
    async fn namespaces(&self) -> Result<Vec<String>, K8sError> {
        Ok(locked(&self.0).namespaces.clone())
    }
    async fn bindings(&self, names: &[String]) -> Result<Vec<BindingView>, K8sError> {
        let s = locked(&self.0);
        Ok(s.bindings
            .values()
            .filter(|b| b.managed || names.contains(&b.at.name))
            .cloned()
            .collect())
    }
    async fn put_binding(&self, spec: &BindingSpec) -> Result<(), K8sError> {
        let mut s = locked(&self.0);
        s.rbac_writes += 1;
        if let Some(ns) = &spec.at.namespace
            && !s.namespaces.contains(ns)
        {
            return Err(K8sError::from_status(
                404,
                "NotFound",
                "namespace not found",
            ));
        }
        if let Some(old) = s.bindings.get(&spec.at)
            && old.role_ref.1 != spec.cluster_role
        {
            return Err(K8sError::from_status(
                422,
                "Invalid",
                "cannot change roleRef",
            ));
        }
        s.bindings.insert(
            spec.at.clone(),
            BindingView {
                at: spec.at.clone(),
                managed: true,
                role_ref: ("ClusterRole".into(), spec.cluster_role.clone()),
                groups: vec![spec.group.clone()],
            },
        );
        Ok(())
    }
    async fn delete_binding(&self, at: &BindingRef) -> Result<(), K8sError> {
        let mut s = locked(&self.0);
        s.rbac_writes += 1;
        s.bindings.remove(at);
        Ok(())
    }
}

impl KubeConnector for FakeKube {
    type Store = FakeStore;
    async fn connect(&self, cluster: &ClusterEndpoint) -> Result<FakeStore, K8sError> {
        let st = self.state(&cluster.name);
        locked(&st).connects += 1;
        Ok(FakeStore(st))
    }
}

pub fn aws_auth(map_roles: &str, map_users: Option<&str>) -> Option<BTreeMap<String, String>> {
    let mut d = BTreeMap::new();
    d.insert("mapRoles".to_owned(), map_roles.to_owned());
    if let Some(u) = map_users {
        d.insert("mapUsers".to_owned(), u.to_owned());
    }
    d.insert("mapAccounts".to_owned(), "- \"111122223333\"\n".to_owned());
    Some(d)
}

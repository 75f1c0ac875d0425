//! In-memory fakes of IAM, EKS and the clusters' aws-auth, for engine tests.
#![allow(dead_code)]

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use eks_access_sync::accessentry::{AccessEntryView, Timestamp};
use eks_access_sync::arn::{ClusterName, RoleArn, RoleName, UserName};
use eks_access_sync::desired::IamUser;
use eks_access_sync::eks::{AuthMode, ClusterInfo, EksApi, EksError};
use eks_access_sync::iam::{IamApi, IamError, RoleInfo};
use eks_access_sync::k8s::{AwsAuthObject, AwsAuthStore, ClusterEndpoint, K8sError, KubeConnector};

pub const ACCOUNT: &str = "111122223333";
pub const ROLE_NAME: &str = "eks-admin";
pub const NODE_ROLES: &str = "- rolearn: arn:aws:iam::111122223333:role/node-group-1\n  username: system:node:{{EC2PrivateDNSName}}\n  groups:\n    - system:bootstrappers\n    - system:nodes\n";

pub fn role_arn() -> RoleArn {
    format!("arn:aws:iam::{ACCOUNT}:role/ops/{ROLE_NAME}")
        .parse()
        .expect("role arn")
}

pub fn user(name: &str, admin: bool) -> IamUser {
    IamUser {
        arn: format!("arn:aws:iam::{ACCOUNT}:user/{name}")
            .parse()
            .expect("user arn"),
        name: name.parse().expect("user name"),
        user_id: format!("AIDA{:0>16}", name.len()),
        tags: if admin {
            vec![("eks-admin".to_owned(), "true".to_owned())]
        } else {
            vec![("team".to_owned(), "x".to_owned())]
        },
    }
}

pub const EMPTY_TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Sid":"Ec2","Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;

/// The engine tests' configuration: admin tag `eks-admin=true`, cluster tag
/// `eks-access-sync=enabled`, role `eks-admin`, plus `extra` variables.
pub fn test_config(extra: &[(&str, &str)]) -> eks_access_sync::config::Config {
    eks_access_sync::config::Config::from_lookup(|k| {
        match k {
            "ADMIN_ROLE_NAME" => Some("eks-admin"),
            "ADMIN_USER_TAG" => Some("eks-admin=true"),
            "CLUSTER_TAG" => Some("eks-access-sync=enabled"),
            "AWS_REGION" => Some("us-east-1"),
            _ => extra.iter().find(|(var, _)| *var == k).map(|(_, v)| *v),
        }
        .map(str::to_owned)
    })
    .expect("config")
}

/// The report of an event the engine ran (panics if it was ignored).
pub fn ran(r: eks_access_sync::engine::EventResult) -> eks_access_sync::report::RunReport {
    match r {
        eks_access_sync::engine::EventResult::Ran(r) => *r,
        eks_access_sync::engine::EventResult::Ignored(reason) => panic!("ignored: {reason}"),
    }
}

/// One network round trip of `rtt` (none when zero).
async fn round_trip(rtt: Duration) {
    if !rtt.is_zero() {
        tokio::time::sleep(rtt).await;
    }
}

// ---------------------------------------------------------------- IAM

#[derive(Default)]
pub struct IamState {
    pub users: Vec<IamUser>,
    pub policy: String,
    pub writes: Vec<String>,
    pub fail_list: bool,
    /// The admin role's `CreateDate` (`None`: not given).
    pub role_created: Option<Timestamp>,
    /// `UpdateAssumeRolePolicy` fails with this error code.
    pub fail_update: Option<String>,
    /// Added to every call (tests on tokio's paused clock count round trips with it).
    pub rtt: Duration,
}

#[derive(Clone, Default)]
pub struct FakeIam(pub Arc<Mutex<IamState>>);

impl FakeIam {
    pub fn new(users: Vec<IamUser>, policy: &str) -> Self {
        FakeIam(Arc::new(Mutex::new(IamState {
            users,
            policy: policy.to_owned(),
            ..IamState::default()
        })))
    }
    pub fn writes(&self) -> usize {
        self.0.lock().expect("lock").writes.len()
    }
    pub fn policy(&self) -> String {
        self.0.lock().expect("lock").policy.clone()
    }
    pub fn set_users(&self, users: Vec<IamUser>) {
        self.0.lock().expect("lock").users = users;
    }
}

impl IamApi for FakeIam {
    async fn list_users(&self) -> Result<Vec<IamUser>, IamError> {
        let rtt = self.0.lock().expect("lock").rtt;
        round_trip(rtt).await;
        let s = self.0.lock().expect("lock");
        if s.fail_list {
            return Err(IamError::Service {
                operation: "GetAccountAuthorizationDetails",
                code: "ServiceFailure".into(),
                message: "boom".into(),
            });
        }
        Ok(s.users.clone())
    }
    async fn get_user(&self, name: &UserName) -> Result<Option<IamUser>, IamError> {
        let rtt = self.0.lock().expect("lock").rtt;
        round_trip(rtt).await;
        let s = self.0.lock().expect("lock");
        Ok(s.users.iter().find(|u| &u.name == name).cloned())
    }
    async fn get_role(&self, name: &RoleName) -> Result<RoleInfo, IamError> {
        let rtt = self.0.lock().expect("lock").rtt;
        round_trip(rtt).await;
        assert_eq!(name.as_str(), ROLE_NAME);
        let s = self.0.lock().expect("lock");
        Ok(RoleInfo {
            arn: role_arn(),
            trust_policy: s.policy.clone(),
            role_id: "AROAEXAMPLEROLEID0001".into(),
            create_date: s.role_created,
        })
    }
    async fn update_trust_policy(&self, name: &RoleName, document: &str) -> Result<(), IamError> {
        let rtt = self.0.lock().expect("lock").rtt;
        round_trip(rtt).await;
        assert_eq!(name.as_str(), ROLE_NAME);
        let mut s = self.0.lock().expect("lock");
        if let Some(code) = &s.fail_update {
            return Err(IamError::Service {
                operation: "UpdateAssumeRolePolicy",
                code: code.clone(),
                message: "Cannot exceed quota for ACLSizePerRole: 2048".into(),
            });
        }
        s.policy = document.to_owned();
        s.writes.push(document.to_owned());
        Ok(())
    }
}

// ---------------------------------------------------------------- EKS

#[derive(Default)]
pub struct EksState {
    pub clusters: Vec<ClusterInfo>,
    /// cluster name → principal → entry
    pub entries: BTreeMap<String, BTreeMap<String, AccessEntryView>>,
    pub writes: Vec<String>,
    pub fail_describe: Vec<String>,
    pub rtt: Duration,
    /// `createdAt` of the entries `CreateAccessEntry` makes (`None`: not given).
    pub now: Option<Timestamp>,
}

#[derive(Clone, Default)]
pub struct FakeEks(pub Arc<Mutex<EksState>>);

pub fn cluster(name: &str, region: &str, tagged: bool, mode: AuthMode) -> ClusterInfo {
    let mut tags = BTreeMap::new();
    tags.insert("env".to_owned(), "test".to_owned());
    if tagged {
        tags.insert("eks-access-sync".to_owned(), "enabled".to_owned());
    }
    ClusterInfo {
        name: name.parse().expect("cluster name"),
        region: region.to_owned(),
        arn: format!("arn:aws:eks:{region}:{ACCOUNT}:cluster/{name}"),
        endpoint: format!("https://{name}.example"),
        ca_pem: b"-----BEGIN CERTIFICATE-----\nAAEC\n-----END CERTIFICATE-----\n".to_vec(),
        tags,
        auth_mode: mode,
        status: "ACTIVE".to_owned(),
    }
}

impl FakeEks {
    pub fn new(clusters: Vec<ClusterInfo>) -> Self {
        FakeEks(Arc::new(Mutex::new(EksState {
            clusters,
            ..EksState::default()
        })))
    }
    pub fn writes(&self) -> usize {
        self.0.lock().expect("lock").writes.len()
    }
    pub fn entries(&self, cluster: &str) -> BTreeMap<String, AccessEntryView> {
        self.0
            .lock()
            .expect("lock")
            .entries
            .get(cluster)
            .cloned()
            .unwrap_or_default()
    }
    pub fn put_entry(&self, cluster: &str, v: AccessEntryView) {
        self.0
            .lock()
            .expect("lock")
            .entries
            .entry(cluster.to_owned())
            .or_default()
            .insert(v.principal_arn.clone(), v);
    }
}

fn not_found(op: &'static str) -> EksError {
    EksError::Service {
        operation: op,
        code: "ResourceNotFoundException".into(),
        message: "not found".into(),
    }
}

impl EksApi for FakeEks {
    async fn list_clusters(&self, region: &str) -> Result<Vec<ClusterName>, EksError> {
        let rtt = self.0.lock().expect("lock").rtt;
        round_trip(rtt).await;
        Ok(self
            .0
            .lock()
            .expect("lock")
            .clusters
            .iter()
            .filter(|c| c.region == region)
            .map(|c| c.name.clone())
            .collect())
    }
    async fn describe_cluster(
        &self,
        region: &str,
        name: &ClusterName,
    ) -> Result<ClusterInfo, EksError> {
        let rtt = self.0.lock().expect("lock").rtt;
        round_trip(rtt).await;
        let s = self.0.lock().expect("lock");
        if s.fail_describe.iter().any(|n| n == name.as_str()) {
            return Err(EksError::Service {
                operation: "DescribeCluster",
                code: "ServerException".into(),
                message: "boom".into(),
            });
        }
        s.clusters
            .iter()
            .find(|c| c.region == region && &c.name == name)
            .cloned()
            .ok_or_else(|| not_found("DescribeCluster"))
    }
    async fn list_access_entries(
        &self,
        _region: &str,
        cluster: &ClusterName,
    ) -> Result<Vec<String>, EksError> {
        Ok(self.entries(cluster.as_str()).into_keys().collect())
    }
    async fn describe_access_entry(
        &self,
        _region: &str,
        cluster: &ClusterName,
        principal_arn: &str,
    ) -> Result<Option<AccessEntryView>, EksError> {
        Ok(self.entries(cluster.as_str()).get(principal_arn).cloned())
    }
    async fn create_access_entry(
        &self,
        _region: &str,
        cluster: &ClusterName,
        principal_arn: &str,
        username: Option<&str>,
        groups: &[String],
    ) -> Result<(), EksError> {
        let mut s = self.0.lock().expect("lock");
        s.writes.push(format!("create {cluster} {principal_arn}"));
        let created_at = s.now;
        s.entries.entry(cluster.to_string()).or_default().insert(
            principal_arn.to_owned(),
            AccessEntryView {
                principal_arn: principal_arn.to_owned(),
                username: username.map(str::to_owned),
                kubernetes_groups: groups.to_vec(),
                policies: vec![],
                created_at,
            },
        );
        Ok(())
    }
    async fn update_access_entry(
        &self,
        _region: &str,
        cluster: &ClusterName,
        principal_arn: &str,
        username: Option<&str>,
        groups: &[String],
    ) -> Result<(), EksError> {
        let mut s = self.0.lock().expect("lock");
        s.writes.push(format!("update {cluster} {principal_arn}"));
        let e = s
            .entries
            .get_mut(cluster.as_str())
            .and_then(|m| m.get_mut(principal_arn))
            .ok_or_else(|| not_found("UpdateAccessEntry"))?;
        e.username = username.map(str::to_owned);
        e.kubernetes_groups = groups.to_vec();
        Ok(())
    }
    async fn delete_access_entry(
        &self,
        _region: &str,
        cluster: &ClusterName,
        principal_arn: &str,
    ) -> Result<(), EksError> {
        let mut s = self.0.lock().expect("lock");
        s.writes.push(format!("delete {cluster} {principal_arn}"));
        if let Some(m) = s.entries.get_mut(cluster.as_str()) {
            m.remove(principal_arn);
        }
        Ok(())
    }
    async fn associate_access_policy(
        &self,
        _region: &str,
        cluster: &ClusterName,
        principal_arn: &str,
        policy_arn: &str,
    ) -> Result<(), EksError> {
        let mut s = self.0.lock().expect("lock");
        s.writes
            .push(format!("associate {cluster} {principal_arn}"));
        let e = s
            .entries
            .get_mut(cluster.as_str())
            .and_then(|m| m.get_mut(principal_arn))
            .ok_or_else(|| not_found("AssociateAccessPolicy"))?;
        e.policies
            .push((policy_arn.to_owned(), "cluster".to_owned()));
        Ok(())
    }
}

// ---------------------------------------------------------------- aws-auth

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
    pub fn data(&self, cluster: &str) -> Option<BTreeMap<String, String>> {
        self.state(cluster).lock().expect("lock").data.clone()
    }
    pub fn writes(&self, cluster: &str) -> usize {
        self.state(cluster).lock().expect("lock").writes
    }
    pub fn total_writes(&self) -> usize {
        let map = self.0.lock().expect("lock");
        map.values().map(|s| s.lock().expect("lock").writes).sum()
    }
}

pub struct FakeStore(Arc<Mutex<CmState>>);

impl AwsAuthStore for FakeStore {
    async fn read(&self) -> Result<Option<AwsAuthObject>, K8sError> {
        let rtt = self.0.lock().expect("lock").rtt;
        round_trip(rtt).await;
        let mut s = self.0.lock().expect("lock");
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
        let rtt = self.0.lock().expect("lock").rtt;
        round_trip(rtt).await;
        let mut s = self.0.lock().expect("lock");
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
        let rtt = self.0.lock().expect("lock").rtt;
        round_trip(rtt).await;
        let mut s = self.0.lock().expect("lock");
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

impl KubeConnector for FakeKube {
    type Store = FakeStore;
    async fn connect(&self, cluster: &ClusterEndpoint) -> Result<FakeStore, K8sError> {
        let st = self.state(&cluster.name);
        st.lock().expect("lock").connects += 1;
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

//! In-memory fakes of IAM, EKS and the clusters' aws-auth, for engine tests (this
//! crate's, the Lambda crates' `handle()` tests). Compiled only for tests or with the
//! feature `testing`; as test support, its fixture builders `expect` on literals.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use crate::model::arn::{ClusterName, RoleArn};
use crate::policy::accessentry::{AccessEntryView, PolicyAssociation, Timestamp};
use crate::policy::desired::IamUser;
use crate::{
    adapters::aws::accounts::AccountError,
    adapters::aws::eks::EksError,
    model::cluster::{AuthMode, ClusterInfo, Place},
    ports::EksApi,
};

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
        groups: Vec::new(),
    }
}

pub const EMPTY_TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Sid":"Ec2","Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;

/// The engine tests' configuration: admin tag `eks-admin=true`, cluster tag
/// `eks-access-sync=enabled`, role `eks-admin`, plus `extra` variables.
pub fn test_config(extra: &[(&str, &str)]) -> crate::model::config::Config {
    crate::model::config::Config::from_lookup(|k| {
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
pub fn ran(r: crate::engine::EventResult) -> crate::output::report::RunReport {
    match r {
        crate::engine::EventResult::Ran(r) => *r,
        crate::engine::EventResult::Ignored(reason) => panic!("ignored: {reason}"),
    }
}

/// The fakes' shared state; a panicking test does not poison it for the others.
pub(crate) fn locked<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One network round trip of `rtt` (none when zero).
pub(crate) async fn round_trip(rtt: Duration) {
    if !rtt.is_zero() {
        tokio::time::sleep(rtt).await;
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
    /// Member accounts whose role cannot be assumed: listing their clusters fails.
    pub fail_accounts: Vec<String>,
    /// Every `ListClusters` and `DescribeCluster` call, in order (`list <region>`,
    /// `describe <name>`).
    pub reads: Vec<String>,
    pub rtt: Duration,
    /// `createdAt` of the entries `CreateAccessEntry` makes (`None`: not given).
    pub now: Option<Timestamp>,
}

#[derive(Clone, Default)]
pub struct FakeEks(pub Arc<Mutex<EksState>>);

/// [`cluster`] in member account `account`.
pub fn member_cluster(
    account: &str,
    name: &str,
    region: &str,
    tagged: bool,
    mode: AuthMode,
) -> ClusterInfo {
    let mut c = cluster(name, region, tagged, mode);
    c.member = Some(account.parse().expect("account"));
    c.arn = format!("arn:aws:eks:{region}:{account}:cluster/{name}");
    c
}

pub fn cluster(name: &str, region: &str, tagged: bool, mode: AuthMode) -> ClusterInfo {
    let mut tags = BTreeMap::new();
    tags.insert("env".to_owned(), "test".to_owned());
    if tagged {
        tags.insert("eks-access-sync".to_owned(), "enabled".to_owned());
    }
    ClusterInfo {
        name: name.parse().expect("cluster name"),
        region: region.to_owned(),
        member: None,
        arn: format!("arn:aws:eks:{region}:{ACCOUNT}:cluster/{name}"),
        endpoint: Some(format!("https://{name}.example")),
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
        locked(&self.0).writes.len()
    }
    pub fn reads(&self) -> Vec<String> {
        locked(&self.0).reads.clone()
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
    async fn list_clusters(&self, at: &Place) -> Result<Vec<ClusterName>, EksError> {
        let rtt = locked(&self.0).rtt;
        locked(&self.0).reads.push(format!("list {at}"));
        round_trip(rtt).await;
        let s = locked(&self.0);
        if let Some(a) = &at.member
            && s.fail_accounts.iter().any(|f| f == a.as_str())
        {
            return Err(EksError::Account(AccountError::AssumeRole {
                account: a.to_string(),
                role_arn: format!("arn:aws:iam::{a}:role/eks-access-sync-member"),
                reason: "AccessDenied: not authorized to perform: sts:AssumeRole".into(),
            }));
        }
        Ok(s.clusters
            .iter()
            .filter(|c| c.place() == *at)
            .map(|c| c.name.clone())
            .collect())
    }
    async fn describe_cluster(
        &self,
        at: &Place,
        name: &ClusterName,
    ) -> Result<ClusterInfo, EksError> {
        let rtt = locked(&self.0).rtt;
        locked(&self.0).reads.push(format!("describe {name}"));
        round_trip(rtt).await;
        let s = locked(&self.0);
        if s.fail_describe.iter().any(|n| n == name.as_str()) {
            return Err(EksError::Service {
                operation: "DescribeCluster",
                code: "ServerException".into(),
                message: "boom".into(),
            });
        }
        s.clusters
            .iter()
            .find(|c| c.place() == *at && &c.name == name)
            .cloned()
            .ok_or_else(|| not_found("DescribeCluster"))
    }
    async fn list_access_entries(
        &self,
        _at: &Place,
        cluster: &ClusterName,
    ) -> Result<Vec<String>, EksError> {
        Ok(self.entries(cluster.as_str()).into_keys().collect())
    }
    async fn describe_access_entry(
        &self,
        _at: &Place,
        cluster: &ClusterName,
        principal_arn: &str,
    ) -> Result<Option<AccessEntryView>, EksError> {
        Ok(self.entries(cluster.as_str()).get(principal_arn).cloned())
    }
    async fn create_access_entry(
        &self,
        _at: &Place,
        cluster: &ClusterName,
        principal_arn: &str,
        username: Option<&str>,
        groups: &[String],
    ) -> Result<(), EksError> {
        let mut s = locked(&self.0);
        s.writes.push(format!("create {cluster} {principal_arn}"));
        let created_at = s.now;
        s.entries.entry(cluster.to_string()).or_default().insert(
            principal_arn.to_owned(),
            AccessEntryView {
                principal_arn: principal_arn.to_owned(),
                username: username.map(str::to_owned),
                kubernetes_groups: groups.to_vec(),
                policies: vec![],
                policy_namespaces: Default::default(),
                created_at,
            },
        );
        Ok(())
    }
    async fn update_access_entry(
        &self,
        _at: &Place,
        cluster: &ClusterName,
        principal_arn: &str,
        username: Option<&str>,
        groups: &[String],
    ) -> Result<(), EksError> {
        let mut s = locked(&self.0);
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
        _at: &Place,
        cluster: &ClusterName,
        principal_arn: &str,
    ) -> Result<(), EksError> {
        let mut s = locked(&self.0);
        s.writes.push(format!("delete {cluster} {principal_arn}"));
        if let Some(m) = s.entries.get_mut(cluster.as_str()) {
            m.remove(principal_arn);
        }
        Ok(())
    }
    async fn disassociate_access_policy(
        &self,
        _at: &Place,
        cluster: &ClusterName,
        principal_arn: &str,
        policy_arn: &str,
    ) -> Result<(), EksError> {
        let mut s = locked(&self.0);
        s.writes.push(format!(
            "disassociate {cluster} {principal_arn} {policy_arn}"
        ));
        let e = s
            .entries
            .get_mut(cluster.as_str())
            .and_then(|m| m.get_mut(principal_arn))
            .ok_or_else(|| not_found("DisassociateAccessPolicy"))?;
        e.policies.retain(|(p, _)| p != policy_arn);
        e.policy_namespaces.remove(policy_arn);
        Ok(())
    }
    async fn associate_access_policy(
        &self,
        _at: &Place,
        cluster: &ClusterName,
        principal_arn: &str,
        policy: &PolicyAssociation,
    ) -> Result<(), EksError> {
        let mut s = locked(&self.0);
        s.writes
            .push(format!("associate {cluster} {principal_arn}"));
        let e = s
            .entries
            .get_mut(cluster.as_str())
            .and_then(|m| m.get_mut(principal_arn))
            .ok_or_else(|| not_found("AssociateAccessPolicy"))?;
        // EKS: associating a policy again replaces its scope.
        e.policies.retain(|(p, _)| *p != policy.policy_arn);
        e.policies
            .push((policy.policy_arn.clone(), policy.scope_type().to_owned()));
        if policy.namespaces.is_empty() {
            e.policy_namespaces.remove(&policy.policy_arn);
        } else {
            e.policy_namespaces
                .insert(policy.policy_arn.clone(), policy.namespaces.clone());
        }
        Ok(())
    }
}

// ---------------------------------------------------------------- aws-auth

pub fn iam_event(name: &str, user_name: &str) -> serde_json::Value {
    let mut params = serde_json::json!({ "userName": user_name });
    if name == "TagUser" {
        params["tags"] = serde_json::json!([{ "key": "eks-admin", "value": "true" }]);
    }
    if name == "UntagUser" {
        params["tagKeys"] = serde_json::json!(["eks-admin"]);
    }
    serde_json::json!({
        "version": "0",
        "id": "6f1b3b0e-0000-0000-0000-000000000001",
        "detail-type": "AWS API Call via CloudTrail",
        "source": "aws.iam",
        "account": ACCOUNT,
        "time": "2026-11-28T12:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": {
            "eventVersion": "1.09",
            "userIdentity": { "type": "IAMUser", "arn": format!("arn:aws:iam::{ACCOUNT}:user/ops"), "accountId": ACCOUNT },
            "eventTime": "2026-11-28T12:00:00Z",
            "eventSource": "iam.amazonaws.com",
            "eventName": name,
            "awsRegion": "us-east-1",
            "sourceIPAddress": "192.0.2.1",
            "userAgent": "aws-cli/2",
            "requestParameters": params,
            "responseElements": null,
            "requestID": "11111111-2222-3333-4444-555555555555",
            "eventID": "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
            "readOnly": false,
            "eventType": "AwsApiCall",
            "managementEvent": true,
            "recipientAccountId": ACCOUNT,
            "eventCategory": "Management"
        }
    })
}

mod iam;
mod kube;
pub use iam::*;
pub use kube::*;

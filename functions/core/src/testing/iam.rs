//! The fake IAM: users, the admin role and other tier roles, their trust policies.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::adapters::aws::iam::IamError;
use crate::model::arn::{RoleName, UserName};
use crate::policy::accessentry::Timestamp;
use crate::policy::desired::IamUser;
use crate::policy::shards::SHARD_PATH;
use crate::ports::{IamApi, RoleInfo};

use super::{ACCOUNT, ROLE_NAME, locked, role_arn, round_trip};

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
    /// Tier roles other than [`ROLE_NAME`] (ARN `…:role/<name>`): name → trust policy.
    pub other_roles: BTreeMap<String, String>,
    /// `UpdateAssumeRolePolicy` calls on `other_roles`, by role name.
    pub other_writes: Vec<String>,
    /// Shard roles (at [`SHARD_PATH`]): name → trust policy.
    pub shards: BTreeMap<String, String>,
    /// `CreateRole` calls: (name, permissions boundary).
    pub created: Vec<(String, Option<String>)>,
    /// `UpdateAssumeRolePolicy` calls on shard roles, by role name.
    pub shard_writes: Vec<String>,
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
        locked(&self.0).writes.len()
    }
    pub fn policy(&self) -> String {
        locked(&self.0).policy.clone()
    }
    pub fn set_users(&self, users: Vec<IamUser>) {
        locked(&self.0).users = users;
    }
    /// Adds a tier role with `policy`.
    pub fn add_role(&self, name: &str, policy: &str) {
        locked(&self.0)
            .other_roles
            .insert(name.to_owned(), policy.to_owned());
    }
    /// A tier role's trust policy (added with [`FakeIam::add_role`]).
    pub fn role_policy(&self, name: &str) -> String {
        locked(&self.0)
            .other_roles
            .get(name)
            .cloned()
            .unwrap_or_default()
    }
    /// A shard role's trust policy (`None`: no such shard).
    pub fn shard_policy(&self, name: &str) -> Option<String> {
        locked(&self.0).shards.get(name).cloned()
    }
    /// Every shard role: name → trust policy.
    pub fn shards(&self) -> BTreeMap<String, String> {
        locked(&self.0).shards.clone()
    }
    /// Adds a shard role with `policy`.
    pub fn add_shard(&self, name: &str, policy: &str) {
        locked(&self.0)
            .shards
            .insert(name.to_owned(), policy.to_owned());
    }
    /// `CreateRole` calls: (name, boundary).
    pub fn created(&self) -> Vec<(String, Option<String>)> {
        locked(&self.0).created.clone()
    }
    /// `UpdateAssumeRolePolicy` calls on shard roles, in order.
    pub fn shard_writes(&self) -> Vec<String> {
        locked(&self.0).shard_writes.clone()
    }
    /// The roles written (other than [`ROLE_NAME`]), in order.
    pub fn other_writes(&self) -> Vec<String> {
        locked(&self.0).other_writes.clone()
    }
}

impl IamApi for FakeIam {
    async fn list_users(&self) -> Result<Vec<IamUser>, IamError> {
        let rtt = locked(&self.0).rtt;
        round_trip(rtt).await;
        let s = locked(&self.0);
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
        let rtt = locked(&self.0).rtt;
        round_trip(rtt).await;
        let s = locked(&self.0);
        Ok(s.users.iter().find(|u| &u.name == name).cloned())
    }
    async fn list_roles(&self) -> Result<Vec<RoleInfo>, IamError> {
        let mut roles = vec![self.get_role(&ROLE_NAME.parse().expect("role")).await?];
        let names: Vec<String> = locked(&self.0).other_roles.keys().cloned().collect();
        for n in names {
            roles.push(self.get_role(&n.parse().expect("role")).await?);
        }
        Ok(roles)
    }
    async fn user_groups(&self, name: &UserName) -> Result<Option<Vec<String>>, IamError> {
        let rtt = locked(&self.0).rtt;
        round_trip(rtt).await;
        let s = locked(&self.0);
        Ok(s.users
            .iter()
            .find(|u| u.name.as_str().eq_ignore_ascii_case(name.as_str()))
            .map(|u| u.groups.clone()))
    }
    async fn get_role(&self, name: &RoleName) -> Result<RoleInfo, IamError> {
        let rtt = locked(&self.0).rtt;
        round_trip(rtt).await;
        let s = locked(&self.0);
        if let Some(policy) = s.shards.get(name.as_str()) {
            return Ok(shard_info(name.as_str(), policy, s.role_created));
        }
        if name.as_str() != ROLE_NAME {
            let policy = s
                .other_roles
                .get(name.as_str())
                .ok_or_else(|| IamError::RoleNotFound(name.to_string()))?;
            return Ok(RoleInfo {
                arn: format!("arn:aws:iam::{ACCOUNT}:role/{name}")
                    .parse()
                    .expect("role arn"),
                trust_policy: policy.clone(),
                role_id: format!("AROA{:0>17}", name.as_str().len()),
                create_date: s.role_created,
            });
        }
        Ok(RoleInfo {
            arn: role_arn(),
            trust_policy: s.policy.clone(),
            role_id: "AROAEXAMPLEROLEID0001".into(),
            create_date: s.role_created,
        })
    }
    async fn list_shard_roles(&self) -> Result<Vec<RoleInfo>, IamError> {
        let rtt = locked(&self.0).rtt;
        round_trip(rtt).await;
        let s = locked(&self.0);
        Ok(s.shards
            .iter()
            .map(|(name, policy)| shard_info(name, policy, s.role_created))
            .collect())
    }
    async fn create_shard_role(
        &self,
        name: &RoleName,
        document: &str,
        boundary: Option<&str>,
    ) -> Result<RoleInfo, IamError> {
        let rtt = locked(&self.0).rtt;
        round_trip(rtt).await;
        let mut s = locked(&self.0);
        s.created
            .push((name.to_string(), boundary.map(str::to_owned)));
        if s.other_roles.contains_key(name.as_str()) {
            return Err(IamError::Service {
                operation: "CreateRole",
                code: "EntityAlreadyExists".into(),
                message: format!("Role with name {name} already exists."),
            });
        }
        s.shards.insert(name.to_string(), document.to_owned());
        Ok(shard_info(name.as_str(), document, s.role_created))
    }
    async fn update_trust_policy(&self, name: &RoleName, document: &str) -> Result<(), IamError> {
        let rtt = locked(&self.0).rtt;
        round_trip(rtt).await;
        let mut s = locked(&self.0);
        if s.shards.contains_key(name.as_str()) {
            s.shards.insert(name.to_string(), document.to_owned());
            s.shard_writes.push(name.to_string());
            return Ok(());
        }
        if name.as_str() != ROLE_NAME {
            if !s.other_roles.contains_key(name.as_str()) {
                return Err(IamError::RoleNotFound(name.to_string()));
            }
            s.other_roles.insert(name.to_string(), document.to_owned());
            s.other_writes.push(name.to_string());
            return Ok(());
        }
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

/// A shard role of the fake: ARN at [`SHARD_PATH`].
fn shard_info(name: &str, policy: &str, created: Option<Timestamp>) -> RoleInfo {
    RoleInfo {
        arn: format!("arn:aws:iam::{ACCOUNT}:role{SHARD_PATH}{name}")
            .parse()
            .expect("role arn"),
        trust_policy: policy.to_owned(),
        role_id: format!("AROASHARD{:0>12}", name.len()),
        create_date: created,
    }
}

//! IAM adapter: users with their tags, the admin role's trust policy.
//!
//! [`IamApi`] is the small surface the engine needs; [`SdkIam`] implements it over
//! `aws_sdk_iam::Client`. Errors keep the AWS error code and message, never credentials.

use std::time::{Duration, Instant};

use aws_sdk_iam::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_iam::types::EntityType;

use crate::backoff::Backoff;
use crate::model::arn::{RoleArn, RoleName, UserArn, UserName};
use crate::policy::accessentry::Timestamp;
use crate::policy::desired::IamUser;
use crate::policy::shards::SHARD_PATH;
use crate::policy::trust::decode_policy_document;
use crate::ports::{IamApi, RoleInfo};

/// IAM errors. `code`/`message` are the AWS error's; nothing here carries a secret.
#[derive(Debug, thiserror::Error)]
pub enum IamError {
    #[error("IAM {operation} failed: {code}: {message}")]
    Service {
        operation: &'static str,
        code: String,
        message: String,
    },
    #[error("IAM {operation} failed: {message}")]
    Transport {
        operation: &'static str,
        message: String,
    },
    #[error("IAM {operation} returned an unexpected response: {message}")]
    InvalidResponse {
        operation: &'static str,
        message: String,
    },
    #[error("IAM role {0} does not exist")]
    RoleNotFound(String),
}

impl IamError {
    /// The AWS error code, if IAM answered with one.
    pub fn code(&self) -> Option<&str> {
        match self {
            IamError::Service { code, .. } => Some(code),
            _ => None,
        }
    }

    pub(crate) fn from_sdk<E, R>(operation: &'static str, err: SdkError<E, R>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        match err.code() {
            Some(code) => IamError::Service {
                operation,
                code: code.to_owned(),
                message: err.message().unwrap_or_default().to_owned(),
            },
            None => IamError::Transport {
                operation,
                message: crate::adapters::aws::sdk::transport_message(&err),
            },
        }
    }

    /// IAM has not yet seen a principal that was just created.
    pub fn is_invalid_principal(&self) -> bool {
        matches!(self, IamError::Service { code, message, .. }
            if code == "MalformedPolicyDocument" && message.to_ascii_lowercase().contains("invalid principal"))
    }

    /// Throttled: worth retrying after a pause.
    pub fn is_throttling(&self) -> bool {
        matches!(self, IamError::Service { code, .. }
            if matches!(code.as_str(), "Throttling" | "ThrottlingException" | "RequestLimitExceeded" | "TooManyRequestsException"))
    }
}

/// Backoff for `UpdateAssumeRolePolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteRetry {
    /// How long to keep retrying `Invalid principal in policy` (IAM eventual consistency).
    pub invalid_principal_budget: Duration,
    /// How many times to retry throttling.
    pub throttle_retries: u32,
    /// First pause; doubles each time up to `max_delay` (jittered: [`Backoff`]).
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl Default for WriteRetry {
    fn default() -> Self {
        WriteRetry {
            invalid_principal_budget: Duration::from_secs(60),
            throttle_retries: 5,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(8),
        }
    }
}

/// Runs `attempt` until it succeeds, or fails with an error that is not retryable,
/// or the budget of [`WriteRetry`] is spent. Returns the last error.
pub async fn retry_write<F, Fut>(policy: WriteRetry, mut attempt: F) -> Result<(), IamError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), IamError>>,
{
    let start = Instant::now();
    let mut backoff = Backoff::new(policy.base_delay, policy.max_delay);
    let mut throttles = 0u32;
    loop {
        let err = match attempt().await {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        let delay = backoff.next_delay();
        let retry = if err.is_invalid_principal() {
            start.elapsed() + delay <= policy.invalid_principal_budget
        } else if err.is_throttling() {
            throttles += 1;
            throttles <= policy.throttle_retries
        } else {
            false
        };
        if !retry {
            return Err(err);
        }
        tracing::warn!(error = %err, delay_ms = delay.as_millis() as u64, "retrying trust-policy write");
        tokio::time::sleep(delay).await;
    }
}

/// A role as IAM describes it (`GetRole`, `ListRoles`, `CreateRole`).
fn role_info(
    operation: &'static str,
    role: &aws_sdk_iam::types::Role,
) -> Result<RoleInfo, IamError> {
    let invalid = |message: String| IamError::InvalidResponse { operation, message };
    let arn: RoleArn = role
        .arn()
        .parse()
        .map_err(|e| invalid(format!("role ARN: {e}")))?;
    let raw = role
        .assume_role_policy_document()
        .ok_or_else(|| invalid("role has no trust policy".into()))?;
    Ok(RoleInfo {
        arn,
        trust_policy: decode_policy_document(raw)
            .map_err(|e| invalid(format!("trust policy: {e}")))?,
        role_id: role.role_id().to_owned(),
        create_date: Timestamp::from_unix_nanos(role.create_date().as_nanos()),
    })
}

/// [`IamApi`] over the AWS SDK.
#[derive(Debug, Clone)]
pub struct SdkIam {
    client: aws_sdk_iam::Client,
    page_size: i32,
    retry: WriteRetry,
}

impl SdkIam {
    /// Pages of 1,000 users (the API's maximum) and the default write backoff.
    pub fn new(client: aws_sdk_iam::Client) -> Self {
        Self::with_options(client, 1000, WriteRetry::default())
    }

    pub fn with_options(client: aws_sdk_iam::Client, page_size: i32, retry: WriteRetry) -> Self {
        SdkIam {
            client,
            page_size: page_size.clamp(1, 1000),
            retry,
        }
    }

    async fn user_tags(&self, name: &UserName) -> Result<Vec<(String, String)>, IamError> {
        let tags: Vec<aws_sdk_iam::types::Tag> = self
            .client
            .list_user_tags()
            .user_name(name.as_str())
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| IamError::from_sdk("ListUserTags", e))?;
        Ok(tags
            .iter()
            .map(|t| (t.key().to_owned(), t.value().to_owned()))
            .collect())
    }
}

fn to_user(
    operation: &'static str,
    arn: Option<&str>,
    name: Option<&str>,
    user_id: Option<&str>,
    tags: Vec<(String, String)>,
    groups: Vec<String>,
) -> Result<IamUser, IamError> {
    let invalid = |message: String| IamError::InvalidResponse { operation, message };
    let arn: UserArn = arn
        .ok_or_else(|| invalid("user without an ARN".into()))?
        .parse()
        .map_err(|e| invalid(format!("user ARN: {e}")))?;
    let name: UserName = name
        .ok_or_else(|| invalid("user without a name".into()))?
        .parse()
        .map_err(|e| invalid(format!("user name: {e}")))?;
    Ok(IamUser {
        arn,
        name,
        user_id: user_id.unwrap_or_default().to_owned(),
        tags,
        groups,
    })
}

impl IamApi for SdkIam {
    async fn list_users(&self) -> Result<Vec<IamUser>, IamError> {
        let mut users = Vec::new();
        let mut pages = self
            .client
            .get_account_authorization_details()
            .filter(EntityType::User)
            .into_paginator()
            .page_size(self.page_size)
            .send();
        while let Some(out) = pages.next().await {
            let out = out.map_err(|e| IamError::from_sdk("GetAccountAuthorizationDetails", e))?;
            for u in out.user_detail_list() {
                let tags = u
                    .tags()
                    .iter()
                    .map(|t| (t.key().to_owned(), t.value().to_owned()))
                    .collect();
                match to_user(
                    "GetAccountAuthorizationDetails",
                    u.arn(),
                    u.user_name(),
                    u.user_id(),
                    tags,
                    u.group_list().to_vec(),
                ) {
                    Ok(user) => users.push(user),
                    Err(e) => tracing::warn!(error = %e, "skipping an IAM user"),
                }
            }
        }
        Ok(users)
    }

    async fn list_roles(&self) -> Result<Vec<RoleInfo>, IamError> {
        let op = "GetAccountAuthorizationDetails";
        let mut roles = Vec::new();
        let mut pages = self
            .client
            .get_account_authorization_details()
            .filter(EntityType::Role)
            .into_paginator()
            .page_size(self.page_size)
            .send();
        while let Some(out) = pages.next().await {
            let out = out.map_err(|e| IamError::from_sdk(op, e))?;
            for r in out.role_detail_list() {
                let arn = r.arn().and_then(|a| a.parse::<RoleArn>().ok());
                let policy = r.assume_role_policy_document().map(decode_policy_document);
                match (arn, policy) {
                    (Some(arn), Some(Ok(trust_policy))) => roles.push(RoleInfo {
                        arn,
                        trust_policy,
                        role_id: r.role_id().unwrap_or_default().to_owned(),
                        create_date: r
                            .create_date()
                            .and_then(|d| Timestamp::from_unix_nanos(d.as_nanos())),
                    }),
                    _ => {
                        tracing::warn!(role = r.role_name().unwrap_or_default(), "skipping a role")
                    }
                }
            }
        }
        Ok(roles)
    }

    async fn get_user(&self, name: &UserName) -> Result<Option<IamUser>, IamError> {
        let out = match self.client.get_user().user_name(name.as_str()).send().await {
            Ok(out) => out,
            Err(e) => {
                let err = IamError::from_sdk("GetUser", e);
                return match err.code() {
                    Some("NoSuchEntity") => Ok(None),
                    _ => Err(err),
                };
            }
        };
        let Some(user) = out.user() else {
            return Ok(None);
        };
        let mut tags: Vec<(String, String)> = user
            .tags()
            .iter()
            .map(|t| (t.key().to_owned(), t.value().to_owned()))
            .collect();
        if tags.is_empty() {
            // Some responses omit tags; ListUserTags is authoritative.
            tags = match self.user_tags(name).await {
                Ok(t) => t,
                Err(e) if e.code() == Some("NoSuchEntity") => return Ok(None),
                Err(e) => return Err(e),
            };
        }
        to_user(
            "GetUser",
            Some(user.arn()),
            Some(user.user_name()),
            Some(user.user_id()),
            tags,
            Vec::new(),
        )
        .map(Some)
    }

    async fn user_groups(&self, name: &UserName) -> Result<Option<Vec<String>>, IamError> {
        let groups: Result<Vec<aws_sdk_iam::types::Group>, _> = self
            .client
            .list_groups_for_user()
            .user_name(name.as_str())
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await;
        match groups {
            Ok(groups) => Ok(Some(
                groups.iter().map(|g| g.group_name().to_owned()).collect(),
            )),
            Err(e) => {
                let err = IamError::from_sdk("ListGroupsForUser", e);
                match err.code() {
                    Some("NoSuchEntity") => Ok(None),
                    _ => Err(err),
                }
            }
        }
    }

    async fn get_role(&self, name: &RoleName) -> Result<RoleInfo, IamError> {
        let out = match self.client.get_role().role_name(name.as_str()).send().await {
            Ok(out) => out,
            Err(e) => {
                let err = IamError::from_sdk("GetRole", e);
                return match err.code() {
                    Some("NoSuchEntity") => Err(IamError::RoleNotFound(name.to_string())),
                    _ => Err(err),
                };
            }
        };
        let role = out.role().ok_or_else(|| IamError::InvalidResponse {
            operation: "GetRole",
            message: "no role in response".into(),
        })?;
        role_info("GetRole", role)
    }

    async fn list_shard_roles(&self) -> Result<Vec<RoleInfo>, IamError> {
        let op = "ListRoles";
        let roles: Vec<aws_sdk_iam::types::Role> = self
            .client
            .list_roles()
            .path_prefix(SHARD_PATH)
            .into_paginator()
            .page_size(self.page_size)
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| IamError::from_sdk(op, e))?;
        let mut out = Vec::with_capacity(roles.len());
        for r in &roles {
            match role_info(op, r) {
                Ok(info) => out.push(info),
                Err(e) => tracing::warn!(role = r.role_name(), error = %e, "skipping a role"),
            }
        }
        Ok(out)
    }

    async fn create_shard_role(
        &self,
        name: &RoleName,
        document: &str,
        boundary: Option<&str>,
    ) -> Result<RoleInfo, IamError> {
        let created = std::sync::Mutex::new(None);
        let r = retry_write(self.retry, || async {
            let out = self
                .client
                .create_role()
                .role_name(name.as_str())
                .path(SHARD_PATH)
                .assume_role_policy_document(document)
                .set_permissions_boundary(boundary.map(str::to_owned))
                .description(
                    "eks-access-sync: a shard of a tier role (members past one trust policy)",
                )
                .max_session_duration(3600)
                .send()
                .await
                .map_err(|e| IamError::from_sdk("CreateRole", e))?;
            let info = out
                .role()
                .ok_or_else(|| IamError::InvalidResponse {
                    operation: "CreateRole",
                    message: "no role in response".into(),
                })
                .and_then(|r| role_info("CreateRole", r))?;
            if let Ok(mut c) = created.lock() {
                *c = Some(info);
            }
            Ok(())
        })
        .await;
        match r {
            Ok(()) => {
                created
                    .into_inner()
                    .ok()
                    .flatten()
                    .ok_or_else(|| IamError::InvalidResponse {
                        operation: "CreateRole",
                        message: "no role in response".into(),
                    })
            }
            Err(e) if e.code() == Some("EntityAlreadyExists") => {
                let existing = self.get_role(name).await?;
                if existing.arn.path() != SHARD_PATH {
                    return Err(IamError::Service {
                        operation: "CreateRole",
                        code: "EntityAlreadyExists".into(),
                        message: format!(
                            "role {name} exists outside {SHARD_PATH}: it is not a shard of \
                             eks-access-sync, and is left alone; rename it or the tier role"
                        ),
                    });
                }
                self.update_trust_policy(name, document).await?;
                Ok(RoleInfo {
                    trust_policy: document.to_owned(),
                    ..existing
                })
            }
            Err(e) => Err(e),
        }
    }

    async fn update_trust_policy(&self, name: &RoleName, document: &str) -> Result<(), IamError> {
        retry_write(self.retry, || async {
            self.client
                .update_assume_role_policy()
                .role_name(name.as_str())
                .policy_document(document)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| IamError::from_sdk("UpdateAssumeRolePolicy", e))
        })
        .await
    }
}

#[cfg(test)]
mod tests;

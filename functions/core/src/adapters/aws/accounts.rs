//! Credentials per account (issue 12): the hub's own, or a member account's, got by
//! one `sts:AssumeRole` of the member role (`infra/member.yaml`) and kept while valid,
//! so a warm function assumes each member role once an hour, not once a call.
//!
//! [`AccountSessions`] is shared by the EKS adapter and the Kubernetes connector: a
//! member cluster is listed, described, given access entries and sent EKS tokens with
//! the same session. Concurrent first uses of an account (its regions are listed at
//! once) wait for one `AssumeRole`, not one each.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_sdk_sts::error::ProvideErrorMetadata;
use aws_types::SdkConfig;

use crate::model::arn::{AccountId, RoleName};

/// The session name the member role sees (in CloudTrail, and in the token's ARN).
pub const SESSION_NAME: &str = "eks-access-sync";

/// A member session is renewed when less than this is left of it.
pub const RENEW_BEFORE: Duration = Duration::from_secs(5 * 60);

/// A member account could not be reached.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccountError {
    #[error(
        "cannot assume {role_arn}: {reason} (is the member stack, infra/member.yaml, \
         deployed in account {account} and trusting this hub's function role?)"
    )]
    AssumeRole {
        account: String,
        role_arn: String,
        reason: String,
    },
    #[error("cluster in account {0}, but no member role is configured (MEMBER_ROLE_NAME)")]
    NoMemberRole(String),
}

/// One member account's session.
#[derive(Clone)]
struct Session {
    sdk: SdkConfig,
    expires: SystemTime,
    /// Tells a renewed session from the one a cached client was built with.
    generation: u64,
}

type Slot = Arc<tokio::sync::Mutex<Option<Session>>>;

/// The hub's SDK configuration and the member accounts' sessions.
pub struct AccountSessions {
    hub: SdkConfig,
    member_role: Option<RoleName>,
    slots: Mutex<HashMap<AccountId, Slot>>,
    generations: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for AccountSessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountSessions")
            .field("member_role", &self.member_role)
            .finish_non_exhaustive()
    }
}

impl AccountSessions {
    /// The hub's own account only (the CLI's `bootstrap`, a member's `kubeconfig`).
    pub fn hub_only(hub: SdkConfig) -> Self {
        Self::new(hub, None)
    }

    /// The hub, and member accounts through `member_role` (a role name: the member
    /// stack creates it at path `/`).
    pub fn new(hub: SdkConfig, member_role: Option<RoleName>) -> Self {
        AccountSessions {
            hub,
            member_role,
            slots: Mutex::new(HashMap::new()),
            generations: std::sync::atomic::AtomicU64::new(1),
        }
    }

    /// The hub's SDK configuration.
    pub fn hub(&self) -> &SdkConfig {
        &self.hub
    }

    /// The member role's ARN in `account`, in the hub's partition.
    pub fn member_role_arn(&self, account: &AccountId) -> Option<String> {
        let role = self.member_role.as_ref()?;
        let partition = partition_of(self.hub.region().map(|r| r.as_ref()));
        Some(format!("arn:{partition}:iam::{account}:role/{role}"))
    }

    /// The SDK configuration for `member` (`None`: the hub's) and its generation
    /// (0 for the hub; a new one each time a member session is renewed).
    pub async fn sdk_for(
        &self,
        member: Option<&AccountId>,
    ) -> Result<(SdkConfig, u64), AccountError> {
        let Some(account) = member else {
            return Ok((self.hub.clone(), 0));
        };
        let slot = match self.slots.lock() {
            Ok(mut slots) => slots.entry(account.clone()).or_default().clone(),
            Err(_) => Slot::default(),
        };
        let mut held = slot.lock().await;
        if let Some(s) = held.as_ref()
            && s.expires
                .duration_since(SystemTime::now())
                .is_ok_and(|left| left > RENEW_BEFORE)
        {
            return Ok((s.sdk.clone(), s.generation));
        }
        let session = self.assume(account).await?;
        let out = (session.sdk.clone(), session.generation);
        *held = Some(session);
        Ok(out)
    }

    async fn assume(&self, account: &AccountId) -> Result<Session, AccountError> {
        let role_arn = self
            .member_role_arn(account)
            .ok_or_else(|| AccountError::NoMemberRole(account.to_string()))?;
        let failed = |reason: String| AccountError::AssumeRole {
            account: account.to_string(),
            role_arn: role_arn.clone(),
            reason,
        };
        let out = aws_sdk_sts::Client::new(&self.hub)
            .assume_role()
            .role_arn(&role_arn)
            .role_session_name(SESSION_NAME)
            .send()
            .await
            .map_err(|e| {
                failed(match e.code() {
                    Some(code) => format!("{code}: {}", e.message().unwrap_or_default()),
                    None => crate::adapters::aws::sdk::transport_message(&e),
                })
            })?;
        let c = out
            .credentials()
            .ok_or_else(|| failed("AssumeRole returned no credentials".into()))?;
        let expires = SystemTime::try_from(*c.expiration())
            .unwrap_or_else(|_| SystemTime::now() + Duration::from_secs(900));
        let creds = Credentials::new(
            c.access_key_id(),
            c.secret_access_key(),
            Some(c.session_token().to_owned()),
            Some(expires),
            "eks-access-sync-member",
        );
        tracing::info!(account = %account, role = %role_arn, "member role assumed");
        let sdk = self
            .hub
            .to_builder()
            .credentials_provider(SharedCredentialsProvider::new(creds))
            .build();
        let generation = self
            .generations
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(Session {
            sdk,
            expires,
            generation,
        })
    }
}

/// The partition of a region: `aws-cn` for `cn-*`, `aws-us-gov` for `us-gov-*`.
pub fn partition_of(region: Option<&str>) -> &'static str {
    match region {
        Some(r) if r.starts_with("cn-") => "aws-cn",
        Some(r) if r.starts_with("us-gov-") => "aws-us-gov",
        _ => "aws",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_types::region::Region;

    #[test]
    fn member_role_arn_is_in_the_hubs_partition() {
        let account: AccountId = "111122223333".parse().expect("account");
        let role: RoleName = "eks-access-sync-member".parse().expect("role");
        let sdk = |r: &'static str| SdkConfig::builder().region(Region::new(r)).build();
        let s = AccountSessions::new(sdk("us-east-1"), Some(role.clone()));
        assert_eq!(
            s.member_role_arn(&account).as_deref(),
            Some("arn:aws:iam::111122223333:role/eks-access-sync-member")
        );
        let s = AccountSessions::new(sdk("cn-north-1"), Some(role));
        assert_eq!(
            s.member_role_arn(&account).as_deref(),
            Some("arn:aws-cn:iam::111122223333:role/eks-access-sync-member")
        );
        assert_eq!(
            AccountSessions::hub_only(sdk("us-east-1")).member_role_arn(&account),
            None
        );
    }

    #[tokio::test]
    async fn a_member_account_without_a_member_role_is_a_clear_error() {
        let account: AccountId = "111122223333".parse().expect("account");
        let s = AccountSessions::hub_only(SdkConfig::builder().build());
        let err = s.sdk_for(Some(&account)).await.expect_err("no member role");
        assert!(err.to_string().contains("MEMBER_ROLE_NAME"), "{err}");
        assert_eq!(s.sdk_for(None).await.map(|(_, g)| g).ok(), Some(0));
    }
}

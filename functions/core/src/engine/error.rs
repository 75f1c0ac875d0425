//! The engine's one error type: every failure a run reports, with its cause kept.

use crate::adapters::aws::eks::EksError;
use crate::adapters::aws::iam::IamError;
use crate::adapters::aws::lock::LockError;
use crate::adapters::kube::store::K8sError;
use crate::policy::awsauth::AwsAuthError;
use crate::policy::trust::TrustPolicyError;

/// Why a step of a run failed. The Display text is what the report carries.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `ListUsers`, `GetUser`, `GetRole`, `UpdateAssumeRolePolicy`.
    #[error(transparent)]
    Iam(#[from] IamError),
    /// Listing or describing clusters, access entries.
    #[error(transparent)]
    Eks(#[from] EksError),
    /// Connecting to a cluster's API server.
    #[error(transparent)]
    Kube(#[from] K8sError),
    /// The trust-policy lease could not be taken.
    #[error(transparent)]
    Lock(#[from] LockError),
    /// The trust-policy edit was refused.
    #[error(transparent)]
    TrustPolicy(#[from] TrustPolicyError),
    /// The aws-auth edit was refused (a key we must edit does not parse).
    #[error("refusing to edit aws-auth: {0}")]
    AwsAuthRefused(#[from] AwsAuthError),
    /// Reading aws-auth kept failing.
    #[error("aws-auth read failed after {attempts} attempt(s): {source}")]
    AwsAuthRead { attempts: u32, source: K8sError },
    /// Writing aws-auth kept failing (conflicts, transient errors) or failed.
    #[error("aws-auth write failed after {attempts} attempt(s): {source}")]
    AwsAuthWrite { attempts: u32, source: K8sError },
    /// The lease has too little time left for a trust-policy write.
    #[error(
        "trust policy not written: the lock's lease has {left_s} s left, less than the {needed_s} s a write may take"
    )]
    LeaseTooShort { left_s: u64, needed_s: u64 },
    /// The shard roles could not be listed: the tier's members cannot be placed
    /// safely (one may already be in a shard), so its trust side is left alone.
    #[error("cannot list the shard roles, so the tier's trust policies are left alone: {0}")]
    ShardListing(String),
}

/// What kind of failure an [`Error`] is (for logs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Someone else wrote first, every attempt.
    Conflict,
    /// We refused to act (an edit we cannot make safely, a busy lock).
    Refused,
    /// May work next time (throttling, a transport error, a 5xx).
    Transient,
    /// Anything else.
    Failed,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Conflict => "conflict",
            ErrorKind::Refused => "refused",
            ErrorKind::Transient => "transient",
            ErrorKind::Failed => "failed",
        }
    }
}

impl Error {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Kube(K8sError::Conflict(_))
            | Error::AwsAuthWrite {
                source: K8sError::Conflict(_),
                ..
            } => ErrorKind::Conflict,
            Error::AwsAuthRefused(_)
            | Error::TrustPolicy(_)
            | Error::LeaseTooShort { .. }
            | Error::Lock(LockError::Busy { .. }) => ErrorKind::Refused,
            Error::Iam(e) if e.is_throttling() || matches!(e, IamError::Transport { .. }) => {
                ErrorKind::Transient
            }
            Error::Eks(EksError::Transport { .. })
            | Error::Kube(K8sError::Transient { .. } | K8sError::Client(_) | K8sError::Token(_))
            | Error::AwsAuthRead { .. }
            | Error::AwsAuthWrite {
                source: K8sError::Transient { .. },
                ..
            } => ErrorKind::Transient,
            _ => ErrorKind::Failed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_match_the_reports() {
        let e = Error::LeaseTooShort {
            left_s: 10,
            needed_s: 75,
        };
        assert_eq!(
            e.to_string(),
            "trust policy not written: the lock's lease has 10 s left, less than the 75 s a write may take"
        );
        assert_eq!(e.kind(), ErrorKind::Refused);
        let e = Error::AwsAuthWrite {
            attempts: 5,
            source: K8sError::Conflict("modified".into()),
        };
        assert!(
            e.to_string()
                .starts_with("aws-auth write failed after 5 attempt(s): conflict")
        );
        assert_eq!(e.kind(), ErrorKind::Conflict);
        let e = Error::Kube(K8sError::Client("refused".into()));
        assert_eq!(e.to_string(), "Kubernetes client error: refused");
        assert_eq!(e.kind(), ErrorKind::Transient);
    }
}

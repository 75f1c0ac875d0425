//! The AWS SDK configuration every client is built from (IAM, EKS, STS, DynamoDB):
//! the standard chain plus timeouts, and how an SDK transport error is worded.
//!
//! Timeouts (a run that cannot reach a service ends on its own, well within a minute):
//! - connect 3 s: a TCP + TLS handshake to a regional AWS endpoint takes milliseconds;
//!   3 s (the SDK's own default is 3.1 s) rides out a lost SYN and retransmit.
//! - read 10 s: the longest wait for the first byte of an answer. IAM, EKS and
//!   DynamoDB answer the calls made here (one page of a list, one item) in well under
//!   a second.
//! - operation attempt 10 s: one attempt, end to end.
//! - operation 30 s: all attempts (the standard retry strategy makes 3) and their
//!   back-off; the bound a caller sees.

use std::time::Duration;

use aws_config::timeout::TimeoutConfig;
use aws_sdk_iam::error::{DisplayErrorContext, SdkError};
use aws_types::SdkConfig;

pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(30);

/// The timeouts of every AWS call (see the module documentation).
pub fn timeout_config() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .read_timeout(READ_TIMEOUT)
        .operation_attempt_timeout(ATTEMPT_TIMEOUT)
        .operation_timeout(OPERATION_TIMEOUT)
        .build()
}

/// The standard chain (environment, profile, container and instance credentials,
/// `AWS_ENDPOINT_URL_*`) with [`timeout_config`].
pub async fn load_sdk_config() -> SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .timeout_config(timeout_config())
        .load()
        .await
}

/// `sdk` with [`timeout_config`] unless it already sets an operation timeout (a
/// caller that chose its own bounds keeps them).
pub fn with_timeouts(sdk: &SdkConfig) -> SdkConfig {
    if sdk
        .timeout_config()
        .is_some_and(|t| t.operation_timeout().is_some())
    {
        sdk.clone()
    } else {
        sdk.to_builder().timeout_config(timeout_config()).build()
    }
}

/// What went wrong with a call that got no answer from the service: a timeout as a
/// timeout (with the bound), a refused or reset connection as such, else the SDK's
/// error with its causes. Never holds a secret (no request is rendered).
pub fn transport_message<E, R>(err: &SdkError<E, R>) -> String
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match err {
        SdkError::TimeoutError(_) => format!(
            "timed out after {} s (no answer within {} s per attempt)",
            OPERATION_TIMEOUT.as_secs(),
            ATTEMPT_TIMEOUT.as_secs()
        ),
        SdkError::DispatchFailure(f) if f.is_timeout() => format!(
            "timed out (no connection within {} s or no answer within {} s)",
            CONNECT_TIMEOUT.as_secs(),
            READ_TIMEOUT.as_secs()
        ),
        SdkError::DispatchFailure(f) if f.is_io() => {
            format!(
                "connection failed (refused, reset or unreachable): {}",
                DisplayErrorContext(err)
            )
        }
        _ => DisplayErrorContext(err).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_iam::error::ConnectorError;
    use aws_sdk_iam::operation::get_role::GetRoleError;

    type Err = SdkError<GetRoleError, ()>;

    #[test]
    fn timeouts_are_set_and_kept() {
        let t = timeout_config();
        assert_eq!(t.connect_timeout(), Some(CONNECT_TIMEOUT));
        assert_eq!(t.read_timeout(), Some(READ_TIMEOUT));
        assert_eq!(t.operation_attempt_timeout(), Some(ATTEMPT_TIMEOUT));
        assert_eq!(t.operation_timeout(), Some(OPERATION_TIMEOUT));
        // Bounded well within a minute.
        assert!(OPERATION_TIMEOUT < Duration::from_secs(60));

        let bare = SdkConfig::builder().build();
        let with = with_timeouts(&bare);
        assert_eq!(
            with.timeout_config().and_then(|t| t.operation_timeout()),
            Some(OPERATION_TIMEOUT)
        );
        let own = SdkConfig::builder()
            .timeout_config(
                TimeoutConfig::builder()
                    .operation_timeout(Duration::from_secs(2))
                    .build(),
            )
            .build();
        assert_eq!(
            with_timeouts(&own)
                .timeout_config()
                .and_then(|t| t.operation_timeout()),
            Some(Duration::from_secs(2))
        );
    }

    #[test]
    fn timeouts_and_connection_failures_say_so() {
        let timeout: Err = SdkError::timeout_error("elapsed");
        assert_eq!(
            transport_message(&timeout),
            "timed out after 30 s (no answer within 10 s per attempt)"
        );
        let read: Err = SdkError::dispatch_failure(ConnectorError::timeout("read".into()));
        assert!(transport_message(&read).starts_with("timed out"));
        let refused: Err = SdkError::dispatch_failure(ConnectorError::io(Box::new(
            std::io::Error::from(std::io::ErrorKind::ConnectionRefused),
        )));
        let m = transport_message(&refused);
        assert!(m.starts_with("connection failed"), "{m}");
        assert!(m.to_lowercase().contains("refused"), "{m}");
    }
}

use super::*;
use std::sync::atomic::{AtomicU32, Ordering};

fn service(code: &str, message: &str) -> IamError {
    IamError::Service {
        operation: "UpdateAssumeRolePolicy",
        code: code.into(),
        message: message.into(),
    }
}

fn fast(budget_ms: u64) -> WriteRetry {
    WriteRetry {
        invalid_principal_budget: Duration::from_millis(budget_ms),
        throttle_retries: 3,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(20),
    }
}

#[tokio::test]
async fn invalid_principal_is_retried_until_it_succeeds() {
    let calls = AtomicU32::new(0);
    let r = retry_write(fast(5_000), || async {
        if calls.fetch_add(1, Ordering::SeqCst) < 3 {
            Err(service(
                "MalformedPolicyDocument",
                "Invalid principal in policy: \"AWS\":\"arn:aws:iam::1:user/x\"",
            ))
        } else {
            Ok(())
        }
    })
    .await;
    assert!(r.is_ok());
    assert_eq!(calls.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn invalid_principal_gives_up_after_the_budget() {
    let calls = AtomicU32::new(0);
    let start = Instant::now();
    let r = retry_write(fast(100), || async {
        calls.fetch_add(1, Ordering::SeqCst);
        Err(service(
            "MalformedPolicyDocument",
            "Invalid principal in policy",
        ))
    })
    .await;
    assert!(r.expect_err("gives up").is_invalid_principal());
    assert!(calls.load(Ordering::SeqCst) > 2);
    assert!(start.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn throttling_is_retried_a_bounded_number_of_times() {
    let calls = AtomicU32::new(0);
    let r = retry_write(fast(0), || async {
        calls.fetch_add(1, Ordering::SeqCst);
        Err(service("Throttling", "Rate exceeded"))
    })
    .await;
    assert!(r.is_err());
    assert_eq!(calls.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn other_errors_are_not_retried() {
    let calls = AtomicU32::new(0);
    let r = retry_write(fast(5_000), || async {
        calls.fetch_add(1, Ordering::SeqCst);
        Err(service(
            "LimitExceeded",
            "Cannot exceed quota for ACLSizePerRole: 2048",
        ))
    })
    .await;
    assert_eq!(r.expect_err("fails").code(), Some("LimitExceeded"));
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    let other_malformed = retry_write(fast(5_000), || async {
        Err(service(
            "MalformedPolicyDocument",
            "Syntax errors in policy",
        ))
    })
    .await;
    assert!(!other_malformed.expect_err("fails").is_invalid_principal());
}

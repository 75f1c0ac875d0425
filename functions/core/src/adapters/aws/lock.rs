//! A lease that serializes trust-policy writers.
//!
//! `UpdateAssumeRolePolicy` has no precondition: two read-modify-write cycles of the
//! trust policy at once lose one update. Both Lambda functions (and an operator's CLI)
//! therefore take a lease before `GetRole` and give it back after
//! `UpdateAssumeRolePolicy` (its retries included).
//!
//! [`DynamoDbLock`] keeps the lease in a DynamoDB table: one item per lock,
//! `lockId` (the key, `trust-policy/<role name>`), `owner` (a unique id per run) and
//! `expiresAt` (epoch seconds, also the table's TTL attribute so that abandoned items
//! go away). Taking it is a conditional `PutItem` that succeeds only when no item
//! exists, the existing one has expired, or it is malformed (no `expiresAt`, one that
//! is not a number, or one beyond [`LEASE_HORIZON`]: nothing would ever expire it, and
//! DynamoDB's TTL ignores it too); a malformed lease taken over is logged as a warning
//! naming the table and key. Giving it back is a `DeleteItem` on the
//! condition that we still own it. A writer that crashes holding it blocks the others
//! for at most the lease's TTL. [`NoLock`] is used when no table is configured (the
//! CLI on a laptop, one writer).

use std::fmt;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use futures::future::BoxFuture;
use rand::Rng;

use crate::backoff::Backoff;
use crate::ports::{Lease, TrustLock};

/// The lease's lifetime. Longer than a trust-policy write can take: the
/// `Invalid principal in policy` retries last up to 60 s, throttling retries a few
/// seconds more.
pub const TRUST_LOCK_TTL: Duration = Duration::from_secs(120);

/// A write starts only with at least this much of the lease left: the
/// `Invalid principal in policy` retries (60 s) and a margin. That leaves the reads
/// before it (the users, the role) 45 s of a [`TRUST_LOCK_TTL`] lease.
pub const MIN_LEASE_FOR_WRITE: Duration = Duration::from_secs(75);

/// A lease whose `expiresAt` lies further ahead than this (or than the TTL asked for,
/// if longer) was not written by a writer of ours, which sets now + TTL: it is
/// malformed and taken over. Far beyond [`TRUST_LOCK_TTL`] and any clock skew
/// between writers.
pub const LEASE_HORIZON: Duration = Duration::from_secs(3600);

/// How long a writer waits for a lease held by someone else before giving up. Longer
/// than [`TRUST_LOCK_TTL`], so that a lease left behind by a crashed writer is always
/// taken over rather than failing the run.
pub const TRUST_LOCK_MAX_WAIT: Duration = Duration::from_secs(130);

/// The lock's key for a role's trust policy.
pub fn trust_policy_lock_id(role_name: &str) -> String {
    format!("trust-policy/{role_name}")
}

/// A fresh owner id: who holds a lease, unique per run. The Lambda function's name
/// (when running in Lambda) helps an operator reading the table; the random part
/// makes it unique.
pub fn new_owner() -> String {
    let who = std::env::var("AWS_LAMBDA_FUNCTION_NAME")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "cli".to_owned());
    let id: u128 = rand::rng().random();
    format!("{who}/{}/{id:032x}", std::process::id())
}

/// Why a lease could not be taken or given back. Nothing here carries a secret.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "trust-policy lock {lock_id} is held by another writer; gave up after waiting {waited_secs} s (another run of iam-events, reconcile or the CLI is writing the trust policy, or crashed holding the lease: it expires after {ttl_secs} s)"
    )]
    Busy {
        lock_id: String,
        waited_secs: u64,
        ttl_secs: u64,
    },
    #[error(
        "trust-policy lock {lock_id} was no longer ours when released (it expired and may have been taken over)"
    )]
    Lost { lock_id: String },
    #[error("DynamoDB {operation} on table {table} failed: {code}: {message}")]
    Service {
        operation: &'static str,
        table: String,
        code: String,
        message: String,
    },
    #[error("DynamoDB {operation} on table {table} failed: {message}")]
    Transport {
        operation: &'static str,
        table: String,
        message: String,
    },
}

impl LockError {
    fn from_sdk<E, R>(operation: &'static str, table: &str, err: SdkError<E, R>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: fmt::Debug,
    {
        match err.code() {
            Some(code) => LockError::Service {
                operation,
                table: table.to_owned(),
                code: code.to_owned(),
                message: err.message().unwrap_or_default().to_owned(),
            },
            None => LockError::Transport {
                operation,
                table: table.to_owned(),
                message: crate::adapters::aws::sdk::transport_message(&err),
            },
        }
    }

    fn is_condition_failed(&self) -> bool {
        matches!(self, LockError::Service { code, .. } if code == "ConditionalCheckFailedException")
    }
}

/// No serialization: one writer (the CLI without `TRUST_LOCK_TABLE`).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoLock;

impl TrustLock for NoLock {
    fn acquire<'a>(
        &'a self,
        lock_id: &'a str,
        owner: &'a str,
        _ttl: Duration,
    ) -> BoxFuture<'a, Result<Lease, LockError>> {
        Box::pin(async move {
            Ok(Lease {
                lock_id: lock_id.to_owned(),
                owner: owner.to_owned(),
                expires_at: None,
                deadline: None,
            })
        })
    }

    fn release<'a>(&'a self, _lease: &'a Lease) -> BoxFuture<'a, Result<(), LockError>> {
        Box::pin(async { Ok(()) })
    }
}

/// Backoff while waiting for a held lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockWait {
    /// Give up after this long.
    pub max_wait: Duration,
    /// First pause; doubles each time up to `max_delay`, with jitter.
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl Default for LockWait {
    fn default() -> Self {
        LockWait {
            max_wait: TRUST_LOCK_MAX_WAIT,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(2),
        }
    }
}

/// The lease in a DynamoDB table (key `lockId`, string).
#[derive(Debug, Clone)]
pub struct DynamoDbLock {
    client: aws_sdk_dynamodb::Client,
    table: String,
    wait: LockWait,
}

fn epoch_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

impl DynamoDbLock {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        DynamoDbLock {
            client,
            table: table.into(),
            wait: LockWait::default(),
        }
    }

    pub fn with_wait(mut self, wait: LockWait) -> Self {
        self.wait = wait;
        self
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// One conditional `PutItem`: `Ok(Some)` taken, `Ok(None)` held by someone else.
    async fn try_acquire(
        &self,
        lock_id: &str,
        owner: &str,
        ttl: Duration,
    ) -> Result<Option<Lease>, LockError> {
        let started = Instant::now();
        let now = epoch_secs();
        let ttl_secs = i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX).max(1);
        let expires_at = now.saturating_add(ttl_secs);
        let horizon = i64::try_from(LEASE_HORIZON.as_secs()).unwrap_or(i64::MAX);
        let far = now.saturating_add(ttl_secs.max(horizon));
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("lockId", AttributeValue::S(lock_id.to_owned()))
            .item("owner", AttributeValue::S(owner.to_owned()))
            .item("expiresAt", AttributeValue::N(expires_at.to_string()))
            // Free, expired, or malformed (no `expiresAt`, not a number, or beyond any
            // TTL a writer sets): a malformed lease would otherwise block every writer
            // forever, as nothing ever expires it.
            .condition_expression(
                "attribute_not_exists(lockId) OR attribute_not_exists(expiresAt) \
                 OR NOT attribute_type(expiresAt, :number) OR expiresAt < :now \
                 OR expiresAt > :far",
            )
            .expression_attribute_values(":now", AttributeValue::N(now.to_string()))
            .expression_attribute_values(":far", AttributeValue::N(far.to_string()))
            .expression_attribute_values(":number", AttributeValue::S("N".to_owned()))
            .return_values(ReturnValue::AllOld)
            .send()
            .await;
        match put.map_err(|e| LockError::from_sdk("PutItem", &self.table, e)) {
            Ok(out) => {
                if let Some(reason) = out
                    .attributes()
                    .and_then(|old| malformed_lease(old.get("expiresAt"), far))
                {
                    let previous = out
                        .attributes()
                        .and_then(|old| old.get("owner"))
                        .and_then(|o| o.as_s().ok())
                        .map_or("", String::as_str);
                    tracing::warn!(
                        table = %self.table,
                        lock = %lock_id,
                        previous_owner = %previous,
                        reason = %reason,
                        "malformed trust-policy lease taken over"
                    );
                }
                Ok(Some(Lease {
                    lock_id: lock_id.to_owned(),
                    owner: owner.to_owned(),
                    expires_at: Some(expires_at),
                    // `expiresAt` is whole seconds after `now`, which was read before the
                    // request was sent; counting from `started` is never later than that.
                    deadline: Some(started + Duration::from_secs(ttl.as_secs().max(1))),
                }))
            }
            Err(e) if e.is_condition_failed() => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// Why a replaced lease item could not have been a live lease (`None`: it was a
/// valid one, expired).
fn malformed_lease(expires_at: Option<&AttributeValue>, far: i64) -> Option<String> {
    match expires_at {
        None => Some("no expiresAt".to_owned()),
        Some(AttributeValue::N(n)) => match n.parse::<i64>() {
            Ok(t) if t > far => Some(format!("expiresAt {t} is beyond any lease's TTL")),
            Ok(_) => None,
            Err(_) => Some(format!("expiresAt {n} is not whole epoch seconds")),
        },
        Some(_) => Some("expiresAt is not a number".to_owned()),
    }
}

impl TrustLock for DynamoDbLock {
    fn acquire<'a>(
        &'a self,
        lock_id: &'a str,
        owner: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<Lease, LockError>> {
        Box::pin(async move {
            let start = Instant::now();
            let mut backoff = Backoff::new(self.wait.base_delay, self.wait.max_delay);
            let mut attempts = 0u32;
            loop {
                attempts += 1;
                if let Some(lease) = self.try_acquire(lock_id, owner, ttl).await? {
                    tracing::info!(
                        lock = %lock_id,
                        owner = %owner,
                        attempts,
                        waited_ms = start.elapsed().as_millis() as u64,
                        "trust-policy lock acquired"
                    );
                    return Ok(lease);
                }
                // Jitter on the second half: two waiters do not retry in step.
                let pause = backoff.next_delay();
                if start.elapsed() + pause > self.wait.max_wait {
                    return Err(LockError::Busy {
                        lock_id: lock_id.to_owned(),
                        waited_secs: start.elapsed().as_secs(),
                        ttl_secs: ttl.as_secs(),
                    });
                }
                if attempts == 1 {
                    tracing::info!(lock = %lock_id, "trust-policy lock held by another writer; waiting");
                }
                tokio::time::sleep(pause).await;
            }
        })
    }

    fn release<'a>(&'a self, lease: &'a Lease) -> BoxFuture<'a, Result<(), LockError>> {
        Box::pin(async move {
            let deleted = self
                .client
                .delete_item()
                .table_name(&self.table)
                .key("lockId", AttributeValue::S(lease.lock_id.clone()))
                // `owner` is a DynamoDB reserved word.
                .condition_expression("#owner = :me")
                .expression_attribute_names("#owner", "owner")
                .expression_attribute_values(":me", AttributeValue::S(lease.owner.clone()))
                .send()
                .await
                .map_err(|e| LockError::from_sdk("DeleteItem", &self.table, e));
            match deleted {
                Ok(_) => {
                    tracing::info!(lock = %lease.lock_id, "trust-policy lock released");
                    Ok(())
                }
                Err(e) if e.is_condition_failed() => Err(LockError::Lost {
                    lock_id: lease.lock_id.clone(),
                }),
                Err(e) => Err(e),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_id_and_owner() {
        assert_eq!(trust_policy_lock_id("eks-admin"), "trust-policy/eks-admin");
        let (a, b) = (new_owner(), new_owner());
        assert_ne!(a, b);
        assert!(a.len() > 32, "{a}");
    }

    #[tokio::test]
    async fn no_lock_always_grants_a_lease_that_never_expires() {
        let l = NoLock;
        let a = l
            .acquire("trust-policy/r", "a", TRUST_LOCK_TTL)
            .await
            .unwrap();
        let b = l
            .acquire("trust-policy/r", "b", TRUST_LOCK_TTL)
            .await
            .unwrap();
        assert_eq!(a.remaining(), Duration::MAX);
        assert_eq!(b.owner, "b");
        l.release(&a).await.unwrap();
    }

    #[test]
    fn malformed_leases_are_told_from_expired_ones() {
        let far = 10_000;
        assert_eq!(
            malformed_lease(Some(&AttributeValue::N("9000".into())), far),
            None
        );
        assert!(malformed_lease(None, far).is_some());
        assert!(malformed_lease(Some(&AttributeValue::S("soon".into())), far).is_some());
        assert!(malformed_lease(Some(&AttributeValue::N("10001".into())), far).is_some());
        assert!(malformed_lease(Some(&AttributeValue::N("1.5".into())), far).is_some());
    }

    #[test]
    fn errors_say_what_to_do() {
        let e = LockError::Busy {
            lock_id: "trust-policy/eks-admin".into(),
            waited_secs: 130,
            ttl_secs: 120,
        };
        let s = e.to_string();
        assert!(
            s.contains("trust-policy/eks-admin") && s.contains("130 s"),
            "{s}"
        );
        assert!(s.contains("expires after 120 s"), "{s}");
    }
}

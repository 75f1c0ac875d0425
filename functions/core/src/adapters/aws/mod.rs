//! AWS adapters: IAM, EKS, the DynamoDB trust-policy lease, access events on
//! EventBridge, SDK timeouts.

pub mod eks;
pub mod events;
pub mod iam;
pub mod lock;
pub mod sdk;

//! AWS adapters: IAM, EKS, the DynamoDB trust-policy lease, SDK timeouts.

pub mod eks;
pub mod iam;
pub mod lock;
pub mod sdk;

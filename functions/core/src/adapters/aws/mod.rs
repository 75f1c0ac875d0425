//! AWS adapters: IAM, EKS, the DynamoDB trust-policy lease, access events on
//! EventBridge, SDK timeouts, and what a member's `kubeconfig` command reads.

pub mod accounts;
pub mod eks;
pub mod events;
pub mod iam;
pub mod lock;
pub mod member;
pub mod sdk;

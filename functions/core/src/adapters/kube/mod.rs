//! Kubernetes adapters: the aws-auth store, kube clients for EKS, EKS bearer tokens.

pub mod client;
mod rbac;
pub mod store;
pub mod token;

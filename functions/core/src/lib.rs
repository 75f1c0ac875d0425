//! eks-access-sync: keeps EKS cluster-admin access in step with IAM.
//!
//! The pure engine (no I/O) decides exactly what to change and changes
//! nothing else; the adapters (behind small traits) talk to IAM, EKS and
//! each cluster's Kubernetes API.

// Pure core: parsing, editing, planning. No network, no Lambda types.
pub mod accessentry;
pub mod arn;
pub mod awsauth;
pub mod config;
pub mod desired;
pub mod event;
pub mod plan;
pub mod trust;

// Adapters and orchestration.
pub mod eks;
pub mod engine;
pub mod iam;
pub mod intake;
pub mod k8s;
pub mod lock;
pub mod report;
pub mod sdk;
pub mod telemetry;
pub mod token;

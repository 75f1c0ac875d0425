//! eks-access-sync: keeps EKS access in step with IAM, in tiers (a tag or an IAM group
//! chooses the role, the clusters and the Kubernetes rights; [`model::tiers`]).
#![warn(clippy::too_many_lines)]
//!
//! Layers, each importing only the ones before it:
//! [`model`] (data) → [`policy`] (pure decisions) → [`output`] (plan and report) →
//! [`ports`] (the traits the engine needs; they import the adapters' error enums) →
//! [`engine`] (orchestration over the ports) → [`adapters`] (AWS SDK and kube).
//! [`bootstrap`], [`intake`] and [`telemetry`] serve the entry points (the Lambdas
//! and the CLI); [`lambda`] (feature `lambda`) the two Lambdas only. The in-memory fakes
//! are in `testing` (feature `testing`).

pub mod model;
pub mod policy;

pub mod output;

pub mod ports;

pub mod engine;

pub mod adapters;
pub mod backoff;
pub mod bootstrap;
pub mod intake;
#[cfg(feature = "lambda")]
pub mod lambda;
pub mod telemetry;

#[cfg(any(test, feature = "testing"))]
pub mod testing;

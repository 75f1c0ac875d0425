//! eks-sandbox: a local stand-in for the parts of IAM, STS and EKS that
//! eks-access-sync depends on, strict enough that a bug in a token, a
//! trust-policy edit or an aws-auth write fails here as it would in AWS.
//!
//! * `aws`   - the AWS front door (one HTTP port): IAM and STS proxied to
//!   `moto_server` with what moto lacks added, and the EKS control plane.
//! * `kube`  - one TLS Kubernetes API server per cluster.
//! * `sigv4` - the SigV4 verifier both halves use.
//! * `state` - what the two share: credentials, clusters, faults, counters.
//! * `conn`  - connection resets (the `reset` fault) for both servers.
//! * `latency` - the `latencyMs` fault: how long every call takes.
//!
//! Start one in-process with [`aws::Sandbox::start`], or run the
//! `eks-sandbox up` binary.

pub mod aws;
pub mod conn;
pub mod kube;
pub mod latency;
pub mod sigv4;
pub mod state;

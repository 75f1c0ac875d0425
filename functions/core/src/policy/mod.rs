//! Pure decisions: the trust-policy editor, the aws-auth editor, access-entry plans,
//! who is an admin, and what an event means.
//!
//! Imports only [`crate::model`]: no I/O, no SDK, no Lambda types.

pub mod accessentry;
pub mod audit;
pub mod awsauth;
pub mod desired;
pub mod event;
pub mod kubeconfig;
pub mod rbac;
pub mod shards;
pub mod trust;

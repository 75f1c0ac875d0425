//! What a run shows: the plan (JSON and a diff) and the report.
//!
//! Imports [`crate::model`] and [`crate::policy`]; no I/O.

pub mod access;
pub mod events;
pub mod kubeconfig;
pub mod plan;
pub mod report;

//! Data types: ARNs and names, the configuration and its access tiers, clusters and
//! mappings.
//!
//! The bottom layer: imports nothing else of this crate, does no I/O.

pub mod arn;
pub mod cluster;
pub mod config;
pub mod mapping;
pub mod tiers;

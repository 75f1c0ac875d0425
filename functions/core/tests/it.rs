//! The integration tests, one module per file, built as one test binary: each
//! test binary links the whole SDK (about 90 MB in a debug build), and one per
//! file filled CI's disk. `cargo test --test it <module>::` runs one file's tests.

mod aws_auth_support;
#[path = "support/awsauth_gen.rs"]
mod awsauth_gen;
mod engine_support;
mod flows_support;
mod tiers_support;
mod trust_support;

mod adapter_iam;
mod aws_auth;
mod aws_auth_corpus;
mod aws_auth_many_roles;
mod aws_auth_text;
mod engine_access_events;
mod engine_accounts;
mod engine_events;
mod engine_flows;
mod engine_lock;
mod engine_offboard;
mod engine_shards;
mod engine_tiers;
mod engine_tiers_clusters;
mod engine_warm;
mod fuzz_regressions;
mod proptests;
mod recreated_entry;
mod round_trips;
mod sample_events;
mod trust_conditions;
mod trust_policy;

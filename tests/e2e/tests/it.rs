//! The integration tests, one module per file, built as one test binary: each
//! test binary links the whole SDK (about 90 MB in a debug build), and one per
//! file filled CI's disk. `cargo test --test it <module>::` runs one file's tests.

mod support;

mod access_audit;
mod access_events;
mod accounts;
mod cli;
mod clusters;
mod iam_events;
mod kubeconfig;
mod recreated_role;
mod secrets;
mod team_size;
mod tiers;
mod timeouts;
mod trust_lock;

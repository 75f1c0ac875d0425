//! The integration tests, one module per file, built as one test binary: each
//! test binary links the whole SDK (about 90 MB in a debug build), and one per
//! file filled CI's disk. `cargo test --test it <module>::` runs one file's tests.

mod aws_support;

mod aws_accounts;
mod aws_binary;
mod aws_cli;
mod aws_dynamodb;
mod aws_eks;
mod aws_faults;
mod aws_iam;
mod aws_tamper;
mod kube_server;
mod kube_tiers;

//! iam-events handler

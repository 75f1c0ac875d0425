//! TODO: IAM adapter (helper C; waiting for arn/desired)

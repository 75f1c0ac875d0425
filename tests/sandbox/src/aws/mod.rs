//! The AWS front door: IAM/STS proxy in front of moto, EKS control plane, control endpoints.

//! What `eks-access-sync kubeconfig` reads, with a member's own credentials (no admin
//! rights): `sts:GetCallerIdentity`, `iam:GetRole` and `iam:ListRoles`,
//! `eks:ListClusters` and `eks:DescribeCluster`. Read-only; every call has the timeouts
//! of [`crate::adapters::aws::sdk::timeout_config`].
//!
//! [`discover`] finds the member's role in each tier (the shard convention of
//! [`crate::policy::kubeconfig`]) and the contexts to write.

use aws_sdk_sts::error::ProvideErrorMetadata;
use aws_types::SdkConfig;
use aws_types::region::Region;
use futures::future::join_all;

use crate::adapters::aws::eks::{EksError, SdkEks};
use crate::adapters::aws::iam::{IamError, SdkIam};
use crate::model::arn::{RoleArn, UserArn};
use crate::model::cluster::{ClusterInfo, Place};
use crate::model::config::Config;
use crate::policy::kubeconfig::{
    MemberTier, PlannedContext, RoleView, SHARD_PATH, SkippedCluster, plan_contexts, role_for_user,
};
use crate::ports::{EksApi, IamApi};

/// Why the member's contexts cannot be found.
#[derive(Debug, thiserror::Error)]
pub enum MemberError {
    #[error("STS GetCallerIdentity failed: {0}")]
    Sts(String),
    #[error(
        "you are signed in as {arn}, which is not an IAM user. The tier roles trust IAM \
         users, and the kubeconfig makes `aws eks get-token` assume a role with the \
         credentials it runs with: run this command (and kubectl) with your IAM user's own \
         credentials (its access keys or profile; no AWS_SESSION_TOKEN of an assumed role)"
    )]
    NotAUser { arn: String },
    #[error(transparent)]
    Iam(#[from] IamError),
    #[error(
        "you ({user}) are in no tier: no role of the tiers checked trusts you. Ask an \
         administrator of eks-access-sync to add you (tag your IAM user or add it to a \
         tier's IAM group); the tool then adds you to the role within minutes. Tiers \
         checked: {}",
        checked.join("; ")
    )]
    NoTier { user: UserArn, checked: Vec<String> },
}

/// The AWS clients of a member.
#[derive(Debug)]
pub struct MemberAws {
    sts: aws_sdk_sts::Client,
    iam_client: aws_sdk_iam::Client,
    iam: SdkIam,
    eks: SdkEks,
}

impl MemberAws {
    /// Clients over `sdk` with the standard timeouts; `default_region` when `sdk` has
    /// no region (STS and IAM need one to resolve their endpoints).
    pub fn new(sdk: &SdkConfig, default_region: Option<&str>) -> Self {
        let mut sdk = crate::adapters::aws::sdk::with_timeouts(sdk);
        if sdk.region().is_none()
            && let Some(r) = default_region
        {
            sdk = sdk.to_builder().region(Region::new(r.to_owned())).build();
        }
        let iam_client = aws_sdk_iam::Client::new(&sdk);
        MemberAws {
            sts: aws_sdk_sts::Client::new(&sdk),
            iam: SdkIam::new(iam_client.clone()),
            iam_client,
            eks: SdkEks::new(sdk),
        }
    }

    /// `GetCallerIdentity`: the caller's ARN.
    pub async fn caller_arn(&self) -> Result<String, MemberError> {
        let out = self.sts.get_caller_identity().send().await.map_err(|e| {
            MemberError::Sts(match e.code() {
                Some(code) => format!("{code}: {}", e.message().unwrap_or_default()),
                None => crate::adapters::aws::sdk::transport_message(&e),
            })
        })?;
        out.arn()
            .map(str::to_owned)
            .ok_or_else(|| MemberError::Sts("the answer has no ARN".into()))
    }

    /// `GetRole`: the role, `None` when it does not exist.
    pub async fn role(
        &self,
        name: &crate::model::arn::RoleName,
    ) -> Result<Option<RoleView>, IamError> {
        match self.iam.get_role(name).await {
            Ok(r) => Ok(Some(RoleView {
                arn: r.arn,
                trust_policy: r.trust_policy,
            })),
            Err(IamError::RoleNotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `ListRoles` at [`SHARD_PATH`] (every page): the shard roles of every tier.
    pub async fn shard_roles(&self) -> Result<Vec<RoleView>, IamError> {
        let mut roles = self
            .iam_client
            .list_roles()
            .path_prefix(SHARD_PATH)
            .into_paginator()
            .items()
            .send();
        let mut out = Vec::new();
        while let Some(r) = roles.next().await {
            let r = r.map_err(|e| IamError::from_sdk("ListRoles", e))?;
            match (r.arn().parse::<RoleArn>(), r.assume_role_policy_document()) {
                (Ok(arn), Some(doc)) => out.push(RoleView {
                    arn,
                    trust_policy: doc.to_owned(),
                }),
                _ => tracing::warn!(role = r.role_name(), "skipping a role"),
            }
        }
        Ok(out)
    }

    /// `ListClusters` and `DescribeCluster` of each in `region`: the clusters, and the
    /// ones that could not be described.
    pub async fn clusters(
        &self,
        region: &str,
    ) -> Result<(Vec<ClusterInfo>, Vec<EksError>), EksError> {
        let at = &Place::hub(region);
        let names = self.eks.list_clusters(at).await?;
        let described = join_all(names.iter().map(|n| self.eks.describe_cluster(at, n))).await;
        let mut clusters = Vec::new();
        let mut errors = Vec::new();
        for d in described {
            match d {
                Ok(c) => clusters.push(c),
                Err(e) => errors.push(e),
            }
        }
        Ok((clusters, errors))
    }
}

/// What [`discover`] found.
#[derive(Debug, Clone)]
pub struct Discovery {
    pub user: UserArn,
    /// The tiers that admit the member, with the role that does, in configuration order.
    pub tiers: Vec<(String, RoleArn)>,
    pub contexts: Vec<PlannedContext>,
    pub skipped: Vec<SkippedCluster>,
    /// What could not be read (a missing tier role, a region or cluster that failed).
    pub notes: Vec<String>,
    /// Whether a region or cluster could not be read: the contexts may be incomplete.
    pub incomplete: bool,
}

/// Finds the member's role in every tier and the context of each cluster they may
/// reach. Fails when the caller is not an IAM user, IAM cannot be read, or no tier
/// admits them; a region or cluster that cannot be read is a note.
pub async fn discover(config: &Config, aws: &MemberAws) -> Result<Discovery, MemberError> {
    let caller = aws.caller_arn().await?;
    let user: UserArn = caller.parse().map_err(|_| MemberError::NotAUser {
        arn: caller.clone(),
    })?;
    let listed = aws.shard_roles().await?;
    let sid = &config.trust_statement_sid;
    let mut member_tiers = Vec::new();
    let mut checked = Vec::new();
    let mut notes = Vec::new();
    for tier in &config.access.tiers {
        checked.push(format!(
            "{} (role {}, and {}-<k> at {SHARD_PATH})",
            tier.name, tier.role, tier.role
        ));
        let base = aws.role(&tier.role).await?;
        if base.is_none() {
            notes.push(format!(
                "tier {}: role {} does not exist",
                tier.name, tier.role
            ));
        }
        if let Some(r) = role_for_user(&tier.role, base.as_ref(), &listed, sid, &user) {
            member_tiers.push(MemberTier {
                tier,
                role: r.arn.clone(),
            });
        }
    }
    if member_tiers.is_empty() {
        return Err(MemberError::NoTier { user, checked });
    }
    let mut clusters = Vec::new();
    let mut incomplete = false;
    for region in &config.cluster_regions {
        match aws.clusters(region).await {
            Ok((found, errors)) => {
                clusters.extend(found);
                for e in errors {
                    incomplete = true;
                    notes.push(format!("{region}: {e}"));
                }
            }
            Err(e) => {
                incomplete = true;
                notes.push(format!("{region}: {e}"));
            }
        }
    }
    let (contexts, skipped) = plan_contexts(&clusters, &config.cluster_tag, &member_tiers);
    Ok(Discovery {
        user,
        tiers: member_tiers
            .iter()
            .map(|t| (t.tier.name.to_string(), t.role.clone()))
            .collect(),
        contexts,
        skipped,
        notes,
        incomplete,
    })
}

//! aws-auth documents found needing no edit, kept on a warm engine.
//!
//! The aws-auth edit is a pure function of the document, the job, the cluster's tags
//! and the run's goal. When a run finds a document in sync, the same inputs need no
//! edit the next time either, so the next run (an event on a warm Lambda, the next
//! scheduled reconcile) still reads the document but does not parse it again: a tier
//! spread over a hundred shard roles is a 118-entry `mapRoles`, and parsing it was most
//! of an event's work on each cluster. Every input is compared exactly (the document's
//! every key, byte for byte; the goal as one canonical text): nothing is hashed, so no
//! collision can skip an edit that is due.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use crate::engine::aws_auth::AwsAuthJob;
use crate::model::cluster::ClusterInfo;

/// What one cluster's document was found in sync with.
struct Seen {
    job: AwsAuthJob,
    tags: BTreeMap<String, String>,
    data: BTreeMap<String, String>,
}

/// The documents in sync with one goal, by cluster ARN.
#[derive(Default)]
struct Memo {
    goal: String,
    clusters: HashMap<String, Seen>,
}

/// Shared by the runs of one engine.
#[derive(Default)]
pub(super) struct InSync(Mutex<Memo>);

impl InSync {
    /// Whether `data` of `cluster` was found in sync for `job` and `goal` (the goal's
    /// canonical text, [`crate::engine::clusters::ClusterGoal::fingerprint`]).
    pub(super) fn holds(
        &self,
        goal: &str,
        cluster: &ClusterInfo,
        job: AwsAuthJob,
        data: &BTreeMap<String, String>,
    ) -> bool {
        let Ok(memo) = self.0.lock() else {
            return false;
        };
        if cluster.arn.is_empty() {
            return false;
        }
        memo.goal == goal
            && memo
                .clusters
                .get(&cluster.arn)
                .is_some_and(|s| s.job == job && s.tags == cluster.tags && &s.data == data)
    }

    /// Remembers that `data` of `cluster` needs no edit for `job` and `goal`; a new
    /// goal forgets every document found in sync with the previous one.
    pub(super) fn remember(
        &self,
        goal: &str,
        cluster: &ClusterInfo,
        job: AwsAuthJob,
        data: &BTreeMap<String, String>,
    ) {
        let Ok(mut memo) = self.0.lock() else {
            return;
        };
        if cluster.arn.is_empty() {
            return;
        }
        if memo.goal != goal {
            memo.goal = goal.to_owned();
            memo.clusters.clear();
        }
        memo.clusters.insert(
            cluster.arn.clone(),
            Seen {
                job,
                tags: cluster.tags.clone(),
                data: data.clone(),
            },
        );
    }
}

//! The engine on fakes: EKS events (the region of an unmanaged cluster) and the
//! logs of event runs (plain values).

use crate::flows_support::*;
use eks_access_sync::engine::RunMode;
use eks_access_sync::output::report::{ClusterStatus, RunReport};
use serde_json::json;

/// A CloudTrail `TagResource` on the cluster `name`, as EventBridge delivers it from
/// `region` (the envelope's `region` and the record's `awsRegion`).
fn eks_tag_event(region: &str, name: &str) -> serde_json::Value {
    json!({
        "version": "0",
        "id": "6f1b3b0e-0000-0000-0000-000000000002",
        "detail-type": "AWS API Call via CloudTrail",
        "source": "aws.eks",
        "account": ACCOUNT,
        "time": "2026-11-28T12:00:00Z",
        "region": region,
        "resources": [],
        "detail": {
            "eventVersion": "1.09",
            "eventSource": "eks.amazonaws.com",
            "eventName": "TagResource",
            "awsRegion": region,
            "requestParameters": {
                "resourceArn": format!("arn:aws:eks:{region}:{ACCOUNT}:cluster/{name}"),
                "tags": { "eks-access-sync/managed": "true" }
            },
            "responseElements": null,
            "recipientAccountId": ACCOUNT
        }
    })
}

async fn eks_event_report(w: &World, ev: &serde_json::Value) -> RunReport {
    match eks_access_sync::policy::event::classify_event(ev, w.engine.config()) {
        eks_access_sync::policy::event::EventClass::Eks(ev) => w.engine.handle_eks_event(&ev).await,
        other => panic!("not an EKS event: {other:?}"),
    }
}

/// An EKS event for a cluster that is not managed (c2 is untagged; "ghost" does not
/// exist): the report names the event's region, not `""`.
#[tokio::test]
async fn an_eks_event_for_an_unmanaged_cluster_reports_the_events_region() {
    let w = world();
    for name in ["c2", "ghost"] {
        let r = eks_event_report(&w, &eks_tag_event("eu-west-1", name)).await;
        assert_eq!(r.clusters.len(), 1, "{r:#?}");
        let c = &r.clusters[0];
        assert_eq!(c.name, name);
        assert_eq!(c.status, ClusterStatus::Skipped, "{r:#?}");
        assert_eq!(c.region, "eu-west-1", "{r:#?}");
    }
    // No envelope region: CloudTrail's awsRegion says where the call was made.
    let mut ev = eks_tag_event("eu-west-1", "c2");
    ev.as_object_mut().expect("object").remove("region");
    let r = eks_event_report(&w, &ev).await;
    assert_eq!(r.clusters[0].region, "eu-west-1", "{r:#?}");
    assert_eq!(
        total_writes(&w),
        0,
        "nothing is written for an unmanaged cluster"
    );
}

/// A writer the log tests read back.
#[derive(Clone, Default)]
struct Capture(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("capture").extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Capture {
    type Writer = Capture;
    fn make_writer(&'a self) -> Capture {
        self.clone()
    }
}

/// Log fields are plain values: no `Debug` forms of options, enums or newtypes
/// (`"change":"Some(Add(UserArn(\"arn:…\")))"`).
#[tokio::test]
async fn event_runs_log_plain_values() {
    use tracing_subscriber::layer::SubscriberExt as _;
    let w = world();
    let cap = Capture::default();
    let subscriber =
        tracing_subscriber::registry().with(eks_access_sync::telemetry::json_layer_with(
            tracing_subscriber::EnvFilter::new("trace"),
            cap.clone(),
        ));
    let _guard = tracing::subscriber::set_default(subscriber);
    for ev in [
        iam_event("TagUser", "alice"),
        iam_event("UntagUser", "alice"),
        iam_event("DeleteUser", "bob"),
    ] {
        let _ = w
            .engine
            .handle_iam_events_payload(&ev, RunMode::Apply)
            .await;
    }
    let _ = eks_event_report(&w, &eks_tag_event("us-east-1", "c1")).await;
    let text = String::from_utf8(cap.0.lock().expect("capture").clone()).expect("utf-8");
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    let reread: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|l| l["message"] == "event re-read")
        .collect();
    assert_eq!(reread.len(), 3, "{text}");
    assert_eq!(
        reread[0]["change"],
        format!("add arn:aws:iam::{ACCOUNT}:user/alice"),
        "{text}"
    );
    for form in [
        "Some(",
        "None",
        "UserArn(",
        "UserName(",
        "AccountId(",
        "ClusterName(",
        "Add(",
        "RemoveName",
    ] {
        assert!(
            !text.contains(form),
            "a Debug form {form:?} in the logs:\n{text}"
        );
    }
}

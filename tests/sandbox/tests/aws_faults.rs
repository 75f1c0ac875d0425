//! Per-service fault rules (`POST /_sandbox/faults` with `service`, `operation`, `kind`,
//! `count`): throttling and 500 in each service's own protocol, a hang and a reset
//! connection, once or always, on IAM, STS, EKS, DynamoDB and the Kubernetes API.

use std::time::{Duration, SystemTime};

use crate::aws_support::{code_and_message, control, operator_config, start};
use aws_credential_types::Credentials;
use aws_smithy_runtime_api::client::result::SdkError;
use base64::Engine as _;
use eks_sandbox::aws::{Sandbox, lock};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::Api;

async fn fault(sb: &Sandbox, body: &str) {
    let (status, reply) = control(sb, "/_sandbox/faults", body).await;
    assert_eq!(status, 200, "{body}: {reply}");
}

/// (code, HTTP status) of a service error; panics on a success.
fn code_status<O: std::fmt::Debug, E, R>(r: Result<O, SdkError<E, R>>) -> (String, u16)
where
    E: aws_sdk_iam::error::ProvideErrorMetadata + std::fmt::Debug,
    R: std::fmt::Debug + HasStatus,
{
    let e = r.expect_err("the call fails");
    let status = e.raw_response().map_or(0, HasStatus::status);
    (code_and_message(&e).0, status)
}

trait HasStatus {
    fn status(&self) -> u16;
}

impl HasStatus for aws_smithy_runtime_api::http::Response {
    fn status(&self) -> u16 {
        self.status().as_u16()
    }
}

fn count(sb: &Sandbox, service: &str, op: &str) -> u64 {
    lock(&sb.shared())
        .calls
        .get(&(service.to_string(), op.to_string()))
        .copied()
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_and_500_in_each_services_protocol_once_and_always() {
    let sb = start().await;
    let conf = operator_config(&sb).await;
    let iam = aws_sdk_iam::Client::new(&conf);
    let sts = aws_sdk_sts::Client::new(&conf);
    let eks = aws_sdk_eks::Client::new(&conf);
    let ddb = aws_sdk_dynamodb::Client::new(&conf);

    // Once (count 1): the next call gets the service's own throttling error, then calls pass.
    fault(
        &sb,
        r#"{"service":"iam","operation":"ListUsers","kind":"throttle","count":1}"#,
    )
    .await;
    fault(&sb, r#"{"service":"sts","kind":"throttle","count":1}"#).await;
    fault(
        &sb,
        r#"{"service":"eks","operation":"ListClusters","kind":"throttle","count":1}"#,
    )
    .await;
    fault(
        &sb,
        r#"{"service":"dynamodb","operation":"ListTables","kind":"throttle","count":1}"#,
    )
    .await;
    // A rule on one operation leaves the others alone.
    iam.list_roles()
        .send()
        .await
        .expect("ListRoles is not faulted");
    assert_eq!(
        code_status(iam.list_users().send().await),
        ("Throttling".into(), 400)
    );
    iam.list_users()
        .send()
        .await
        .expect("once: the second call passes");
    assert_eq!(
        code_status(sts.get_caller_identity().send().await),
        ("Throttling".into(), 400)
    );
    sts.get_caller_identity()
        .send()
        .await
        .expect("sts passes again");
    assert_eq!(
        code_status(eks.list_clusters().send().await),
        ("ThrottlingException".into(), 429)
    );
    eks.list_clusters().send().await.expect("eks passes again");
    assert_eq!(
        code_status(ddb.list_tables().send().await),
        ("ThrottlingException".into(), 400)
    );
    ddb.list_tables()
        .send()
        .await
        .expect("dynamodb passes again");
    // The faulted calls are counted like the others.
    assert_eq!(count(&sb, "iam", "ListUsers"), 2);
    assert_eq!(count(&sb, "dynamodb", "ListTables"), 2);

    // DynamoDB's other throttling code, twice (count 2).
    fault(
        &sb,
        r#"{"service":"dynamodb","operation":"ListTables","kind":"throttle","count":2,"code":"ProvisionedThroughputExceededException"}"#,
    )
    .await;
    for _ in 0..2 {
        assert_eq!(
            code_status(ddb.list_tables().send().await),
            ("ProvisionedThroughputExceededException".into(), 400)
        );
    }
    ddb.list_tables().send().await.expect("after two");

    // Always (count null): every call fails with 500 until the rule is turned off.
    fault(
        &sb,
        r#"{"service":"iam","operation":"ListUsers","kind":"error500","count":null}"#,
    )
    .await;
    fault(&sb, r#"{"service":"eks","kind":"error500","count":null}"#).await;
    fault(
        &sb,
        r#"{"service":"dynamodb","kind":"error500","count":null}"#,
    )
    .await;
    fault(&sb, r#"{"service":"sts","kind":"error500","count":null}"#).await;
    for _ in 0..3 {
        assert_eq!(
            code_status(iam.list_users().send().await),
            ("ServiceFailure".into(), 500)
        );
        assert_eq!(
            code_status(eks.list_clusters().send().await),
            ("ServerException".into(), 500)
        );
        assert_eq!(
            code_status(ddb.list_tables().send().await),
            ("InternalServerError".into(), 500)
        );
        assert_eq!(
            code_status(sts.get_caller_identity().send().await),
            ("InternalFailure".into(), 500)
        );
    }
    for s in [
        r#"{"service":"iam","operation":"ListUsers","kind":"off"}"#,
        r#"{"service":"eks","kind":"off"}"#,
        r#"{"service":"dynamodb","kind":"off"}"#,
        r#"{"service":"sts","kind":"off"}"#,
    ] {
        fault(&sb, s).await;
    }
    iam.list_users().send().await.expect("iam after off");
    eks.list_clusters().send().await.expect("eks after off");
    ddb.list_tables().send().await.expect("dynamodb after off");
    sts.get_caller_identity()
        .send()
        .await
        .expect("sts after off");

    // The old IAM throttle still works beside the rules.
    fault(&sb, r#"{"iam": {"throttle": 1}}"#).await;
    assert_eq!(code_status(iam.list_users().send().await).0, "Throttling");
    iam.list_users()
        .send()
        .await
        .expect("after the old throttle");
    sb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_rules_are_refused_and_say_why() {
    let sb = start().await;
    for (body, why) in [
        (
            r#"{"service":"s3","kind":"throttle","count":1}"#,
            "unknown service",
        ),
        (r#"{"service":"eks","kind":"throttle"}"#, "count"),
        (r#"{"service":"eks","count":1}"#, "kind"),
        (r#"{"kind":"hang","count":1}"#, "service"),
        (
            r#"{"service":"eks","cluster":"prod","kind":"hang","count":1}"#,
            "kube",
        ),
        (
            r#"{"service":"eks","kind":"slow","count":1}"#,
            "unknown variant",
        ),
    ] {
        let (status, reply) = control(&sb, "/_sandbox/faults", body).await;
        assert_ne!(status, 200, "{body} was accepted");
        assert!(reply.contains(why), "{body}: {reply} does not say {why}");
    }
    sb.shutdown().await;
}

/// The call's future, spawned; resolves to "did it end".
async fn ends_within<F: std::future::Future + Send + 'static>(f: F, guard: Duration) -> bool
where
    F::Output: Send,
{
    tokio::time::timeout(guard, f).await.is_ok()
}

/// Waits (bounded) until `service`/`op` has been called `n` times.
async fn until_counted(sb: &Sandbox, service: &str, op: &str, n: u64) {
    let wait = async {
        while count(sb, service, op) < n {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), wait)
        .await
        .unwrap_or_else(|_| panic!("{service} {op} was not called {n} times"));
}

fn is_io_failure<E: std::fmt::Debug, R: std::fmt::Debug>(e: &SdkError<E, R>) -> bool {
    matches!(e, SdkError::DispatchFailure(d) if d.is_io())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hang_never_answers_and_reset_drops_the_connection() {
    let sb = start().await;
    let conf = operator_config(&sb).await;
    let eks = aws_sdk_eks::Client::new(&conf);
    let ddb = aws_sdk_dynamodb::Client::new(&conf);
    let iam = aws_sdk_iam::Client::new(&conf);
    let sts = aws_sdk_sts::Client::new(&conf);

    // Reset, once, on each service: the call fails as an I/O failure, the next passes.
    fault(
        &sb,
        r#"{"service":"eks","operation":"ListClusters","kind":"reset","count":1}"#,
    )
    .await;
    fault(&sb, r#"{"service":"dynamodb","kind":"reset","count":1}"#).await;
    fault(&sb, r#"{"service":"iam","kind":"reset","count":1}"#).await;
    fault(&sb, r#"{"service":"sts","kind":"reset","count":1}"#).await;
    let e = eks.list_clusters().send().await.expect_err("reset");
    assert!(is_io_failure(&e), "eks: {e:?}");
    eks.list_clusters()
        .send()
        .await
        .expect("eks after the reset");
    let e = ddb.list_tables().send().await.expect_err("reset");
    assert!(is_io_failure(&e), "dynamodb: {e:?}");
    ddb.list_tables()
        .send()
        .await
        .expect("dynamodb after the reset");
    let e = iam.list_users().send().await.expect_err("reset");
    assert!(is_io_failure(&e), "iam: {e:?}");
    let e = sts.get_caller_identity().send().await.expect_err("reset");
    assert!(is_io_failure(&e), "sts: {e:?}");
    sts.get_caller_identity()
        .send()
        .await
        .expect("sts after the reset");

    // Hang, once: the call reaches the sandbox and is never answered; the next passes.
    fault(
        &sb,
        r#"{"service":"eks","operation":"ListClusters","kind":"hang","count":1}"#,
    )
    .await;
    let before = count(&sb, "eks", "ListClusters");
    let hung = tokio::spawn({
        let eks = eks.clone();
        async move { eks.list_clusters().send().await.map(|_| ()) }
    });
    until_counted(&sb, "eks", "ListClusters", before + 1).await;
    assert!(
        !ends_within(hung, Duration::from_millis(300)).await,
        "a hung call was answered"
    );
    eks.list_clusters()
        .send()
        .await
        .expect("the next call is answered");

    // Hang, always, on DynamoDB only: every DynamoDB call hangs, EKS still answers.
    fault(&sb, r#"{"service":"dynamodb","kind":"hang","count":null}"#).await;
    for n in 1..=2 {
        let before = count(&sb, "dynamodb", "ListTables");
        let ddb = ddb.clone();
        let call = tokio::spawn(async move { ddb.list_tables().send().await.map(|_| ()) });
        until_counted(&sb, "dynamodb", "ListTables", before + 1).await;
        assert!(
            !ends_within(call, Duration::from_millis(300)).await,
            "hung call {n} was answered"
        );
    }
    eks.list_clusters().send().await.expect("eks is not hung");
    fault(&sb, r#"{"service":"dynamodb","kind":"off"}"#).await;
    ddb.list_tables().send().await.expect("dynamodb after off");
    sb.shutdown().await;
}

/// A kube client on a seeded cluster as the operator (its creator, cluster-admin).
async fn kube_client(sb: &Sandbox, cluster: &str) -> kube::Client {
    let conf = operator_config(sb).await;
    let c = aws_sdk_eks::Client::new(&conf)
        .describe_cluster()
        .name(cluster)
        .send()
        .await
        .expect("DescribeCluster")
        .cluster
        .expect("cluster");
    let pem = base64::engine::general_purpose::STANDARD
        .decode(c.certificate_authority.and_then(|a| a.data).expect("CA"))
        .expect("base64");
    let (ak, sk) = sb.operator_credentials();
    let token = eks_access_sync::adapters::kube::token::eks_token(
        &Credentials::new(ak, sk, None, None, "op"),
        &sb.region(),
        cluster,
        Some(&sb.aws_endpoint()),
        SystemTime::now(),
    )
    .expect("token");
    eks_access_sync::adapters::kube::client::kube_client(
        &c.endpoint.expect("endpoint"),
        &pem,
        &token,
    )
    .expect("kube client")
}

fn api_code(e: kube::Error) -> u16 {
    match e {
        kube::Error::Api(s) => s.code,
        other => panic!("not an API error: {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubernetes_api_throttles_fails_hangs_and_resets_per_cluster_and_operation() {
    let sb = start().await;
    sb.seed().await.expect("seed");
    let prod: Api<ConfigMap> = Api::namespaced(kube_client(&sb, "prod").await, "kube-system");
    let legacy: Api<ConfigMap> = Api::namespaced(kube_client(&sb, "legacy").await, "kube-system");

    // Throttle once on prod's configmap reads: the server answers 429 and kube's
    // client retries a 429 itself (it retries only 429, 503 and 504), so the read
    // passes and the server saw two calls; legacy untouched.
    fault(
        &sb,
        r#"{"service":"kube","cluster":"prod","operation":"GET configmaps","kind":"throttle","count":1}"#,
    )
    .await;
    legacy.get("aws-auth").await.expect("legacy is not faulted");
    let before = count(&sb, "k8s:prod", "GET configmaps");
    prod.get("aws-auth").await.expect("retried past one 429");
    assert_eq!(count(&sb, "k8s:prod", "GET configmaps"), before + 2);

    // 500 always on every cluster's writes, reads still pass.
    fault(
        &sb,
        r#"{"service":"kube","operation":"PUT configmaps","kind":"error500","count":null}"#,
    )
    .await;
    let cm = prod.get("aws-auth").await.expect("reads pass");
    for _ in 0..2 {
        let e = prod
            .replace("aws-auth", &Default::default(), &cm)
            .await
            .expect_err("500");
        assert_eq!(api_code(e), 500);
    }
    fault(
        &sb,
        r#"{"service":"kube","operation":"PUT configmaps","kind":"off"}"#,
    )
    .await;
    prod.replace("aws-auth", &Default::default(), &cm)
        .await
        .expect("writes pass after off");

    // Reset once: a transport error (not an API status), then it passes.
    fault(
        &sb,
        r#"{"service":"kube","cluster":"prod","kind":"reset","count":1}"#,
    )
    .await;
    match prod.get("aws-auth").await {
        Err(kube::Error::Api(s)) => panic!("a reset gave an API status: {s:?}"),
        Err(_) => {}
        Ok(_) => panic!("a reset call succeeded"),
    }
    prod.get("aws-auth").await.expect("after the reset");

    // Hang once: the call is counted and never answered; the next passes.
    fault(
        &sb,
        r#"{"service":"kube","cluster":"prod","kind":"hang","count":1}"#,
    )
    .await;
    let before = count(&sb, "k8s:prod", "GET configmaps");
    let p2 = prod.clone();
    let hung = tokio::spawn(async move { p2.get("aws-auth").await.map(|_| ()) });
    until_counted(&sb, "k8s:prod", "GET configmaps", before + 1).await;
    assert!(
        !ends_within(hung, Duration::from_millis(300)).await,
        "a hung call was answered"
    );
    prod.get("aws-auth").await.expect("after the hang");
    sb.shutdown().await;
}

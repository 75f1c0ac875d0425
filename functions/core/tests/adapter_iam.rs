//! `SdkIam` against a real `moto_server` (spawned on a free port per test).

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_credential_types::Credentials;
use aws_sdk_iam::config::{BehaviorVersion, Region};
use eks_access_sync::{
    adapters::aws::iam::{SdkIam, WriteRetry},
    ports::IamApi,
};

struct Moto {
    child: Child,
    url: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

async fn moto() -> Moto {
    let port = free_port();
    let child = Command::new("moto_server")
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("moto_server is installed");
    let url = format!("http://127.0.0.1:{port}");
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "moto did not start"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Moto { child, url }
}

fn client(url: &str) -> aws_sdk_iam::Client {
    let conf = aws_sdk_iam::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
        .endpoint_url(url)
        .build();
    aws_sdk_iam::Client::from_conf(conf)
}

const TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Sid":"Ec2","Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;

#[tokio::test]
async fn lists_users_with_tags_across_pages() {
    let m = moto().await;
    let c = client(&m.url);
    for i in 0..7 {
        let mut req = c.create_user().user_name(format!("user{i}"));
        if i % 2 == 0 {
            req = req.tags(
                aws_sdk_iam::types::Tag::builder()
                    .key("eks-admin")
                    .value("true")
                    .build()
                    .expect("tag"),
            );
        }
        req.send().await.expect("create user");
    }
    c.create_user()
        .user_name("pathy")
        .path("/team/")
        .send()
        .await
        .expect("create user");
    let iam = SdkIam::with_options(c.clone(), 3, WriteRetry::default());
    let users = iam.list_users().await.expect("list");
    assert_eq!(users.len(), 8, "all pages read");
    let u0 = users
        .iter()
        .find(|u| u.name.as_str() == "user0")
        .expect("user0");
    assert_eq!(u0.tags, vec![("eks-admin".to_owned(), "true".to_owned())]);
    let u1 = users
        .iter()
        .find(|u| u.name.as_str() == "user1")
        .expect("user1");
    assert!(u1.tags.is_empty());
    let p = users
        .iter()
        .find(|u| u.name.as_str() == "pathy")
        .expect("pathy");
    assert_eq!(p.arn.as_str(), "arn:aws:iam::123456789012:user/team/pathy");

    let got = iam
        .get_user(&"user2".parse().expect("name"))
        .await
        .expect("get");
    let got = got.expect("exists");
    assert_eq!(got.tags, vec![("eks-admin".to_owned(), "true".to_owned())]);
    assert_eq!(got.arn.as_str(), "arn:aws:iam::123456789012:user/user2");
    let none = iam
        .get_user(&"ghost".parse().expect("name"))
        .await
        .expect("get");
    assert!(none.is_none());
}

#[tokio::test]
async fn reads_decoded_trust_policy_and_writes_it() {
    let m = moto().await;
    let c = client(&m.url);
    c.create_role()
        .role_name("eks-admin")
        .path("/ops/")
        .assume_role_policy_document(TRUST)
        .send()
        .await
        .expect("create role");
    let iam = SdkIam::new(c);
    let name = "eks-admin".parse().expect("role name");
    let role = iam.get_role(&name).await.expect("get role");
    assert_eq!(
        role.arn.as_str(),
        "arn:aws:iam::123456789012:role/ops/eks-admin"
    );
    let doc: serde_json::Value = serde_json::from_str(&role.trust_policy).expect("decoded JSON");
    assert_eq!(doc["Statement"][0]["Sid"], "Ec2");

    let new = r#"{"Version":"2012-10-17","Statement":[{"Sid":"Admins","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"sts:AssumeRole"}]}"#;
    iam.update_trust_policy(&name, new).await.expect("write");
    let role = iam.get_role(&name).await.expect("get role");
    let doc: serde_json::Value = serde_json::from_str(&role.trust_policy).expect("decoded JSON");
    assert_eq!(doc["Statement"][0]["Sid"], "Admins");

    let missing = iam
        .get_role(&"nope".parse().expect("role name"))
        .await
        .expect_err("missing role");
    assert!(missing.to_string().contains("nope"), "{missing}");
}

#[tokio::test]
async fn service_errors_keep_code_and_message() {
    let m = moto().await;
    let iam = SdkIam::new(client(&m.url));
    let err = iam
        .update_trust_policy(&"nope".parse().expect("role name"), TRUST)
        .await
        .expect_err("no such role");
    assert_eq!(err.code(), Some("NoSuchEntity"), "{err}");
    assert!(
        !err.to_string().contains("testing"),
        "no credentials in errors"
    );
}

/// One GetAccountAuthorizationDetails page of the stub server (`marker`: more follow).
fn page(users: &[&str], marker: Option<&str>) -> String {
    let members: String = users
        .iter()
        .map(|u| format!(
            "<member><UserName>{u}</UserName><UserId>AIDA{u:0>16}</UserId><Arn>arn:aws:iam::123456789012:user/{u}</Arn><Path>/</Path><CreateDate>2026-01-01T00:00:00Z</CreateDate><Tags><member><Key>k</Key><Value>{u}</Value></member></Tags></member>"
        ))
        .collect();
    let (trunc, m) = match marker {
        Some(m) => ("true", format!("<Marker>{m}</Marker>")),
        None => ("false", String::new()),
    };
    format!(
        "<GetAccountAuthorizationDetailsResponse xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\"><GetAccountAuthorizationDetailsResult><IsTruncated>{trunc}</IsTruncated>{m}<UserDetailList>{members}</UserDetailList><GroupDetailList/><RoleDetailList/><Policies/></GetAccountAuthorizationDetailsResult><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></GetAccountAuthorizationDetailsResponse>"
    )
}

/// moto ignores `MaxItems` on GetAccountAuthorizationDetails, so pagination is shown
/// against a two-page stub server: one call per page, the marker passed on.
#[tokio::test]
async fn follows_markers_one_call_per_page() {
    use std::sync::{Arc, Mutex};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let bodies: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = bodies.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let seen = seen.clone();
            tokio::spawn(async move {
                loop {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    let body = loop {
                        let n = match sock.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => n,
                        };
                        buf.extend_from_slice(&chunk[..n]);
                        let text = String::from_utf8_lossy(&buf).to_string();
                        if let Some(i) = text.find("\r\n\r\n") {
                            let len: usize = text[..i]
                                .lines()
                                .find_map(|l| {
                                    let (k, v) = l.split_once(':')?;
                                    k.eq_ignore_ascii_case("content-length")
                                        .then(|| v.trim().parse().ok())?
                                })
                                .unwrap_or(0);
                            if buf.len() >= i + 4 + len {
                                break text[i + 4..i + 4 + len].to_owned();
                            }
                        }
                    };
                    let resp = if body.contains("Marker=m1") {
                        page(&["c"], None)
                    } else {
                        page(&["a", "b"], Some("m1"))
                    };
                    seen.lock().expect("lock").push(body);
                    let out = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: text/xml\r\ncontent-length: {}\r\n\r\n{resp}",
                        resp.len()
                    );
                    if sock.write_all(out.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    let iam = SdkIam::with_options(client(&format!("http://{addr}")), 2, WriteRetry::default());
    let users = iam.list_users().await.expect("list");
    let names: Vec<&str> = users.iter().map(|u| u.name.as_str()).collect();
    assert_eq!(names, ["a", "b", "c"]);
    assert_eq!(users[2].tags, vec![("k".to_owned(), "c".to_owned())]);
    let bodies = bodies.lock().expect("lock");
    assert_eq!(bodies.len(), 2, "one call per page");
    assert!(bodies[0].contains("Filter.member.1=User"), "{}", bodies[0]);
    assert!(bodies[0].contains("MaxItems=2"), "{}", bodies[0]);
    assert!(!bodies[0].contains("Marker="));
    assert!(bodies[1].contains("Marker=m1"), "{}", bodies[1]);
}

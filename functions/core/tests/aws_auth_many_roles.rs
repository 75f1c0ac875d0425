//! `AwsAuth::ensure_roles` (every role of the tiers of a cluster, shards included, in
//! one pass over `mapRoles`) leaves exactly what `ensure_role` one role after the other
//! leaves, on every generated aws-auth document: the same text, the same changes, the
//! same refusals.

use crate::awsauth_gen::generate;
use eks_access_sync::model::mapping::AdminMapping;
use eks_access_sync::policy::awsauth::{AwsAuth, AwsAuthChange};

/// The generated admin mapping (the one the corpus may have in need of an edit: it
/// goes first, as the batch edits before it appends), then shard roles of it (with
/// the shard path, one of them in another case), then the admin again (a duplicate
/// the batch must not add twice).
fn mappings(admin: &AdminMapping) -> Vec<AdminMapping> {
    let base = admin.role_arn.as_str();
    let (prefix, name) = base.split_once(":role/").expect("a role ARN");
    let name = name.rsplit('/').next().expect("a name");
    let shard = |k: usize, upper: bool| {
        let mut m = admin.clone();
        let name = if upper {
            name.to_uppercase()
        } else {
            name.to_owned()
        };
        m.role_arn = format!("{prefix}:role/eks-access-sync/{name}-{k}")
            .parse()
            .expect("shard ARN");
        m
    };
    vec![
        admin.clone(),
        shard(2, false),
        shard(3, true),
        shard(4, false),
        admin.clone(),
    ]
}

fn sorted(mut c: Vec<AwsAuthChange>) -> Vec<String> {
    let mut v: Vec<String> = c.drain(..).map(|c| c.to_string()).collect();
    v.sort();
    v
}

#[test]
fn ensure_roles_equals_ensure_role_one_at_a_time() {
    let docs = std::env::var("AWSAUTH_CORPUS_DOCS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000u64);
    let (mut edited, mut refused) = (0, 0);
    for i in 0..docs {
        let g = generate(0x5eed_0011, i);
        let ms = mappings(&g.admin);

        let mut one = AwsAuth::parse(g.data.as_ref());
        let mut seq = Ok(Vec::new());
        for m in &ms {
            match one.ensure_role(m) {
                Ok(c) => seq.as_mut().expect("ok so far").extend(c),
                Err(e) => {
                    seq = Err(e);
                    break;
                }
            }
        }
        let mut all = AwsAuth::parse(g.data.as_ref());
        let batch = all.ensure_roles(&ms);
        match (seq, batch) {
            (Ok(a), Ok(b)) => {
                assert_eq!(sorted(a), sorted(b), "doc {i}: changes");
                assert_eq!(one.into_data(), all.clone().into_data(), "doc {i}: text");
                // In place now: a second pass changes nothing.
                assert_eq!(all.ensure_roles(&ms).expect("again"), Vec::new(), "doc {i}");
                edited += 1;
            }
            (Err(_), Err(_)) => refused += 1,
            (a, b) => panic!("doc {i}: one at a time {a:?}, at once {b:?}\n{:?}", g.data),
        }
    }
    println!("docs={docs} edited={edited} refused={refused}");
    assert!(
        edited > docs / 2,
        "the corpus mostly edits: {edited} of {docs}"
    );
}

//! A seeded generator of realistic aws-auth `data` (dev-only; used by
//! `tests/aws_auth_corpus.rs`, which the soak runs with a larger count).
//!
//! Node and Windows node roles, Fargate, SSO roles (with the
//! `aws-reserved/sso.amazonaws.com/` path) and `sso:` entries, CI roles with
//! unknown fields, entries whose groups hold YAML 1.1-only scalars (`yes`,
//! `on`, `012`, `0o12`, `1e3`, `~`, `0x1F`, `1_000`, `12:30`), crazy-case field
//! names, comments (header, between entries, inside entries, after values),
//! block lists at column 0 or indented, flow entries, the JSON form (compact
//! and pretty), CRLF, a missing trailing newline, `---`, empty keys,
//! `mapAccounts` and other keys; pre-existing admin entries with a path,
//! another case, missing or wrong fields, duplicates; `mapUsers` with users
//! to offboard. Each entry's text is recorded as written, with who owns it.
#![allow(dead_code)]

use std::collections::BTreeMap;

use eks_access_sync::model::mapping::{AdminMapping, Offboarded};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};

#[path = "awsauth_gen_text.rs"]
mod text;

pub const ACCT: &str = "123456789012";

/// Who an entry belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    Foreign,
    /// A mapRoles entry for the admin role (first one kept, others dropped).
    Admin,
    /// A mapUsers entry of an offboarded user.
    Offboarded,
}

/// One generated entry: its text as it appears in the key, and its owner.
#[derive(Debug, Clone)]
pub struct GenEntry {
    pub text: String,
    pub owner: Owner,
}

/// One generated document.
#[derive(Debug, Clone)]
pub struct GenDoc {
    /// `None`: no ConfigMap.
    pub data: Option<BTreeMap<String, String>>,
    pub roles: Vec<GenEntry>,
    pub users: Vec<GenEntry>,
    pub admin: AdminMapping,
    pub offboarded: Vec<Offboarded>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
    Plain,
    Single,
    Double,
}

#[derive(Debug, Clone)]
enum Val {
    Str(String, Form),
    List(Vec<(String, Form)>),
    Map(Vec<(String, Val)>),
}

/// An entry's fields, in order.
type Fields = Vec<(String, Val)>;

/// How the key's list is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    Block { indent: usize },
    JsonCompact,
    JsonPretty,
}

const YAML11_ONLY: &[&str] = &[
    "yes", "on", "012", "0o12", "1e3", "~", "0x1F", "1_000", "12:30", "No", "OFF", "y",
];
const USERS: &[&str] = &[
    "alice", "bob", "carol", "dave", "Dave", "erin", "frank", "grace.h", "ivan+ops", "zoe",
];

struct Gen {
    rng: StdRng,
}

impl Gen {
    fn pct(&mut self, p: u32) -> bool {
        self.rng.random_range(0..100) < p
    }

    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs.choose(&mut self.rng).copied().unwrap_or("x")
    }

    fn form(&mut self) -> Form {
        match self.rng.random_range(0..10) {
            0..=5 => Form::Plain,
            6..=7 => Form::Single,
            _ => Form::Double,
        }
    }

    fn s(&mut self, v: &str) -> Val {
        let f = self.form();
        Val::Str(v.to_string(), f)
    }

    fn list(&mut self, items: &[&str]) -> Val {
        let v = items.iter().map(|g| (g.to_string(), self.form())).collect();
        Val::List(v)
    }

    fn key(&mut self, name: &str) -> String {
        if !self.pct(15) {
            return name.to_string();
        }
        let crazy: &[&str] = match name {
            "rolearn" => &["RoleARN", "roleArn", "ROLEARN", "Rolearn"],
            "userarn" => &["UserARN", "userArn"],
            "username" => &["UserName", "userName", "USERNAME"],
            "groups" => &["Groups", "GROUPS"],
            _ => &[],
        };
        crazy
            .choose(&mut self.rng)
            .map_or(name.to_string(), |s| s.to_string())
    }

    fn hex(&mut self, n: usize) -> String {
        (0..n)
            .map(|_| char::from_digit(self.rng.random_range(0..16), 16).unwrap_or('0'))
            .collect()
    }

    fn upper(&mut self, n: usize) -> String {
        (0..n)
            .map(|_| (b'A' + self.rng.random_range(0..26u8)) as char)
            .collect()
    }

    fn foreign_role(&mut self) -> Fields {
        let keys = (
            self.key("rolearn"),
            self.key("username"),
            self.key("groups"),
        );
        let id = self.upper(12);
        let kind = self.rng.random_range(0..8);
        let mut f = if kind < 4 {
            self.node_role(kind, keys, &id)
        } else {
            self.other_role(kind, keys, &id)
        };
        if self.pct(15) {
            let v = self.pick(YAML11_ONLY);
            f.push(("x-flag".to_string(), Val::Str(v.to_string(), Form::Plain)));
        }
        f
    }

    /// Node, Windows node and Fargate roles.
    fn node_role(
        &mut self,
        kind: u32,
        (k_arn, k_user, k_groups): (String, String, String),
        id: &str,
    ) -> Fields {
        let node_user = "system:node:{{EC2PrivateDNSName}}";
        match kind {
            0 | 1 => vec![
                (
                    k_arn,
                    self.s(&format!(
                        "arn:aws:iam::{ACCT}:role/prod-ng-NodeInstanceRole-{id}"
                    )),
                ),
                (k_user, self.s(node_user)),
                (
                    k_groups,
                    self.list(&["system:bootstrappers", "system:nodes"]),
                ),
            ],
            2 => vec![
                (
                    k_arn,
                    self.s(&format!(
                        "arn:aws:iam::{ACCT}:role/win-ng-NodeInstanceRole-{id}"
                    )),
                ),
                (k_user, self.s(node_user)),
                (
                    k_groups,
                    self.list(&[
                        "system:bootstrappers",
                        "system:nodes",
                        "eks:kube-proxy-windows",
                    ]),
                ),
            ],
            3 => vec![
                (
                    k_arn,
                    self.s(&format!(
                        "arn:aws:iam::{ACCT}:role/eks-fargate-pod-execution-{id}"
                    )),
                ),
                (k_user, self.s("system:node:{{SessionName}}")),
                (
                    k_groups,
                    self.list(&[
                        "system:bootstrappers",
                        "system:nodes",
                        "system:node-proxier",
                    ]),
                ),
            ],
            _ => vec![],
        }
    }

    /// SSO roles and `sso:` entries, CI roles, YAML 1.1-only groups.
    fn other_role(
        &mut self,
        kind: u32,
        (k_arn, k_user, k_groups): (String, String, String),
        id: &str,
    ) -> Fields {
        match kind {
            4 => {
                let perm = self.pick(&["AdministratorAccess", "ReadOnly", "PowerUser"]);
                let h = self.hex(16);
                vec![
                    (k_arn, self.s(&format!("arn:aws:iam::{ACCT}:role/aws-reserved/sso.amazonaws.com/eu-west-1/AWSReservedSSO_{perm}_{h}"))),
                    (k_user, self.s("sso-{{SessionName}}")),
                    (k_groups, self.list(&["view"])),
                ]
            }
            5 => vec![
                (
                    "sso".to_string(),
                    Val::Map(vec![
                        ("permissionSetName".to_string(), self.s("ReadOnly")),
                        (
                            "accountID".to_string(),
                            Val::Str(ACCT.to_string(), Form::Double),
                        ),
                    ]),
                ),
                (k_user, self.s("sso-{{SessionName}}")),
                (k_groups, self.list(&["view"])),
            ],
            6 => vec![
                (
                    k_arn,
                    self.s(&format!("arn:aws:iam::{ACCT}:role/ci-deployer-{id}")),
                ),
                (
                    "userid".to_string(),
                    Val::Str(format!("AROA{id}XYZAB"), Form::Plain),
                ),
                (k_user, self.s("ci")),
                (k_groups, self.list(&["deployers"])),
            ],
            _ => {
                // Groups only YAML 1.1 readers see as non-strings: the
                // operator's to fix, ours to keep exactly as written.
                let n = self.rng.random_range(1..4);
                let odd: Vec<(String, Form)> = (0..n)
                    .map(|_| (self.pick(YAML11_ONLY).to_string(), Form::Plain))
                    .collect();
                vec![
                    (k_arn, self.s(&format!("arn:aws:iam::{ACCT}:role/odd-{id}"))),
                    (
                        k_user,
                        Val::Str(self.pick(&["on", "ci", "yes"]).to_string(), Form::Plain),
                    ),
                    (k_groups, Val::List(odd)),
                ]
            }
        }
    }

    fn admin_role(&mut self, admin: &AdminMapping) -> Fields {
        let name = self.pick(&["EksAdmin", "ops/EksAdmin", "EKSADMIN", "teams/x/eksadmin"]);
        let k_arn = self.key("rolearn");
        let mut f = vec![(k_arn, self.s(&format!("arn:aws:iam::{ACCT}:role/{name}")))];
        if !self.pct(10) {
            let u = if self.pct(70) {
                admin.username.clone()
            } else {
                "old-admin".to_string()
            };
            let k = self.key("username");
            f.push((k, self.s(&u)));
        }
        if !self.pct(10) {
            let mut g: Vec<&str> = admin.groups.iter().map(String::as_str).collect();
            if self.pct(20) {
                g.push("extra");
            }
            let k = self.key("groups");
            f.push((k, self.list(&g)));
        }
        if self.pct(20) {
            f.push(("userid".to_string(), self.s("AROAXQJ2KXNMADMIN001")));
        }
        if self.pct(30) {
            let j = self.rng.random_range(0..f.len());
            f.swap(0, j);
        }
        f
    }

    fn user(&mut self, name: &str) -> Fields {
        let path = self.pick(&["/", "/eng/", "/eng/sre/"]);
        let (k_arn, k_user, k_groups) = (
            self.key("userarn"),
            self.key("username"),
            self.key("groups"),
        );
        let g = if self.pct(20) {
            self.pick(YAML11_ONLY)
        } else {
            "system:masters"
        };
        vec![
            (
                k_arn,
                self.s(&format!("arn:aws:iam::{ACCT}:user{path}{name}")),
            ),
            (k_user, self.s(&name.to_lowercase())),
            (k_groups, Val::List(vec![(g.to_string(), Form::Plain)])),
        ]
    }

    fn admin(&mut self) -> AdminMapping {
        let groups = if self.pct(90) {
            vec!["system:masters".to_string()]
        } else {
            vec![
                "system:masters".to_string(),
                "yes".to_string(),
                "012".to_string(),
            ]
        };
        AdminMapping {
            role_arn: format!("arn:aws:iam::{ACCT}:role/ops/EksAdmin")
                .parse()
                .unwrap(),
            username: "admin:{{AccessKeyID}}:{{SessionName}}".to_string(),
            groups,
        }
    }

    fn roles(&mut self, admin: &AdminMapping) -> Vec<(Fields, Owner)> {
        let n = self.rng.random_range(0..7);
        let admins = match self.rng.random_range(0..10) {
            0..=3 => 0,
            4..=7 => 1,
            _ => self.rng.random_range(2..4),
        };
        let mut v: Vec<(Fields, Owner)> = (0..n)
            .map(|_| (self.foreign_role(), Owner::Foreign))
            .collect();
        for _ in 0..admins {
            let at = self.rng.random_range(0..=v.len());
            v.insert(at, (self.admin_role(admin), Owner::Admin));
        }
        v
    }

    fn users(&mut self) -> (Vec<(Fields, Owner)>, Vec<Offboarded>) {
        let n = self.rng.random_range(1..6);
        let names: Vec<&str> = (0..n).map(|_| self.pick(USERS)).collect();
        let entries: Vec<Fields> = names.iter().map(|u| self.user(u)).collect();
        let k = self.rng.random_range(0..3);
        let off: Vec<Offboarded> = (0..k)
            .map(|_| {
                let u = self.pick(USERS);
                if self.pct(50) {
                    Offboarded::Name {
                        account: ACCT.parse().unwrap(),
                        name: u.parse().unwrap(),
                    }
                } else {
                    Offboarded::Arn(format!("arn:aws:iam::{ACCT}:user/eng/{u}").parse().unwrap())
                }
            })
            .collect();
        let owned = entries
            .into_iter()
            .map(|e| {
                let arn = match &e[0].1 {
                    Val::Str(s, _) => s.clone(),
                    _ => String::new(),
                };
                let o = if off.iter().any(|x| x.matches(&arn)) {
                    Owner::Offboarded
                } else {
                    Owner::Foreign
                };
                (e, o)
            })
            .collect();
        (owned, off)
    }
}

/// Document number `i` of the corpus seeded with `seed`.
pub fn generate(seed: u64, i: u64) -> GenDoc {
    let mut g = Gen {
        rng: StdRng::seed_from_u64(seed ^ i.wrapping_mul(0x9E37_79B9_7F4A_7C15)),
    };
    let admin = g.admin();
    if g.pct(2) {
        return GenDoc {
            data: None,
            roles: vec![],
            users: vec![],
            admin,
            offboarded: vec![],
        };
    }
    let mut data = BTreeMap::new();
    let mut roles = Vec::new();
    match g.rng.random_range(0..100) {
        0..=3 => {}
        4..=5 => {
            data.insert("mapRoles".to_string(), String::new());
        }
        6 => {
            data.insert("mapRoles".to_string(), "[]\n".to_string());
        }
        7 => {
            data.insert("mapRoles".to_string(), "# nothing yet\n".to_string());
        }
        _ => {
            let entries = g.roles(&admin);
            if entries.is_empty() {
                data.insert("mapRoles".to_string(), "[]".to_string());
            } else {
                let (text, written) = g.key_text(&entries);
                data.insert("mapRoles".to_string(), text);
                roles = written;
            }
        }
    }
    let mut users = Vec::new();
    let mut offboarded = Vec::new();
    if g.pct(60) {
        let (entries, off) = g.users();
        let (text, written) = g.key_text(&entries);
        data.insert("mapUsers".to_string(), text);
        users = written;
        offboarded = off;
    }
    if g.pct(30) {
        data.insert(
            "mapAccounts".to_string(),
            format!("- \"{ACCT}\"\n- 210987654321\n"),
        );
    }
    if g.pct(20) {
        data.insert("other".to_string(), "  free text: [ yes, 012\n".to_string());
    }
    GenDoc {
        data: Some(data),
        roles,
        users,
        admin,
        offboarded,
    }
}

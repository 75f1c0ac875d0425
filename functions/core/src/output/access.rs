//! The access audit's report: who can reach each cluster, with which rights, and
//! why; as JSON, text for an 80-column terminal, or CSV for a spreadsheet.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::policy::audit::Grant;

/// The audit of every cluster in scope.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccessReport {
    pub clusters: Vec<ClusterAccess>,
    /// Clusters (or regions, named `*`) that could not be read: not audited.
    pub unreadable: Vec<Unreadable>,
}

/// One cluster's grants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterAccess {
    pub name: String,
    pub region: String,
    /// `CONFIG_MAP`, `API_AND_CONFIG_MAP` or `API`.
    pub auth_mode: String,
    /// Carries the cluster tag (the tool manages it).
    pub managed: bool,
    pub grants: Vec<Grant>,
    /// aws-auth keys that do not parse (their grants are unknown).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
}

/// A cluster that could not be read, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Unreadable {
    pub name: String,
    pub region: String,
    pub error: String,
}

/// The last segment of an ARN (a user or role name), or the value as it is.
fn short(arn: &str) -> &str {
    if arn.starts_with("arn:") {
        arn.rsplit(['/', ':']).next().unwrap_or(arn)
    } else {
        arn
    }
}

/// What a grant gives, in a few words.
fn rights(g: &Grant) -> String {
    let mut parts = Vec::new();
    if !g.policies.is_empty() {
        parts.push(g.policies.join(", "));
    }
    if !g.groups.is_empty() {
        parts.push(format!("groups {}", g.groups.join(", ")));
    }
    if parts.is_empty() {
        "no groups or policies".to_owned()
    } else {
        parts.join("; ")
    }
}

/// One line of the flat views: a person (or principal) on a cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row<'a> {
    pub cluster: &'a ClusterAccess,
    pub grant: &'a Grant,
    /// Who authenticates: a user a role's trust policy admits, else the principal.
    pub who: &'a str,
}

impl AccessReport {
    /// One row per cluster, grant and admitted principal (a role that admits nobody
    /// is one row, itself).
    pub fn rows(&self) -> Vec<Row<'_>> {
        let mut out = Vec::new();
        for c in &self.clusters {
            for g in &c.grants {
                if g.trusted.is_empty() {
                    out.push(Row {
                        cluster: c,
                        grant: g,
                        who: &g.principal,
                    });
                } else {
                    out.extend(g.trusted.iter().map(|t| Row {
                        cluster: c,
                        grant: g,
                        who: t,
                    }));
                }
            }
        }
        out
    }

    /// Keeps only the grants that reach one of `users` (IAM user names, case ignored):
    /// their own mappings and the roles that admit them.
    pub fn only_users(&mut self, users: &[String]) {
        let named = |arn: &str| {
            arn.contains(":user/") && users.iter().any(|u| short(arn).eq_ignore_ascii_case(u))
        };
        for c in &mut self.clusters {
            c.grants
                .retain(|g| named(&g.principal) || g.trusted.iter().any(|t| named(t)));
        }
    }

    /// For a terminal (lines within 80 columns but for long names).
    pub fn render_text(&self) -> String {
        let mut out = String::new();
        for c in &self.clusters {
            let _ = writeln!(
                out,
                "cluster {}/{} ({}{})",
                c.region,
                c.name,
                c.auth_mode,
                if c.managed { ", managed" } else { "" }
            );
            for row in self.rows().iter().filter(|r| std::ptr::eq(r.cluster, c)) {
                let g = row.grant;
                let via = if row.who == g.principal {
                    g.via.as_str().to_owned()
                } else {
                    format!("role {} via {}", short(&g.principal), g.via.as_str())
                };
                let flag = if g.dangling { "  ! DANGLING" } else { "" };
                let _ = writeln!(out, "  {}{flag}", short(row.who));
                let _ = writeln!(out, "      {via}; {}", g.reason);
                let _ = writeln!(out, "      {}", rights(g));
            }
            for p in &c.problems {
                let _ = writeln!(out, "  ? {p}");
            }
        }
        for u in &self.unreadable {
            let _ = writeln!(
                out,
                "cluster {}/{}: NOT READ: {}",
                u.region, u.name, u.error
            );
        }
        out
    }

    /// RFC 4180 CSV, one row per [`Row`], with a header.
    pub fn render_csv(&self) -> String {
        let mut out = String::from(
            "cluster,region,who,principal,via,reason,username,groups,policies,dangling\r\n",
        );
        for r in self.rows() {
            let g = r.grant;
            let fields = [
                r.cluster.name.as_str(),
                r.cluster.region.as_str(),
                r.who,
                g.principal.as_str(),
                g.via.as_str(),
                g.reason.as_str(),
                g.username.as_deref().unwrap_or(""),
                &g.groups.join(" "),
                &g.policies.join("; "),
                if g.dangling { "true" } else { "false" },
            ];
            let line: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
            out.push_str(&line.join(","));
            out.push_str("\r\n");
        }
        for u in &self.unreadable {
            let line = [
                u.name.as_str(),
                &u.region,
                "",
                "",
                "",
                &format!("NOT READ: {}", u.error),
                "",
                "",
                "",
                "",
            ];
            let line: Vec<String> = line.iter().map(|f| csv_field(f)).collect();
            out.push_str(&line.join(","));
            out.push_str("\r\n");
        }
        out
    }
}

/// A CSV field (RFC 4180): quoted when it holds a comma, a quote or a line break,
/// quotes doubled; a leading `=`, `+`, `-` or `@` is prefixed with `'` so that a
/// spreadsheet never reads a cell as a formula.
fn csv_field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@']) {
        format!("'{s}")
    } else {
        s.to_owned()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::audit::Via;

    fn report() -> AccessReport {
        AccessReport {
            clusters: vec![ClusterAccess {
                name: "prod".into(),
                region: "us-east-1".into(),
                auth_mode: "CONFIG_MAP".into(),
                managed: true,
                grants: vec![
                    Grant {
                        principal: "arn:aws:iam::111122223333:role/eks-view".into(),
                        via: Via::MapRoles,
                        username: Some("eks-access-sync:readers:{{SessionName}}".into()),
                        groups: vec!["eks-access-sync:readers".into()],
                        policies: vec![],
                        reason: "tier readers".into(),
                        trusted: vec![
                            "arn:aws:iam::111122223333:user/erin".into(),
                            "arn:aws:iam::111122223333:user/frank".into(),
                        ],
                        dangling: false,
                    },
                    Grant {
                        principal: "arn:aws:iam::111122223333:user/left".into(),
                        via: Via::MapUsers,
                        username: Some("left, \"the\" user".into()),
                        groups: vec!["=cmd".into()],
                        policies: vec![],
                        reason: "direct user mapping".into(),
                        trusted: vec![],
                        dangling: true,
                    },
                ],
                problems: vec![],
            }],
            unreadable: vec![Unreadable {
                name: "dev".into(),
                region: "eu-west-1".into(),
                error: "Unauthorized".into(),
            }],
        }
    }

    #[test]
    fn text_names_each_person_with_path_and_rights_within_80_columns() {
        let text = report().render_text();
        assert!(text.contains("  erin\n      role eks-view via aws-auth mapRoles; tier readers\n      groups eks-access-sync:readers\n"), "{text}");
        assert!(text.contains("  left  ! DANGLING\n"), "{text}");
        assert!(
            text.contains("cluster eu-west-1/dev: NOT READ: Unauthorized"),
            "{text}"
        );
        assert!(text.lines().all(|l| l.chars().count() <= 80), "{text}");
    }

    #[test]
    fn csv_quotes_and_defuses_formulas() {
        let csv = report().render_csv();
        let lines: Vec<&str> = csv.split("\r\n").collect();
        assert_eq!(
            lines[0],
            "cluster,region,who,principal,via,reason,username,groups,policies,dangling"
        );
        assert_eq!(lines.len(), 6, "{csv}"); // header, erin, frank, left, dev, ""
        assert!(
            lines[3].contains("\"left, \"\"the\"\" user\""),
            "{}",
            lines[3]
        );
        assert!(lines[3].contains(",'=cmd,"), "{}", lines[3]);
        assert!(lines[4].starts_with("dev,eu-west-1,"), "{}", lines[4]);
    }

    #[test]
    fn only_users_keeps_their_grants() {
        let mut r = report();
        r.only_users(&["FRANK".into()]);
        assert_eq!(r.clusters[0].grants.len(), 1);
        assert_eq!(r.clusters[0].grants[0].reason, "tier readers");
        let mut r = report();
        r.only_users(&["nobody".into()]);
        assert!(r.clusters[0].grants.is_empty());
    }
}

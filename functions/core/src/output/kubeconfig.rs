//! The kubeconfig document `eks-access-sync kubeconfig` writes: for each context the
//! cluster, user and context entries `aws eks update-kubeconfig --name <cluster>
//! --region <region> --role-arn <role>` writes (all three named by the cluster ARN;
//! the user runs `aws --region <region> eks get-token --cluster-name <cluster>
//! --output json --role-arn <role>` as a `client.authentication.k8s.io/v1beta1` exec
//! plugin), merged into an existing file.
//!
//! The merge parses the file, replaces the entries of the same name in place, appends
//! the new ones, and keeps every other entry and key with the same values (comments and
//! the original layout are not kept; kubectl itself rewrites the file the same way). The
//! output quotes every string a YAML 1.1 reader (kubectl's) could take for another type.
//! `current-context` is set only when the file has none.

use serde_json::{Map, Value, json};

use crate::policy::kubeconfig::PlannedContext;

/// The exec plugin API version update-kubeconfig writes.
pub const EXEC_API_VERSION: &str = "client.authentication.k8s.io/v1beta1";

/// An existing kubeconfig that cannot be merged into.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KubeconfigError {
    #[error("it is not valid YAML: {0}")]
    Yaml(String),
    #[error("it is not a kubeconfig: {0}")]
    NotAKubeconfig(String),
    #[error("cannot render the kubeconfig: {0}")]
    Render(String),
}

/// The `clusters` entry.
pub fn cluster_entry(c: &PlannedContext) -> Value {
    json!({
        "cluster": {
            "certificate-authority-data": c.ca_data,
            "server": c.server,
        },
        "name": c.name,
    })
}

/// The `users` entry: the exec plugin `aws eks get-token` assuming the tier's role.
pub fn user_entry(c: &PlannedContext) -> Value {
    json!({
        "name": c.name,
        "user": {
            "exec": {
                "apiVersion": EXEC_API_VERSION,
                "args": [
                    "--region", c.region,
                    "eks", "get-token",
                    "--cluster-name", c.cluster.as_str(),
                    "--output", "json",
                    "--role-arn", c.role.as_str(),
                ],
                "command": "aws",
            }
        }
    })
}

/// The `contexts` entry (with the tier's namespace, if it has one).
pub fn context_entry(c: &PlannedContext) -> Value {
    let mut context = Map::new();
    context.insert("cluster".into(), Value::String(c.name.clone()));
    if let Some(ns) = &c.namespace {
        context.insert("namespace".into(), Value::String(ns.clone()));
    }
    context.insert("user".into(), Value::String(c.name.clone()));
    json!({ "context": context, "name": c.name })
}

/// A new kubeconfig, with the keys update-kubeconfig starts from.
fn empty_document() -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("apiVersion".into(), json!("v1"));
    m.insert("clusters".into(), json!([]));
    m.insert("contexts".into(), json!([]));
    m.insert("current-context".into(), json!(""));
    m.insert("kind".into(), json!("Config"));
    m.insert("preferences".into(), json!({}));
    m.insert("users".into(), json!([]));
    m
}

/// Parses a kubeconfig (empty text: a new one).
pub fn parse_kubeconfig(text: &str) -> Result<Map<String, Value>, KubeconfigError> {
    if text.trim().is_empty() {
        return Ok(empty_document());
    }
    let v: Value =
        serde_saphyr::from_str(text).map_err(|e| KubeconfigError::Yaml(e.to_string()))?;
    match v {
        Value::Object(m) => Ok(m),
        Value::Null => Ok(empty_document()),
        _ => Err(KubeconfigError::NotAKubeconfig(
            "the top level is not a mapping".into(),
        )),
    }
}

/// Replaces the entry of `key` named like `entry` in place, or appends it.
fn upsert(doc: &mut Map<String, Value>, key: &str, entry: Value) -> Result<(), KubeconfigError> {
    let slot = doc.entry(key.to_owned()).or_insert(Value::Null);
    if slot.is_null() {
        *slot = Value::Array(Vec::new());
    }
    let Value::Array(entries) = slot else {
        return Err(KubeconfigError::NotAKubeconfig(format!(
            "`{key}` is not a list"
        )));
    };
    let name = entry.get("name").cloned();
    match entries.iter_mut().find(|e| e.get("name") == name.as_ref()) {
        Some(existing) => *existing = entry,
        None => entries.push(entry),
    }
    Ok(())
}

/// The merge: the new document and the context set as `current-context`, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Merged {
    pub text: String,
    pub current_context_set: Option<String>,
}

/// Merges `contexts` into `existing` (the file's text; `None` or empty: a new file).
pub fn merge_kubeconfig(
    existing: Option<&str>,
    contexts: &[PlannedContext],
) -> Result<Merged, KubeconfigError> {
    let mut doc = match existing {
        Some(text) => parse_kubeconfig(text)?,
        None => empty_document(),
    };
    for c in contexts {
        upsert(&mut doc, "clusters", cluster_entry(c))?;
        upsert(&mut doc, "users", user_entry(c))?;
        upsert(&mut doc, "contexts", context_entry(c))?;
    }
    let has_current = doc
        .get("current-context")
        .and_then(Value::as_str)
        .is_some_and(|s| !s.is_empty());
    let mut current_context_set = None;
    if !has_current && let Some(first) = contexts.first() {
        doc.insert("current-context".into(), Value::String(first.name.clone()));
        current_context_set = Some(first.name.clone());
    }
    Ok(Merged {
        text: render(&Value::Object(doc))?,
        current_context_set,
    })
}

/// YAML as kubectl reads it: block style, long strings on one line (no folding),
/// strings quoted whenever a YAML 1.1 reader could take them for something else.
pub fn render(doc: &Value) -> Result<String, KubeconfigError> {
    let mut options = serde_saphyr::SerializerOptions::default();
    options.prefer_block_scalars = false;
    serde_saphyr::to_string_with_options(doc, options)
        .map_err(|e| KubeconfigError::Render(e.to_string()))
}

#[cfg(test)]
mod tests;

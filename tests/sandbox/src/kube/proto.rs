//! Just enough of the Kubernetes protobuf envelope to read the
//! SelfSubjectAccessReview kubectl sends as `application/vnd.kubernetes.protobuf`,
//! and the type and metadata of any object it creates that way
//! (`kubectl create namespace`, `kubectl create deployment`).
//! Envelope: magic `k8s\0`, then `runtime.Unknown { typeMeta = 1; raw = 2; ... }`.

use serde_json::{Map, Value, json};

const MAGIC: &[u8] = b"k8s\x00";

fn varint(buf: &[u8], pos: &mut usize) -> Option<u64> {
    let mut out = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *buf.get(*pos)?;
        *pos += 1;
        out |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(out);
        }
    }
    None
}

/// The length-delimited fields of a message, by field number (last wins).
fn fields(buf: &[u8]) -> Option<Vec<(u64, &[u8])>> {
    let mut pos = 0;
    let mut out = Vec::new();
    while pos < buf.len() {
        let tag = varint(buf, &mut pos)?;
        match tag & 7 {
            0 => {
                varint(buf, &mut pos)?;
            }
            1 => pos += 8,
            5 => pos += 4,
            2 => {
                let len = usize::try_from(varint(buf, &mut pos)?).ok()?;
                let end = pos.checked_add(len)?;
                out.push((tag >> 3, buf.get(pos..end)?));
                pos = end;
            }
            _ => return None,
        }
    }
    Some(out)
}

fn field(buf: &[u8], n: u64) -> Option<&[u8]> {
    fields(buf)?
        .into_iter()
        .rev()
        .find(|(f, _)| *f == n)
        .map(|(_, v)| v)
}

fn strings(buf: &[u8], names: &[(u64, &str)]) -> Option<Value> {
    let mut m = Map::new();
    for (n, v) in fields(buf)? {
        if let Some((_, name)) = names.iter().find(|(f, _)| *f == n) {
            m.insert((*name).to_string(), json!(String::from_utf8_lossy(v)));
        }
    }
    Some(Value::Object(m))
}

/// Decodes a protobuf SelfSubjectAccessReview into its JSON form.
pub fn self_subject_access_review(body: &[u8]) -> Option<Value> {
    let unknown = body.strip_prefix(MAGIC)?;
    let raw = field(unknown, 2)?;
    let spec = field(raw, 2).unwrap_or_default();
    let mut spec_json = Map::new();
    if let Some(ra) = field(spec, 1) {
        spec_json.insert(
            "resourceAttributes".into(),
            strings(
                ra,
                &[
                    (1, "namespace"),
                    (2, "verb"),
                    (3, "group"),
                    (4, "version"),
                    (5, "resource"),
                    (6, "subresource"),
                    (7, "name"),
                ],
            )?,
        );
    }
    if let Some(nra) = field(spec, 2) {
        spec_json.insert(
            "nonResourceAttributes".into(),
            strings(nra, &[(1, "path"), (2, "verb")])?,
        );
    }
    Some(json!({
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectAccessReview",
        "metadata": {},
        "spec": spec_json,
    }))
}

/// The namespace of a protobuf SelfSubjectRulesReview (`spec.namespace`).
pub fn self_subject_rules_review_namespace(body: &[u8]) -> Option<String> {
    let unknown = body.strip_prefix(MAGIC)?;
    let raw = field(unknown, 2)?;
    let spec = field(raw, 2).unwrap_or_default();
    Some(String::from_utf8_lossy(field(spec, 1).unwrap_or_default()).into_owned())
}

/// `map<string, string>` entries (field `n`, each `{key = 1; value = 2}`).
fn string_map(buf: &[u8], n: u64) -> Option<Value> {
    let mut m = Map::new();
    for (f, entry) in fields(buf)? {
        if f == n {
            let k = field(entry, 1).unwrap_or_default();
            let v = field(entry, 2).unwrap_or_default();
            m.insert(
                String::from_utf8_lossy(k).into_owned(),
                json!(String::from_utf8_lossy(v)),
            );
        }
    }
    (!m.is_empty()).then_some(Value::Object(m))
}

/// Decodes the `apiVersion`, `kind` and `metadata` (name, generateName,
/// namespace, labels, annotations) of a protobuf-encoded object. The rest
/// (spec, status) is not decoded: the sandbox keeps such objects without it.
pub fn object_metadata(body: &[u8]) -> Option<Value> {
    let unknown = body.strip_prefix(MAGIC)?;
    let type_meta = strings(
        field(unknown, 1).unwrap_or_default(),
        &[(1, "apiVersion"), (2, "kind")],
    )?;
    let raw = field(unknown, 2)?;
    let meta_buf = field(raw, 1).unwrap_or_default();
    let mut meta = match strings(
        meta_buf,
        &[(1, "name"), (2, "generateName"), (3, "namespace")],
    )? {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    if let Some(labels) = string_map(meta_buf, 11) {
        meta.insert("labels".into(), labels);
    }
    if let Some(annotations) = string_map(meta_buf, 12) {
        meta.insert("annotations".into(), annotations);
    }
    let mut obj = match type_meta {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    obj.insert("metadata".into(), Value::Object(meta));
    Some(Value::Object(obj))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ld(field: u64, data: &[u8]) -> Vec<u8> {
        let mut v = vec![
            u8::try_from((field << 3) | 2).unwrap_or(0),
            u8::try_from(data.len()).unwrap_or(0),
        ];
        v.extend_from_slice(data);
        v
    }

    #[test]
    fn decodes_resource_attributes() {
        let ra = [
            ld(1, b"kube-system"),
            ld(2, b"update"),
            ld(5, b"configmaps"),
            ld(7, b"aws-auth"),
        ]
        .concat();
        let spec = ld(1, &ra);
        let raw = [ld(1, b""), ld(2, &spec)].concat();
        let body = [MAGIC.to_vec(), ld(1, b"\x0a\x02v1"), ld(2, &raw)].concat();
        let v = self_subject_access_review(&body).expect("decodes");
        assert_eq!(
            v["spec"]["resourceAttributes"],
            json!({"namespace": "kube-system", "verb": "update", "resource": "configmaps", "name": "aws-auth"})
        );
        assert!(self_subject_access_review(b"{}").is_none());
    }

    #[test]
    fn decodes_object_metadata() {
        let label = [ld(1, b"team"), ld(2, b"a")].concat();
        let meta = [ld(1, b"team-a"), ld(11, &label)].concat();
        let raw = ld(1, &meta);
        let type_meta = [ld(1, b"v1"), ld(2, b"Namespace")].concat();
        let body = [MAGIC.to_vec(), ld(1, &type_meta), ld(2, &raw)].concat();
        assert_eq!(
            object_metadata(&body).expect("decodes"),
            json!({"apiVersion": "v1", "kind": "Namespace",
                   "metadata": {"name": "team-a", "labels": {"team": "a"}}})
        );
    }
}

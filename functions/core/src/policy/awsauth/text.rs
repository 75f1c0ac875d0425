//! The span editor: locates the entries of a `mapRoles`/`mapUsers` key in its
//! text (with the byte spans of granit-parser's events, the parser under
//! serde-saphyr) so that an edit removes the lines of the entries it drops,
//! changes only the values it owns, and appends its entry, while every other
//! byte (entries we do not own, comments, blank lines) stays as written.
//!
//! - Block sequence (`- ` at column 0 or indented): an entry is the lines from
//!   its `-` to its last content line (a trailing comment on that line
//!   included). Comment lines between entries belong to no entry and stay.
//! - Flow sequence (JSON form): an entry is its `{...}`; the entries kept are
//!   joined with the separators they had.
//! - Anchors, aliases, several documents, entries at different indents, or an
//!   entry whose `-` cannot be found: refused ([`AwsAuthError::Locate`]).

use std::ops::Range;

use granit_parser::{Event, Parser, ScalarStyle, StructureStyle};

use super::AwsAuthError;

/// A YAML node with its byte span; `end` is the end of its last non-empty token.
#[derive(Debug, Clone)]
pub(super) struct Node {
    pub kind: Kind,
    pub start: usize,
    pub end: usize,
}

#[derive(Debug, Clone)]
pub(super) enum Kind {
    /// `plain_untagged`: a plain scalar without a tag, which readers resolve
    /// by their own rules (YAML 1.1 reads `yes` as a boolean).
    Scalar {
        value: String,
        plain_untagged: bool,
    },
    Seq {
        items: Vec<Node>,
    },
    Map {
        flow: bool,
        pairs: Vec<(Node, Node)>,
    },
}

enum Layout {
    /// No node at all (empty, blank or comments only).
    Empty,
    /// A single scalar (`~`, `null`): no entries.
    Null,
    /// `indent`: column of the entries' `-`.
    Block { indent: usize },
    /// Byte offsets of `[` and `]`.
    Flow { open: usize, close: usize },
}

/// One entry: its text span and its mapping.
#[derive(Debug, Clone)]
pub(super) struct Entry {
    pub span: Range<usize>,
    pub node: Node,
}

/// The located entries of one key.
pub(super) struct Located {
    layout: Layout,
    pub entries: Vec<Entry>,
    /// `"\r\n"` when the text uses CRLF.
    pub newline: &'static str,
}

/// What becomes of an entry.
#[derive(Debug, Clone)]
pub(super) enum Fate {
    Keep,
    Drop,
    /// Replace byte ranges (absolute, inside the entry's span, not overlapping).
    Edit(Vec<(Range<usize>, String)>),
}

/// The entry we write, every value a double-quoted string (read as a string
/// by YAML 1.1 and 1.2 readers alike).
pub(super) struct NewEntry {
    pub rolearn: String,
    pub username: String,
    pub groups: Vec<String>,
}

/// A string as a double-quoted scalar (JSON escapes are valid YAML escapes).
pub(super) fn quoted(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

/// A list of strings as a flow sequence of double-quoted scalars.
pub(super) fn quoted_list(items: &[String]) -> String {
    let inner: Vec<String> = items.iter().map(|s| quoted(s)).collect();
    format!("[{}]", inner.join(", "))
}

impl NewEntry {
    fn block(&self, indent: usize, nl: &str) -> String {
        let pad = " ".repeat(indent);
        let mut s = format!(
            "{pad}- rolearn: {}{nl}{pad}  username: {}{nl}",
            quoted(&self.rolearn),
            quoted(&self.username)
        );
        if self.groups.is_empty() {
            s.push_str(&format!("{pad}  groups: []{nl}"));
        } else {
            s.push_str(&format!("{pad}  groups:{nl}"));
            for g in &self.groups {
                s.push_str(&format!("{pad}  - {}{nl}", quoted(g)));
            }
        }
        s
    }

    fn flow(&self) -> String {
        format!(
            "{{\"rolearn\": {}, \"username\": {}, \"groups\": {}}}",
            quoted(&self.rolearn),
            quoted(&self.username),
            quoted_list(&self.groups)
        )
    }
}

pub(super) fn locate_error(key: &str, message: impl Into<String>) -> AwsAuthError {
    AwsAuthError::Locate {
        key: key.to_string(),
        message: message.into(),
    }
}

/// The parser's events with byte ranges, comments left out.
fn events<'a>(key: &str, text: &'a str) -> Result<Vec<(Event<'a>, Range<usize>)>, AwsAuthError> {
    let mut out = Vec::new();
    for ev in Parser::new_from_str(text) {
        let (e, span) = ev.map_err(|e| AwsAuthError::Parse {
            key: key.to_string(),
            message: e.to_string(),
        })?;
        if matches!(e, Event::Comment(..)) {
            continue;
        }
        let r = span
            .byte_range()
            .ok_or_else(|| locate_error(key, "the parser gave no byte offsets"))?;
        out.push((e, r));
    }
    Ok(out)
}

struct Builder<'k, 'a> {
    key: &'k str,
    events: std::vec::IntoIter<(Event<'a>, Range<usize>)>,
}

impl<'a> Builder<'_, 'a> {
    fn next(&mut self) -> Result<(Event<'a>, Range<usize>), AwsAuthError> {
        self.events
            .next()
            .ok_or_else(|| locate_error(self.key, "unexpected end of events"))
    }

    fn node(&mut self) -> Result<Node, AwsAuthError> {
        let (e, r) = self.next()?;
        let (anchor, kind) = match e {
            Event::Scalar(v, style, anchor, tag) => {
                let plain_untagged = style == ScalarStyle::Plain && tag.is_none();
                let value = v.into_owned();
                let kind = Kind::Scalar {
                    value,
                    plain_untagged,
                };
                (anchor, kind)
            }
            Event::SequenceStart(_, anchor, _) => (anchor, Kind::Seq { items: Vec::new() }),
            Event::MappingStart(style, anchor, _) => {
                let flow = style == StructureStyle::Flow;
                let pairs = Vec::new();
                (anchor, Kind::Map { flow, pairs })
            }
            other => {
                return Err(locate_error(
                    self.key,
                    format!(
                        "unsupported YAML construct ({other:?}): anchors and aliases are not edited"
                    ),
                ));
            }
        };
        if anchor != 0 {
            return Err(locate_error(self.key, "anchors and aliases are not edited"));
        }
        let mut node = Node {
            kind,
            start: r.start,
            end: r.end,
        };
        if !matches!(node.kind, Kind::Scalar { .. }) {
            self.children(&mut node)?;
        }
        Ok(node)
    }

    /// Reads the children of a collection node up to its end event.
    fn children(&mut self, node: &mut Node) -> Result<(), AwsAuthError> {
        loop {
            let at_end = match self.events.as_slice().first() {
                Some((Event::SequenceEnd | Event::MappingEnd, r)) => Some(r.clone()),
                Some(_) => None,
                None => return Err(locate_error(self.key, "unexpected end of events")),
            };
            if let Some(r) = at_end {
                self.next()?;
                if r.end > r.start {
                    // A flow collection's `]`/`}`; a block one ends on an empty span.
                    node.end = node.end.max(r.end);
                }
                return Ok(());
            }
            match &mut node.kind {
                Kind::Scalar { .. } => return Ok(()),
                Kind::Seq { items } => {
                    let item = self.node()?;
                    node.end = node.end.max(item.end);
                    items.push(item);
                }
                Kind::Map { pairs, .. } => {
                    let k = self.node()?;
                    let v = self.node()?;
                    node.end = node.end.max(k.end).max(v.end);
                    pairs.push((k, v));
                }
            }
        }
    }
}

/// The single top-level node of `text`, if any.
fn root(key: &str, text: &str) -> Result<Option<Node>, AwsAuthError> {
    let evs = events(key, text)?;
    let documents = evs
        .iter()
        .filter(|(e, _)| matches!(e, Event::DocumentStart(..)))
        .count();
    if documents > 1 {
        return Err(locate_error(key, "more than one YAML document"));
    }
    let mut b = Builder {
        key,
        events: evs.into_iter(),
    };
    loop {
        match b.events.as_slice().first() {
            Some((Event::StreamStart | Event::DocumentStart(..), _)) => {
                b.next()?;
            }
            Some((Event::StreamEnd, _)) | None => return Ok(None),
            Some(_) => return b.node().map(Some),
        }
    }
}

/// Byte offset just past the line holding `pos - 1` (its newline included).
fn line_end(text: &str, pos: usize) -> usize {
    if pos > 0 && text.as_bytes()[pos - 1] == b'\n' {
        return pos;
    }
    text[pos..].find('\n').map_or(text.len(), |i| pos + i + 1)
}

fn line_start(text: &str, pos: usize) -> usize {
    text[..pos].rfind('\n').map_or(0, |i| i + 1)
}

/// Column of `pos` (bytes from its line start).
pub(super) fn column(text: &str, pos: usize) -> usize {
    pos - line_start(text, pos)
}

/// The span of a block-sequence entry (from the start of its `-` line) and
/// the column of its `-`.
fn block_entry_span(
    key: &str,
    text: &str,
    item: &Node,
) -> Result<(Range<usize>, usize), AwsAuthError> {
    let before = text[..item.start].trim_end_matches([' ', '\t', '\r', '\n']);
    if !before.ends_with('-') {
        return Err(locate_error(
            key,
            format!("cannot find the `-` of the entry at byte {}", item.start),
        ));
    }
    let dash = before.len() - 1;
    let start = line_start(text, dash);
    if !text[start..dash].bytes().all(|b| b == b' ') {
        return Err(locate_error(
            key,
            format!("the `-` at byte {dash} does not start its line"),
        ));
    }
    Ok((start..line_end(text, item.end), dash - start))
}

/// Locates the entries of `text` (already known to parse as a list of mappings).
pub(super) fn locate(key: &str, text: &str) -> Result<Located, AwsAuthError> {
    let newline = if text.contains("\r\n") { "\r\n" } else { "\n" };
    let (layout, entries) = match root(key, text)? {
        None => (Layout::Empty, Vec::new()),
        Some(Node {
            kind: Kind::Scalar { .. },
            ..
        }) => (Layout::Null, Vec::new()),
        Some(Node {
            kind: Kind::Map { .. },
            ..
        }) => return Err(locate_error(key, "expected a list of entries")),
        Some(Node {
            kind: Kind::Seq { items },
            start,
            end,
        }) => {
            if text.as_bytes()[start] == b'[' {
                let close = end - 1;
                if text.as_bytes()[close] != b']' {
                    return Err(locate_error(key, "cannot find the `]` of the list"));
                }
                let entries = flow_entries(key, text, items)?;
                (Layout::Flow { open: start, close }, entries)
            } else {
                let (indent, entries) = block_entries(key, text, items)?;
                (Layout::Block { indent }, entries)
            }
        }
    };
    for w in entries.windows(2) {
        if w[0].span.end > w[1].span.start {
            return Err(locate_error(key, "two entries share a line"));
        }
    }
    Ok(Located {
        layout,
        entries,
        newline,
    })
}

fn flow_entries(key: &str, text: &str, items: Vec<Node>) -> Result<Vec<Entry>, AwsAuthError> {
    items
        .into_iter()
        .map(|node| {
            let b = text.as_bytes();
            if b[node.start] != b'{' || b[node.end - 1] != b'}' {
                return Err(locate_error(
                    key,
                    format!(
                        "the entry at byte {} is not a `{{...}}` mapping",
                        node.start
                    ),
                ));
            }
            Ok(Entry {
                span: node.start..node.end,
                node,
            })
        })
        .collect()
}

fn block_entries(
    key: &str,
    text: &str,
    items: Vec<Node>,
) -> Result<(usize, Vec<Entry>), AwsAuthError> {
    let mut indent = None;
    let mut out = Vec::with_capacity(items.len());
    for node in items {
        let (span, col) = block_entry_span(key, text, &node)?;
        if *indent.get_or_insert(col) != col {
            return Err(locate_error(key, "entries at different indents"));
        }
        out.push(Entry { span, node });
    }
    Ok((indent.unwrap_or(0), out))
}

fn apply(text: &str, span: &Range<usize>, edits: &[(Range<usize>, String)]) -> String {
    let mut sorted: Vec<&(Range<usize>, String)> = edits.iter().collect();
    sorted.sort_by_key(|(r, _)| r.start);
    let mut out = String::new();
    let mut at = span.start;
    for (r, s) in sorted {
        out.push_str(&text[at..r.start]);
        out.push_str(s);
        at = r.end;
    }
    out.push_str(&text[at..span.end]);
    out
}

mod edit;

//! The generator's text forms: block and flow entries, layouts, a key's text.

use super::*;

fn needs_quotes(s: &str, flow: bool) -> bool {
    let specials = [
        '{', '}', '[', ']', ',', '&', '*', '!', '|', '>', '\'', '"', '%', '@', '`', '#',
    ];
    s.is_empty()
        || s.starts_with(specials)
        || s.starts_with("- ")
        || s.contains(": ")
        || s.contains(" #")
        || (flow && s.contains(['{', '}', '[', ']', ',']))
}

pub(super) fn scalar(s: &str, form: Form, flow: bool) -> String {
    let form = if form == Form::Plain && needs_quotes(s, flow) {
        Form::Double
    } else {
        form
    };
    match form {
        Form::Plain => s.to_string(),
        Form::Single => format!("'{}'", s.replace('\'', "''")),
        Form::Double => serde_json::Value::String(s.to_string()).to_string(),
    }
}

impl Gen {
    /// An entry in a block list: `-` at `ind`, keys at `ind + 2`.
    pub(super) fn block_entry(&mut self, fields: &[(String, Val)], ind: usize, nl: &str) -> String {
        if self.pct(8) {
            return format!(
                "{}- {}{nl}",
                " ".repeat(ind),
                self.flow_entry(fields, false)
            );
        }
        let pad = " ".repeat(ind + 2);
        let mut out = String::new();
        for (i, (k, v)) in fields.iter().enumerate() {
            let lead = if i == 0 {
                format!("{}- ", " ".repeat(ind))
            } else {
                pad.clone()
            };
            if i > 0 && self.pct(4) {
                out.push_str(&format!("{pad}# about {k}{nl}"));
            }
            let comment = if self.pct(5) { "  # note" } else { "" };
            match v {
                Val::Str(s, f) => {
                    out.push_str(&format!("{lead}{k}: {}{comment}{nl}", scalar(s, *f, false)))
                }
                Val::List(items) if self.pct(25) => {
                    let inner: Vec<String> =
                        items.iter().map(|(s, f)| scalar(s, *f, true)).collect();
                    out.push_str(&format!("{lead}{k}: [{}]{comment}{nl}", inner.join(", ")));
                }
                Val::List(items) => {
                    out.push_str(&format!("{lead}{k}:{comment}{nl}"));
                    let sub = if self.pct(50) {
                        pad.clone()
                    } else {
                        format!("{pad}  ")
                    };
                    for (s, f) in items {
                        out.push_str(&format!("{sub}- {}{nl}", scalar(s, *f, false)));
                    }
                }
                Val::Map(pairs) => {
                    out.push_str(&format!("{lead}{k}:{nl}"));
                    for (mk, mv) in pairs {
                        if let Val::Str(s, f) = mv {
                            out.push_str(&format!("{pad}    {mk}: {}{nl}", scalar(s, *f, false)));
                        }
                    }
                }
            }
        }
        out
    }

    /// `{...}`: YAML flow (`json` false) or JSON keys and strings, where a
    /// YAML 1.1-only scalar may stay plain (`[012, yes]` is valid YAML).
    pub(super) fn flow_entry(&mut self, fields: &[(String, Val)], json: bool) -> String {
        let q = |s: &str, f: Form| {
            if json && f != Form::Plain {
                serde_json::Value::String(s.to_string()).to_string()
            } else {
                scalar(s, f, true)
            }
        };
        let key = |k: &str| {
            if json {
                format!("\"{k}\"")
            } else {
                k.to_string()
            }
        };
        let val = |v: &Val| -> String {
            match v {
                Val::Str(s, f) => q(s, *f),
                Val::List(items) => {
                    let inner: Vec<String> = items.iter().map(|(s, f)| q(s, *f)).collect();
                    format!("[{}]", inner.join(", "))
                }
                Val::Map(pairs) => {
                    let inner: Vec<String> = pairs
                        .iter()
                        .filter_map(|(k, v)| match v {
                            Val::Str(s, f) => Some(format!("{}: {}", key(k), q(s, *f))),
                            _ => None,
                        })
                        .collect();
                    format!("{{{}}}", inner.join(", "))
                }
            }
        };
        let parts: Vec<String> = fields
            .iter()
            .map(|(k, v)| format!("{}: {}", key(k), val(v)))
            .collect();
        format!("{{{}}}", parts.join(", "))
    }

    pub(super) fn layout(&mut self) -> Layout {
        match self.rng.random_range(0..10) {
            0 => Layout::JsonCompact,
            1 => Layout::JsonPretty,
            2 => Layout::Block { indent: 2 },
            _ => Layout::Block { indent: 0 },
        }
    }

    /// Writes a key from its entries; returns the text and each entry's text.
    pub(super) fn key_text(&mut self, entries: &[(Fields, Owner)]) -> (String, Vec<GenEntry>) {
        let layout = self.layout();
        let nl = if self.pct(10) { "\r\n" } else { "\n" };
        let mut out = String::new();
        let mut written = Vec::new();
        match layout {
            Layout::Block { indent } => {
                if self.pct(3) {
                    out.push_str(&format!("---{nl}"));
                }
                if self.pct(20) {
                    out.push_str(&format!("# managed by eksctl{nl}"));
                }
                for (fields, owner) in entries {
                    if self.pct(10) {
                        out.push_str(nl);
                    }
                    if self.pct(10) {
                        out.push_str(&format!("{}# next entry{nl}", " ".repeat(indent)));
                    }
                    let text = self.block_entry(fields, indent, nl);
                    out.push_str(&text);
                    written.push(GenEntry {
                        text,
                        owner: *owner,
                    });
                }
                if self.pct(5) {
                    out.push_str(&format!("# end{nl}"));
                } else if self.pct(10) {
                    // No trailing newline: the last entry ends the text.
                    out.truncate(out.len() - nl.len());
                    if let Some(last) = written.last_mut() {
                        last.text.truncate(last.text.len() - nl.len());
                    }
                }
            }
            Layout::JsonCompact | Layout::JsonPretty => {
                let pretty = layout == Layout::JsonPretty;
                let texts: Vec<String> = entries
                    .iter()
                    .map(|(f, _)| self.flow_entry(f, true))
                    .collect();
                let (open, sep, close) = if pretty {
                    (format!("[{nl}  "), format!(",{nl}  "), format!("{nl}]{nl}"))
                } else {
                    ("[".to_string(), ",".to_string(), "]".to_string())
                };
                out = format!("{open}{}{close}", texts.join(&sep));
                for (text, (_, owner)) in texts.into_iter().zip(entries) {
                    written.push(GenEntry {
                        text,
                        owner: *owner,
                    });
                }
            }
        }
        (out, written)
    }
}

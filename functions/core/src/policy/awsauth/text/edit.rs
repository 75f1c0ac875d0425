//! The edits of a located key: entries removed, fields set, an entry appended.

use super::*;

impl Located {
    /// The text with `fates` applied (one per entry) and `append` added last, in order.
    pub fn rewrite(&self, text: &str, fates: &[Fate], append: &[NewEntry]) -> String {
        let item = |i: usize| -> Option<String> {
            let span = &self.entries[i].span;
            match &fates[i] {
                Fate::Keep => Some(text[span.clone()].to_string()),
                Fate::Drop => None,
                Fate::Edit(edits) => Some(apply(text, span, edits)),
            }
        };
        let nl = self.newline;
        match self.layout {
            Layout::Empty => {
                let mut out = text.to_string();
                for a in append {
                    if !out.is_empty() && !out.ends_with('\n') {
                        out.push_str(nl);
                    }
                    out.push_str(&a.block(0, nl));
                }
                out
            }
            Layout::Null if append.is_empty() => text.to_string(),
            Layout::Null => append.iter().map(|a| a.block(0, nl)).collect(),
            Layout::Block { indent } => self.rewrite_block(text, indent, &item, append),
            Layout::Flow { open, close } => self.rewrite_flow(text, open, close, &item, append),
        }
    }

    fn rewrite_block(
        &self,
        text: &str,
        indent: usize,
        item: &dyn Fn(usize) -> Option<String>,
        append: &[NewEntry],
    ) -> String {
        let nl = self.newline;
        let n = self.entries.len();
        let mut out = text[..self.entries[0].span.start].to_string();
        let mut kept = 0;
        for i in 0..n {
            if let Some(s) = item(i) {
                out.push_str(&s);
                kept += 1;
            }
            if i + 1 == n {
                for a in append {
                    if !out.is_empty() && !out.ends_with('\n') {
                        out.push_str(nl);
                    }
                    out.push_str(&a.block(indent, nl));
                    kept += 1;
                }
            }
            let next = self.entries.get(i + 1).map_or(text.len(), |e| e.span.start);
            out.push_str(&text[self.entries[i].span.end..next]);
        }
        if kept == 0 {
            // Every entry went: an explicit empty list.
            if !out.is_empty() && !out.ends_with('\n') {
                out.push_str(nl);
            }
            out.push_str("[]");
            out.push_str(nl);
        }
        out
    }

    fn rewrite_flow(
        &self,
        text: &str,
        open: usize,
        close: usize,
        item: &dyn Fn(usize) -> Option<String>,
        append: &[NewEntry],
    ) -> String {
        let e = &self.entries;
        let n = e.len();
        // gap[i]: the text between entry i-1 and entry i (its separator).
        let gap = |i: usize| &text[e[i - 1].span.end..e[i].span.start];
        let sep_after = |i: usize| -> &str {
            if i + 1 < n {
                gap(i + 1)
            } else if n >= 2 {
                gap(n - 1)
            } else {
                ", "
            }
        };
        let (lead, trail) = match (e.first(), e.last()) {
            (Some(f), Some(l)) => (&text[open + 1..f.span.start], &text[l.span.end..close]),
            _ => (&text[open + 1..close], ""),
        };
        let mut pieces: Vec<(String, &str)> = (0..n)
            .filter_map(|i| item(i).map(|s| (s, sep_after(i))))
            .collect();
        let appended_sep = sep_after(n.saturating_sub(1));
        pieces.extend(append.iter().map(|a| (a.flow(), appended_sep)));
        let mut out = text[..=open].to_string();
        out.push_str(lead);
        let last = pieces.len().saturating_sub(1);
        for (j, (s, sep)) in pieces.iter().enumerate() {
            out.push_str(s);
            if j < last {
                out.push_str(sep);
            }
        }
        out.push_str(trail);
        out.push_str(&text[close..]);
        out
    }
}

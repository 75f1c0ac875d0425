//! A small scanner for the flat XML moto answers with (IAM and STS query
//! protocol responses). Only what the front door reads: the text of named
//! elements and the `<member>` blocks of lists.

/// Undoes the five predefined XML entities and numeric character references.
pub fn unescape(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        let Some(end) = tail.find(';') else {
            out.push_str(tail);
            return out;
        };
        let ent = &tail[1..end];
        let decoded = match ent {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => {
                if let Some(hex) = ent.strip_prefix("#x") {
                    u32::from_str_radix(hex, 16).ok().and_then(char::from_u32)
                } else if let Some(dec) = ent.strip_prefix('#') {
                    dec.parse::<u32>().ok().and_then(char::from_u32)
                } else {
                    None
                }
            }
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &tail[end + 1..];
            }
            None => {
                out.push('&');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Escapes text for an XML element body.
pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

/// The raw (still escaped) inner text of every `<name>…</name>` element.
pub fn raw_all<'a>(xml: &'a str, name: &str) -> Vec<&'a str> {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(i) = rest.find(&open) {
        let after = &rest[i + open.len()..];
        let Some(j) = after.find(&close) else { break };
        out.push(&after[..j]);
        rest = &after[j + close.len()..];
    }
    out
}

/// The unescaped text of the first `<name>` element.
pub fn text(xml: &str, name: &str) -> Option<String> {
    raw_all(xml, name).first().map(|s| unescape(s))
}

/// `<Tags><member><Key>k</Key><Value>v</Value></member>…</Tags>` as pairs.
pub fn tags(xml: &str) -> Vec<(String, String)> {
    raw_all(xml, "member")
        .into_iter()
        .filter_map(|m| Some((text(m, "Key")?, text(m, "Value")?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_elements_and_entities() {
        let x = "<A><B>x &amp; &lt;y&gt; &#65;&#x42;</B><B>2</B></A>";
        assert_eq!(text(x, "B").as_deref(), Some("x & <y> AB"));
        assert_eq!(raw_all(x, "B").len(), 2);
        assert_eq!(text(x, "C"), None);
        assert_eq!(unescape(&escape("a<&>\"'")), "a<&>\"'");
    }

    #[test]
    fn reads_tags() {
        let x = "<Tags><member><Key>eks-access</Key><Value>admin</Value></member>\
                 <member><Key>team</Key><Value>data</Value></member></Tags>";
        assert_eq!(
            tags(x),
            vec![
                ("eks-access".to_string(), "admin".to_string()),
                ("team".to_string(), "data".to_string())
            ]
        );
    }
}

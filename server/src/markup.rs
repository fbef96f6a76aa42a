//! Text put into HTML or XML that the server writes itself (the printable
//! hours report, a Darwin Core Archive's eml.xml): every character markup
//! could read as its own becomes an entity.

/// `text` safe as an element's content or a quoted attribute value, in
/// HTML and in XML alike (`&#39;` is both's apostrophe).
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(ch),
        }
    }
    out
}

//! Just enough XML for SOAP 1.1: escaping text we write, and reading replies.

/// Escapes text for an element's content or an attribute value.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// `<name>text</name>`, escaped.
pub fn el(name: &str, text: &str) -> String {
    format!("<{name}>{}</{name}>", esc(text))
}

/// The first descendant element with this local name.
pub fn find<'a, 'i>(node: roxmltree::Node<'a, 'i>, local: &str) -> Option<roxmltree::Node<'a, 'i>> {
    node.descendants()
        .find(|n| n.is_element() && n.tag_name().name() == local)
}

/// The text of the first descendant element with this local name.
pub fn text_of(node: roxmltree::Node<'_, '_>, local: &str) -> Option<String> {
    find(node, local).map(|n| n.text().unwrap_or("").trim().to_string())
}

/// The element children of `node` with this local name.
pub fn children<'a, 'i>(
    node: roxmltree::Node<'a, 'i>,
    local: &'a str,
) -> impl Iterator<Item = roxmltree::Node<'a, 'i>> + 'a {
    node.children()
        .filter(move |n| n.is_element() && n.tag_name().name() == local)
}

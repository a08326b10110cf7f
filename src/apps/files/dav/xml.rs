//! A small XML tree with namespaces: what WebDAV's request bodies are parsed into and its
//! answers are written from.

use quick_xml::events::Event;
use quick_xml::name::ResolveResult;

#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Element(Element),
    Text(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Element {
    pub ns: Option<String>,
    pub name: String,
    pub attrs: Vec<(String, String)>,
    pub children: Vec<Node>,
}

impl Element {
    pub(super) fn is(&self, ns: &str, name: &str) -> bool {
        self.ns.as_deref() == Some(ns) && self.name == name
    }

    pub(super) fn elements(&self) -> impl Iterator<Item = &Element> {
        self.children.iter().filter_map(|n| match n {
            Node::Element(e) => Some(e),
            _ => None,
        })
    }

    /// Serialized with an `xmlns` on every element whose namespace differs from its parent's, so
    /// that it stands on its own wherever it is put.
    pub fn to_xml(&self, out: &mut String, parent_ns: Option<&str>) {
        out.push('<');
        out.push_str(&self.name);
        if self.ns.as_deref() != parent_ns {
            out.push_str(" xmlns=\"");
            out.push_str(&escape(self.ns.as_deref().unwrap_or("")));
            out.push('"');
        }
        for (k, v) in &self.attrs {
            out.push_str(&format!(" {k}=\"{}\"", escape(v)));
        }
        if self.children.is_empty() {
            out.push_str("/>");
            return;
        }
        out.push('>');
        for c in &self.children {
            match c {
                Node::Element(e) => e.to_xml(out, self.ns.as_deref()),
                Node::Text(t) => out.push_str(&escape(t)),
            }
        }
        out.push_str(&format!("</{}>", self.name));
    }
}

pub(super) fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// Parses a document into its root element; `Err` when it is not well-formed.
pub fn parse(xml: &str) -> Result<Element, String> {
    let mut r = quick_xml::NsReader::from_str(xml);
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let ns_of = |res: ResolveResult| -> Result<Option<String>, String> {
        match res {
            ResolveResult::Bound(ns) => Ok(Some(String::from_utf8_lossy(ns.as_ref()).into_owned())),
            ResolveResult::Unbound => Ok(None),
            ResolveResult::Unknown(p) => Err(format!("unknown namespace prefix {}", String::from_utf8_lossy(&p))),
        }
    };
    loop {
        let (res, ev) = r.read_resolved_event().map_err(|e| e.to_string())?;
        match ev {
            Event::Start(_) | Event::Empty(_) if root.is_some() && stack.is_empty() => {
                return Err("more than one root element".into());
            }
            Event::Start(e) => {
                let el = element(&e, ns_of(res)?)?;
                stack.push(el);
            }
            Event::Empty(e) => {
                let el = element(&e, ns_of(res)?)?;
                match stack.last_mut() {
                    Some(p) => p.children.push(Node::Element(el)),
                    None => root = Some(el),
                }
            }
            Event::End(_) => {
                let el = stack.pop().ok_or("an end tag without a start")?;
                match stack.last_mut() {
                    Some(p) => p.children.push(Node::Element(el)),
                    None => root = Some(el),
                }
            }
            Event::Text(t) => {
                let text = t.decode().map_err(|e| e.to_string())?;
                let text = quick_xml::escape::unescape(&text).map_err(|e| e.to_string())?.into_owned();
                if let Some(p) = stack.last_mut() {
                    // Whitespace-only text is dropped later if the element has child elements.
                    if !text.is_empty() {
                        p.children.push(Node::Text(text));
                    }
                } else if !text.trim().is_empty() {
                    return Err("text outside the root element".into());
                }
            }
            Event::CData(c) => {
                if let Some(p) = stack.last_mut() {
                    p.children.push(Node::Text(String::from_utf8_lossy(&c).into_owned()));
                }
            }
            Event::GeneralRef(g) => {
                let name = String::from_utf8_lossy(&g).into_owned();
                let text = quick_xml::escape::unescape(&format!("&{name};")).map_err(|e| e.to_string())?.into_owned();
                if let Some(p) = stack.last_mut() {
                    p.children.push(Node::Text(text));
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !stack.is_empty() {
        return Err("an element is not closed".into());
    }
    let mut root = root.ok_or("no root element")?;
    merge_text(&mut root);
    Ok(root)
}

/// Adjacent text pieces (split by entity references) become one.
pub(super) fn merge_text(e: &mut Element) {
    let mut merged: Vec<Node> = Vec::new();
    for c in e.children.drain(..) {
        match (merged.last_mut(), c) {
            (Some(Node::Text(a)), Node::Text(b)) => a.push_str(&b),
            (_, Node::Element(mut el)) => {
                merge_text(&mut el);
                merged.push(Node::Element(el));
            }
            (_, t) => merged.push(t),
        }
    }
    // Whitespace between elements is layout, not content.
    if merged.iter().any(|n| matches!(n, Node::Element(_))) {
        merged.retain(|n| !matches!(n, Node::Text(t) if t.trim().is_empty()));
    }
    e.children = merged;
}

pub(super) fn element(e: &quick_xml::events::BytesStart, ns: Option<String>) -> Result<Element, String> {
    let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
    let mut attrs = Vec::new();
    for a in e.attributes() {
        let a = a.map_err(|e| e.to_string())?;
        let key = String::from_utf8_lossy(a.key.as_ref()).into_owned();
        if key == "xmlns" || key.starts_with("xmlns:") {
            continue;
        }
        #[allow(deprecated)]
        let v = a.unescape_value().map_err(|e| e.to_string())?.into_owned();
        attrs.push((key, v));
    }
    Ok(Element { ns, name, attrs, children: Vec::new() })
}

// ---- dead properties in extended attributes --------------------------------------------------

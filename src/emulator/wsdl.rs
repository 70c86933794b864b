//! A reader of XML Schema as OpenIAM's CXF server published it in its WSDLs, and a checker
//! of a SOAP body against it, the way JAXB under CXF reads one. The element tables are
//! derived from the contract's text (kept in `contracts/openiam-2x/`), never written by
//! hand, so the emulator refuses what the real server refuses and the contract tests flag
//! what it would ignore or misread.
//!
//! What JAXB does with a body, and so what the checker reports:
//! - an element its type does not declare (by namespace and name) inside a bean: the call
//!   fails with `Unmarshalling Error: unexpected element (uri:"...", local:"...")`
//!   ([`Severity::Refused`]);
//! - an unknown parameter of the operation's wrapper: skipped silently
//!   ([`Severity::Ignored`]), and so is a value its simple type cannot hold (an enum value
//!   it does not list, "yes" for a boolean), which is read as null;
//! - declared elements out of their declared order: read all the same, but not what the
//!   contract says ([`Severity::Deviation`]).

use std::collections::HashMap;

const XS: &str = "http://www.w3.org/2001/XMLSchema";

/// A namespace and a local name.
pub type QName = (String, String);

#[derive(Debug, Clone)]
enum TypeRef {
    Named(QName),
    Anonymous(Box<ComplexType>),
}

#[derive(Debug, Clone)]
struct Particle {
    ns: String,
    name: String,
    ty: TypeRef,
    min: u32,
}

#[derive(Debug, Clone, Default)]
struct ComplexType {
    base: Option<QName>,
    particles: Vec<Particle>,
}

/// The types and global elements of every schema in a set of WSDL documents.
#[derive(Debug, Default)]
pub struct Schema {
    complex: HashMap<QName, ComplexType>,
    /// Simple types by name: their enumeration (empty when not an enumeration) and base.
    simple: HashMap<QName, (Vec<String>, QName)>,
    elements: HashMap<QName, QName>,
}

/// How the real server takes a problem.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Severity {
    /// A SOAP fault: the call does nothing.
    Refused,
    /// Dropped or read as null without a word.
    Ignored,
    /// Read, but not as the contract declares it (order).
    Deviation,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Problem {
    pub severity: Severity,
    /// Where, as `addUser/user/principalList`.
    pub path: String,
    pub message: String,
}

fn qname(node: roxmltree::Node<'_, '_>, value: &str) -> QName {
    match value.split_once(':') {
        Some((prefix, local)) => (
            node.lookup_namespace_uri(Some(prefix))
                .unwrap_or_default()
                .to_string(),
            local.to_string(),
        ),
        None => (
            node.lookup_namespace_uri(None)
                .unwrap_or_default()
                .to_string(),
            value.to_string(),
        ),
    }
}

fn xs_children<'a, 'i>(
    node: roxmltree::Node<'a, 'i>,
    local: &'static str,
) -> impl Iterator<Item = roxmltree::Node<'a, 'i>> {
    node.children()
        .filter(move |n| n.is_element() && n.tag_name().namespace() == Some(XS))
        .filter(move |n| n.tag_name().name() == local)
}

fn parse_complex(node: roxmltree::Node<'_, '_>, tns: &str, qualified: bool) -> ComplexType {
    let mut out = ComplexType::default();
    let mut body = node;
    if let Some(ext) = xs_children(node, "complexContent")
        .next()
        .and_then(|c| xs_children(c, "extension").next())
    {
        out.base = ext.attribute("base").map(|b| qname(ext, b));
        body = ext;
    }
    for seq in xs_children(body, "sequence") {
        for el in xs_children(seq, "element") {
            let Some(name) = el.attribute("name") else {
                continue;
            };
            let ty = match el.attribute("type") {
                Some(t) => TypeRef::Named(qname(el, t)),
                None => match xs_children(el, "complexType").next() {
                    Some(inline) => {
                        TypeRef::Anonymous(Box::new(parse_complex(inline, tns, qualified)))
                    }
                    None => TypeRef::Named((XS.into(), "anyType".into())),
                },
            };
            out.particles.push(Particle {
                ns: if qualified {
                    tns.to_string()
                } else {
                    String::new()
                },
                name: name.to_string(),
                ty,
                min: el
                    .attribute("minOccurs")
                    .and_then(|m| m.parse().ok())
                    .unwrap_or(1),
            });
        }
    }
    out
}

impl Schema {
    /// Reads every `xs:schema` in these documents (WSDLs, or SoapUI projects whose cached
    /// WSDL parts are read out of them).
    pub fn from_documents(texts: &[&str]) -> Result<Schema, String> {
        let mut schema = Schema::default();
        for text in texts {
            let doc = roxmltree::Document::parse(text).map_err(|e| e.to_string())?;
            // A SoapUI project holds its WSDLs as text in <con:content>.
            let parts: Vec<String> = doc
                .descendants()
                .filter(|n| n.tag_name().name() == "content")
                .filter_map(|n| n.text().map(str::to_string))
                .collect();
            schema.read(&doc);
            for part in parts {
                let inner = roxmltree::Document::parse(&part).map_err(|e| e.to_string())?;
                schema.read(&inner);
            }
        }
        if schema.elements.is_empty() {
            return Err("no schema elements found".into());
        }
        Ok(schema)
    }

    fn read(&mut self, doc: &roxmltree::Document<'_>) {
        for s in doc
            .descendants()
            .filter(|n| n.tag_name().namespace() == Some(XS) && n.tag_name().name() == "schema")
        {
            let tns = s.attribute("targetNamespace").unwrap_or_default();
            let qualified = s.attribute("elementFormDefault") == Some("qualified");
            for c in xs_children(s, "complexType") {
                if let Some(name) = c.attribute("name") {
                    self.complex.insert(
                        (tns.to_string(), name.to_string()),
                        parse_complex(c, tns, qualified),
                    );
                }
            }
            for st in xs_children(s, "simpleType") {
                let (Some(name), Some(r)) =
                    (st.attribute("name"), xs_children(st, "restriction").next())
                else {
                    continue;
                };
                let values = xs_children(r, "enumeration")
                    .filter_map(|e| e.attribute("value").map(str::to_string))
                    .collect();
                let base = r
                    .attribute("base")
                    .map(|b| qname(r, b))
                    .unwrap_or_else(|| (XS.into(), "string".into()));
                self.simple
                    .insert((tns.to_string(), name.to_string()), (values, base));
            }
            for e in xs_children(s, "element") {
                if let (Some(name), Some(ty)) = (e.attribute("name"), e.attribute("type")) {
                    self.elements
                        .insert((tns.to_string(), name.to_string()), qname(e, ty));
                }
            }
        }
    }

    /// Whether this global element (an operation's wrapper) is declared.
    pub fn has_element(&self, ns: &str, name: &str) -> bool {
        self.elements
            .contains_key(&(ns.to_string(), name.to_string()))
    }

    /// A type's elements in declared order, its bases' first.
    fn particles<'a>(&'a self, ty: &'a ComplexType) -> Vec<&'a Particle> {
        let mut chain = vec![ty];
        let mut cur = ty;
        while let Some(b) = cur.base.as_ref().and_then(|b| self.complex.get(b)) {
            chain.push(b);
            cur = b;
        }
        chain
            .into_iter()
            .rev()
            .flat_map(|t| t.particles.iter())
            .collect()
    }

    /// The elements a named complex type declares, as (namespace, name), in order.
    pub fn declared(&self, ns: &str, ty: &str) -> Vec<QName> {
        self.complex
            .get(&(ns.to_string(), ty.to_string()))
            .map(|t| {
                self.particles(t)
                    .into_iter()
                    .map(|p| (p.ns.clone(), p.name.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The elements a named complex type requires (minOccurs 1).
    pub fn required(&self, ns: &str, ty: &str) -> Vec<QName> {
        self.complex
            .get(&(ns.to_string(), ty.to_string()))
            .map(|t| {
                self.particles(t)
                    .into_iter()
                    .filter(|p| p.min > 0)
                    .map(|p| (p.ns.clone(), p.name.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Checks an operation's wrapper element (the child of soap:Body) against its type.
    pub fn check(&self, wrapper: roxmltree::Node<'_, '_>) -> Vec<Problem> {
        let ns = wrapper.tag_name().namespace().unwrap_or_default();
        let name = wrapper.tag_name().name();
        let mut out = Vec::new();
        match self.elements.get(&(ns.to_string(), name.to_string())) {
            Some(ty) => match self.complex.get(ty) {
                Some(t) => self.check_complex(wrapper, t, name, 0, &mut out),
                None => out.push(Problem {
                    severity: Severity::Refused,
                    path: name.into(),
                    message: format!("the type of {name} is not in the contract"),
                }),
            },
            None => out.push(Problem {
                severity: Severity::Refused,
                path: name.into(),
                message: format!(
                    "Message part {{{ns}}}{name} was not recognized.  (Does it exist in service WSDL?)"
                ),
            }),
        }
        out
    }

    fn check_complex(
        &self,
        node: roxmltree::Node<'_, '_>,
        ty: &ComplexType,
        path: &str,
        depth: usize,
        out: &mut Vec<Problem>,
    ) {
        let particles = self.particles(ty);
        let mut last = 0usize;
        for child in node.children().filter(|n| n.is_element()) {
            let cns = child.tag_name().namespace().unwrap_or_default();
            let cname = child.tag_name().name();
            let here = format!("{path}/{cname}");
            let Some(i) = particles
                .iter()
                .position(|p| p.ns == cns && p.name == cname)
            else {
                let expected: Vec<String> = particles
                    .iter()
                    .map(|p| format!("<{{{}}}{}>", p.ns, p.name))
                    .collect();
                out.push(Problem {
                    // A wrapper's unknown parameter is skipped; a bean's fails the call.
                    severity: if depth == 0 {
                        Severity::Ignored
                    } else {
                        Severity::Refused
                    },
                    path: here,
                    message: format!(
                        "Unmarshalling Error: unexpected element (uri:\"{cns}\", local:\"{cname}\"). Expected elements are {}",
                        expected.join(",")
                    ),
                });
                continue;
            };
            if i < last {
                out.push(Problem {
                    severity: Severity::Deviation,
                    path: here.clone(),
                    message: format!("{cname} comes after an element the type declares after it"),
                });
            }
            last = last.max(i);
            self.check_value(child, &particles[i].ty, &here, depth + 1, out);
        }
    }

    fn check_value(
        &self,
        node: roxmltree::Node<'_, '_>,
        ty: &TypeRef,
        path: &str,
        depth: usize,
        out: &mut Vec<Problem>,
    ) {
        let named = match ty {
            TypeRef::Anonymous(t) => return self.check_complex(node, t, path, depth, out),
            TypeRef::Named(q) => q,
        };
        if let Some(t) = self.complex.get(named) {
            return self.check_complex(node, t, path, depth, out);
        }
        let text = node.text().unwrap_or("").trim();
        let (values, base) = match self.simple.get(named) {
            Some((v, b)) => (v.clone(), b.clone()),
            None => (Vec::new(), named.clone()),
        };
        let bad = if !values.is_empty() {
            !values.iter().any(|v| v == text)
        } else if base.0 == XS {
            match base.1.as_str() {
                "boolean" => !matches!(text, "true" | "false" | "1" | "0"),
                "int" | "long" => text.parse::<i64>().is_err(),
                _ => false,
            }
        } else {
            false
        };
        if bad {
            out.push(Problem {
                severity: Severity::Ignored,
                path: path.into(),
                message: format!(
                    "'{text}' is not a value of {}, so it is read as null",
                    base.1
                ),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provisioning() -> Schema {
        Schema::from_documents(&[super::super::openiam::PROVISIONING_WSDL]).expect("wsdl")
    }

    fn body(xml: &str) -> Vec<Problem> {
        let text = format!(
            "<e:Envelope xmlns:e=\"http://schemas.xmlsoap.org/soap/envelope/\" xmlns:prov=\"http://www.openiam.org/service/provision\" \
             xmlns:dto=\"urn:idm.openiam.org/srvc/user/dto\" xmlns:role=\"urn:idm.openiam.org/srvc/role/dto\"><e:Body>{xml}</e:Body></e:Envelope>"
        );
        let doc = roxmltree::Document::parse(&text).expect("xml");
        let wrapper = doc
            .descendants()
            .find(|n| n.tag_name().name() == "Body")
            .and_then(|b| b.first_element_child())
            .expect("wrapper");
        provisioning().check(wrapper)
    }

    #[test]
    fn provision_user_inherits_the_user_dto_fields_qualified_and_declares_its_own_unqualified() {
        let s = provisioning();
        let fields = s.declared("http://www.openiam.org/service/provision", "ProvisionUser");
        let dto = "urn:idm.openiam.org/srvc/user/dto".to_string();
        assert_eq!(fields[0], (String::new(), "objectState".into()));
        assert!(fields.contains(&(dto.clone(), "principalList".into())));
        assert!(fields.contains(&(String::new(), "principalList".into())));
        let first_own = fields
            .iter()
            .position(|f| f == &(String::new(), "principalList".into()))
            .expect("own");
        let email = fields
            .iter()
            .position(|f| f == &(dto.clone(), "email".into()))
            .expect("email");
        assert!(email < first_own, "the User fields come first");
        assert_eq!(
            fields.last(),
            Some(&(String::new(), "securityDomain".into()))
        );
    }

    #[test]
    fn a_requestor_id_inside_user_is_refused_as_cxf_refuses_it() {
        let p = body("<prov:addUser><user><dto:firstName>A</dto:firstName><requestorId>x</requestorId></user></prov:addUser>");
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].severity, Severity::Refused);
        assert!(p[0].message.starts_with(
            "Unmarshalling Error: unexpected element (uri:\"\", local:\"requestorId\")"
        ));
    }

    #[test]
    fn an_unknown_wrapper_parameter_is_ignored_and_a_bad_enum_is_read_as_null() {
        let p = body("<prov:disableUser><userId>1</userId><operation>true</operation><requestorId>3000</requestorId></prov:disableUser>");
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].severity, Severity::Ignored);
        let p =
            body("<prov:lockUser><userId>1</userId><operation>lock</operation></prov:lockUser>");
        assert_eq!(p[0].severity, Severity::Ignored, "{p:?}");
    }

    #[test]
    fn the_same_name_in_another_namespace_is_another_field_and_order_is_checked() {
        let p = body("<prov:addUser><user><dto:securityDomain>D</dto:securityDomain><securityDomain>D</securityDomain></user></prov:addUser>");
        assert!(p.is_empty(), "both are declared: {p:?}");
        let p = body("<prov:addUser><user><securityDomain>D</securityDomain><dto:firstName>A</dto:firstName></user></prov:addUser>");
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].severity, Severity::Deviation);
        let p = body("<prov:addUser><user><memberOfRoles><role:id><role:roleId>R</role:roleId></role:id><id>x</id></memberOfRoles></user></prov:addUser>");
        assert_eq!(p.len(), 1, "an unqualified id is not the role's id: {p:?}");
        assert_eq!(p[0].severity, Severity::Refused);
    }

    #[test]
    fn openiams_own_sample_requests_are_read_without_a_refusal() {
        let project =
            include_str!("../../contracts/openiam-2x/ProvisioningService-soapui-project.xml");
        let doc = roxmltree::Document::parse(project).expect("project");
        let s = provisioning();
        let mut checked = 0;
        for req in doc
            .descendants()
            .filter(|n| n.tag_name().name() == "request" && n.children().any(|c| c.is_text()))
        {
            let Some(text) = req.text().filter(|t| t.contains("Envelope")) else {
                continue;
            };
            let Ok(envelope) = roxmltree::Document::parse(text) else {
                continue;
            };
            let Some(wrapper) = envelope
                .descendants()
                .find(|n| n.tag_name().name() == "Body")
                .and_then(|b| b.first_element_child())
            else {
                continue;
            };
            if text.contains(">?<") {
                continue; // SoapUI's templates, with '?' for every value
            }
            let refused: Vec<_> = s
                .check(wrapper)
                .into_iter()
                .filter(|p| p.severity == Severity::Refused)
                .collect();
            assert!(refused.is_empty(), "{refused:?}\n{text}");
            checked += 1;
        }
        assert!(checked >= 10, "only {checked} samples");
    }
}

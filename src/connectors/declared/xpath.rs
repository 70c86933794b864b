//! XPath over a SOAP answer, with xee-xpath: XPath 3.1, so a definition can name an
//! element in any namespace (`//*:userId`) without declaring the prefixes a server
//! happens to use. A take is the string value of the first item the expression selects.

use xee_xpath::{Documents, Queries, Query};

/// The expression a take runs: the string value of the first item selected.
fn first(expr: &str) -> String {
    format!("string(({expr})[1])")
}

/// Whether an expression compiles, or why not.
pub fn check(expr: &str) -> Result<(), String> {
    Queries::default()
        .one(&first(expr), |_, item| Ok(item.try_into_value::<String>()?))
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// The string value of the first item `expr` selects in `xml` (None when it selects
/// nothing, or nothing but an empty string).
pub fn first_string(xml: &str, expr: &str) -> Result<Option<String>, String> {
    let mut documents = Documents::new();
    let doc = documents
        .add_string_without_uri(xml)
        .map_err(|e| format!("the answer is not XML: {e}"))?;
    let queries = Queries::default();
    let q = queries
        .one(&first(expr), |_, item| Ok(item.try_into_value::<String>()?))
        .map_err(|e| e.to_string())?;
    let s = q.execute(&mut documents, doc).map_err(|e| e.to_string())?;
    Ok(Some(s.trim().to_string()).filter(|s| !s.is_empty()))
}

/// The string value of every item `expr` selects in `xml` (a list's page of logins).
pub fn all_strings(xml: &str, expr: &str) -> Result<Vec<String>, String> {
    let mut documents = Documents::new();
    let doc = documents
        .add_string_without_uri(xml)
        .map_err(|e| format!("the answer is not XML: {e}"))?;
    let queries = Queries::default();
    let q = queries
        .many(&format!("({expr}) ! string(.)"), |_, item| {
            Ok(item.try_into_value::<String>()?)
        })
        .map_err(|e| e.to_string())?;
    let all = q.execute(&mut documents, doc).map_err(|e| e.to_string())?;
    Ok(all
        .into_iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ANSWER: &str = r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><ns2:addUserResponse xmlns:ns2="urn:x"><return status="success"><user><ns3:userId xmlns:ns3="urn:dto">42</ns3:userId></user></return></ns2:addUserResponse></s:Body></s:Envelope>"#;

    #[test]
    fn an_element_is_found_in_any_namespace_and_an_attribute_read() {
        assert_eq!(
            first_string(ANSWER, "//*:userId").expect("runs"),
            Some("42".into())
        );
        assert_eq!(
            // xee reads `*:return` as the keyword: local-name() names such an element.
            first_string(ANSWER, "//*[local-name()='return']/@status").expect("runs"),
            Some("success".into())
        );
        assert_eq!(first_string(ANSWER, "//*:nothing").expect("runs"), None);
        let list = "<a><login>x</login><login>y</login></a>";
        assert_eq!(all_strings(list, "//login").expect("runs"), ["x", "y"]);
    }

    #[test]
    fn a_broken_expression_and_an_answer_that_is_not_xml_are_reported() {
        assert!(check("//*:userId[").is_err());
        assert!(check("//*:userId").is_ok());
        assert!(first_string("not xml", "//a").is_err());
    }
}

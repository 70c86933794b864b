//! Query parameters of a list request and the ListResponse (RFC 7644 section 3.4.2).

use serde_json::{json, Value};

use super::error::{ScimError, ScimResult};
use super::filter::Filter;
use super::path::AttrPath;
use super::resource::Projection;

pub const LIST_RESPONSE_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
pub const SEARCH_REQUEST_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";

/// A parsed list request.
#[derive(Debug, Clone)]
pub struct ListQuery {
    pub filter: Option<Filter>,
    /// 1-based.
    pub start_index: u64,
    /// Already capped at the server's maximum.
    pub count: u64,
    pub projection: Projection,
    /// `sortBy`, and whether `sortOrder` is descending.
    pub sort: Option<(AttrPath, bool)>,
    /// RFC 9865 cursor paging: `Some("")` asks for the first page.
    pub cursor: Option<String>,
}

/// Raw parameters as they arrive in a query string or a `.search` body.
#[derive(Debug, Default, Clone)]
pub struct ListParams {
    pub filter: Option<String>,
    pub start_index: Option<String>,
    pub count: Option<String>,
    pub attributes: Option<String>,
    pub excluded_attributes: Option<String>,
    pub sort_by: Option<String>,
    pub sort_order: Option<String>,
    pub cursor: Option<String>,
}

impl ListParams {
    /// Reads the parameters from query pairs, names compared without regard to case.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> ListParams {
        let mut p = ListParams::default();
        for (k, v) in pairs {
            let slot = match k.to_ascii_lowercase().as_str() {
                "filter" => &mut p.filter,
                "startindex" => &mut p.start_index,
                "count" => &mut p.count,
                "attributes" => &mut p.attributes,
                "excludedattributes" => &mut p.excluded_attributes,
                "sortby" => &mut p.sort_by,
                "sortorder" => &mut p.sort_order,
                "cursor" => &mut p.cursor,
                _ => continue,
            };
            *slot = Some(v.to_string());
        }
        p
    }

    /// Reads a SearchRequest body (RFC 7644 section 3.4.3).
    pub fn from_search_body(body: &Value) -> ScimResult<ListParams> {
        let Value::Object(obj) = body else {
            return Err(ScimError::InvalidSyntax(
                "the body must be a JSON object".into(),
            ));
        };
        if let Some(schemas) = obj.get("schemas") {
            let ok = schemas
                .as_array()
                .is_some_and(|l| l.iter().any(|s| s.as_str() == Some(SEARCH_REQUEST_SCHEMA)));
            if !ok {
                return Err(ScimError::InvalidSyntax(format!(
                    "'schemas' must name {SEARCH_REQUEST_SCHEMA}"
                )));
            }
        }
        let mut p = ListParams::default();
        for (k, v) in obj {
            let text = match v {
                Value::Null => continue,
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Array(items) => items
                    .iter()
                    .map(|i| {
                        i.as_str().map(str::to_string).ok_or_else(|| {
                            ScimError::InvalidValue(format!("'{k}' must list attribute names"))
                        })
                    })
                    .collect::<ScimResult<Vec<_>>>()?
                    .join(","),
                _ if k == "schemas" => continue,
                _ => return Err(ScimError::InvalidValue(format!("'{k}' has the wrong type"))),
            };
            let slot = match k.to_ascii_lowercase().as_str() {
                "filter" => &mut p.filter,
                "startindex" => &mut p.start_index,
                "count" => &mut p.count,
                "attributes" => &mut p.attributes,
                "excludedattributes" => &mut p.excluded_attributes,
                "sortby" => &mut p.sort_by,
                "sortorder" => &mut p.sort_order,
                "cursor" => &mut p.cursor,
                _ => continue,
            };
            *slot = Some(text);
        }
        Ok(p)
    }

    pub fn parse(&self, max_results: u64) -> ScimResult<ListQuery> {
        let filter = match self.filter.as_deref() {
            Some(f) => Some(Filter::parse(f)?),
            None => None,
        };
        // RFC 7644 3.4.2.4: startIndex below 1 is read as 1; a negative count as 0.
        let start_index = match self.start_index.as_deref() {
            None => 1,
            Some(s) => s
                .trim()
                .parse::<i64>()
                .map_err(|_| {
                    ScimError::InvalidValue(format!("startIndex '{s}' is not an integer"))
                })?
                .max(1) as u64,
        };
        let count = match self.count.as_deref() {
            None => max_results,
            Some(s) => (s
                .trim()
                .parse::<i64>()
                .map_err(|_| ScimError::InvalidValue(format!("count '{s}' is not an integer")))?
                .max(0) as u64)
                .min(max_results),
        };
        let sort = match self
            .sort_by
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            None => None,
            Some(path) => {
                let path = AttrPath::parse(path).map_err(|_| {
                    ScimError::InvalidValue(format!("sortBy '{path}' is not an attribute path"))
                })?;
                let descending = match self
                    .sort_order
                    .as_deref()
                    .map(str::to_ascii_lowercase)
                    .as_deref()
                {
                    None | Some("") | Some("ascending") => false,
                    Some("descending") => true,
                    Some(other) => {
                        return Err(ScimError::InvalidValue(format!(
                            "sortOrder '{other}' is neither ascending nor descending"
                        )))
                    }
                };
                Some((path, descending))
            }
        };
        if self.cursor.is_some() && self.start_index.is_some() {
            return Err(ScimError::InvalidValue(
                "use either cursor or startIndex, not both".into(),
            ));
        }
        if self.cursor.is_some() && sort.is_some() {
            return Err(ScimError::InvalidValue(
                "cursor paging follows creation order and cannot be combined with sortBy".into(),
            ));
        }
        Ok(ListQuery {
            filter,
            start_index,
            count,
            sort,
            cursor: self.cursor.clone(),
            projection: Projection::from_params(
                self.attributes.as_deref(),
                self.excluded_attributes.as_deref(),
            ),
        })
    }
}

/// Builds a cursor-paged ListResponse (RFC 9865): no startIndex; `nextCursor` when more
/// follow; `totalResults` when the caller counted (the first page).
pub fn cursor_response(total: Option<u64>, resources: Vec<Value>, next: Option<String>) -> Value {
    let mut body = json!({
        "schemas": [LIST_RESPONSE_SCHEMA],
        "itemsPerPage": resources.len(),
    });
    if let Some(obj) = body.as_object_mut() {
        if let Some(t) = total {
            obj.insert("totalResults".into(), json!(t));
        }
        if let Some(n) = next {
            obj.insert("nextCursor".into(), Value::String(n));
        }
        obj.insert("Resources".into(), Value::Array(resources));
    }
    body
}

/// Builds a ListResponse. `count=0` gives only totalResults (and no Resources).
pub fn list_response(total: u64, start_index: u64, resources: Vec<Value>) -> Value {
    let mut body = json!({
        "schemas": [LIST_RESPONSE_SCHEMA],
        "totalResults": total,
        "startIndex": start_index,
        "itemsPerPage": resources.len(),
    });
    if let Some(obj) = body.as_object_mut() {
        obj.insert("Resources".into(), Value::Array(resources));
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn count_above_the_maximum_is_capped_and_start_below_one_is_one() {
        let p = ListParams {
            count: Some("5000".into()),
            start_index: Some("-3".into()),
            ..Default::default()
        };
        let q = p.parse(100).expect("parses");
        assert_eq!((q.start_index, q.count), (1, 100));
    }

    #[test]
    fn a_non_numeric_count_is_invalid_value() {
        let p = ListParams {
            count: Some("ten".into()),
            ..Default::default()
        };
        assert!(matches!(p.parse(100), Err(ScimError::InvalidValue(_))));
    }
}

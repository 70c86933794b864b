//! Query parameters of a list request and the ListResponse (RFC 7644 section 3.4.2).

use serde_json::{json, Value};

use super::error::{ScimError, ScimResult};
use super::filter::Filter;
use super::resource::Projection;

pub const LIST_RESPONSE_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";

/// A parsed list request.
#[derive(Debug, Clone)]
pub struct ListQuery {
    pub filter: Option<Filter>,
    /// 1-based.
    pub start_index: u64,
    /// Already capped at the server's maximum.
    pub count: u64,
    pub projection: Projection,
}

/// Raw parameters as they arrive in a query string or a `.search` body.
#[derive(Debug, Default, Clone)]
pub struct ListParams {
    pub filter: Option<String>,
    pub start_index: Option<String>,
    pub count: Option<String>,
    pub attributes: Option<String>,
    pub excluded_attributes: Option<String>,
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
                _ => continue,
            };
            *slot = Some(v.to_string());
        }
        p
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
        Ok(ListQuery {
            filter,
            start_index,
            count,
            projection: Projection::from_params(
                self.attributes.as_deref(),
                self.excluded_attributes.as_deref(),
            ),
        })
    }
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

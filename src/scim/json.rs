//! Request bodies read strictly: an object that names one key twice (in any case, as SCIM
//! attribute names are case-insensitive) is refused rather than read as its last value,
//! which another reader of the same bytes might not have chosen.

use std::collections::HashSet;
use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use super::ScimError;

/// Parses a JSON body; a duplicate key is a `invalidSyntax` error naming it.
pub fn parse(body: &[u8]) -> Result<Value, ScimError> {
    serde_json::from_slice::<Strict>(body)
        .map(|s| s.0)
        .map_err(|e| ScimError::InvalidSyntax(format!("the body is not valid JSON: {e}")))
}

struct Strict(Value);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Strict, D::Error> {
        d.deserialize_any(StrictVisitor)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Strict;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, b: bool) -> Result<Strict, E> {
        Ok(Strict(Value::Bool(b)))
    }

    fn visit_i64<E>(self, n: i64) -> Result<Strict, E> {
        Ok(Strict(Value::Number(n.into())))
    }

    fn visit_u64<E>(self, n: u64) -> Result<Strict, E> {
        Ok(Strict(Value::Number(n.into())))
    }

    fn visit_f64<E>(self, n: f64) -> Result<Strict, E> {
        Ok(Strict(
            Number::from_f64(n).map_or(Value::Null, Value::Number),
        ))
    }

    fn visit_str<E>(self, s: &str) -> Result<Strict, E> {
        Ok(Strict(Value::String(s.to_string())))
    }

    fn visit_string<E>(self, s: String) -> Result<Strict, E> {
        Ok(Strict(Value::String(s)))
    }

    fn visit_unit<E>(self) -> Result<Strict, E> {
        Ok(Strict(Value::Null))
    }

    fn visit_none<E>(self) -> Result<Strict, E> {
        Ok(Strict(Value::Null))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Strict, A::Error> {
        let mut out = Vec::new();
        while let Some(Strict(v)) = seq.next_element()? {
            out.push(v);
        }
        Ok(Strict(Value::Array(out)))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Strict, A::Error> {
        let mut out = Map::new();
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !seen.insert(key.to_lowercase()) {
                return Err(serde::de::Error::custom(format!(
                    "the key '{key}' appears twice in one object"
                )));
            }
            let Strict(v) = map.next_value()?;
            out.insert(key, v);
        }
        Ok(Strict(Value::Object(out)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_named_twice_in_any_case_is_refused_and_the_rest_reads_as_serde_json_does() {
        let body = br#"{"userName": "a", "name": {"givenName": "x"}, "emails": [{"value": 1.5}], "n": null}"#;
        assert_eq!(parse(body).ok(), serde_json::from_slice(body).ok());
        for twice in [
            &br#"{"userName": "a", "userName": "b"}"#[..],
            br#"{"userName": "a", "USERNAME": "b"}"#,
            br#"{"name": {"givenName": "a", "givenname": "b"}}"#,
            br#"[{"value": 1, "value": 2}]"#,
        ] {
            let err = parse(twice).expect_err("refused");
            assert!(
                matches!(err, ScimError::InvalidSyntax(ref m) if m.contains("appears twice")),
                "{err:?}"
            );
        }
        assert!(parse(br#"{"a": 1"#).is_err());
    }
}

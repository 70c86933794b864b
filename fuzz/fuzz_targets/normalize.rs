//! Normalisation of any JSON as a User and as a Group: refused or normalised, never a
//! panic; and normalising what came out again changes nothing (the canonical form is a
//! fixed point).
#![no_main]

use libfuzzer_sys::fuzz_target;
use scim_bridge::scim::resource::normalize;
use scim_bridge_fuzz::{registry, resource_type};
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(input) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let reg = registry();
    for name in ["User", "Group"] {
        let rt = resource_type(name);
        let Ok(first) = normalize(reg, rt, input.clone()) else {
            continue;
        };
        let mut again = first.data.clone();
        let mut schemas = vec![Value::String(rt.schema.clone())];
        schemas.extend(
            first
                .data
                .keys()
                .filter(|k| k.starts_with("urn:"))
                .map(|k| Value::String(k.clone())),
        );
        again.insert("schemas".into(), Value::Array(schemas));
        let second = normalize(reg, rt, Value::Object(again))
            .unwrap_or_else(|e| panic!("{name}: normalised output refused: {e}"));
        assert_eq!(
            second.data, first.data,
            "{name}: normalising twice changed it"
        );
    }
});

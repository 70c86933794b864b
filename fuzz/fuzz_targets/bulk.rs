//! The bulk resolver: any JSON body is refused or run, never a panic, never a hang. Each
//! operation gets exactly one result, and an operation is only run once every bulkId it
//! names has an id: none reaches the executor still naming a created resource by bulkId.
#![no_main]

use std::collections::HashMap;

use libfuzzer_sys::fuzz_target;
use scim_bridge::bridge::bulk::run;
use scim_bridge::scim::ScimError;
use serde_json::{json, Value};

fn names(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => {
            if let Some(b) = s.strip_prefix("bulkId:") {
                out.push(b.to_string());
            }
        }
        Value::Array(a) => a.iter().for_each(|x| names(x, out)),
        Value::Object(o) => o.values().for_each(|x| names(x, out)),
        _ => {}
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(body) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let mut created: HashMap<String, String> = HashMap::new();
    let mut calls = 0usize;
    let result = run(&body, 64, |op| {
        calls += 1;
        let mut named = Vec::new();
        if let Some(d) = &op.data {
            names(d, &mut named);
        }
        for seg in op.path.split('/') {
            if let Some(b) = seg.strip_prefix("bulkId:") {
                named.push(b.to_string());
            }
        }
        for b in &named {
            assert!(
                !created.contains_key(b),
                "bulkId:{b} reached the executor unresolved"
            );
        }
        // Odd operations fail, so failure paths and failOnErrors are exercised too.
        if calls % 3 == 0 {
            return Err(ScimError::InvalidValue(
                "refused by the fuzz executor".into(),
            ));
        }
        let new_id = (op.method == "POST").then(|| format!("id-{calls}"));
        if let (Some(b), Some(id)) = (op.bulk_id, &new_id) {
            created.insert(b.to_string(), id.clone());
        }
        Ok((json!({"method": op.method, "status": "200"}), new_id))
    });
    if let Ok(response) = result {
        let ops = body["Operations"].as_array().map_or(0, Vec::len);
        let answered = response["Operations"].as_array().map_or(0, Vec::len);
        let stopped = body.get("failOnErrors").is_some_and(|v| !v.is_null());
        assert!(answered <= ops && calls <= ops);
        if !stopped {
            assert_eq!(answered, ops, "every operation gets one result");
        }
    }
});

//! PATCH: any JSON body is parsed into operations or refused, and the operations are
//! applied to a user and to a group, or refused, never a panic; a refusal leaves the
//! document as it was (the patcher works on a copy).
#![no_main]

use libfuzzer_sys::fuzz_target;
use scim_bridge::scim::patch::{parse_request, Patcher};
use scim_bridge_fuzz::{registry, resource_type, sample_group, sample_user, stored};
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(body) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let Ok(ops) = parse_request(body) else {
        return;
    };
    let reg = registry();
    for (rt, doc, external) in [
        (resource_type("User"), stored(sample_user()), &[][..]),
        (
            resource_type("Group"),
            stored(sample_group()),
            &["members"][..],
        ),
    ] {
        let before = doc.clone();
        let patcher = Patcher { reg, rt, external };
        let _ = patcher.apply(&doc, &ops);
        assert_eq!(doc, before);
    }
});

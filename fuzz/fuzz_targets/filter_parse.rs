//! The filter parser: any text parses or is refused, never a panic; what parses prints
//! back to text that parses to the same filter; a parsed filter is checked and evaluated
//! against a user without a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scim_bridge::scim::filter::{Evaluator, Filter, MAX_FILTER_LEN};
use scim_bridge_fuzz::{registry, resource_type, sample_user};

fuzz_target!(|text: &str| {
    let Ok(filter) = Filter::parse(text) else {
        return;
    };
    let printed = filter.to_string();
    // Escaping may lengthen it past the limit, which the parser then refuses for length.
    if printed.len() > MAX_FILTER_LEN {
        return;
    }
    let again = Filter::parse(&printed)
        .unwrap_or_else(|e| panic!("{text:?} printed as {printed:?}, which does not parse: {e}"));
    assert_eq!(again, filter, "{text:?} printed as {printed:?}");
    let (reg, rt) = (registry(), resource_type("User"));
    if filter.check(reg, rt).is_ok() {
        let _ = Evaluator { reg, rt }.matches(&filter, &sample_user());
    }
});

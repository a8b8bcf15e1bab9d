//! Fuzz target: request bodies through the depth check, the JSON-RPC envelope reader and the
//! typing of params. Never panics; valid JSON is never called unparsable; an error never
//! carries an id the input did not hold, and a request keeps the id it held. The one-pass
//! reader (`Request::read_in_one_pass`) reads nothing the two passes would not read the same.
#![no_main]

use gatehouse::jsonrpc::{Id, Message, Unreadable};
use gatehouse::mcp::model::Request;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    // .ci/run's negative control: with this set, the target fails on its first input, and the
    // fuzz step must report it.
    if std::env::var_os("GATEHOUSE_FUZZ_CONTROL").is_some() {
        panic!("negative control: GATEHOUSE_FUZZ_CONTROL is set");
    }
    if gatehouse::transport::too_deep(data, 64) {
        return;
    }
    // The same text as a `Value`, where it is one (a number no f64 holds is not).
    let value = serde_json::from_slice::<Value>(data).ok();
    let held_id = || value.as_ref().and_then(|v| v.get("id")).cloned();
    let one_pass = std::str::from_utf8(data)
        .ok()
        .and_then(Request::read_in_one_pass);
    match Message::parse(data) {
        Err(Unreadable::NotJson) => assert!(value.is_none()),
        Err(Unreadable::Invalid(invalid)) => {
            if let (Some(id), Some(_)) = (invalid.id, &value) {
                assert_eq!(Some(id), held_id().as_ref().and_then(Id::from_value));
            }
        }
        Ok(Message::Request(r)) => {
            if value.is_some() {
                assert_eq!(Some(serde_json::to_value(&r.id).unwrap()), held_id());
            }
            let two = Request::new(r);
            if let Some(one) = one_pass {
                assert_eq!(format!("{one:?}"), format!("{two:?}"));
            }
            return;
        }
        Ok(_) => {}
    }
    assert!(one_pass.is_none(), "read in one pass, not a request in two");
});

//! Fuzz target: request bodies through the depth check, the JSON parser and the JSON-RPC
//! classifier. Never panics; an error never carries an id the input did not hold.
#![no_main]

use gatehouse::jsonrpc::{Id, Message};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if gatehouse::transport::too_deep(data, 64) {
        return;
    }
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let raw_id = value.get("id").cloned();
    match Message::classify(value) {
        Ok(Message::Request(r)) => {
            assert_eq!(Some(serde_json::to_value(&r.id).unwrap()), raw_id);
        }
        Ok(_) => {}
        Err(invalid) => {
            if let Some(id) = invalid.id {
                assert_eq!(Some(&id), raw_id.as_ref().and_then(Id::from_value).as_ref());
            }
        }
    }
});

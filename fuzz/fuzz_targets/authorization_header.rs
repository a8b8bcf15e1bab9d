//! Fuzz target: raw Authorization header values (one or two). A token is returned only when it
//! is an RFC 6750 b64token; two headers are always refused.
#![no_main]

use gatehouse::auth::bearer::{self, BearerError, Credentials};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (a, b) = data.split_at(data.len() / 2);
    if let Ok(Credentials::Bearer(t)) = bearer::parse(&[data]) {
        assert!(bearer::is_b64token(t));
    }
    assert_eq!(bearer::parse(&[a, b]), Err(BearerError::Multiple));
});

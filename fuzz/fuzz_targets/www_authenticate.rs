//! Fuzz target: challenge parameters. The built header is always a valid header value
//! (`www_authenticate` checks it and panics otherwise) of visible ASCII, spaces and tabs.
#![no_main]

use gatehouse::auth::challenge::www_authenticate;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mid = text
        .char_indices()
        .nth(text.chars().count() / 2)
        .map_or(text.len(), |(i, _)| i);
    let (a, b) = text.split_at(mid);
    let v = www_authenticate(&[("error_description", a), ("scope", b)]);
    assert!(
        v.as_bytes()
            .iter()
            .all(|&c| c == b'\t' || (0x20..0x7f).contains(&c))
    );
});

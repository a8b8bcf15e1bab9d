//! Reads the access token from the `Authorization` header (RFC 6750 §2.1, and the DPoP scheme
//! of RFC 9449 §7.1), and nowhere else.

/// What the `Authorization` header(s) of a request hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials<'a> {
    /// No `Authorization: Bearer` or `DPoP` header (absent, or another scheme such as Basic).
    None,
    Bearer(&'a str),
    /// A DPoP-bound token (`Authorization: DPoP <token>`), to be proven by a `DPoP` header.
    Dpop(&'a str),
}

/// The scheme a request's token came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Bearer,
    Dpop,
}

/// Why the header is unusable: answered 400 `invalid_request`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BearerError {
    #[error("more than one Authorization header")]
    Multiple,
    #[error("malformed Bearer credentials")]
    Malformed,
}

/// Reads the credentials from a request's `Authorization` header(s).
pub fn from_headers(
    headers: &actix_web::http::header::HeaderMap,
) -> Result<Credentials<'_>, BearerError> {
    let mut values = headers.get_all(actix_web::http::header::AUTHORIZATION);
    match (values.next(), values.next()) {
        (None, _) => Ok(Credentials::None),
        (Some(one), None) => parse_one(one.as_bytes()),
        (Some(_), Some(_)) => Err(BearerError::Multiple),
    }
}

/// The token bytes of a request's one `Authorization: Bearer` header, their syntax not yet
/// checked: the key for the verified-token cache, which holds only tokens that passed
/// `from_headers` and a full verification. Bytes found there therefore need no second look
/// (the scan is the cost of a kilobyte per request); bytes not found go through
/// `from_headers`, which extracts them with the same `split_bearer`.
pub fn presented(headers: &actix_web::http::header::HeaderMap) -> Option<(Scheme, &[u8])> {
    let mut values = headers.get_all(actix_web::http::header::AUTHORIZATION);
    match (values.next(), values.next()) {
        (Some(one), None) => split_scheme(one.as_bytes()),
        _ => None,
    }
}

/// Parses all `Authorization` header values of a request. The scheme is case-insensitive; the
/// token must be an RFC 6750 `b64token` (`[A-Za-z0-9-._~+/]+=*`).
pub fn parse<'a>(values: &[&'a [u8]]) -> Result<Credentials<'a>, BearerError> {
    match values {
        [] => Ok(Credentials::None),
        [one] => parse_one(one),
        _ => Err(BearerError::Multiple),
    }
}

fn parse_one(raw: &[u8]) -> Result<Credentials<'_>, BearerError> {
    if std::str::from_utf8(raw).is_err() {
        return Err(BearerError::Malformed);
    }
    let Some((scheme, token)) = split_scheme(raw) else {
        // Another authentication scheme: no bearer credentials at all.
        return Ok(Credentials::None);
    };
    match (std::str::from_utf8(token), scheme) {
        (Ok(token), Scheme::Bearer) if is_b64token(token) => Ok(Credentials::Bearer(token)),
        (Ok(token), Scheme::Dpop) if is_b64token(token) => Ok(Credentials::Dpop(token)),
        _ => Err(BearerError::Malformed),
    }
}

/// What follows the `Bearer` or `DPoP` scheme (any case) of one header value, outer spaces and
/// tabs trimmed, with its scheme; `None` for another scheme. Syntax unchecked.
fn split_scheme(raw: &[u8]) -> Option<(Scheme, &[u8])> {
    let blank = |b: &u8| *b == b' ' || *b == b'\t';
    let start = raw.iter().position(|b| !blank(b)).unwrap_or(raw.len());
    let end = raw.iter().rposition(|b| !blank(b)).map_or(start, |i| i + 1);
    let value = &raw[start..end];
    let (scheme, rest) = match value.iter().position(|&b| b == b' ') {
        Some(i) => value.split_at(i),
        None => (value, &[][..]),
    };
    let scheme = if scheme.eq_ignore_ascii_case(b"bearer") {
        Scheme::Bearer
    } else if scheme.eq_ignore_ascii_case(b"dpop") {
        Scheme::Dpop
    } else {
        return None;
    };
    let skip = rest.iter().position(|&b| b != b' ').unwrap_or(rest.len());
    Some((scheme, &rest[skip..]))
}

/// RFC 6750 `b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
///
/// Read on every request (tokens run to kilobytes), so read 32 bytes at a time without a
/// branch per byte: the compiler turns each chunk's comparisons into vector instructions.
pub fn is_b64token(token: &str) -> bool {
    let body = token.trim_end_matches('=');
    !body.is_empty()
        && body
            .as_bytes()
            .chunks(32)
            .all(|chunk| chunk.iter().fold(true, |ok, &b| ok & is_b64token_byte(b)))
}

/// One byte of a `b64token` (before its `=` padding): compared, not looked up, so that a
/// chunk of them is checked in a few vector instructions.
const fn is_b64token_byte(b: u8) -> bool {
    // ASCII letters fold onto a..z with the 0x20 bit; nothing else lands there.
    ((b | 0x20).wrapping_sub(b'a') < 26)
        | (b.wrapping_sub(b'0') < 10)
        | (b == b'-')
        | (b == b'.')
        | (b == b'_')
        | (b == b'~')
        | (b == b'+')
        | (b == b'/')
}

/// A byte class for whole-token scans (a table lookup per byte: tokens run to kilobytes and
/// are scanned on every request): ASCII letters and digits, and `extra`.
pub const fn alphanumeric_and(extra: &[u8]) -> [bool; 256] {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = (b as u8).is_ascii_alphanumeric();
        b += 1;
    }
    let mut i = 0;
    while i < extra.len() {
        table[extra[i] as usize] = true;
        i += 1;
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_byte_class_is_exactly_rfc_6750s() {
        const TABLE: [bool; 256] = alphanumeric_and(b"-._~+/");
        for b in 0..=255u8 {
            assert_eq!(is_b64token_byte(b), TABLE[b as usize], "byte {b:#04x}");
        }
        // A bad byte anywhere in a long token, in any chunk, is found.
        let long = "a".repeat(1000);
        assert!(is_b64token(&long));
        for at in [0, 31, 32, 500, 999] {
            let mut t = long.clone().into_bytes();
            t[at] = b'"';
            assert!(!is_b64token(std::str::from_utf8(&t).unwrap()), "{at}");
        }
    }

    #[test]
    fn parses_bearer_case_insensitively() {
        for h in [
            "Bearer abc.def.ghi",
            "bearer abc.def.ghi",
            "BEARER   abc.def.ghi",
        ] {
            assert_eq!(
                parse(&[h.as_bytes()]),
                Ok(Credentials::Bearer("abc.def.ghi"))
            );
        }
    }

    #[test]
    fn the_dpop_scheme_carries_a_token_too() {
        assert_eq!(parse(&[b"DPoP abc.def"]), Ok(Credentials::Dpop("abc.def")));
        assert_eq!(parse(&[b"dpop  abc"]), Ok(Credentials::Dpop("abc")));
        assert_eq!(parse(&[b"DPoP a b"]), Err(BearerError::Malformed));
    }

    #[test]
    fn other_schemes_are_not_credentials() {
        assert_eq!(parse(&[b"Basic dXNlcjpwYXNz"]), Ok(Credentials::None));
        assert_eq!(parse(&[]), Ok(Credentials::None));
    }

    #[test]
    fn malformed_and_duplicate_headers_are_errors() {
        for h in [
            "Bearer",
            "Bearer ",
            "Bearer a b",
            "Bearer a\"b",
            "Bearer ===",
            "Bearer a,b",
        ] {
            assert_eq!(parse(&[h.as_bytes()]), Err(BearerError::Malformed), "{h:?}");
        }
        assert_eq!(parse(&[b"Bearer \xff"]), Err(BearerError::Malformed));
        assert_eq!(
            parse(&[b"Bearer a", b"Bearer b"]),
            Err(BearerError::Multiple)
        );
    }

    proptest! {
        #[test]
        fn accepted_tokens_are_always_b64tokens(raw in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Ok(Credentials::Bearer(t)) = parse(&[&raw]) {
                prop_assert!(is_b64token(t));
                prop_assert!(!t.contains(' '));
            }
        }

        /// The verified-token cache is keyed by `presented`'s bytes: whatever `parse` accepts,
        /// `split_bearer` names the same bytes, so a cache hit stands for a parsed token.
        #[test]
        fn the_unchecked_bytes_are_the_parsed_token(raw in proptest::collection::vec(
            prop_oneof![Just(b' '), Just(b'\t'), Just(b'='), Just(b'a'), Just(b'B'), Just(0xffu8), any::<u8>()], 0..24),
            prefix in prop_oneof![Just(&b"Bearer "[..]), Just(&b" bEaReR  "[..]), Just(&b"\tbearer"[..]), Just(&b""[..])]) {
            let header = [prefix, &raw[..]].concat();
            if let Ok(Credentials::Bearer(t)) = parse(&[&header]) {
                prop_assert_eq!(split_scheme(&header), Some((Scheme::Bearer, t.as_bytes())));
            }
        }

        #[test]
        fn valid_headers_round_trip(token in "[A-Za-z0-9._~+/-]{1,40}=*", spaces in 1usize..4, upper in any::<bool>()) {
            let scheme = if upper { "BEARER" } else { "Bearer" };
            let header = format!("{scheme}{}{token}", " ".repeat(spaces));
            prop_assert_eq!(parse(&[header.as_bytes()]), Ok(Credentials::Bearer(token.as_str())));
        }
    }
}

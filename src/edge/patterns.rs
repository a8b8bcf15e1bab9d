//! Allowed `Origin` and `Host` values: the patterns CORS and the Host guard match against.

use std::fmt;

use url::Url;

/// An allowed browser origin: exact, any port, or anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OriginPattern {
    Any,
    Exact(String),
    /// `scheme://host` with any port (written `scheme://host:*`).
    AnyPort(String),
}

impl fmt::Display for OriginPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OriginPattern::Any => f.write_str("*"),
            OriginPattern::Exact(o) => f.write_str(o),
            OriginPattern::AnyPort(o) => write!(f, "{o}:*"),
        }
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostPattern::Any => f.write_str("*"),
            HostPattern::Name(n) => f.write_str(n),
            HostPattern::NameAndPort(n, p) => write!(f, "{n}:{p}"),
        }
    }
}

impl std::str::FromStr for OriginPattern {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        OriginPattern::parse(s.trim())
    }
}

impl std::str::FromStr for HostPattern {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        HostPattern::parse(s.trim())
    }
}

impl OriginPattern {
    pub fn matches(&self, origin: &str) -> bool {
        match self {
            OriginPattern::Any => true,
            OriginPattern::Exact(o) => o.eq_ignore_ascii_case(origin),
            OriginPattern::AnyPort(prefix) => {
                let lower = origin.to_ascii_lowercase();
                match lower.strip_prefix(prefix.as_str()) {
                    Some("") => true,
                    Some(rest) => rest.strip_prefix(':').is_some_and(|p| {
                        !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit())
                    }),
                    None => false,
                }
            }
        }
    }

    pub fn parse(s: &str) -> Result<OriginPattern, String> {
        if s == "*" {
            return Ok(OriginPattern::Any);
        }
        let lower = s.trim_end_matches('/').to_ascii_lowercase();
        if let Some(base) = lower.strip_suffix(":*") {
            check_origin(base)?;
            return Ok(OriginPattern::AnyPort(base.to_string()));
        }
        check_origin(&lower)?;
        Ok(OriginPattern::Exact(lower))
    }
}

fn check_origin(s: &str) -> Result<(), String> {
    let url = Url::parse(s).map_err(|e| format!("{s:?} is not an origin ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(format!("{s:?} is not an http(s) origin"));
    }
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return Err(format!(
            "{s:?} has a path; an origin is scheme://host[:port]"
        ));
    }
    Ok(())
}

/// An allowed `Host` header value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostPattern {
    Any,
    /// A host name matching any port.
    Name(String),
    /// A host name with one port.
    NameAndPort(String, u16),
}

impl HostPattern {
    pub fn parse(s: &str) -> Result<HostPattern, String> {
        if s == "*" {
            return Ok(HostPattern::Any);
        }
        let (name, port) = split_host_port(s).ok_or_else(|| format!("{s:?} is not a host"))?;
        let name = name.to_ascii_lowercase();
        Ok(match port {
            Some(p) => HostPattern::NameAndPort(name, p),
            None => HostPattern::Name(name),
        })
    }

    /// Does a raw `Host` header value match?
    pub fn matches(&self, host: &str) -> bool {
        split_host_port(host).is_some_and(|(name, port)| self.matches_parts(name, port))
    }

    /// Does a `Host` value already split by [`split_host_port`] match? (The request's host is
    /// split once, whatever the number of patterns.)
    pub fn matches_parts(&self, name: &str, port: Option<u16>) -> bool {
        match self {
            HostPattern::Any => true,
            HostPattern::Name(n) => n.eq_ignore_ascii_case(name),
            HostPattern::NameAndPort(n, p) => n.eq_ignore_ascii_case(name) && port == Some(*p),
        }
    }
}

/// The bytes a host name (or a bracketed IPv6 literal) may hold: ASCII letters and digits and
/// `-._[]:`, looked up rather than compared one by one (every request's Host passes here).
const HOST_BYTES: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] =
            c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'[' | b']' | b':');
        b += 1;
    }
    table
};

/// Splits `host[:port]` (with `[v6]` literals); the name keeps its case (names compare
/// without it). `None` if malformed, and for anything but ASCII (only ASCII whitespace is
/// trimmed: a Host header passes here as it came, checked only as UTF-8).
pub fn split_host_port(s: &str) -> Option<(&str, Option<u16>)> {
    let s = s.trim_ascii();
    if s.is_empty() || s.len() > 255 {
        return None;
    }
    // Read byte by byte (every request's Host passes here; `:`, `[` and `]` are ASCII, so
    // every index below is a char boundary).
    let bytes = s.as_bytes();
    let (name, port) = if bytes[0] == b'[' {
        let end = bytes.iter().position(|&b| b == b']')?;
        let port = match &bytes[end + 1..] {
            [] => None,
            [b':', ..] => Some(&bytes[end + 2..]),
            _ => return None,
        };
        (&bytes[..=end], port)
    } else {
        match bytes.iter().rposition(|&b| b == b':') {
            Some(i) => (&bytes[..i], Some(&bytes[i + 1..])),
            None => (bytes, None),
        }
    };
    if name.is_empty() || !name.iter().all(|&b| HOST_BYTES[usize::from(b)]) {
        return None;
    }
    let port = match port {
        None => None,
        Some(p) if !p.is_empty() && p.len() <= 5 => {
            let mut n: u32 = 0;
            for &b in p {
                if !b.is_ascii_digit() {
                    return None;
                }
                n = n * 10 + u32::from(b - b'0');
            }
            Some(u16::try_from(n).ok()?)
        }
        Some(_) => return None,
    };
    // Only ASCII passed the table: the name is the same text, cut at a char boundary.
    Some((&s[..name.len()], port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_patterns_match_ports_exactly() {
        let p = OriginPattern::parse("http://localhost:*").unwrap();
        assert!(p.matches("http://localhost:6274"));
        assert!(p.matches("http://localhost"));
        assert!(!p.matches("http://localhost.evil.com"));
        assert!(!p.matches("http://localhost:80x"));
        let e = OriginPattern::parse("https://app.example.com").unwrap();
        assert!(e.matches("https://APP.example.com"));
        assert!(!e.matches("https://app.example.com:444"));
    }

    #[test]
    fn host_patterns() {
        let h = HostPattern::parse("localhost").unwrap();
        assert!(h.matches("localhost:8080"));
        assert!(h.matches("LOCALHOST"));
        assert!(!h.matches("localhost.evil:80"));
        let v6 = HostPattern::parse("[::1]").unwrap();
        assert!(v6.matches("[::1]:9"));
        assert!(
            !HostPattern::parse("a.example:443")
                .unwrap()
                .matches("a.example:444")
        );
        // The request's host is split once and keeps its case; the patterns ignore case.
        assert_eq!(
            split_host_port("API.Example:8443"),
            Some(("API.Example", Some(8443)))
        );
        let named = HostPattern::parse("Api.EXAMPLE").unwrap();
        assert_eq!(named, HostPattern::Name("api.example".into()));
        assert!(named.matches_parts("API.Example", Some(8443)));
        assert!(!named.matches_parts("api.example.evil", None));
        assert!(split_host_port("a b").is_none());
        assert!(split_host_port("a:99999").is_none());
    }

    #[test]
    fn hosts_split_exactly_at_their_last_colon_or_bracket() {
        type Split<'a> = Option<(&'a str, Option<u16>)>;
        let cases: [(&str, Split); 17] = [
            ("localhost", Some(("localhost", None))),
            (" 127.0.0.1:8080 ", Some(("127.0.0.1", Some(8080)))),
            ("a:00080", Some(("a", Some(80)))),
            ("a:65535", Some(("a", Some(65535)))),
            ("a:65536", None),
            ("a:", None),
            (":80", None),
            ("a:8x", None),
            ("a:+80", None),
            ("[::1]", Some(("[::1]", None))),
            ("[::1]:9", Some(("[::1]", Some(9)))),
            ("[::1]x", None),
            ("[::1", None),
            ("h\u{e9}te:80", None),
            ("localhost\u{a0}", None),
            ("\u{3000}localhost", None),
            ("localhost:8\u{663}", None),
        ];
        for (host, expected) in cases {
            assert_eq!(split_host_port(host), expected, "{host:?}");
        }
    }
}

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
/// without it). `None` if malformed.
pub fn split_host_port(s: &str) -> Option<(&str, Option<u16>)> {
    let s = s.trim();
    if s.is_empty() || s.len() > 255 {
        return None;
    }
    let (name, port) = if let Some(rest) = s.strip_prefix('[') {
        let end = rest.find(']')?;
        let name = &s[..end + 2];
        let after = &rest[end + 1..];
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':')?),
        };
        (name, port)
    } else {
        match s.rsplit_once(':') {
            Some((n, p)) => (n, Some(p)),
            None => (s, None),
        }
    };
    if name.is_empty() || !name.bytes().all(|b| HOST_BYTES[usize::from(b)]) {
        return None;
    }
    let port = match port {
        None => None,
        Some(p) if !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()) => {
            Some(p.parse::<u16>().ok()?)
        }
        Some(_) => return None,
    };
    Some((name, port))
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
}

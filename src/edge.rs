//! Edge protection and operability: CORS, Host/Origin checks (DNS rebinding), header size
//! limit, client IP behind PaaS proxies, what the auth gate admitted (`Admitted`), request ids, access
//! logs, and security headers.

pub mod access;
pub mod cors;
pub mod patterns;

use std::cell::Cell;
use std::net::IpAddr;

use actix_cors::Cors;
use actix_web::dev::ServiceRequest;
use actix_web::http::header::{self, HeaderMap, HeaderName};
use actix_web::{HttpMessage, HttpRequest, web};

use crate::auth::Caller;
use crate::budget::RateKey;
use crate::config::{CorsSettings, TrustedProxy};
use crate::failure::Kind;
use crate::metrics::RpcLabels;
use crate::refusal::Refusal;
use crate::request_id::RequestId;
use patterns::{HostPattern, OriginPattern, split_host_port};

/// Header names read or written on every request, resolved at compile time: a lookup by
/// `&str` parses and classifies the name on each call.
pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
pub const MCP_PROTOCOL_VERSION: HeaderName = HeaderName::from_static("mcp-protocol-version");
const FLY_CLIENT_IP: HeaderName = HeaderName::from_static("fly-client-ip");
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// Builds the CORS layer (`cors::OriginCors`: actix-cors for requests with an `Origin`).
/// Credentials are never allowed (bearer tokens need none), so no wildcard or reflected origin
/// is ever combined with credentials.
pub fn cors(settings: &CorsSettings) -> cors::OriginCors {
    let origins = settings.allowed_origins.clone();
    let any = origins.contains(&OriginPattern::Any);
    let mut cors = Cors::default();
    cors = if any {
        cors.allow_any_origin().send_wildcard()
    } else {
        cors.allowed_origin_fn(move |origin, _| {
            origin
                .to_str()
                .is_ok_and(|o| origins.iter().any(|p| p.matches(o)))
        })
    };
    let cors = cors
        .allowed_methods(["GET", "POST", "DELETE", "OPTIONS"])
        // Any request header, so `Mcp-Param-*` works (a fixed list cannot express a prefix).
        .allow_any_header()
        .expose_headers([
            header::WWW_AUTHENTICATE,
            HeaderName::from_static("mcp-session-id"),
            MCP_PROTOCOL_VERSION,
            header::RETRY_AFTER,
            X_REQUEST_ID,
            crate::auth::challenge::DPOP_NONCE,
        ])
        .max_age(settings.max_age_secs);
    cors::OriginCors(cors)
}

/// What the guard middleware checks.
pub struct GuardSettings {
    pub allowed_hosts: Vec<HostPattern>,
    pub allowed_origins: Vec<OriginPattern>,
    pub max_header_bytes: usize,
    /// Whose address header names the client (the request span's `client.address`).
    pub trusted_proxy: TrustedProxy,
}

fn forbidden(message: &str) -> Refusal {
    Refusal::transport(Kind::Forbidden, message)
}

/// Rejects oversized heads (431) and unknown `Host`s (403; the absolute-form target's authority
/// counts as the host). Health probes skip the Host check: platforms probe by IP. Run by
/// the request log layer (`access::RequestLog`) before anything else sees the request.
fn guard(req: &ServiceRequest) -> Option<Refusal> {
    let s = req
        .app_data::<web::Data<GuardSettings>>()
        .expect("GuardSettings is registered");
    head_refusal(req.headers(), req.uri(), req.path(), s)
}

/// [`guard`]'s decision from a request head alone (the `Expect: 100-continue` check reads a
/// head not yet wrapped by actix-web).
pub fn head_refusal(
    headers: &HeaderMap,
    uri: &actix_web::http::Uri,
    path: &str,
    s: &GuardSettings,
) -> Option<Refusal> {
    let head_bytes: usize = headers
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum();
    if head_bytes > s.max_header_bytes {
        Some(Refusal::transport(
            Kind::HeadersTooLarge,
            "Request header fields too large",
        ))
    } else if matches!(path, "/health" | "/ready") {
        None
    } else if !host_allowed(headers, uri, &s.allowed_hosts) {
        Some(forbidden("Forbidden: Host header not allowed"))
    } else {
        None
    }
}

/// The Origin check (403). The auth gate runs it first, on the MCP endpoint's route itself: it
/// runs for every spelling of the path the router accepts (`/mcp`, `/%6Dcp`, ...), never on a
/// raw-path comparison of its own.
pub fn origin_refusal(req: &ServiceRequest) -> Option<Refusal> {
    let s = req
        .app_data::<web::Data<GuardSettings>>()
        .expect("GuardSettings is registered");
    origin_refusal_of(req.headers(), s)
}

/// [`origin_refusal`] from a request head alone (the `Expect: 100-continue` check).
pub fn origin_refusal_of(headers: &HeaderMap, s: &GuardSettings) -> Option<Refusal> {
    (!origin_allowed(headers, &s.allowed_origins))
        .then(|| forbidden("Forbidden: Origin not allowed"))
}

/// The authority a request names: the absolute-form target's (RFC 9112 section 3.2.2: the
/// server must use it and ignore `Host`), else the one `Host` header.
fn host_allowed(headers: &HeaderMap, uri: &actix_web::http::Uri, allowed: &[HostPattern]) -> bool {
    let mut hosts = headers.get_all(header::HOST);
    let (first, second) = (hosts.next(), hosts.next());
    if second.is_some() {
        return false;
    }
    let host = match (uri.authority(), first) {
        (Some(authority), _) => {
            // userinfo (`user@host`) has no place in a request target.
            if authority.as_str().contains('@') {
                return false;
            }
            Some(authority.as_str())
        }
        // Checked as UTF-8 only (faster than `to_str` for short values): `split_host_port`
        // refuses every byte that is not ASCII.
        (None, Some(h)) => std::str::from_utf8(h.as_bytes()).ok(),
        (None, None) => None,
    };
    host.and_then(split_host_port)
        .is_some_and(|(name, port)| allowed.iter().any(|p| p.matches_parts(name, port)))
}

fn origin_allowed(headers: &HeaderMap, allowed: &[OriginPattern]) -> bool {
    let mut origins = headers.get_all(header::ORIGIN);
    match (origins.next(), origins.next()) {
        (None, _) => true,
        (Some(o), None) => o
            .to_str()
            .ok()
            .filter(|o| *o != "null")
            .is_some_and(|o| allowed.iter().any(|p| p.matches(o))),
        _ => false,
    }
}

/// The client's address: the TCP peer, or what the trusted proxy reports. A client-supplied
/// `X-Forwarded-For` entry is never used: Heroku's router appends the real address last.
pub fn client_ip(req: &ServiceRequest, mode: TrustedProxy) -> Option<IpAddr> {
    client_ip_from(req.headers(), req.peer_addr(), mode)
}

/// [`client_ip`] for a request head not yet wrapped by actix-web.
pub fn client_ip_from(
    headers: &HeaderMap,
    peer: Option<std::net::SocketAddr>,
    mode: TrustedProxy,
) -> Option<IpAddr> {
    let peer = peer.map(|a| a.ip());
    let from_header = match mode {
        TrustedProxy::None => None,
        TrustedProxy::Fly => headers
            .get(FLY_CLIENT_IP)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<IpAddr>().ok()),
        TrustedProxy::Heroku => headers
            .get_all(X_FORWARDED_FOR)
            .last()
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .and_then(|v| v.trim().parse::<IpAddr>().ok()),
    };
    from_header.or(peer)
}

/// Rate-limit bucket of an address: IPv6 clients are bucketed per /64, since one host
/// usually owns the whole prefix.
pub fn bucket(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// What the auth gate admitted to the MCP endpoint, as one value: the caller, the request
/// budget's key (rate limits on) and whether that budget's charge is still owed (a verified
/// subject's, in a shared store: the transport makes it once the body is read, with a tool
/// call's tool-call charge in the same round trip). The transport reads it once.
#[derive(Debug)]
pub struct Admitted {
    pub caller: Caller,
    pub key: Option<RateKey>,
    pub owed: bool,
}

/// The request's note in its extensions, put there by the request log: its id (the caller's
/// `X-Request-Id` if it is short visible ASCII, else a new one), what the auth gate admitted
/// and, once the transport has read an MCP message, the request counter's era and
/// method labels (one extension instead of three: each is an allocation and a map insert per
/// request). Clones of the id count a reference.
#[derive(Debug)]
pub struct RequestNote {
    pub id: RequestId,
    /// What the auth gate let through to the MCP endpoint (POST requests only).
    admitted: Option<Admitted>,
    labels: Cell<Option<RpcLabels>>,
}

impl RequestNote {
    pub fn new(id: RequestId) -> RequestNote {
        RequestNote {
            id,
            admitted: None,
            labels: Cell::new(None),
        }
    }

    /// The request counter's labels, when the transport gave them.
    pub fn labels(&self) -> Option<RpcLabels> {
        self.labels.get()
    }
}

impl RequestNote {
    /// Who the auth gate admitted, if anyone (for the access line).
    pub fn caller(&self) -> Option<&Caller> {
        self.admitted.as_ref().map(|a| &a.caller)
    }
}

/// Records on the request's note what the auth gate admitted (the note is made here when the
/// request log is not installed).
pub fn admit(req: &ServiceRequest, admitted: Admitted) {
    let mut extensions = req.extensions_mut();
    match extensions.get_mut::<RequestNote>() {
        Some(note) => note.admitted = Some(admitted),
        None => {
            let mut note = RequestNote::new(RequestId::from_static("-"));
            note.admitted = Some(admitted);
            extensions.insert(note);
        }
    }
}

/// The request's id and what the auth gate admitted, handed to the transport once: the caller
/// shared (the note keeps it for the access line), the budget's key moved out.
pub fn hand_over(req: &HttpRequest) -> (RequestId, Option<Admitted>) {
    let mut extensions = req.extensions_mut();
    let Some(note) = extensions.get_mut::<RequestNote>() else {
        return (RequestId::from_static("-"), None);
    };
    let admitted = note.admitted.as_mut().map(|a| Admitted {
        caller: a.caller.clone(),
        key: a.key.take(),
        owed: a.owed,
    });
    (note.id.clone(), admitted)
}

/// Gives an MCP request its era and method labels for the request counter.
pub fn label_request(req: &HttpRequest, labels: RpcLabels) {
    if let Some(note) = req.extensions().get::<RequestNote>() {
        note.labels.set(Some(labels));
    }
}

/// The status as a static label (every status actix can send is below 600).
pub(crate) fn status_label(status: u16) -> &'static str {
    const LABELS: [&str; 6] = ["1xx", "2xx", "3xx", "4xx", "5xx", "other"];
    match status {
        200 => "200",
        202 => "202",
        400 => "400",
        401 => "401",
        403 => "403",
        404 => "404",
        405 => "405",
        406 => "406",
        408 => "408",
        413 => "413",
        415 => "415",
        429 => "429",
        431 => "431",
        500 => "500",
        503 => "503",
        s => LABELS[(s / 100).saturating_sub(1).min(5) as usize],
    }
}

/// Marks a 500 body as already generic.
struct GenericError;

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn req(headers: &[(&str, &str)]) -> ServiceRequest {
        let mut r = TestRequest::default().peer_addr("10.0.0.9:1234".parse().unwrap());
        for (k, v) in headers {
            r = r.append_header((*k, *v));
        }
        r.to_srv_request()
    }

    #[test]
    fn spoofed_forwarded_for_never_picks_the_bucket() {
        let r = req(&[("x-forwarded-for", "1.1.1.1, 203.0.113.7")]);
        assert_eq!(
            client_ip(&r, TrustedProxy::None),
            Some("10.0.0.9".parse().unwrap())
        );
        assert_eq!(
            client_ip(&r, TrustedProxy::Heroku),
            Some("203.0.113.7".parse().unwrap())
        );
        assert_eq!(
            client_ip(&r, TrustedProxy::Fly),
            Some("10.0.0.9".parse().unwrap())
        );
        let f = req(&[
            ("fly-client-ip", "198.51.100.4"),
            ("x-forwarded-for", "1.1.1.1"),
        ]);
        assert_eq!(
            client_ip(&f, TrustedProxy::Fly),
            Some("198.51.100.4".parse().unwrap())
        );
        let junk = req(&[("x-forwarded-for", "1.1.1.1, junk")]);
        assert_eq!(
            client_ip(&junk, TrustedProxy::Heroku),
            Some("10.0.0.9".parse().unwrap())
        );
    }

    #[test]
    fn ipv6_is_bucketed_per_64() {
        assert_eq!(
            bucket("2001:db8:1:2:3:4:5:6".parse().unwrap()),
            "2001:db8:1:2::".parse::<IpAddr>().unwrap()
        );
    }
}

//! The protected resource metadata document (RFC 9728): built once from configuration (or taken
//! verbatim from PROTECTED_RESOURCE_METADATA) and served at the root and path-suffixed
//! well-known URLs, open to every origin.

use actix_web::http::header::{
    ACCESS_CONTROL_ALLOW_ORIGIN, CACHE_CONTROL, CONTENT_TYPE, HeaderValue,
};
use actix_web::{HttpResponse, web};
use serde_json::{Value, json};

/// The served document, serialized once.
pub struct Metadata {
    pub body: String,
}

/// `https://host/base/mcp` -> `https://host/.well-known/oauth-protected-resource/base/mcp`
/// (RFC 9728 §3.1: the well-known segment goes between the host and the path).
pub fn metadata_url(resource: &url::Url) -> String {
    let origin = resource.origin().ascii_serialization();
    let path = resource.path().trim_end_matches('/');
    format!("{origin}/.well-known/oauth-protected-resource{path}")
}

pub struct DocumentInput<'a> {
    pub resource: &'a str,
    pub authorization_servers: Vec<String>,
    pub scopes: Vec<String>,
    pub resource_name: &'a str,
    pub resource_documentation: Option<&'a str>,
    /// DPoP (RFC 9728 section 2): the proof algorithms accepted, and whether every token must
    /// be DPoP-bound; `None` when DPoP is off.
    pub dpop: Option<(Vec<String>, bool)>,
}

pub fn build_document(i: DocumentInput<'_>) -> Value {
    let mut doc = json!({
        "resource": i.resource,
        "authorization_servers": i.authorization_servers,
        "scopes_supported": i.scopes,
        "bearer_methods_supported": ["header"],
    });
    if !i.resource_name.is_empty() {
        doc["resource_name"] = json!(i.resource_name);
    }
    if let Some(d) = i.resource_documentation {
        doc["resource_documentation"] = json!(d);
    }
    if let Some((algs, required)) = i.dpop {
        doc["dpop_signing_alg_values_supported"] = json!(algs);
        doc["dpop_bound_access_tokens_required"] = json!(required);
    }
    doc
}

/// GET (and HEAD) handler for both well-known paths.
pub async fn serve(meta: web::Data<Metadata>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, HeaderValue::from_static("application/json")))
        .insert_header((ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*")))
        .insert_header((
            CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=300"),
        ))
        .body(meta.body.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_url_inserts_the_well_known_segment() {
        let u = url::Url::parse("https://a.example/public/mcp").unwrap();
        assert_eq!(
            metadata_url(&u),
            "https://a.example/.well-known/oauth-protected-resource/public/mcp"
        );
        let root = url::Url::parse("https://a.example/").unwrap();
        assert_eq!(
            metadata_url(&root),
            "https://a.example/.well-known/oauth-protected-resource"
        );
    }
}

//! The settings as a deployer meets them: defaults, variables, and the errors bad values give.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use jsonwebtoken::Algorithm;

use super::*;

fn config_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config")
}

fn load(vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
    let env: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Settings::load(&env, &config_dir())
}

#[test]
fn defaults_load_as_development_with_dev_issuer() {
    let s = load(&[]).unwrap();
    assert_eq!(s.profile, Profile::Development);
    assert_eq!(s.server.port, 8080);
    assert_eq!(s.server.host, "127.0.0.1");
    assert_eq!(s.auth.issuer, IssuerSetting::Development);
    assert_eq!(s.auth.algorithms, vec![Algorithm::RS256, Algorithm::ES256]);
}

#[test]
fn scalekit_env_sets_issuer_keys_and_audience() {
    let s = load(&[
        ("SK_ENV_URL", "https://acme.scalekit.dev/"),
        ("SK_CLIENT_SECRET", "shh"),
        ("EXPECTED_AUDIENCE", "http://localhost:3002/, res_1"),
        ("PORT", "3002"),
    ])
    .unwrap();
    assert_eq!(
        s.auth.issuer,
        IssuerSetting::Remote {
            issuer: "https://acme.scalekit.dev".into(),
            jwks_uri: Some(Url::parse("https://acme.scalekit.dev/keys").unwrap())
        }
    );
    assert_eq!(s.auth.audiences, vec!["http://localhost:3002/", "res_1"]);
    assert_eq!(s.server.port, 3002);
    assert!(!format!("{s:?}").contains("shh"));
}

#[test]
fn scalekit_resource_id_names_the_authorization_server() {
    let s = load(&[
        ("SK_ENV_URL", "https://acme.scalekit.dev"),
        ("MCP_SERVER_ID", "res_42"),
    ])
    .unwrap();
    assert_eq!(
        s.auth.authorization_server.as_deref(),
        Some("https://acme.scalekit.dev/resources/res_42")
    );
    let s = load(&[
        ("OAUTH_ISSUER", "https://id.example"),
        ("MCP_SERVER_ID", "res_42"),
    ])
    .unwrap();
    assert_eq!(s.auth.authorization_server, None);
    let s = load(&[
        ("OAUTH_ISSUER", "https://id.example"),
        (
            "GATEHOUSE_AUTH__AUTHORIZATION_SERVER",
            "https://as.example/",
        ),
    ])
    .unwrap();
    assert_eq!(
        s.auth.authorization_server.as_deref(),
        Some("https://as.example")
    );
}

#[test]
fn an_oauth_issuer_is_kept_exactly() {
    let s = load(&[("OAUTH_ISSUER", "https://tenant.auth0.com/")]).unwrap();
    assert_eq!(
        s.auth.issuer,
        IssuerSetting::Remote {
            issuer: "https://tenant.auth0.com/".into(),
            jwks_uri: None
        }
    );
}

#[test]
fn prefixed_variables_override_files() {
    let s = load(&[
        ("GATEHOUSE_MCP__PAGE_SIZE", "7"),
        ("GATEHOUSE_AUTH__ALGORITHMS", "ES256,RS256"),
    ])
    .unwrap();
    assert_eq!(s.mcp.page_size, 7);
    assert_eq!(s.auth.algorithms, vec![Algorithm::ES256, Algorithm::RS256]);
}

#[test]
fn bad_values_name_the_setting() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("PORT", "eighty")], "PORT"),
        (&[("APP_ENV", "staging")], "APP_ENV"),
        (&[("PUBLIC_URL", "not a url")], "PUBLIC_URL"),
        (&[("GATEHOUSE_MCP__PAGE_SIZE", "lots")], "mcp.page_size"),
        (
            &[("GATEHOUSE_AUTH__LEEWAY_SECS", "600")],
            "auth.leeway_secs",
        ),
        (
            &[("GATEHOUSE_AUTH__ALGORITHMS", "HS256")],
            "auth.algorithms",
        ),
        (
            &[("GATEHOUSE_AUTH__SUBJECT_CLAIMS", "sub,client id")],
            "auth.subject_claims",
        ),
        (
            &[("GATEHOUSE_AUTH__SUBJECT_CLAIMS", " ")],
            "auth.subject_claims",
        ),
        (&[("TRUSTED_PROXY", "cloudflare")], "TRUSTED_PROXY"),
        (
            &[(
                "PROTECTED_RESOURCE_METADATA",
                "{\"resource\":\"https://x\"}",
            )],
            "PROTECTED_RESOURCE_METADATA",
        ),
        (&[("APP_ENV", "production")], "PUBLIC_URL"),
        (
            &[
                ("APP_ENV", "production"),
                ("PUBLIC_URL", "https://a.example"),
            ],
            "SK_ENV_URL",
        ),
        (
            &[
                ("APP_ENV", "production"),
                ("PUBLIC_URL", "https://a.example"),
                ("OAUTH_ISSUER", "https://id.example"),
                ("GATEHOUSE_AUTH__ENABLED", "false"),
            ],
            "auth.enabled",
        ),
    ];
    for (vars, needle) in cases {
        let err = load(vars).expect_err(needle).to_string();
        assert!(err.contains(needle), "{err:?} should name {needle}");
    }
}

#[test]
fn production_refuses_wildcards_unless_meant() {
    let prod = [
        ("APP_ENV", "production"),
        ("PUBLIC_URL", "https://a.example"),
        ("OAUTH_ISSUER", "https://id.example"),
    ];
    let with = |extra: &[(&'static str, &'static str)]| {
        let mut v = prod.to_vec();
        v.extend_from_slice(extra);
        load(&v)
    };
    let err = with(&[("ALLOWED_ORIGINS", "*")]).unwrap_err().to_string();
    assert!(err.contains("ALLOWED_ORIGINS"), "{err}");
    assert!(err.contains("security.allow_any_origin"), "{err}");
    let err = with(&[("ALLOWED_HOSTS", "*")]).unwrap_err().to_string();
    assert!(
        err.contains("ALLOWED_HOSTS") && err.contains("allow_any_host"),
        "{err}"
    );
    let s = with(&[
        ("ALLOWED_ORIGINS", "*"),
        ("ALLOWED_HOSTS", "*"),
        ("GATEHOUSE_SECURITY__ALLOW_ANY_ORIGIN", "true"),
        ("GATEHOUSE_SECURITY__ALLOW_ANY_HOST", "true"),
    ])
    .unwrap();
    assert!(s.security.allow_any_origin && s.security.allow_any_host);
    // Development keeps accepting `*` as before.
    assert!(load(&[("ALLOWED_ORIGINS", "*")]).is_ok());
}

#[test]
fn numbers_outside_their_range_name_the_setting() {
    for (var, value, setting) in [
        (
            "GATEHOUSE_AUTH__JWKS_COOLDOWN_SECS",
            "0",
            "auth.jwks_cooldown_secs",
        ),
        ("GATEHOUSE_AUTH__JWKS_TTL_SECS", "9", "auth.jwks_ttl_secs"),
        ("GATEHOUSE_AUTH__LEEWAY_SECS", "61", "auth.leeway_secs"),
        (
            "GATEHOUSE_AUTH__JWKS_FETCH_TIMEOUT_MS",
            "0",
            "auth.jwks_fetch_timeout_ms",
        ),
        (
            "GATEHOUSE_AUTH__JWKS_MAX_STALE_SECS",
            "60",
            "auth.jwks_max_stale_secs",
        ),
        (
            "GATEHOUSE_SERVER__BODY_TIMEOUT_MS",
            "0",
            "server.body_timeout_ms",
        ),
        (
            "GATEHOUSE_SERVER__CLIENT_REQUEST_TIMEOUT_MS",
            "0",
            "server.client_request_timeout_ms",
        ),
        (
            "GATEHOUSE_SERVER__KEEP_ALIVE_SECS",
            "0",
            "server.keep_alive_secs",
        ),
        (
            "GATEHOUSE_SERVER__SHUTDOWN_TIMEOUT_SECS",
            "0",
            "server.shutdown_timeout_secs",
        ),
        (
            "GATEHOUSE_MCP__TOOL_TIMEOUT_SECS",
            "0",
            "mcp.tool_timeout_secs",
        ),
        ("GATEHOUSE_MCP__MAX_BATCH_ITEMS", "0", "mcp.max_batch_items"),
        (
            "GATEHOUSE_MCP__MAX_RESPONSE_BYTES",
            "100",
            "mcp.max_response_bytes",
        ),
        (
            "GATEHOUSE_RATE_LIMIT__REQUESTS_BURST",
            "0",
            "rate_limit.requests_burst",
        ),
        (
            "GATEHOUSE_CORS__MAX_AGE_SECS",
            "999999",
            "cors.max_age_secs",
        ),
    ] {
        let err = load(&[(var, value)]).unwrap_err().to_string();
        assert!(
            err.contains(setting) && err.contains(var),
            "{var}={value}: {err}"
        );
        assert!(err.contains("out of range"), "{err}");
    }
}

#[test]
fn hardening_defaults() {
    let s = load(&[]).unwrap();
    assert_eq!(s.mcp.tool_timeout, Duration::from_secs(25));
    assert_eq!(s.mcp.max_batch_items, 20);
    assert_eq!(s.mcp.max_response_bytes, 4 << 20);
    assert_eq!(s.auth.jwks_max_stale, Duration::from_secs(86_400));
    assert_eq!(s.auth.max_token_lifetime_secs, 0);
    assert!(s.auth.scope_implies.is_empty());
}

#[test]
fn scope_implications_are_closed_transitively() {
    let s = load(&[(
        "GATEHOUSE_AUTH__SCOPE_IMPLIES",
        "admin=ops reports:read; ops = deploy,ops",
    )])
    .unwrap();
    assert_eq!(
        s.auth.scope_implies.get("admin").unwrap(),
        &vec!["deploy".to_string(), "ops".into(), "reports:read".into()]
    );
    assert_eq!(
        s.auth.scope_implies.get("ops").unwrap(),
        &vec!["deploy".to_string()]
    );
    let err = load(&[("GATEHOUSE_AUTH__SCOPE_IMPLIES", "admin")])
        .unwrap_err()
        .to_string();
    assert!(err.contains("auth.scope_implies"), "{err}");
    let err = load(&[("GATEHOUSE_AUTH__SCOPE_IMPLIES", "admin=a\"b")])
        .unwrap_err()
        .to_string();
    assert!(err.contains("not a valid scope token"), "{err}");
}

#[test]
fn secrets_never_appear_in_errors() {
    let err = load(&[("SK_CLIENT_SECRET", "topsecret-value"), ("PORT", "x")]).unwrap_err();
    assert!(!err.to_string().contains("topsecret-value"));
}

#[test]
fn values_refused_while_deserializing_name_the_setting_and_hide_secrets() {
    for (var, value, needle) in [
        ("LOG_FORMAT", "xml", "LOG_FORMAT"),
        (
            "GATEHOUSE_RATE_LIMIT__REDIS_DOWN",
            "maybe",
            "rate_limit.redis_down",
        ),
        ("TRUSTED_PROXY", "cloudflare", "TRUSTED_PROXY"),
        ("MCP_STATE_KEY", "c2hvcnQtc2VjcmV0", "MCP_STATE_KEY"),
        ("REDIS_URL", "http://user:hunter2@cache:6379", "REDIS_URL"),
        (
            "GATEHOUSE_MCP__DEFAULT_LOG_LEVEL",
            "loud",
            "mcp.default_log_level",
        ),
        (
            "ALLOWED_ORIGINS",
            "https://a.example/path",
            "ALLOWED_ORIGINS",
        ),
        (
            "GATEHOUSE_SERVER__KEEP_ALIVE_SECS",
            "0",
            "server.keep_alive_secs",
        ),
    ] {
        let err = load(&[(var, value)]).expect_err(var).to_string();
        assert!(err.contains(needle), "{err:?} should name {needle}");
        for secret in ["c2hvcnQtc2VjcmV0", "hunter2"] {
            assert!(!err.contains(secret), "{err:?} shows a secret");
        }
    }
}

#[test]
fn traces_are_set_by_the_standard_otel_variables() {
    // Off without an endpoint.
    assert!(load(&[]).unwrap().telemetry.export.is_none());
    let s = load(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/"),
        (
            "OTEL_EXPORTER_OTLP_HEADERS",
            "x-honeycomb-team=hcKEYq7%3D123,x-b=2",
        ),
        ("OTEL_SERVICE_NAME", "billing-mcp"),
        ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
        ("OTEL_TRACES_SAMPLER_ARG", "0.25"),
        (
            "OTEL_RESOURCE_ATTRIBUTES",
            "deployment.environment=prod,team=ops",
        ),
        ("OTEL_BSP_SCHEDULE_DELAY", "250"),
    ])
    .unwrap();
    let e = s.telemetry.export.clone().unwrap();
    assert_eq!(e.schedule_delay, std::time::Duration::from_millis(250));
    assert_eq!(e.url.as_str(), "http://collector:4318/v1/traces");
    assert!(!e.json);
    assert_eq!(e.headers[0].0, "x-honeycomb-team");
    assert_eq!(e.headers[0].1.expose(), "hcKEYq7=123");
    assert_eq!(e.sampler, Sampler::ParentBasedRatio(0.25));
    assert_eq!(
        e.resource[0],
        ("deployment.environment".into(), "prod".into())
    );
    assert_eq!(s.telemetry.service_name, "billing-mcp");
    assert!(!format!("{s:?}").contains("hcKEYq7"), "headers never print");
    // The traces endpoint is used as it is, and wins; JSON on request.
    let s = load(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://a:4318"),
        ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://b:4318/custom"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
    ])
    .unwrap();
    let e = s.telemetry.export.unwrap();
    assert_eq!(e.url.as_str(), "http://b:4318/custom");
    assert!(e.json);
    // Disabled wins over an endpoint.
    let s = load(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://a:4318"),
        ("OTEL_SDK_DISABLED", "true"),
    ])
    .unwrap();
    assert!(s.telemetry.export.is_none());
}

#[test]
fn trace_settings_that_cannot_work_name_their_variable() {
    for (vars, setting) in [
        (
            vec![
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://a:4317"),
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ],
            "OTEL_EXPORTER_OTLP_PROTOCOL",
        ),
        (
            vec![
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://a:4318"),
                ("OTEL_TRACES_SAMPLER", "sometimes"),
            ],
            "OTEL_TRACES_SAMPLER",
        ),
        (
            vec![
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://a:4318"),
                ("OTEL_TRACES_SAMPLER", "traceidratio"),
                ("OTEL_TRACES_SAMPLER_ARG", "2"),
            ],
            "OTEL_TRACES_SAMPLER_ARG",
        ),
        (
            vec![("OTEL_EXPORTER_OTLP_ENDPOINT", "collector")],
            "OTEL_EXPORTER_OTLP_ENDPOINT",
        ),
        (
            vec![
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://a:4318"),
                ("OTEL_BSP_SCHEDULE_DELAY", "0"),
            ],
            "OTEL_BSP_SCHEDULE_DELAY",
        ),
    ] {
        let e = load(&vars).unwrap_err();
        assert!(e.setting.contains(setting), "{e}");
    }
    // Production wants https off the machine.
    let e = load(&[
        ("APP_ENV", "production"),
        ("OAUTH_ISSUER", "https://id.example.com"),
        ("PUBLIC_URL", "https://mcp.example.com"),
        (
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "http://collector.example.com:4318",
        ),
    ])
    .unwrap_err();
    assert!(e.problem.contains("https"), "{e}");
}

//! ARCHITECTURE.md's invariants, checked on the source: file sizes, module headers, who may pick
//! JSON-RPC codes or write the envelope, who renders refusals, and which modules may not import
//! which (no upward imports). Each test names the file and line that breaks a rule.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every `.rs` file below `dir`, as (path relative to the crate root, text).
fn sources(dir: &str) -> Vec<(String, String)> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let p = entry.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|e| e == "rs") {
                out.push(p);
            }
        }
    }
    let mut files = Vec::new();
    walk(&root().join(dir), &mut files);
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let rel = p.strip_prefix(root()).unwrap().display().to_string();
            (rel, std::fs::read_to_string(&p).unwrap())
        })
        .collect()
}

/// The code of a line: comments dropped, string literals emptied (so a message that quotes a
/// code or a module path is not mistaken for code).
fn code(line: &str) -> String {
    let mut out = String::new();
    let mut chars = line.chars().peekable();
    let mut in_str = false;
    while let Some(c) = chars.next() {
        match (in_str, c) {
            (false, '/') if chars.peek() == Some(&'/') => break,
            (false, '"') => {
                in_str = true;
                out.push('"');
            }
            (true, '\\') => {
                chars.next();
            }
            (true, '"') => {
                in_str = false;
                out.push('"');
            }
            (true, _) => {}
            (false, c) => out.push(c),
        }
    }
    out
}

/// How many lines the item starting at the first of `lines` (code only: comments and strings
/// blanked) takes: to the closing brace of its first block, or to its `;` when it has none.
fn item_length<S: AsRef<str>>(lines: impl Iterator<Item = S>) -> usize {
    let (mut depth, mut opened, mut n) = (0i32, false, 0);
    for line in lines {
        let line = line.as_ref();
        n += 1;
        for ch in line.chars() {
            match ch {
                '{' => {
                    depth += 1;
                    opened = true;
                }
                '}' => depth -= 1,
                _ => {}
            }
        }
        if (opened && depth <= 0) || (!opened && line.trim_end().ends_with(';')) {
            break;
        }
    }
    n
}

/// Lines of `text` outside what `#[cfg(test)]` marks: a test module (to its closing brace,
/// wherever it sits in the file) or the single item after the attribute (a `pub use`, say).
/// Everything else is read, to the end of the file.
fn non_test_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    let mut out = Vec::new();
    let mut lines = text.lines().enumerate().peekable();
    while let Some((i, line)) = lines.next() {
        if line.trim() != "#[cfg(test)]" {
            out.push((i + 1, line));
            continue;
        }
        // The marked item: a block (a module, a function) is skipped to its closing brace.
        item_length(lines.by_ref().map(|(_, l)| code(l)));
    }
    out.into_iter()
}

#[test]
fn no_source_file_is_over_800_lines() {
    for (path, text) in sources("src") {
        let n = text.lines().count();
        assert!(
            n <= 800,
            "{path} has {n} lines; split it (house rule: 800 at most)"
        );
    }
}

/// Functions stay readable: none is over 100 lines (counted from its `fn` line to its closing
/// brace; test code too).
#[test]
fn no_function_is_over_100_lines() {
    for (path, text) in sources("src") {
        let lines: Vec<String> = text
            .lines()
            .map(|l| code(l).replace("'{'", "").replace("'}'", ""))
            .collect();
        for (start, line) in lines.iter().enumerate() {
            let t = line.trim_start();
            let is_fn = [
                "fn ",
                "pub fn ",
                "async fn ",
                "pub async fn ",
                "pub(crate) fn ",
                "pub(super) fn ",
                "pub(crate) async fn ",
                "pub(super) async fn ",
                "const fn ",
                "pub const fn ",
            ]
            .iter()
            .any(|p| t.starts_with(p));
            if !is_fn {
                continue;
            }
            let n = item_length(lines[start..].iter());
            assert!(
                n <= 100,
                "{path}:{}: a function of {n} lines; split it (at most 100)",
                start + 1
            );
        }
    }
}

#[test]
fn every_file_opens_with_a_line_saying_what_it_owns() {
    for dir in ["src", "tools", "tests", "bench"] {
        for (path, text) in sources(dir) {
            assert!(
                text.starts_with("//!"),
                "{path} does not open with a //! line saying what it owns"
            );
        }
    }
}

/// Where a needle may appear in code, and why.
fn only_in(needle: &str, allowed: &[&str], why: &str) {
    for (path, text) in sources("src") {
        if allowed.contains(&path.as_str()) {
            continue;
        }
        for (n, line) in non_test_lines(&text) {
            assert!(
                !code(line).contains(needle),
                "{path}:{n}: `{needle}` outside {allowed:?} ({why}): {line}"
            );
        }
    }
}

#[test]
fn only_the_error_module_picks_json_rpc_codes() {
    only_in(
        "ErrorObject::new",
        &["src/jsonrpc.rs", "src/failure.rs"],
        "McpError::to_error is the one place that picks JSON-RPC codes",
    );
    for (path, text) in sources("src") {
        if path == "src/jsonrpc.rs" {
            continue;
        }
        for (n, line) in non_test_lines(&text) {
            let c = code(line);
            let literal = c.match_indices("-32").any(|(i, _)| {
                c[i + 3..].len() >= 3 && c[i + 3..i + 6].bytes().all(|b| b.is_ascii_digit())
            });
            assert!(
                !literal,
                "{path}:{n}: a JSON-RPC code literal; use the jsonrpc::ErrorCode constants: {line}"
            );
        }
    }
}

#[test]
fn only_jsonrpc_knows_the_envelope() {
    for (path, text) in sources("src") {
        // The module and its one-pass reader (`src/jsonrpc/onepass.rs`).
        if path == "src/jsonrpc.rs" || path.starts_with("src/jsonrpc/") {
            continue;
        }
        for (n, line) in non_test_lines(&text) {
            // The literal "jsonrpc" as a whole string (a JSON key written by hand); quoted
            // inside a longer text (a curl example) it is not code.
            let by_hand = line
                .match_indices("\"jsonrpc\"")
                .any(|(i, _)| i == 0 || line.as_bytes()[i - 1] != b'\\');
            assert!(
                !by_hand,
                "{path}:{n}: the JSON-RPC envelope is written by the jsonrpc module alone: {line}"
            );
        }
    }
}

#[test]
fn refusals_are_rendered_in_one_place() {
    for status in [
        "HttpResponse::BadRequest",
        "HttpResponse::Unauthorized",
        "HttpResponse::Forbidden",
        "HttpResponse::NotFound",
        "HttpResponse::MethodNotAllowed",
        "HttpResponse::NotAcceptable",
        "HttpResponse::PayloadTooLarge",
        "HttpResponse::UnsupportedMediaType",
        "HttpResponse::TooManyRequests",
        "HttpResponse::InternalServerError",
        "(WWW_AUTHENTICATE",
    ] {
        only_in(
            status,
            &["src/refusal.rs"],
            "refusal::Refusal::into_response renders every refusal",
        );
    }
    // The probes answer with a status document, also when not ready (routes::probe).
    only_in(
        "HttpResponse::build",
        &["src/refusal.rs", "src/routes.rs"],
        "refusals are rendered by refusal.rs, probe answers by routes::probe",
    );
}

/// The paths of a use group's members (`a::b, c::{d, e}` under `prefix`), nested groups
/// included; `self` names the prefix itself.
fn expand(prefix: &str, group: &str) -> Vec<String> {
    let mut members = Vec::new();
    let (mut depth, mut start) = (0, 0);
    let bytes: Vec<char> = group.chars().collect();
    for (i, ch) in bytes.iter().enumerate() {
        match ch {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                members.push(bytes[start..i].iter().collect::<String>());
                start = i + 1;
            }
            _ => {}
        }
    }
    members.push(bytes[start..].iter().collect::<String>());
    let mut out = Vec::new();
    for m in members {
        let m = m.trim();
        if m.is_empty() {
            continue;
        }
        match m.find('{') {
            Some(open) => {
                let head = m[..open].trim_end_matches(':').trim();
                let inner = m[open + 1..].trim_end().trim_end_matches('}');
                out.extend(expand(&format!("{prefix}{head}::"), inner));
            }
            None => {
                let name: String = m
                    .chars()
                    .take_while(|ch| ch.is_ascii_alphanumeric() || *ch == '_' || *ch == ':')
                    .collect();
                match name.trim_end_matches(':') {
                    "self" => out.push(prefix.trim_end_matches(':').to_string()),
                    name => out.push(format!("{prefix}{name}")),
                }
            }
        }
    }
    out
}

/// The crate paths (`crate::a::b`) a file's code uses, with their line numbers; a grouped
/// import (`crate::{a::b, c}`, over several lines too) gives one path per member.
fn crate_paths(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let lines: Vec<(usize, String)> = non_test_lines(text).map(|(n, l)| (n, code(l))).collect();
    for (k, (n, c)) in lines.iter().enumerate() {
        for (i, _) in c.match_indices("crate::") {
            let rest = &c[i + "crate::".len()..];
            let path: String = rest
                .chars()
                .take_while(|ch| ch.is_ascii_alphanumeric() || *ch == '_' || *ch == ':')
                .collect();
            let path = path.trim_end_matches(':').to_string();
            if !rest[path.len()..].trim_start_matches(':').starts_with('{') {
                out.push((*n, path));
                continue;
            }
            // The group's text, to its closing brace, however many lines it takes.
            let mut group = String::new();
            let mut depth = 0;
            let tail = std::iter::once(&rest[rest.find('{').unwrap()..])
                .chain(lines[k + 1..].iter().map(|(_, l)| l.as_str()));
            'read: for piece in tail {
                for ch in piece.chars() {
                    match ch {
                        '{' => depth += 1,
                        '}' => {
                            depth -= 1;
                            if depth == 0 {
                                break 'read;
                            }
                        }
                        _ => {}
                    }
                    group.push(ch);
                }
                group.push(' ');
            }
            let prefix = if path.is_empty() {
                String::new()
            } else {
                format!("{path}::")
            };
            for member in expand(&prefix, group.trim_start_matches('{')) {
                out.push((*n, member));
            }
        }
    }
    out
}

/// Files under `scope` (a file, or a folder with its `.rs` twin) must not use any crate path
/// starting with one of `forbidden`.
fn must_not_import(scope: &[&str], forbidden: &[&str], why: &str) {
    for (path, text) in sources("src") {
        if !scope
            .iter()
            .any(|s| path == *s || path.starts_with(&format!("{s}/")))
        {
            continue;
        }
        for (n, p) in crate_paths(&text) {
            for f in forbidden {
                assert!(
                    !(p == *f || p.starts_with(&format!("{f}::"))),
                    "{path}:{n}: imports crate::{p} ({why})"
                );
            }
        }
    }
}

#[test]
fn modules_never_import_upward() {
    // The wire format and the author API's bottom depend on nothing above them.
    must_not_import(
        &["src/jsonrpc.rs", "src/schema.rs", "src/edge/patterns.rs"],
        &[
            "auth",
            "mcp",
            "transport",
            "edge",
            "routes",
            "startup",
            "tool",
            "config",
        ],
        "a leaf module",
    );
    must_not_import(
        &[
            "src/context.rs",
            "src/ask.rs",
            "src/prompt.rs",
            "src/resource.rs",
        ],
        &[
            "tool",
            "registry",
            "mcp",
            "transport",
            "edge",
            "routes",
            "startup",
            "config",
        ],
        "the author API builds upward from context.rs",
    );
    // Configuration sits under everything it configures.
    must_not_import(
        &["src/config.rs", "src/config"],
        &[
            "mcp",
            "transport",
            "routes",
            "startup",
            "tool",
            "registry",
            "auth::gate",
            "auth::validator",
            "auth::jwks",
            "budget",
            "shared",
        ],
        "configuration only borrows vocabulary from the modules that own it",
    );
    // The auth layer knows nothing of the protocol.
    must_not_import(
        &["src/auth.rs", "src/auth"],
        &["mcp", "transport", "routes", "startup", "tool", "registry"],
        "auth owns identity, not the protocol",
    );
    // The HTTP edge knows nothing of auth internals or the protocol.
    must_not_import(
        &["src/edge.rs", "src/edge", "src/conn.rs"],
        &[
            "mcp",
            "transport",
            "routes",
            "startup",
            "auth::gate",
            "auth::validator",
        ],
        "the edge sits outside auth and the protocol",
    );
    // The dispatcher knows nothing of HTTP framing or the app.
    must_not_import(
        &["src/mcp.rs", "src/mcp"],
        &["transport", "routes", "startup", "edge"],
        "the dispatcher returns an Outcome; the transport frames it",
    );
    // The refusal type needs the wire types and the failure vocabulary only.
    must_not_import(
        &["src/refusal.rs"],
        &[
            "auth",
            "transport",
            "edge",
            "routes",
            "startup",
            "mcp",
            "registry",
        ],
        "refusal.rs renders; it decides nothing",
    );
    // The failure vocabulary is a leaf: it names statuses, it renders nothing.
    must_not_import(
        &[
            "src/failure.rs",
            "src/revision.rs",
            "src/request_id.rs",
            "src/text.rs",
        ],
        &[
            "auth",
            "mcp",
            "transport",
            "edge",
            "refusal",
            "metrics",
            "config",
            "routes",
            "startup",
            "state",
        ],
        "a leaf module",
    );
}

/// The dispatcher names failures (`failure::McpError`) and returns an `Outcome`; only the
/// transport and the edge turn them into HTTP. No file of it uses an HTTP type.
#[test]
fn the_dispatcher_has_no_http_import() {
    must_not_import(
        &["src/mcp.rs", "src/mcp"],
        &[
            "refusal",
            "auth::challenge",
            "auth::gate",
            "edge",
            "transport",
            "expect",
        ],
        "the dispatcher names failures; the transport renders them",
    );
    for (path, text) in sources("src") {
        if !(path == "src/mcp.rs" || path.starts_with("src/mcp/")) {
            continue;
        }
        for (n, line) in non_test_lines(&text) {
            let c = code(line);
            for http in [
                "actix_web",
                "actix_http",
                "actix_service",
                "http::",
                "HttpResponse",
                "StatusCode",
                "HeaderValue",
            ] {
                assert!(
                    !c.contains(http),
                    "{path}:{n}: the dispatcher uses `{http}`: {line}"
                );
            }
        }
    }
}

/// An `Identity` is made only by the token checker, from a verified token: its fields are
/// private and its one constructor is the crate's.
#[test]
fn only_the_token_checker_builds_an_identity() {
    only_in(
        "Identity::verified(",
        &["src/auth.rs", "src/auth/validator.rs"],
        "handlers see an Identity the validator built, never one made elsewhere",
    );
    let auth = std::fs::read_to_string(root().join("src/auth.rs")).unwrap();
    let start = auth
        .find("pub struct Identity {")
        .expect("Identity is declared in auth.rs");
    let body = &auth[start..start + auth[start..].find('}').unwrap()];
    assert!(
        !body
            .lines()
            .skip(1)
            .any(|l| l.trim_start().starts_with("pub ")),
        "Identity has a public field: {body}"
    );
}

/// One module charges the budgets: the gate, the `Expect` check, the transport and the
/// dispatcher ask `budget::Budgets`.
#[test]
fn only_the_budgets_charge_budgets() {
    for needle in [
        "Budget::new(",
        ".take_local(",
        ".take_with(",
        "RateLimiter::keyed(",
    ] {
        only_in(
            needle,
            &["src/budget.rs"],
            "budget::Budgets owns the budgets and charges them",
        );
    }
}

/// Only `config` reads the process's environment (and `.env`): everything else gets settings.
#[test]
fn only_config_reads_the_environment() {
    for needle in ["env::var(", "env::vars(", "dotenvy::"] {
        only_in(
            needle,
            &["src/config.rs"],
            "settings are read, validated and named in one place",
        );
    }
}

/// The bearer header is read by the auth gate (once per request), by the same checks run
/// before a body is invited (`Expect: 100-continue`), and by the metrics listener for its own
/// token; nothing else sees a token.
#[test]
fn the_bearer_header_is_read_by_the_gate() {
    for needle in ["bearer::presented(", "bearer::from_headers("] {
        only_in(
            needle,
            &[
                "src/auth/gate.rs",
                "src/expect.rs",
                "src/metrics_endpoint.rs",
            ],
            "handlers never see a token",
        );
    }
}

/// ARCHITECTURE.md names, for each invariant, the test here that checks it: every name it
/// gives is a test of this file, and every test of this file is named there.
#[test]
fn architecture_md_names_the_tests_that_check_it() {
    let doc = std::fs::read_to_string(root().join("ARCHITECTURE.md")).unwrap();
    let this = std::fs::read_to_string(root().join("tests/api/architecture.rs")).unwrap();
    let tests: Vec<&str> = this
        .split("#[test]\nfn ")
        .skip(1)
        .filter_map(|rest| rest.split('(').next())
        .collect();
    let invariants = &doc[doc.find("## Invariants").expect("an Invariants section")..];
    let named: Vec<&str> = invariants
        .split("[`")
        .skip(1)
        .filter_map(|rest| rest.split('`').next())
        .collect();
    for n in &named {
        assert!(
            tests.contains(n),
            "ARCHITECTURE.md names {n}, which is not a test here"
        );
    }
    for t in tests.iter().filter(|t| {
        ![
            "the_rules_can_fail",
            "architecture_md_names_the_tests_that_check_it",
        ]
        .contains(t)
    }) {
        assert!(
            named.contains(t),
            "{t} checks an invariant ARCHITECTURE.md does not state"
        );
    }
    assert!(
        doc.lines().count() < 200,
        "ARCHITECTURE.md has {} lines; keep it under 200",
        doc.lines().count()
    );
}

/// Every refusal's status comes from the failure vocabulary's tables (`failure::Kind`,
/// `AuthRefusal`, `McpError::status`); only `refusal.rs` turns one into an HTTP status. The
/// probes' documents (routes) and the request log's reading of a response (edge/access) are
/// not refusals.
#[test]
fn statuses_come_from_the_failure_tables() {
    only_in(
        "StatusCode::",
        &["src/refusal.rs", "src/routes.rs", "src/edge/access.rs"],
        "a refusal names its kind; refusal.rs renders its status",
    );
}

/// A file's module path (`src/auth/gate.rs` -> `auth::gate`).
fn module_of(path: &str) -> String {
    path.trim_start_matches("src/")
        .trim_end_matches(".rs")
        .trim_end_matches("/mod")
        .replace('/', "::")
}

/// The files of `src/` a file imports: every `crate::`, `super::` and `self::` path, resolved
/// to the deepest file that exists on it; a module's file and its own submodules (`src/x.rs`,
/// `src/x/**`) are one room, so imports between them do not count.
fn imports(path: &str, text: &str, files: &[String]) -> Vec<(usize, String)> {
    let module = module_of(path);
    let parent = module.rsplit_once("::").map_or("", |(p, _)| p).to_string();
    let absolute = |p: &str| {
        if p.is_empty() {
            "crate::".to_string()
        } else {
            format!("crate::{p}::")
        }
    };
    let text = text
        .replace("super::", &absolute(&parent))
        .replace("self::", &absolute(&module));
    let mut out = Vec::new();
    for (n, p) in crate_paths(&text) {
        let segs: Vec<&str> = p.split("::").collect();
        let target = (1..=segs.len()).rev().find_map(|k| {
            let f = format!("src/{}.rs", segs[..k].join("/"));
            files.contains(&f).then_some(f)
        });
        let Some(target) = target else { continue };
        let (a, b) = (path.trim_end_matches(".rs"), target.trim_end_matches(".rs"));
        if target == path || a.starts_with(&format!("{b}/")) || b.starts_with(&format!("{a}/")) {
            continue;
        }
        if !out.iter().any(|(_, t)| *t == target) {
            out.push((n, target));
        }
    }
    out
}

/// The layers of the house, bottom first; a file belongs to the layer of its longest prefix.
const LAYERS: &[(&str, &[&str])] = &[
    (
        "vocabulary",
        &[
            "src/jsonrpc",
            "src/revision",
            "src/failure",
            "src/text",
            "src/hashing",
            "src/request_id",
            "src/schema",
            "src/edge/patterns",
            "src/changes",
            "src/outbox",
            "src/header_params",
            "src/outbound",
        ],
    ),
    (
        "platform",
        &[
            "src/metrics",
            "src/seal",
            "src/refusal",
            "src/config",
            "src/shared_store",
            "src/budget",
            "src/tasks",
            "src/telemetry",
            "src/logging",
            "src/allocator",
        ],
    ),
    (
        "identity and author API",
        &[
            "src/auth",
            "src/asking",
            "src/context",
            "src/prompt",
            "src/resource",
            "src/tool",
            "src/tools",
            "src/views",
            "src/registry",
            "src/conformance",
            "src/fixtures",
            "src/bench_tools",
        ],
    ),
    (
        "edge",
        &["src/edge", "src/conn", "src/body", "src/auth/gate"],
    ),
    ("dispatcher", &["src/mcp"]),
    ("transport", &["src/transport", "src/expect"]),
    (
        "assembly",
        &[
            "src/state",
            "src/routes",
            "src/startup",
            "src/doctor",
            "src/metrics_endpoint",
            "src/main",
            "src/lib",
        ],
    ),
];

/// The imports that point up a layer, each with the reason ARCHITECTURE.md gives for it.
const UPWARD: &[(&str, &str, &str)] = &[
    (
        "src/config/auth.rs",
        "src/auth.rs",
        "config checks algorithms and scope tokens by auth's own rules",
    ),
    (
        "src/config/issuers.rs",
        "src/auth.rs",
        "config checks each issuer's algorithms by auth's own rules",
    ),
    (
        "src/config/mcp.rs",
        "src/auth/dev_issuer.rs",
        "config keeps the MCP path off the development issuer's paths",
    ),
    (
        "src/config/mcp.rs",
        "src/context.rs",
        "config reads log levels as the author API names them",
    ),
];

fn layer_of(path: &str) -> usize {
    LAYERS
        .iter()
        .enumerate()
        .flat_map(|(i, (_, prefixes))| prefixes.iter().map(move |p| (i, *p)))
        .filter(|(_, p)| path == format!("{p}.rs") || path.starts_with(&format!("{p}/")))
        .max_by_key(|(_, p)| p.len())
        .unwrap_or_else(|| panic!("{path} belongs to no layer: add it to LAYERS"))
        .0
}

#[test]
fn imports_point_down_and_form_no_circle() {
    let all = sources("src");
    let files: Vec<String> = all.iter().map(|(p, _)| p.clone()).collect();
    let graph: Vec<(String, Vec<(usize, String)>)> = all
        .iter()
        .map(|(p, t)| (p.clone(), imports(p, t, &files)))
        .collect();
    let architecture = std::fs::read_to_string(root().join("ARCHITECTURE.md")).unwrap();
    for (from, targets) in &graph {
        for (n, to) in targets {
            if layer_of(to) <= layer_of(from) {
                continue;
            }
            let allowed = UPWARD.iter().find(|(f, t, _)| f == from && t == to);
            let Some((_, _, why)) = allowed else {
                panic!(
                    "{from}:{n}: imports {to}, a layer up ({} over {}); move the item down or list the import with its reason",
                    LAYERS[layer_of(to)].0,
                    LAYERS[layer_of(from)].0
                );
            };
            assert!(
                architecture.contains(why),
                "ARCHITECTURE.md does not give the reason for {from} -> {to}: {why}"
            );
        }
    }
    // No circle: a depth-first walk never meets a file on its own path.
    fn visit<'a>(
        f: &'a str,
        graph: &'a [(String, Vec<(usize, String)>)],
        path: &mut Vec<&'a str>,
        done: &mut Vec<&'a str>,
    ) {
        if done.contains(&f) {
            return;
        }
        if let Some(k) = path.iter().position(|p| *p == f) {
            panic!("an import circle: {}", path[k..].join(" -> ") + " -> " + f);
        }
        path.push(f);
        if let Some((_, targets)) = graph.iter().find(|(p, _)| p == f) {
            for (_, t) in targets {
                visit(t, graph, path, done);
            }
        }
        path.pop();
        done.push(f);
    }
    let mut done = Vec::new();
    for (f, _) in &graph {
        visit(f, &graph, &mut Vec::new(), &mut done);
    }
}

#[test]
fn the_rules_can_fail() {
    assert_eq!(
        code(r#"let x = "-32601"; // -32601"#).trim(),
        r#"let x = "";"#
    );
    assert_eq!(
        crate_paths("use crate::mcp::McpError;\n"),
        vec![(1, "mcp::McpError".to_string())]
    );
    assert!(code("ErrorObject::new(ErrorCode::X, \"m\")").contains("ErrorObject::new"));
    // Grouped imports, over lines, give each member.
    assert_eq!(
        crate_paths("use crate::{\n    auth::Caller,\n    mcp::{Era, Server},\n};\n")
            .into_iter()
            .map(|(_, p)| p)
            .collect::<Vec<_>>(),
        vec![
            "auth::Caller".to_string(),
            "mcp::Era".into(),
            "mcp::Server".into()
        ]
    );
    // An item ends at its block's closing brace, or at its `;`.
    assert_eq!(
        item_length(["fn a() {", "  if x {", "  }", "}", "fn b() {}"].iter()),
        4
    );
    assert_eq!(item_length(["pub use crate::a::b;", "fn c() {}"].iter()), 1);
    // `super::` and `self::` resolve to files; a module and its submodules are one room.
    let files = vec![
        "src/auth.rs".to_string(),
        "src/auth/gate.rs".into(),
        "src/auth/challenge.rs".into(),
        "src/budget.rs".into(),
    ];
    let seen = imports(
        "src/auth/gate.rs",
        "use super::challenge::X;\nuse super::Caller;\nuse crate::budget::Budget;\n",
        &files,
    );
    assert_eq!(
        seen.into_iter().map(|(_, t)| t).collect::<Vec<_>>(),
        vec!["src/auth/challenge.rs".to_string(), "src/budget.rs".into()]
    );
    assert_eq!(layer_of("src/auth/gate.rs"), 3);
    assert_eq!(layer_of("src/auth/jwks.rs"), 2);
    // Code after a test-only item or module is still read.
    let text = "#[cfg(test)]\npub use crate::a::b;\nuse crate::c;\n#[cfg(test)]\nmod tests {\n    use crate::d;\n}\nuse crate::e;\n";
    let seen: Vec<String> = crate_paths(text).into_iter().map(|(_, p)| p).collect();
    assert_eq!(seen, vec!["c".to_string(), "e".into()]);
}

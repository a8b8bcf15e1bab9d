//! MCP Apps (`io.modelcontextprotocol/ui`): a tool with `tools/<name>.html` beside it names its
//! view (`_meta.ui.resourceUri`, `visibility`), the view is a `ui://` resource with the MCP Apps
//! MIME type and `_meta.ui`, the extension is negotiated in both eras, views and app-only tools
//! follow the caller's scopes, and an oversize page is refused at startup.

use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_with_issuer};
use crate::modern::{meta, modern};

const URI: &str = "ui://get_org_data/view.html";
const MIME: &str = "text/html;profile=mcp-app";

fn tool<'a>(list: &'a Value, name: &str) -> Option<&'a Value> {
    list["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == name)
}

async fn list_2025(app: &TestApp, token: &str) -> Value {
    let r = app
        .rpc(Some(token), "tools/list", json!({"cursor": null}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.json()
}

/// A 2026-07-28 request, with the extension declared or not.
async fn modern_rpc(app: &TestApp, token: &str, method: &str, params: Value, ui: bool) -> Value {
    let caps = if ui {
        json!({"extensions": {"io.modelcontextprotocol/ui": {"mimeTypes": [MIME]}}})
    } else {
        json!({})
    };
    let mut params = params;
    params["_meta"] = meta(caps);
    app.send(modern(app, Some(token), json!(1), method, &params))
        .await
        .json()
}

#[actix_web::test]
async fn in_2025_tools_name_their_views_and_the_view_is_a_ui_resource() {
    let app = spawn_with_issuer(&[("GATEHOUSE_MCP__PAGE_SIZE", "1000")]).await;
    let token = app.token("ada", &[]);
    let init = app
        .rpc(
            Some(&token),
            "initialize",
            json!({"protocolVersion": "2025-11-25", "capabilities": {"extensions": {"io.modelcontextprotocol/ui": {"mimeTypes": [MIME]}}},
                   "clientInfo": {"name": "t", "version": "1"}}),
        )
        .await
        .json();
    assert_eq!(
        init["result"]["capabilities"]["extensions"]["io.modelcontextprotocol/ui"],
        json!({"mimeTypes": [MIME]})
    );
    let list = list_2025(&app, &token).await;
    let org = tool(&list, "get_org_data").unwrap();
    assert_eq!(org["_meta"]["ui"]["resourceUri"], URI);
    assert_eq!(org["_meta"]["ui"]["visibility"], json!(["model", "app"]));
    assert_eq!(org["_meta"]["ui/resourceUri"], URI);
    let refresh = tool(&list, "refresh_org_data").expect("the app-only tool is listed for hosts");
    assert_eq!(refresh["_meta"]["ui"]["visibility"], json!(["app"]));
    assert_eq!(refresh["_meta"]["ui"]["resourceUri"], URI);
    // A tool without a view has no ui metadata.
    assert!(tool(&list, "greet_user").unwrap().get("_meta").is_none());
    // The view, listed and read.
    let resources = app
        .rpc(Some(&token), "resources/list", json!({}))
        .await
        .json();
    let listed = resources["result"]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["uri"] == URI)
        .expect("the view is listed")
        .clone();
    assert_eq!(listed["mimeType"], MIME);
    assert_eq!(listed["_meta"]["ui"]["prefersBorder"], true);
    assert_eq!(listed["_meta"]["ui"]["csp"], json!({}));
    let read = app
        .rpc(Some(&token), "resources/read", json!({"uri": URI}))
        .await
        .json();
    let content = &read["result"]["contents"][0];
    assert_eq!(content["uri"], URI);
    assert_eq!(content["mimeType"], MIME);
    assert_eq!(content["_meta"]["ui"]["prefersBorder"], true);
    let html = content["text"].as_str().unwrap();
    assert!(html.starts_with("<!doctype html>") && html.contains("refresh_org_data"));
    assert_eq!(html, include_str!("../../tools/get_org_data.html"));
}

#[actix_web::test]
async fn in_2026_only_a_client_that_declares_the_extension_sees_views() {
    let app = spawn_with_issuer(&[("GATEHOUSE_MCP__PAGE_SIZE", "1000")]).await;
    let token = app.token("ada", &[]);
    let org_token = app.rsa().sign(&{
        let mut c = app.claims("ada", &[]);
        c["oid"] = json!("org_42");
        c
    });
    // Declared: the views and the app-only tool, callable.
    let list = modern_rpc(&app, &token, "tools/list", json!({}), true).await;
    assert_eq!(
        tool(&list, "get_org_data").unwrap()["_meta"]["ui"]["resourceUri"],
        URI
    );
    assert!(tool(&list, "refresh_org_data").is_some());
    let resources = modern_rpc(&app, &token, "resources/list", json!({}), true).await;
    assert!(resources.to_string().contains(URI));
    let call = modern_rpc(
        &app,
        &org_token,
        "tools/call",
        json!({"name": "refresh_org_data", "arguments": {}}),
        true,
    )
    .await;
    assert_eq!(
        call["result"]["structuredContent"]["organization"], "org_42",
        "{call}"
    );
    // Not declared: the same tools without view metadata, no app-only tool, no view listed,
    // and the app-only tool refused naming the extension.
    let list = modern_rpc(&app, &token, "tools/list", json!({}), false).await;
    let org = tool(&list, "get_org_data").unwrap();
    assert!(org.get("_meta").is_none(), "{org}");
    assert!(tool(&list, "refresh_org_data").is_none());
    let resources = modern_rpc(&app, &token, "resources/list", json!({}), false).await;
    assert!(!resources.to_string().contains(URI));
    let call = modern_rpc(
        &app,
        &org_token,
        "tools/call",
        json!({"name": "refresh_org_data", "arguments": {}}),
        false,
    )
    .await;
    assert_eq!(call["error"]["code"], -32021, "{call}");
    assert!(
        call.to_string().contains("io.modelcontextprotocol/ui"),
        "{call}"
    );
    // Discovery advertises the extension.
    let discover = modern_rpc(&app, &token, "server/discover", json!({}), false).await;
    assert_eq!(
        discover["result"]["capabilities"]["extensions"]["io.modelcontextprotocol/ui"]["mimeTypes"],
        json!([MIME]),
        "{discover}"
    );
}

#[actix_web::test]
async fn views_and_app_only_tools_follow_the_callers_scopes() {
    let app = spawn_with_issuer(&[("GATEHOUSE_MCP__PAGE_SIZE", "1000")]).await;
    let uri = "ui://scoped_view/view.html";
    let user = app.token("ada", &[]);
    let admin = app.token("root", &["admin"]);
    let list = list_2025(&app, &user).await;
    assert!(tool(&list, "fixture_admin_view").is_none());
    assert!(tool(&list, "fixture_admin_view_refresh").is_none());
    let resources = app.rpc(Some(&user), "resources/list", json!({})).await;
    assert!(!resources.text.contains(uri));
    let read = app
        .rpc(Some(&user), "resources/read", json!({"uri": uri}))
        .await;
    assert_eq!(read.status, 403, "{}", read.text);
    assert!(
        read.header("www-authenticate")
            .unwrap()
            .contains("insufficient_scope")
    );
    // With the scope: the tools, the view and its security settings.
    let list = list_2025(&app, &admin).await;
    assert_eq!(
        tool(&list, "fixture_admin_view").unwrap()["_meta"]["ui"]["resourceUri"],
        uri
    );
    assert_eq!(
        tool(&list, "fixture_admin_view_refresh").unwrap()["_meta"]["ui"]["visibility"],
        json!(["app"])
    );
    let read = app
        .rpc(Some(&admin), "resources/read", json!({"uri": uri}))
        .await
        .json();
    let ui = &read["result"]["contents"][0]["_meta"]["ui"];
    assert_eq!(
        ui["csp"],
        json!({"connectDomains": ["https://api.example.com"], "resourceDomains": ["https://*.cdn.example.com"]})
    );
    assert_eq!(ui["permissions"], json!({"clipboardWrite": {}}));
    assert_eq!(ui["domain"], "a904794854a047f6.claudemcpcontent.com");
    assert!(ui.get("prefersBorder").is_none());
}

#[test]
fn an_oversize_view_or_a_view_without_its_tool_is_refused_at_startup() {
    use gatehouse::registry::Registry;
    use gatehouse::tool::{Tool, ToolDef, ToolOutput, ViewDef};
    static BIG: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let html: &'static str = BIG.get_or_init(|| "x".repeat(512 * 1024 + 1));
    static DEF: ToolDef = ToolDef::new(
        "tests::big",
        Tool {
            description: "A tool with a view too large.",
            ..Tool::DEFAULT
        },
        || json!({"type": "object"}),
        |_, _| Box::pin(async { Ok(ToolOutput::text("x")) }),
    );
    let big: &'static ViewDef = Box::leak(Box::new(ViewDef { stem: "big", html }));
    let e = Registry::build(vec![&DEF], vec![], vec![], vec![], vec![big])
        .err()
        .expect("refused");
    assert!(e.to_string().contains("tools/big.html"), "{e}");
    assert!(e.to_string().contains("at most 524288 bytes"), "{e}");
    let orphan: &'static ViewDef = Box::leak(Box::new(ViewDef {
        stem: "nobody",
        html: "<p>",
    }));
    let e = Registry::build(vec![&DEF], vec![], vec![], vec![], vec![orphan])
        .err()
        .expect("refused");
    assert!(
        e.to_string()
            .contains("no tool is registered in tools/nobody.rs"),
        "{e}"
    );
}

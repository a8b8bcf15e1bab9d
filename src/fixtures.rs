//! Tools used only by gatehouse's own black-box tests (cargo feature `test-fixtures`): slow,
//! panicking, failing, mis-typed and scoped tools, and one route that fails with an internal
//! error (`/__fixtures/fail`), so the generic 500 can be seen from outside. Never part of a
//! release build.

use std::time::Duration;

use crate::tool::prelude::*;

#[derive(Deserialize)]
struct SlowArgs {
    #[serde(default = "default_ms")]
    ms: u64,
}

fn default_ms() -> u64 {
    1500
}

async fn slow(ctx: ToolContext, args: SlowArgs) -> ToolResult {
    let steps = 5u64;
    for i in 1..=steps {
        tokio::time::sleep(Duration::from_millis(args.ms / steps)).await;
        ctx.progress(i as f64, Some(steps as f64), Some("working"));
    }
    Ok(ToolOutput::text(format!("done after {} ms", args.ms)))
}

register_tool!(
    slow,
    schema = || json!({
        "type": "object",
        "properties": {"ms": {"type": "integer", "minimum": 0, "maximum": 60000}},
        "additionalProperties": false
    }),
    Tool {
        name: Some("fixture_slow"),
        description: "Sleeps for `ms` milliseconds, reporting progress five times (test fixture).",
        ..Tool::DEFAULT
    }
);

register_tool!(
    |_: ToolContext, _: NoArgs| async { panic!("fixture_panic panicked on purpose") },
    Tool {
        name: Some("fixture_panic"),
        description: "Panics (test fixture).",
        ..Tool::DEFAULT
    }
);

register_tool!(
    |_: ToolContext, _: NoArgs| async { Err(ToolError::new("it failed on purpose")) },
    Tool {
        name: Some("fixture_fail"),
        description: "Returns a tool error (test fixture).",
        ..Tool::DEFAULT
    }
);

register_tool!(
    |_: ToolContext, _: NoArgs| async { Ok(ToolOutput::structured(json!({"count": "many"}))) },
    Tool {
        name: Some("fixture_bad_output"),
        description: "Returns structured content that violates its output schema (test fixture).",
        output_schema: Some(|| json!({
            "type": "object",
            "properties": {"count": {"type": "integer"}},
            "required": ["count"]
        })),
        ..Tool::DEFAULT
    }
);

register_tool!(
    |_: ToolContext, args: Value| async move {
        let n = args["api_key"].as_str().map_or(0, str::len);
        Ok(ToolOutput::text(format!("got a key of {n} characters")))
    },
    schema = || json!({
        "type": "object",
        "properties": {"api_key": {"type": "string"}},
        "required": ["api_key"]
    }),
    Tool {
        name: Some("fixture_secret"),
        description: "Takes a secret argument that must never be logged (test fixture).",
        secret_args: &["api_key"],
        ..Tool::DEFAULT
    }
);

register_tool!(
    |ctx: ToolContext, _: NoArgs| async move {
        for level in LogLevel::ALL {
            ctx.log(level, json!({"level": level.name()}));
        }
        Ok(ToolOutput::text("logged"))
    },
    Tool {
        name: Some("fixture_log"),
        description: "Sends one log message per level, then returns (test fixture).",
        ..Tool::DEFAULT
    }
);

register_tool!(
    |_: ToolContext, _: NoArgs| async { Ok(ToolOutput::text("scoped ok")) },
    Tool {
        name: Some("fixture_scoped"),
        description: "Needs two scopes (test fixture).",
        scopes: &["reports:read", "reports:write"],
        ..Tool::DEFAULT
    }
);

register_tool!(
    |_: ToolContext, _: Value| async { Ok(ToolOutput::text("valid")) },
    schema = || json!({
        "type": "object",
        "properties": {
            "email": {"type": "string", "format": "email"},
            "when": {"type": "string", "format": "date-time"}
        },
        "required": ["email"]
    }),
    Tool {
        name: Some("fixture_format"),
        description: "Validates an email and a date-time argument (test fixture).",
        ..Tool::DEFAULT
    }
);

#[derive(Deserialize)]
struct BigArgs {
    bytes: usize,
}

register_tool!(
    |_: ToolContext, a: BigArgs| async move { Ok(ToolOutput::text("x".repeat(a.bytes))) },
    schema = || json!({
        "type": "object",
        "properties": {"bytes": {"type": "integer", "minimum": 0, "maximum": 67108864}},
        "required": ["bytes"],
        "additionalProperties": false
    }),
    Tool {
        name: Some("fixture_big"),
        description: "Returns `bytes` characters of text (test fixture for mcp.max_response_bytes).",
        ..Tool::DEFAULT
    }
);

register_tool!(
    |_: ToolContext, a: BigArgs| async move {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        Ok(ToolOutput::text("x".repeat(a.bytes)))
    },
    schema = || json!({
        "type": "object",
        "properties": {"bytes": {"type": "integer", "minimum": 0, "maximum": 67108864}},
        "required": ["bytes"],
        "additionalProperties": false
    }),
    Tool {
        name: Some("fixture_task_big"),
        description: "Always a task; returns `bytes` characters of text (test fixture).",
        task: TaskSupport::Required,
        ..Tool::DEFAULT
    }
);

#[derive(Deserialize)]
struct Millis {
    ms: u64,
}

register_tool!(
    |ctx: ToolContext, a: Millis| async move {
        tokio::select! {
            () = tokio::time::sleep(std::time::Duration::from_millis(a.ms)) => {}
            () = ctx.cancelled() => return Err(ToolError::new("cancelled")),
        }
        Ok(ToolOutput::text("scoped task done"))
    },
    schema = || json!({
        "type": "object",
        "properties": {"ms": {"type": "integer", "minimum": 0, "maximum": 600000}},
        "required": ["ms"]
    }),
    Tool {
        name: Some("fixture_scoped_task"),
        description: "Always a task; needs the reports:read scope; sleeps `ms` (test fixture).",
        scopes: &["reports:read"],
        task: TaskSupport::Required,
        ..Tool::DEFAULT
    }
);

register_tool!(
    |ctx: ToolContext, _: NoArgs| async move {
        let id = ctx.identity();
        // The trace as the tool sees it, and a child span of its own.
        let traceparent = ctx.traceparent();
        let step = ctx
            .traced("fixture step", async {
                Ok::<_, std::io::Error>(ctx.traceparent())
            })
            .await
            .ok()
            .flatten();
        Ok(ToolOutput::structured(json!({
            "trace_id": ctx.trace_id(),
            "traceparent": traceparent,
            "step_traceparent": step,
            "subject": id.map(|i| i.subject()),
            "kind": match ctx.caller_kind() {
                Some(CallerKind::User) => "user",
                Some(CallerKind::Client) => "client",
                None => "anonymous",
            },
            "client_id": id.and_then(|i| i.client_id()),
            "organization": ctx.organization(),
        })))
    },
    Tool {
        name: Some("fixture_whoami"),
        description: "Says who the caller is: subject, user or client, client id, organization, and its trace (test fixture).",
        ..Tool::DEFAULT
    }
);

/// A handler that fails with an internal error whose detail must never reach the client: the
/// request log answers the generic 500 with the request id instead.
pub(crate) async fn failing_route() -> Result<actix_web::HttpResponse, actix_web::Error> {
    Err(actix_web::error::ErrorInternalServerError(
        "fixture failure: internal-detail-that-must-not-leak",
    ))
}

/// A view whose tools need the `admin` scope (tests of MCP Apps scope filtering): the page is
/// submitted by hand, as `build.rs` does for `tools/<name>.html`.
mod scoped_view {
    use crate::tool::prelude::*;

    ::inventory::submit! {
        crate::tool::ViewDef { stem: "scoped_view", html: "<!doctype html><p>admin view</p>" }
    }

    register_tool!(
        |_: ToolContext, _: NoArgs| async { Ok(ToolOutput::text("admin data")) },
        Tool {
            name: Some("fixture_admin_view"),
            description: "Admin data with a view (test fixture).",
            scopes: &["admin"],
            view: ViewSettings {
                connect_domains: &["https://api.example.com"],
                resource_domains: &["https://*.cdn.example.com"],
                permissions: &[Permission::ClipboardWrite],
                domain: Some("a904794854a047f6.claudemcpcontent.com"),
                ..ViewSettings::DEFAULT
            },
            ..Tool::DEFAULT
        }
    );

    register_tool!(
        |_: ToolContext, _: NoArgs| async { Ok(ToolOutput::text("admin data again")) },
        Tool {
            name: Some("fixture_admin_view_refresh"),
            description: "Refreshes the admin view (test fixture).",
            scopes: &["admin"],
            visibility: Visibility::App,
            ..Tool::DEFAULT
        }
    );
}

//! Tools used only by gatehouse's own black-box tests (cargo feature `test-fixtures`): slow,
//! panicking, failing, mis-typed and scoped tools. Never part of a release build.

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

register_tool!(ToolDef {
    name: "fixture_slow",
    description: "Sleeps for `ms` milliseconds, reporting progress five times (test fixture).",
    input_schema: || json!({
        "type": "object",
        "properties": {"ms": {"type": "integer", "minimum": 0, "maximum": 60000}},
        "additionalProperties": false
    }),
    handler: |ctx, args| typed(slow, ctx, args),
    ..ToolDef::DEFAULT
});

register_tool!(ToolDef {
    name: "fixture_panic",
    description: "Panics (test fixture).",
    handler: |_, _| Box::pin(async { panic!("fixture_panic panicked on purpose") }),
    ..ToolDef::DEFAULT
});

register_tool!(ToolDef {
    name: "fixture_fail",
    description: "Returns a tool error (test fixture).",
    handler: |_, _| Box::pin(async { Err(ToolError::new("it failed on purpose")) }),
    ..ToolDef::DEFAULT
});

register_tool!(ToolDef {
    name: "fixture_bad_output",
    description: "Returns structured content that violates its output schema (test fixture).",
    output_schema: Some(|| json!({
        "type": "object",
        "properties": {"count": {"type": "integer"}},
        "required": ["count"]
    })),
    handler: |_, _| Box::pin(async { Ok(ToolOutput::structured(json!({"count": "many"}))) }),
    ..ToolDef::DEFAULT
});

register_tool!(ToolDef {
    name: "fixture_secret",
    description: "Takes a secret argument that must never be logged (test fixture).",
    input_schema: || json!({
        "type": "object",
        "properties": {"api_key": {"type": "string"}},
        "required": ["api_key"]
    }),
    secret_args: &["api_key"],
    handler: |_, args| Box::pin(async move {
        let n = args["api_key"].as_str().map_or(0, str::len);
        Ok(ToolOutput::text(format!("got a key of {n} characters")))
    }),
    ..ToolDef::DEFAULT
});

register_tool!(ToolDef {
    name: "fixture_log",
    description: "Sends one log message per level, then returns (test fixture).",
    handler: |ctx, _| Box::pin(async move {
        for level in LogLevel::ALL {
            ctx.log(level, json!({"level": level.name()}));
        }
        Ok(ToolOutput::text("logged"))
    }),
    ..ToolDef::DEFAULT
});

register_tool!(ToolDef {
    name: "fixture_scoped",
    description: "Needs two scopes (test fixture).",
    scopes: &["reports:read", "reports:write"],
    handler: |_, _| Box::pin(async { Ok(ToolOutput::text("scoped ok")) }),
    ..ToolDef::DEFAULT
});

register_tool!(ToolDef {
    name: "fixture_format",
    description: "Validates an email and a date-time argument (test fixture).",
    input_schema: || json!({
        "type": "object",
        "properties": {
            "email": {"type": "string", "format": "email"},
            "when": {"type": "string", "format": "date-time"}
        },
        "required": ["email"]
    }),
    handler: |_, _| Box::pin(async { Ok(ToolOutput::text("valid")) }),
    ..ToolDef::DEFAULT
});

#[derive(Deserialize)]
struct BigArgs {
    bytes: usize,
}

register_tool!(ToolDef {
    name: "fixture_big",
    description: "Returns `bytes` characters of text (test fixture for mcp.max_response_bytes).",
    input_schema: || json!({
        "type": "object",
        "properties": {"bytes": {"type": "integer", "minimum": 0, "maximum": 67108864}},
        "required": ["bytes"],
        "additionalProperties": false
    }),
    handler: |ctx, args| typed(
        |_: ToolContext, a: BigArgs| async move { Ok(ToolOutput::text("x".repeat(a.bytes))) },
        ctx,
        args
    ),
    ..ToolDef::DEFAULT
});

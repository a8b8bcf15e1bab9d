//! admin_action: the Express demo's admin-only tool. Needs the `admin` scope; reports who ran it.

use crate::tool::prelude::*;

#[derive(Deserialize)]
struct Args {
    action: String,
}

async fn run(ctx: ToolContext, args: Args) -> ToolResult {
    let who = ctx.identity().map_or("anonymous", |i| i.subject.as_str());
    Ok(ToolOutput::text(format!(
        "Admin action '{}' performed by {who}.",
        args.action
    )))
}

register_tool!(ToolDef {
    name: "admin_action",
    title: Some("Perform an admin action"),
    description: "Performs an administrative action. Requires the admin scope.",
    input_schema: || json!({
        "type": "object",
        "properties": {
            "action": {"type": "string", "minLength": 1, "maxLength": 200, "description": "The action to perform"}
        },
        "required": ["action"],
        "additionalProperties": false
    }),
    annotations: Annotations {
        read_only: Some(false),
        destructive: Some(true),
        idempotent: Some(false),
        open_world: Some(false),
    },
    scopes: &["admin"],
    handler: |ctx, args| typed(run, ctx, args),
    ..ToolDef::DEFAULT
});

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn names_the_caller() {
        let ctx = crate::tool::testing::context(Some(("alice", None)));
        let out = run(ctx, Args { action: "reindex".into() }).await.unwrap();
        assert_eq!(out, ToolOutput::text("Admin action 'reindex' performed by alice."));
    }
}

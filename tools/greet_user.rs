//! greet_user: the example tool of the Express demo gatehouse replaces. Greets a user by name.

use crate::tool::prelude::*;

#[derive(Deserialize)]
struct Args {
    name: String,
}

async fn run(_ctx: ToolContext, args: Args) -> ToolResult {
    Ok(ToolOutput::text(format!("Hi {}, welcome!", args.name)))
}

register_tool!(ToolDef {
    name: "greet_user",
    title: Some("Greet a user"),
    description: "Greets a user by name.",
    input_schema: || json!({
        "type": "object",
        "properties": {
            "name": {"type": "string", "minLength": 1, "description": "The name of the user to greet"}
        },
        "required": ["name"],
        "additionalProperties": false
    }),
    annotations: Annotations {
        read_only: Some(true),
        destructive: Some(false),
        idempotent: Some(true),
        open_world: Some(false),
    },
    handler: |ctx, args| typed(run, ctx, args),
    ..ToolDef::DEFAULT
});

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn greets_by_name() {
        let ctx = crate::tool::testing::context(None);
        let out = run(ctx, Args { name: "Ada".into() }).await.unwrap();
        assert_eq!(out, ToolOutput::text("Hi Ada, welcome!"));
    }
}

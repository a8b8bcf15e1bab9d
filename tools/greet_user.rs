//! greet_user: the example tool of the Express demo gatehouse replaces. Greets a user by name.

use crate::tool::prelude::*;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Args {
    /// The name of the user to greet
    #[schemars(length(min = 1))]
    name: String,
}

async fn run(_ctx: ToolContext, args: Args) -> ToolResult {
    Ok(ToolOutput::text(format!("Hi {}, welcome!", args.name)))
}

register_tool!(
    run,
    Tool {
        title: Some("Greet a user"),
        description: "Greets a user by name.",
        annotations: Annotations {
            read_only: Some(true),
            destructive: Some(false),
            idempotent: Some(true),
            open_world: Some(false),
        },
        ..Tool::DEFAULT
    }
);

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

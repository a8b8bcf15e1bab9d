//! admin_action: the Express demo's admin-only tool. Needs the `admin` scope, asks the user to
//! confirm when the client can ask its user, and reports who ran it.

use crate::tool::prelude::*;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Args {
    /// The action to perform
    #[schemars(length(min = 1, max = 200))]
    action: String,
}

async fn run(ctx: ToolContext, args: Args) -> ToolResult {
    // Ask first, act after: in protocol revision 2026-07-28 this run stops at the question and
    // runs again from the top with the answer, so nothing before it may have effects.
    if ctx.client_supports("elicitation") != Some(false) {
        let schema = json!({
            "type": "object",
            "properties": {"confirm": {"type": "boolean", "title": "Yes, perform it"}},
            "required": ["confirm"]
        });
        let question = format!("Perform the admin action '{}'?", args.action);
        match ctx.elicit("confirm", &question, schema).await {
            Ok(Elicitation::Accept(answer)) if answer.get("confirm") == Some(&json!(true)) => {}
            Ok(_) => {
                return Err(ToolError::new(format!(
                    "Admin action '{}' was not confirmed; nothing was done.",
                    args.action
                )));
            }
            // The client cannot ask its user (no event stream, or no elicitation): act as the
            // caller asked, as before.
            Err(AskError::NotSupported(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let who = ctx.identity().map_or("anonymous", |i| i.subject());
    Ok(ToolOutput::text(format!(
        "Admin action '{}' performed by {who}.",
        args.action
    )))
}

register_tool!(
    run,
    Tool {
        title: Some("Perform an admin action"),
        description: "Performs an administrative action. Requires the admin scope.",
        annotations: Annotations {
            read_only: Some(false),
            destructive: Some(true),
            idempotent: Some(false),
            open_world: Some(false),
        },
        scopes: &["admin"],
        asks: true,
        ..Tool::DEFAULT
    }
);

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

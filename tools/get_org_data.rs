//! get_org_data: the Express demo's tenant tool. Returns data for the caller's organization
//! only (from the token's `oid`/`org_id`/`xoid` claim); no organization claim is an error.

use crate::tool::prelude::*;

async fn run(ctx: ToolContext, _args: Value) -> ToolResult {
    let Some(org) = ctx.organization() else {
        return Err(ToolError::new(
            "No organization in the access token (claims oid, org_id or xoid); this tool serves organization members only",
        ));
    };
    Ok(ToolOutput::structured(json!({
        "organization": org,
        "plan": "standard",
        "members": 1,
    })))
}

register_tool!(ToolDef {
    name: "get_org_data",
    title: Some("Get organization data"),
    description: "Returns data for the caller's organization (taken from the access token, never from arguments).",
    output_schema: Some(|| json!({
        "type": "object",
        "properties": {
            "organization": {"type": "string"},
            "plan": {"type": "string"},
            "members": {"type": "integer", "minimum": 0}
        },
        "required": ["organization", "plan", "members"]
    })),
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
    async fn returns_only_the_callers_organization() {
        let ctx = crate::tool::testing::context(Some(("bob", Some("acme"))));
        let out = run(ctx, json!({})).await.unwrap();
        assert_eq!(out.structured.unwrap()["organization"], "acme");
    }

    #[tokio::test]
    async fn no_organization_is_a_tool_error() {
        let ctx = crate::tool::testing::context(Some(("bob", None)));
        assert!(run(ctx, json!({})).await.is_err());
    }
}

//! get_org_data: the Express demo's tenant tool. Returns data for the caller's organization
//! only (from the token's `oid`/`org_id`/`xoid` claim); no organization claim is an error.
//! `tools/get_org_data.html` beside it is its view (MCP Apps): a table of the data, refreshed
//! through `refresh_org_data`, a tool only the view calls.

use crate::tool::prelude::*;

/// What the tool returns: the caller's organization and its plan.
#[derive(Serialize, JsonSchema)]
struct OrgData {
    organization: String,
    plan: &'static str,
    /// Members of the organization.
    #[schemars(range(min = 0))]
    members: u32,
    /// When the data was read (Unix seconds).
    as_of: u64,
}

/// Both tools only read.
const READ_ONLY: Annotations = Annotations {
    read_only: Some(true),
    destructive: Some(false),
    idempotent: Some(true),
    open_world: Some(false),
};

async fn run(ctx: ToolContext, _: NoArgs) -> ToolResult {
    let Some(org) = ctx.organization() else {
        return Err(ToolError::new(
            "No organization in the access token (claims oid, org_id or xoid); this tool serves organization members only",
        ));
    };
    let as_of = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    Ok(ToolOutput::structured(OrgData {
        organization: org.to_string(),
        plan: "standard",
        members: 1,
        as_of,
    }))
}

register_tool!(
    run,
    Tool {
        title: Some("Get organization data"),
        description: "Returns data for the caller's organization (taken from the access token, never from arguments).",
        output_schema: Some(schema_of::<OrgData>),
        annotations: READ_ONLY,
        // The view loads nothing from elsewhere and asks for no permission; the host draws
        // its frame.
        view: ViewSettings {
            prefers_border: Some(true),
            ..ViewSettings::DEFAULT
        },
        ..Tool::DEFAULT
    }
);

// The view's refresh button: the same data, read again. Only the view calls it (the model
// sees get_org_data alone); the caller's scopes apply as to any call.
register_tool!(
    run,
    Tool {
        name: Some("refresh_org_data"),
        title: Some("Refresh organization data"),
        description: "Reads the caller's organization data again, for the get_org_data view.",
        output_schema: Some(schema_of::<OrgData>),
        annotations: READ_ONLY,
        visibility: Visibility::App,
        ..Tool::DEFAULT
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn returns_only_the_callers_organization() {
        let ctx = crate::tool::testing::context(Some(("bob", Some("acme"))));
        let out = run(ctx, NoArgs {}).await.unwrap();
        assert_eq!(out.structured.unwrap()["organization"], "acme");
    }

    #[tokio::test]
    async fn no_organization_is_a_tool_error() {
        let ctx = crate::tool::testing::context(Some(("bob", None)));
        assert!(run(ctx, NoArgs {}).await.is_err());
    }
}

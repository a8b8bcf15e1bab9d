//! export_report: a long-running tool. Builds a report for the caller's organization section by
//! section (as long as asked: past a router's 30 s if need be), reports progress, and asks the
//! user whether to publish it before finishing when the client can be asked. It may run as a
//! task (2026-07-28 clients that declare the tasks extension poll it); 2025 clients get it on
//! an event stream that keep-alives hold open (README, "Long-running tools").

use std::time::Duration;

use crate::tool::prelude::*;

#[derive(Deserialize, JsonSchema)]
struct Args {
    /// Sections to build (1-100; default 5).
    #[schemars(range(min = 1, max = 100))]
    sections: Option<u32>,
    /// Seconds each section takes (0-60; default 2).
    #[schemars(range(min = 0.0, max = 60.0))]
    seconds_per_section: Option<f64>,
}

/// What the tool returns.
#[derive(Serialize, JsonSchema)]
struct Report {
    organization: String,
    sections: u32,
    /// Whether the user chose to publish it (`false`: kept as a draft).
    published: bool,
}

async fn run(ctx: ToolContext, args: Args) -> ToolResult {
    let Some(org) = ctx.organization().map(str::to_string) else {
        return Err(ToolError::new(
            "No organization in the access token (claims oid, org_id or xoid); this tool serves organization members only",
        ));
    };
    let sections = args.sections.unwrap_or(5).clamp(1, 100);
    let pace = Duration::from_secs_f64(args.seconds_per_section.unwrap_or(2.0).clamp(0.0, 60.0));
    for i in 1..=sections {
        tokio::select! {
            () = tokio::time::sleep(pace) => {}
            () = ctx.cancelled() => {
                return Err(ToolError::new(format!("Cancelled after {} of {sections} sections", i - 1)));
            }
        }
        let note = format!("Built section {i} of {sections}");
        ctx.progress(f64::from(i), Some(f64::from(sections)), Some(&note));
    }
    let published = if may_ask(&ctx) {
        let schema = json!({"type": "object", "properties": {
            "publish": {"type": "boolean", "description": "Publish the report now"}
        }, "required": ["publish"]});
        let question = format!("The report for {org} is ready ({sections} sections). Publish it?");
        match ctx.elicit("publish", &question, schema).await {
            Ok(Elicitation::Accept(c)) => c.get("publish") == Some(&json!(true)),
            Ok(_) => false,
            // The client cannot be asked here: the report stays a draft.
            Err(AskError::NotSupported(_)) => false,
            Err(e) => return Err(ToolError::new(format!("Could not ask about publishing: {e}"))),
        }
    } else {
        false
    };
    Ok(ToolOutput::structured(Report {
        organization: org,
        sections,
        published,
    }))
}

/// Whether to ask before finishing: in a task (the answer comes by `tasks/update`) or on a 2025
/// event stream, when the client can elicit. A 2026-07-28 call answered in its request would
/// run again from the start with the answer, redoing the work: it is not asked.
fn may_ask(ctx: &ToolContext) -> bool {
    match ctx.client_supports("elicitation") {
        // 2025: the client said so at initialize, which a stateless server does not keep; ask
        // and take "not supported" for a no.
        None => true,
        Some(declared) => declared && ctx.in_task(),
    }
}

register_tool!(
    run,
    Tool {
        title: Some("Export organization report"),
        description: "Builds a report for the caller's organization, section by section (slow: about two seconds a section), then asks whether to publish it. Runs as a task for clients that support tasks.",
        output_schema: Some(schema_of::<Report>),
        annotations: Annotations {
            read_only: Some(false),
            destructive: Some(false),
            idempotent: Some(true),
            open_world: Some(false),
        },
        asks: true,
        task: TaskSupport::Optional,
        ..Tool::DEFAULT
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn builds_a_draft_for_the_callers_organization_when_it_cannot_ask() {
        let ctx = crate::tool::testing::context(Some(("bob", Some("acme"))));
        let args = Args {
            sections: Some(2),
            seconds_per_section: Some(0.0),
        };
        let out = run(ctx, args).await.unwrap().structured.unwrap();
        assert_eq!(out["organization"], "acme");
        assert_eq!(out["sections"], 2);
        assert_eq!(out["published"], false);
    }

    #[tokio::test]
    async fn no_organization_is_a_tool_error() {
        let ctx = crate::tool::testing::context(Some(("bob", None)));
        let args = Args {
            sections: None,
            seconds_per_section: None,
        };
        assert!(run(ctx, args).await.is_err());
    }
}

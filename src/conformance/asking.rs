//! The conformance fixtures of protocol revision 2026-07-28 and the tools that ask the client
//! (2025 revisions: requests on the call's stream; 2026-07-28: `input_required` results).

use std::time::Duration;

use super::*;

/// A fixture that asks the client (`asks: true`), registered under `$name`.
macro_rules! asking_fixture {
    ($name:literal, $description:literal, $handler:expr, schema = $schema:expr $(, $field:ident: $value:expr)* $(,)?) => {
        register_tool!($handler, schema = $schema, Tool {
            name: Some($name),
            description: $description,
            asks: true,
            $($field: $value,)*
            ..Tool::DEFAULT
        });
    };
    ($name:literal, $description:literal, $handler:expr $(, $field:ident: $value:expr)* $(,)?) => {
        register_tool!($handler, Tool {
            name: Some($name),
            description: $description,
            asks: true,
            $($field: $value,)*
            ..Tool::DEFAULT
        });
    };
}

// --- The 2026-07-28 suite's fixtures.

asking_fixture!(
    "test_missing_capability",
    "Needs the client's sampling capability; refused with -32021 without it (conformance fixture).",
    |ctx: ToolContext, _: NoArgs| async move {
        let reply = ctx.sample_text("reply", "Say hello", 20).await?;
        Ok(ToolOutput::text(format!(
            "The client declared sampling: {reply}"
        )))
    },
    client_capabilities: &["sampling"],
);

asking_fixture!(
    "test_streaming_elicitation",
    "Streams progress, then asks the user through the revision's own way (conformance fixture).",
    |ctx: ToolContext, _: NoArgs| async move {
        ctx.progress(1.0, Some(2.0), Some("working"));
        tokio::time::sleep(Duration::from_millis(20)).await;
        // 2026-07-28: this question ends the run with input_required, never a request on the
        // stream.
        let schema = json!({"type": "object", "properties": {"ok": {"type": "boolean"}}});
        let answer = ctx.elicit("go_on", "Go on?", schema).await?;
        ctx.progress(2.0, Some(2.0), Some("done"));
        Ok(ToolOutput::text(format!(
            "Streamed, then asked: {}",
            outcome(&answer)
        )))
    },
    client_capabilities: &["elicitation"],
);

register_tool!(
    |ctx: ToolContext, _: NoArgs| async move {
        ctx.log(LogLevel::Info, "test_logging_tool ran");
        tokio::time::sleep(Duration::from_millis(20)).await;
        Ok(ToolOutput::text("Logged at info."))
    },
    Tool {
        name: Some("test_logging_tool"),
        description: "Logs at info; the client hears it only when its _meta asks for a log level (conformance fixture).",
        ..Tool::DEFAULT
    }
);

/// A fixture tool that announces one list change.
macro_rules! change_trigger {
    ($name:literal, $change:expr, $what:literal, $what_lower:literal) => {
        register_tool!(
            |ctx: ToolContext, _: NoArgs| async move {
                ctx.publish($change);
                Ok(ToolOutput::text(concat!($what, " list change announced.")))
            },
            Tool {
                name: Some($name),
                description: concat!(
                    "Announces a ",
                    $what_lower,
                    " list change to subscriptions/listen streams (conformance fixture)."
                ),
                ..Tool::DEFAULT
            }
        );
    };
}

change_trigger!(
    "test_trigger_tool_change",
    Change::ToolsListChanged,
    "Tool",
    "tool"
);
change_trigger!(
    "test_trigger_prompt_change",
    Change::PromptsListChanged,
    "Prompt",
    "prompt"
);

register_tool!(
    |_: ToolContext, args: Value| async move {
        let region = args["region"].as_str().unwrap_or_default().to_string();
        Ok(ToolOutput::text(format!("region {region}")))
    },
    schema = || json!({
        "type": "object",
        "properties": {
            "region": {"type": "string", "description": "Where to run.", "x-mcp-header": "Region"}
        },
        "required": ["region"],
        "additionalProperties": false
    }),
    Tool {
        name: Some("test_header_param"),
        description: "Echoes a region its client mirrors into the Mcp-Param-Region header (conformance fixture).",
        ..Tool::DEFAULT
    }
);

// --- Tools that ask (2025 revisions: requests on the call's stream; 2026-07-28: input_required).

fn name_schema(field: &str) -> Value {
    json!({"type": "object", "properties": {field: {"type": "string"}}, "required": [field]})
}

/// Asks the user to fill in `schema` and reports the outcome after `prefix`, as the 2025
/// fixtures do.
async fn elicit_and_report(
    ctx: &ToolContext,
    key: &str,
    message: &str,
    schema: Value,
    prefix: &str,
) -> ToolResult {
    let answer = ctx.elicit(key, message, schema).await?;
    Ok(ToolOutput::text(format!("{prefix}: {}", outcome(&answer))))
}

/// The text of an elicitation outcome, as the 2025 fixtures report it.
fn outcome(e: &Elicitation) -> String {
    match e {
        Elicitation::Accept(c) => format!("action=accept, content={}", Value::Object(c.clone())),
        Elicitation::Decline => "action=decline".into(),
        Elicitation::Cancel => "action=cancel".into(),
    }
}

fn field(e: &Elicitation, name: &str) -> String {
    match e {
        Elicitation::Accept(c) => c
            .get(name)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
        _ => String::new(),
    }
}

#[derive(Deserialize)]
struct PromptArgs {
    prompt: String,
}

asking_fixture!(
    "test_sampling",
    "Asks the client's model to answer a prompt (conformance fixture).",
    |ctx: ToolContext, a: PromptArgs| async move {
        let reply = ctx.sample_text("reply", &a.prompt, 100).await?;
        Ok(ToolOutput::text(format!("LLM response: {reply}")))
    },
    schema = || json!({"type": "object", "properties": {"prompt": {"type": "string"}}, "required": ["prompt"]}),
);

#[derive(Deserialize)]
struct MessageArgs {
    message: String,
}

asking_fixture!(
    "test_elicitation",
    "Asks the user for a username and an email (conformance fixture).",
    |ctx: ToolContext, a: MessageArgs| async move {
        let schema = json!({
            "type": "object",
            "properties": {"username": {"type": "string"}, "email": {"type": "string"}},
            "required": ["username", "email"]
        });
        elicit_and_report(&ctx, "user", &a.message, schema, "User response").await
    },
    schema = || json!({"type": "object", "properties": {"message": {"type": "string"}}, "required": ["message"]}),
);

/// A fixture that asks the user to fill in a form (`$schema`) and reports what came back.
macro_rules! form_fixture {
    ($name:literal, $description:literal, $key:literal, $message:literal, $schema:tt $(,)?) => {
        asking_fixture!(
            $name,
            $description,
            |ctx: ToolContext, _: NoArgs| async move {
                let schema = json!($schema);
                elicit_and_report(&ctx, $key, $message, schema, "Elicitation completed").await
            }
        );
    };
}

form_fixture!(
    "test_elicitation_sep1034_defaults",
    "Asks for a form whose fields carry defaults (conformance fixture).",
    "defaults",
    "Please review and update the form fields with defaults",
    {
        "type": "object",
        "properties": {
            "name": {"type": "string", "default": "John Doe"},
            "age": {"type": "integer", "default": 30},
            "score": {"type": "number", "default": 95.5},
            "status": {"type": "string", "enum": ["active", "inactive", "pending"], "default": "active"},
            "verified": {"type": "boolean", "default": true}
        }
    }
);

form_fixture!(
    "test_elicitation_sep1330_enums",
    "Asks for a form with every enum style (conformance fixture).",
    "enums",
    "Please choose from the options",
    {
        "type": "object",
        "properties": {
            "untitledSingle": {"type": "string", "enum": ["option1", "option2", "option3"]},
            "titledSingle": {"type": "string", "oneOf": [
                {"const": "value1", "title": "First Option"},
                {"const": "value2", "title": "Second Option"},
                {"const": "value3", "title": "Third Option"}
            ]},
            "legacyEnum": {"type": "string", "enum": ["opt1", "opt2", "opt3"],
                "enumNames": ["Option One", "Option Two", "Option Three"]},
            "untitledMulti": {"type": "array", "items": {"type": "string", "enum": ["option1", "option2", "option3"]}},
            "titledMulti": {"type": "array", "items": {"anyOf": [
                {"const": "value1", "title": "First Choice"},
                {"const": "value2", "title": "Second Choice"},
                {"const": "value3", "title": "Third Choice"}
            ]}}
        }
    }
);

asking_fixture!(
    "test_input_required_result_elicitation",
    "Asks the user's name, then greets them (conformance fixture).",
    |ctx: ToolContext, _: NoArgs| async move {
        let answer = ctx
            .elicit("user_name", "What is your name?", name_schema("name"))
            .await?;
        Ok(ToolOutput::text(format!(
            "Hello, {}!",
            field(&answer, "name")
        )))
    },
);

asking_fixture!(
    "test_input_required_result_sampling",
    "Asks the client's model a question (conformance fixture).",
    |ctx: ToolContext, _: NoArgs| async move {
        let reply = ctx
            .sample_text("capital_question", "What is the capital of France?", 100)
            .await?;
        Ok(ToolOutput::text(format!("The model says: {reply}")))
    },
);

asking_fixture!(
    "test_input_required_result_list_roots",
    "Asks for the client's roots (conformance fixture).",
    |ctx: ToolContext, _: NoArgs| async move {
        let roots = ctx.roots("client_roots").await?;
        let uris: Vec<&str> = roots.iter().map(|r| r.uri.as_str()).collect();
        Ok(ToolOutput::text(format!("Roots: {}", uris.join(", "))))
    },
);

asking_fixture!(
    "test_input_required_result_request_state",
    "Asks for a confirmation; answers state-ok once the state came back intact (conformance fixture).",
    |ctx: ToolContext, _: NoArgs| async move {
        let schema = json!({"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]});
        ctx.elicit("confirm", "Please confirm", schema).await?;
        // Reaching this point in a second round means the requestState was opened and matched.
        Ok(ToolOutput::text(
            "state-ok: the request state came back intact",
        ))
    },
);

asking_fixture!(
    "test_input_required_result_tampered_state",
    "Asks for a confirmation; a tampered requestState is refused (conformance fixture).",
    |ctx: ToolContext, _: NoArgs| async move {
        let schema = json!({"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]});
        ctx.elicit("confirm", "Please confirm", schema).await?;
        Ok(ToolOutput::text("confirmed"))
    },
);

asking_fixture!(
    "test_input_required_result_multiple_inputs",
    "Asks the user, the model and the client's roots at once (conformance fixture).",
    |ctx: ToolContext, _: NoArgs| async move {
        let answers = ctx
            .ask(vec![
                (
                    "user_name",
                    Question::elicit("What is your name?", name_schema("name")),
                ),
                ("greeting", Question::sample_text("Generate a greeting", 50)),
                ("client_roots", Question::Roots),
            ])
            .await?;
        let name = match &answers[0] {
            Answer::Elicitation(e) => field(e, "name"),
            _ => String::new(),
        };
        let greeting = answers[1].text().unwrap_or_default();
        Ok(ToolOutput::text(format!(
            "{greeting} {name} (all three answers received)"
        )))
    },
);

asking_fixture!(
    "test_input_required_result_multi_round",
    "Asks two questions, one after the other (conformance fixture).",
    |ctx: ToolContext, _: NoArgs| async move {
        let name = ctx
            .elicit("step1", "Step 1: What is your name?", name_schema("name"))
            .await?;
        let color = ctx
            .elicit(
                "step2",
                "Step 2: What is your favorite color?",
                name_schema("color"),
            )
            .await?;
        Ok(ToolOutput::text(format!(
            "{} likes {}",
            field(&name, "name"),
            field(&color, "color")
        )))
    },
);

asking_fixture!(
    "test_input_required_result_capabilities",
    "Asks only through what the client declared (conformance fixture).",
    |ctx: ToolContext, _: NoArgs| async move {
        if ctx.client_supports("elicitation") != Some(false) {
            let answer = ctx
                .elicit("user_name", "What is your name?", name_schema("name"))
                .await?;
            return Ok(ToolOutput::text(format!(
                "Hello, {}!",
                field(&answer, "name")
            )));
        }
        if ctx.client_supports("sampling") != Some(false) {
            let reply = ctx
                .sample_text("greeting", "Generate a greeting", 50)
                .await?;
            return Ok(ToolOutput::text(reply));
        }
        Ok(ToolOutput::text(
            "The client can answer nothing; done without asking.",
        ))
    },
);

register_prompt!(PromptDef {
    name: "test_input_required_result_prompt",
    title: Some("A prompt that asks"),
    description: "Asks the user for context before building its message (conformance fixture).",
    arguments: &[],
    scopes: &[],
    get: |ctx, _| Box::pin(async move {
        let answer = ctx
            .elicit(
                "user_context",
                "What context should the prompt use?",
                name_schema("context"),
            )
            .await
            .map_err(|e| e.to_string())?;
        Ok(PromptResult {
            description: Some("A prompt built from the user's context".into()),
            messages: vec![user_text(format!("Context: {}", field(&answer, "context")))],
        })
    }),
    complete: None,
    asks: true,
});

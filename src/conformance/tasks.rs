//! The fixtures of the tasks extension's scenarios (`tasks-*` in the 2026-07-28 suite): the
//! names, arguments and behaviour its `tools/list` must show.

use std::time::Duration;

use super::*;

#[derive(Deserialize, JsonSchema)]
struct Name {
    name: String,
}

register_tool!(
    |_: ToolContext, a: Name| async move { Ok(ToolOutput::text(format!("Hello, {}!", a.name))) },
    Tool {
        name: Some("greet"),
        description: "Greets by name; never a task (conformance fixture).",
        ..Tool::DEFAULT
    }
);

#[derive(Deserialize, JsonSchema)]
struct Compute {
    /// How long the work takes.
    seconds: f64,
    label: Option<String>,
}

register_tool!(
    |ctx: ToolContext, a: Compute| async move {
        // A quarter second more than asked: a one-second job is reliably still running when a
        // call becomes a task (mcp.task_after_ms, 1 s by default).
        let work = Duration::from_secs_f64(a.seconds.clamp(0.0, 3600.0) + 0.25);
        let label = a.label.unwrap_or_default();
        tokio::select! {
            () = tokio::time::sleep(work) => {}
            () = ctx.cancelled() => return Err(ToolError::new(format!("{label} was cancelled"))),
        }
        Ok(ToolOutput::text(format!(
            "Computed {label} in {} s",
            a.seconds
        )))
    },
    Tool {
        name: Some("slow_compute"),
        description: "Sleeps `seconds`, then answers; a task when it runs long (conformance fixture).",
        task: TaskSupport::Optional,
        ..Tool::DEFAULT
    }
);

register_tool!(
    |_: ToolContext, _: NoArgs| async move {
        tokio::time::sleep(Duration::from_secs(1)).await;
        Err::<ToolOutput, _>(ToolError::new("The job failed (a tool error, by design)"))
    },
    Tool {
        name: Some("failing_job"),
        description: "Always a task; reports a tool error after a second (conformance fixture).",
        task: TaskSupport::Required,
        ..Tool::DEFAULT
    }
);

register_tool!(
    |_: ToolContext, _: NoArgs| async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        if true {
            panic!("protocol_error_job fails on purpose");
        }
        Ok(ToolOutput::text("unreachable"))
    },
    Tool {
        name: Some("protocol_error_job"),
        description: "Always a task; panics, so the task fails with -32603 (conformance fixture).",
        task: TaskSupport::Required,
        ..Tool::DEFAULT
    }
);

#[derive(Deserialize, JsonSchema)]
struct Delete {
    filename: String,
}

register_tool!(
    |ctx: ToolContext, a: Delete| async move {
        let schema = json!({"type": "object", "properties": {"confirm": {"type": "boolean"}}});
        let answer = ctx
            .elicit("confirm", &format!("Delete {}?", a.filename), schema)
            .await?;
        let yes =
            matches!(&answer, Elicitation::Accept(c) if c.get("confirm") == Some(&json!(true)));
        Ok(ToolOutput::text(if yes {
            format!("Deleted {}", a.filename)
        } else {
            format!("Kept {}", a.filename)
        }))
    },
    Tool {
        name: Some("confirm_delete"),
        description: "Always a task; asks before it deletes (conformance fixture).",
        task: TaskSupport::Required,
        asks: true,
        ..Tool::DEFAULT
    }
);

register_tool!(
    |ctx: ToolContext, _: NoArgs| async move {
        let schema = json!({"type": "object", "properties": {
            "name": {"type": "string"}, "confirm": {"type": "boolean"}
        }});
        let answers = ctx
            .ask(vec![
                ("first", Question::elicit("First input?", schema.clone())),
                ("second", Question::elicit("Second input?", schema)),
            ])
            .await?;
        Ok(ToolOutput::text(format!(
            "Received {} answers",
            answers.len()
        )))
    },
    Tool {
        name: Some("multi_input"),
        description: "Always a task; asks two questions at once (conformance fixture).",
        task: TaskSupport::Required,
        asks: true,
        ..Tool::DEFAULT
    }
);

register_tool!(
    |ctx: ToolContext, _: NoArgs| async move {
        // Asked before the call becomes a task: answered in the request's rounds.
        let schema = json!({"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]});
        let answer = ctx
            .elicit("user_name", "What is your name?", schema)
            .await?;
        let name = match &answer {
            Elicitation::Accept(c) => c
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            _ => "stranger".to_string(),
        };
        // Then the long part, which becomes a task.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        Ok(ToolOutput::text(format!(
            "Hello, {name}! The work is done."
        )))
    },
    Tool {
        name: Some("test_tool_with_task"),
        description: "Asks a name in the request, then works long enough to become a task (conformance fixture).",
        task: TaskSupport::Optional,
        asks: true,
        ..Tool::DEFAULT
    }
);

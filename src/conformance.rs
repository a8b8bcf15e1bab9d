//! The MCP conformance suite's fixtures (cargo feature `conformance`): the tools, resources and
//! prompts its server scenarios call, with the exact names, texts and behaviour the suite
//! expects. Without the feature none of this is compiled into the binary.

use std::time::Duration;

use crate::tool::prelude::*;

const RED_PIXEL_PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==";
const SILENT_WAV: &str = "UklGRiYAAABXQVZFZm10IBAAAAABAAEAQB8AAAB9AAACABAAZGF0YQIAAAA=";

fn png() -> Content {
    Content::Image {
        data: RED_PIXEL_PNG.into(),
        mime_type: "image/png".into(),
    }
}

register_tool!(
    |_: ToolContext, _: NoArgs| async {
        Ok(ToolOutput::text(
            "This is a simple text response for testing.",
        ))
    },
    Tool {
        name: Some("test_simple_text"),
        description: "Returns a simple text response (conformance fixture).",
        ..Tool::DEFAULT
    }
);

register_tool!(
    |_: ToolContext, _: NoArgs| async { Ok(ToolOutput::content(vec![png()])) },
    Tool {
        name: Some("test_image_content"),
        description: "Returns an image (conformance fixture).",
        ..Tool::DEFAULT
    }
);

register_tool!(
    |_: ToolContext, _: NoArgs| async {
        Ok(ToolOutput::content(vec![Content::Audio {
            data: SILENT_WAV.into(),
            mime_type: "audio/wav".into(),
        }]))
    },
    Tool {
        name: Some("test_audio_content"),
        description: "Returns audio (conformance fixture).",
        ..Tool::DEFAULT
    }
);

register_tool!(
    |_: ToolContext, _: NoArgs| async {
        Ok(ToolOutput::content(vec![Content::Resource {
            resource: ResourceContents::Text {
                uri: "test://embedded-resource".into(),
                mime_type: Some("text/plain".into()),
                text: "This is an embedded resource content.".into(),
            },
        }]))
    },
    Tool {
        name: Some("test_embedded_resource"),
        description: "Returns an embedded resource (conformance fixture).",
        ..Tool::DEFAULT
    }
);

register_tool!(
    |_: ToolContext, _: NoArgs| async {
        Ok(ToolOutput::content(vec![
            Content::text("Multiple content types test:"),
            png(),
            Content::Resource {
                resource: ResourceContents::Text {
                    uri: "test://mixed-content-resource".into(),
                    mime_type: Some("application/json".into()),
                    text: "{\"test\":\"data\",\"value\":123}".into(),
                },
            },
        ]))
    },
    Tool {
        name: Some("test_multiple_content_types"),
        description: "Returns text, an image and a resource (conformance fixture).",
        ..Tool::DEFAULT
    }
);

register_tool!(
    |ctx: ToolContext, _: NoArgs| async move {
        ctx.log(LogLevel::Info, "Tool execution started");
        tokio::time::sleep(Duration::from_millis(50)).await;
        ctx.log(LogLevel::Info, "Tool processing data");
        tokio::time::sleep(Duration::from_millis(50)).await;
        ctx.log(LogLevel::Info, "Tool execution completed");
        Ok(ToolOutput::text("Tool with logging executed successfully"))
    },
    Tool {
        name: Some("test_tool_with_logging"),
        description: "Sends three log messages while it runs (conformance fixture).",
        ..Tool::DEFAULT
    }
);

register_tool!(
    |_: ToolContext, _: NoArgs| async {
        Err(ToolError::new(
            "This tool intentionally returns an error for testing",
        ))
    },
    Tool {
        name: Some("test_error_handling"),
        description: "Always fails with a tool error (conformance fixture).",
        ..Tool::DEFAULT
    }
);

register_tool!(
    |ctx: ToolContext, _: NoArgs| async move {
        ctx.progress(0.0, Some(100.0), None);
        tokio::time::sleep(Duration::from_millis(50)).await;
        ctx.progress(50.0, Some(100.0), None);
        tokio::time::sleep(Duration::from_millis(50)).await;
        ctx.progress(100.0, Some(100.0), None);
        Ok(ToolOutput::text("Progress test completed"))
    },
    Tool {
        name: Some("test_tool_with_progress"),
        description: "Reports progress 0, 50 and 100 of 100 (conformance fixture).",
        ..Tool::DEFAULT
    }
);

register_tool!(
    |_: ToolContext, args: Value| async move { Ok(ToolOutput::text(format!("Received: {args}"))) },
    schema = || json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "$defs": {
            "address": {
                "$anchor": "addressDef",
                "type": "object",
                "properties": {"street": {"type": "string"}, "city": {"type": "string"}}
            }
        },
        "properties": {
            "name": {"type": "string"},
            "address": {"$ref": "#/$defs/address"},
            "contactMethod": {"type": "string", "enum": ["phone", "email"]},
            "phone": {"type": "string"},
            "email": {"type": "string"}
        },
        "allOf": [{"anyOf": [{"required": ["phone"]}, {"required": ["email"]}]}],
        "if": {
            "properties": {"contactMethod": {"const": "phone"}},
            "required": ["contactMethod"]
        },
        "then": {"required": ["phone"]},
        "else": {"required": ["email"]},
        "additionalProperties": false
    }),
    Tool {
        name: Some("json_schema_2020_12_tool"),
        description: "Declares a JSON Schema 2020-12 input schema with $defs, $anchor, $ref, allOf/anyOf and if/then/else (conformance fixture).",
        ..Tool::DEFAULT
    }
);

register_resource!(ResourceDef {
    uri: "test://static-text",
    name: "static-text",
    title: Some("Static text resource"),
    description: "A static text resource (conformance fixture).",
    mime_type: Some("text/plain"),
    scopes: &[],
    read: |_| Box::pin(async {
        Ok(vec![ResourceContents::Text {
            uri: "test://static-text".into(),
            mime_type: Some("text/plain".into()),
            text: "This is the content of the static text resource.".into(),
        }])
    }),
    asks: false,
});

register_resource!(ResourceDef {
    uri: "test://static-binary",
    name: "static-binary",
    title: Some("Static binary resource"),
    description: "A static PNG resource (conformance fixture).",
    mime_type: Some("image/png"),
    scopes: &[],
    read: |_| Box::pin(async {
        Ok(vec![ResourceContents::Blob {
            uri: "test://static-binary".into(),
            mime_type: Some("image/png".into()),
            blob: RED_PIXEL_PNG.into(),
        }])
    }),
    asks: false,
});

register_resource!(ResourceDef {
    uri: "test://watched-resource",
    name: "watched-resource",
    title: Some("Watched resource"),
    description: "A resource clients may subscribe to (conformance fixture).",
    mime_type: Some("text/plain"),
    scopes: &[],
    read: |_| Box::pin(async {
        Ok(vec![ResourceContents::Text {
            uri: "test://watched-resource".into(),
            mime_type: Some("text/plain".into()),
            text: "Watched resource content".into(),
        }])
    }),
    asks: false,
});

register_resource_template!(ResourceTemplateDef {
    uri_template: "test://template/{id}/data",
    name: "template-data",
    title: Some("Templated data"),
    description: "Data for an id (conformance fixture).",
    mime_type: Some("application/json"),
    scopes: &[],
    read: |_, uri, vars| Box::pin(async move {
        let id = vars
            .get("id")
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_string();
        let text = json!({"id": id, "templateTest": true, "data": format!("Data for ID: {id}")});
        Ok(vec![ResourceContents::Text {
            uri,
            mime_type: Some("application/json".into()),
            text: text.to_string(),
        }])
    }),
    complete: None,
    asks: false,
});

fn user_text(text: impl Into<String>) -> PromptMessage {
    PromptMessage {
        role: Role::User,
        content: Content::text(text),
    }
}

register_prompt!(PromptDef {
    name: "test_simple_prompt",
    title: Some("Simple prompt"),
    description: "A prompt without arguments (conformance fixture).",
    arguments: &[],
    scopes: &[],
    get: |_, _| Box::pin(async {
        Ok(PromptResult {
            description: None,
            messages: vec![user_text("This is a simple prompt for testing.")],
        })
    }),
    complete: None,
    asks: false,
});

register_prompt!(PromptDef {
    name: "test_prompt_with_arguments",
    title: Some("Prompt with arguments"),
    description: "A prompt with two required arguments (conformance fixture).",
    arguments: &[
        PromptArg {
            name: "arg1",
            description: "First test argument",
            required: true,
        },
        PromptArg {
            name: "arg2",
            description: "Second test argument",
            required: true,
        },
    ],
    scopes: &[],
    get: |_, args| Box::pin(async move {
        let a = |k: &str| {
            args.get(k)
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_string()
        };
        Ok(PromptResult {
            description: None,
            messages: vec![user_text(format!(
                "Prompt with arguments: arg1='{}', arg2='{}'",
                a("arg1"),
                a("arg2")
            ))],
        })
    }),
    complete: Some(|_arg, value| {
        ["paris", "park", "party", "test", "testing"]
            .iter()
            .filter(|v| v.starts_with(value))
            .map(|v| v.to_string())
            .collect()
    }),
    asks: false,
});

register_prompt!(PromptDef {
    name: "test_prompt_with_embedded_resource",
    title: Some("Prompt with an embedded resource"),
    description: "A prompt that embeds a resource (conformance fixture).",
    arguments: &[PromptArg {
        name: "resourceUri",
        description: "URI of the resource to embed",
        required: true,
    }],
    scopes: &[],
    get: |_, args| Box::pin(async move {
        let uri = args
            .get("resourceUri")
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_string();
        Ok(PromptResult {
            description: None,
            messages: vec![
                PromptMessage {
                    role: Role::User,
                    content: Content::Resource {
                        resource: ResourceContents::Text {
                            uri,
                            mime_type: Some("text/plain".into()),
                            text: "Embedded resource content for testing.".into(),
                        },
                    },
                },
                user_text("Please process the embedded resource above."),
            ],
        })
    }),
    complete: None,
    asks: false,
});

register_prompt!(PromptDef {
    name: "test_prompt_with_image",
    title: Some("Prompt with an image"),
    description: "A prompt that includes an image (conformance fixture).",
    arguments: &[],
    scopes: &[],
    get: |_, _| Box::pin(async {
        Ok(PromptResult {
            description: None,
            messages: vec![
                PromptMessage {
                    role: Role::User,
                    content: png(),
                },
                user_text("Please analyze the image above."),
            ],
        })
    }),
    complete: None,
    asks: false,
});

// The 2026-07-28 suite's fixtures and the tools that ask.
mod asking;
mod tasks;

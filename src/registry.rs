//! The registry of tools, resources and prompts: collected from `inventory` once at startup,
//! checked (names, descriptions, schemas), sorted, with every JSON Schema validator compiled once.

use std::collections::{BTreeSet, HashMap};

use jsonschema::Validator;
use serde_json::{Value, json};

use crate::hashing::BuildFold;
use crate::prompt::PromptDef;
use crate::resource::{ResourceDef, ResourceTemplateDef};
pub use crate::schema::{compile_schema, first_error};
use crate::tool::{MAX_VIEW_BYTES, ToolDef, ViewDef, ViewSettings, Visibility};

/// Why the registry cannot be built. Names the offending registration.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("tool {name:?}: {problem}")]
    Tool { name: String, problem: String },
    #[error("resource {uri:?}: {problem}")]
    Resource { uri: String, problem: String },
    #[error("prompt {name:?}: {problem}")]
    Prompt { name: String, problem: String },
    #[error("{file}: {problem}")]
    View { file: String, problem: String },
}

/// A checked tool with its compiled validators and its `tools/list` entry.
pub struct Tool {
    pub def: &'static ToolDef,
    pub input: Validator,
    pub output: Option<Validator>,
    pub listing: Value,
    /// Parameters mirrored into `Mcp-Param-*` headers (`x-mcp-header`).
    pub header_params: Vec<crate::header_params::HeaderParam>,
    /// MCP Apps: the view of the tool's file (an index into `Registry::views`), and the
    /// listing that names it, for clients that render views.
    pub view: Option<usize>,
    pub listing_ui: Option<Value>,
}

impl Tool {
    /// Only its view calls it (MCP Apps visibility `["app"]`).
    pub fn app_only(&self) -> bool {
        self.view.is_some() && self.def.tool.visibility == Visibility::App
    }
}

pub struct Registry {
    pub tools: Vec<Tool>,
    tool_index: HashMap<&'static str, usize, BuildFold>,
    pub resources: Vec<&'static ResourceDef>,
    pub templates: Vec<&'static ResourceTemplateDef>,
    pub prompts: Vec<&'static PromptDef>,
    /// MCP Apps views (`tools/<name>.html`), sorted by file.
    pub views: Vec<&'static crate::views::View>,
}

/// MCP tool-name rule: 1-128 characters of `A-Za-z0-9_.-`.
pub fn valid_tool_name(name: &str) -> bool {
    (1..=128).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
}

fn scopes_valid(scopes: &[&str]) -> bool {
    scopes.iter().all(|s| crate::auth::valid_scope_token(s))
}

impl Registry {
    /// Whether a registered tool can run as a task (the tasks extension is then served).
    pub fn has_task_tools(&self) -> bool {
        self.tools
            .iter()
            .any(|t| t.def.tool.task != crate::tool::TaskSupport::Never)
    }

    /// The first registration that may ask the client (`asks: true`), named for a message.
    pub fn first_asker(&self) -> Option<String> {
        let tool = self
            .tools
            .iter()
            .find(|t| t.def.tool.asks)
            .map(|t| format!("tool {}", t.def.name));
        let prompt = || {
            self.prompts
                .iter()
                .find(|p| p.asks)
                .map(|p| format!("prompt {}", p.name))
        };
        let resource = || {
            self.resources
                .iter()
                .find(|r| r.asks)
                .map(|r| format!("resource {}", r.uri))
        };
        let template = || {
            self.templates
                .iter()
                .find(|t| t.asks)
                .map(|t| format!("resource template {}", t.uri_template))
        };
        tool.or_else(prompt).or_else(resource).or_else(template)
    }

    /// Everything registered in this binary.
    pub fn from_inventory() -> Result<Registry, RegistryError> {
        Registry::build(
            inventory::iter::<ToolDef>.into_iter().collect(),
            inventory::iter::<ResourceDef>.into_iter().collect(),
            inventory::iter::<ResourceTemplateDef>.into_iter().collect(),
            inventory::iter::<PromptDef>.into_iter().collect(),
            inventory::iter::<ViewDef>.into_iter().collect(),
        )
    }

    pub fn build(
        mut tool_defs: Vec<&'static ToolDef>,
        mut resources: Vec<&'static ResourceDef>,
        mut templates: Vec<&'static ResourceTemplateDef>,
        mut prompts: Vec<&'static PromptDef>,
        views: Vec<&'static ViewDef>,
    ) -> Result<Registry, RegistryError> {
        // inventory's order is unspecified: sort once so every listing is deterministic.
        tool_defs.sort_by_key(|d| d.name);
        resources.sort_by_key(|d| d.uri);
        templates.sort_by_key(|d| d.uri_template);
        prompts.sort_by_key(|d| d.name);

        let mut tools = Vec::with_capacity(tool_defs.len());
        let mut tool_index = HashMap::default();
        for def in tool_defs {
            if tool_index.contains_key(def.name) {
                return Err(RegistryError::Tool {
                    name: def.name.to_string(),
                    problem: "registered twice (tool names must be unique)".into(),
                });
            }
            tool_index.insert(def.name, tools.len());
            tools.push(Tool::checked(def)?);
        }
        check_resources(&resources, &templates)?;
        check_prompts(&prompts)?;
        let views = attach_views(&mut tools, views)?;
        Ok(Registry {
            tools,
            tool_index,
            resources,
            templates,
            prompts,
            views,
        })
    }

    /// The prompt registered under `name`.
    pub fn prompt(&self, name: &str) -> Option<&'static PromptDef> {
        self.prompts.iter().copied().find(|p| p.name == name)
    }

    /// The resource template registered as `uri_template` (exactly).
    pub fn template(&self, uri_template: &str) -> Option<&'static ResourceTemplateDef> {
        self.templates
            .iter()
            .copied()
            .find(|t| t.uri_template == uri_template)
    }

    /// The view served at `uri`.
    pub fn view(&self, uri: &str) -> Option<&'static crate::views::View> {
        self.views.iter().copied().find(|v| v.uri == uri)
    }

    pub fn tool(&self, name: &str) -> Option<&Tool> {
        self.tool_index.get(name).map(|&i| &self.tools[i])
    }

    /// Every scope any registration declares (for `scopes_supported`).
    pub fn declared_scopes(&self) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        let all = self
            .tools
            .iter()
            .flat_map(|t| t.def.tool.scopes)
            .chain(self.resources.iter().flat_map(|r| r.scopes))
            .chain(self.templates.iter().flat_map(|r| r.scopes))
            .chain(self.prompts.iter().flat_map(|p| p.scopes));
        for s in all {
            out.insert(s.to_string());
        }
        out
    }
}

impl Tool {
    /// A registration checked (name, description, scopes, schemas, header declarations) and
    /// compiled once: its validators and its `tools/list` entry.
    fn checked(def: &'static ToolDef) -> Result<Tool, RegistryError> {
        let err = |problem: String| RegistryError::Tool {
            name: def.name.to_string(),
            problem,
        };
        if !valid_tool_name(def.name) {
            return Err(err("name must be 1-128 characters of A-Za-z0-9_.-".into()));
        }
        if def.tool.description.trim().is_empty() {
            return Err(err("description must not be empty".into()));
        }
        if !scopes_valid(def.tool.scopes) {
            return Err(err("a required scope is not a valid scope token".into()));
        }
        let input_schema = (def.input_schema)();
        if input_schema.get("type") != Some(&json!("object")) {
            return Err(err(
                "input schema root must have \"type\": \"object\" (arguments are a struct deriving JsonSchema; a tool without arguments takes `_: NoArgs`; a `Value` argument needs `schema = || json!(..)`)".into(),
            ));
        }
        let input = compile_schema(&input_schema).map_err(|p| err(format!("input {p}")))?;
        let header_params = crate::header_params::scan(&input_schema)
            .map_err(|p| err(format!("input schema: {p}")))?;
        if def
            .tool
            .client_capabilities
            .iter()
            .any(|c| c.is_empty() || !c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
        {
            return Err(err(
                "client_capabilities names capabilities like \"sampling\" or \"elicitation\""
                    .into(),
            ));
        }
        let (output, output_schema) = match def.tool.output_schema {
            Some(f) => {
                let schema = f();
                if schema.get("type") != Some(&json!("object")) {
                    return Err(err(
                        "output schema root must have \"type\": \"object\"".into()
                    ));
                }
                let v = compile_schema(&schema).map_err(|p| err(format!("output {p}")))?;
                (Some(v), Some(schema))
            }
            None => (None, None),
        };
        let mut listing = json!({
            "name": def.name,
            "description": def.tool.description,
            "inputSchema": input_schema,
        });
        if let Some(t) = def.tool.title {
            listing["title"] = json!(t);
        }
        if let Some(s) = output_schema {
            listing["outputSchema"] = s;
        }
        if let Some(a) = def.tool.annotations.to_json() {
            listing["annotations"] = a;
        }
        Ok(Tool {
            def,
            input,
            output,
            listing,
            header_params,
            view: None,
            listing_ui: None,
        })
    }
}

/// Checks every view and attaches it to the tools of its file (their `view` and `listing_ui`),
/// each view living as long as the process (a few, built once: listings borrow them). Refuses
/// a view without a tool, a page over [`MAX_VIEW_BYTES`], a visibility without a
/// view, and view settings on a tool that has none.
fn attach_views(
    tools: &mut [Tool],
    mut defs: Vec<&'static ViewDef>,
) -> Result<Vec<&'static crate::views::View>, RegistryError> {
    defs.sort_by_key(|d| d.stem);
    let mut views = Vec::with_capacity(defs.len());
    for def in defs {
        let err = |problem: String| RegistryError::View {
            file: format!("tools/{}.html", def.stem),
            problem,
        };
        if def.html.len() > MAX_VIEW_BYTES {
            return Err(err(format!(
                "{} bytes: a view is at most {MAX_VIEW_BYTES} bytes",
                def.html.len()
            )));
        }
        let of_file: Vec<usize> = (0..tools.len())
            .filter(|&i| tools[i].def.stem == def.stem)
            .collect();
        let Some(&first) = of_file.first() else {
            return Err(err(format!(
                "no tool is registered in tools/{}.rs",
                def.stem
            )));
        };
        let owner = of_file
            .iter()
            .copied()
            .find(|&i| tools[i].def.name == def.stem)
            .unwrap_or(first);
        let ui = crate::views::ui_meta(&tools[owner].def.tool.view).map_err(err)?;
        let uri: &'static str = Box::leak(format!("ui://{}/view.html", def.stem).into_boxed_str());
        let index = views.len();
        for &i in &of_file {
            let t = &mut tools[i];
            let mut listing = t.listing.clone();
            listing["_meta"] = json!({
                "ui": {"resourceUri": uri, "visibility": t.def.tool.visibility.names()},
                // The key hosts read before `ui.resourceUri` existed.
                "ui/resourceUri": uri,
            });
            t.listing_ui = Some(listing);
            t.view = Some(index);
        }
        views.push(&*Box::leak(Box::new(crate::views::View {
            uri,
            name: def.stem,
            html: def.html,
            meta: json!({ "ui": ui }),
            scopes: tools[owner].def.tool.scopes,
        })));
    }
    for t in tools.iter() {
        let tool = &t.def.tool;
        if t.view.is_none()
            && (tool.visibility != Visibility::ModelAndApp || tool.view != ViewSettings::DEFAULT)
        {
            return Err(RegistryError::Tool {
                name: t.def.name.to_string(),
                problem: format!(
                    "visibility and view settings need a view: add tools/{}.html",
                    t.def.stem
                ),
            });
        }
    }
    Ok(views)
}

/// Resources and templates: absolute, unique URIs, balanced template variables, names,
/// descriptions and scopes.
fn check_resources(
    resources: &[&'static ResourceDef],
    templates: &[&'static ResourceTemplateDef],
) -> Result<(), RegistryError> {
    let mut uris = BTreeSet::new();
    for r in resources {
        let err = |problem: &str| RegistryError::Resource {
            uri: r.uri.to_string(),
            problem: problem.to_string(),
        };
        if url::Url::parse(r.uri).is_err() {
            return Err(err("uri must be an absolute URI"));
        }
        if !uris.insert(r.uri) {
            return Err(err("registered twice (resource URIs must be unique)"));
        }
        if r.name.trim().is_empty() || r.description.trim().is_empty() {
            return Err(err("name and description must not be empty"));
        }
        if !scopes_valid(r.scopes) {
            return Err(err("a required scope is not a valid scope token"));
        }
    }
    for t in templates {
        let err = |problem: &str| RegistryError::Resource {
            uri: t.uri_template.to_string(),
            problem: problem.to_string(),
        };
        if !uris.insert(t.uri_template) {
            return Err(err("registered twice (resource URIs must be unique)"));
        }
        if !t.uri_template.contains('{')
            || t.uri_template.matches('{').count() != t.uri_template.matches('}').count()
        {
            return Err(err("uri template needs balanced {variables}"));
        }
        if t.name.trim().is_empty() || t.description.trim().is_empty() {
            return Err(err("name and description must not be empty"));
        }
        if !scopes_valid(t.scopes) {
            return Err(err("a required scope is not a valid scope token"));
        }
    }
    Ok(())
}

/// Prompts: names, unique arguments, descriptions and scopes.
fn check_prompts(prompts: &[&'static PromptDef]) -> Result<(), RegistryError> {
    let mut names = BTreeSet::new();
    for p in prompts {
        let err = |problem: &str| RegistryError::Prompt {
            name: p.name.to_string(),
            problem: problem.to_string(),
        };
        if !valid_tool_name(p.name) {
            return Err(err("name must be 1-128 characters of A-Za-z0-9_.-"));
        }
        if !names.insert(p.name) {
            return Err(err("registered twice (prompt names must be unique)"));
        }
        if p.description.trim().is_empty() {
            return Err(err("description must not be empty"));
        }
        let mut arg_names = BTreeSet::new();
        for a in p.arguments {
            if a.name.trim().is_empty() || !arg_names.insert(a.name) {
                return Err(err("argument names must be non-empty and unique"));
            }
        }
        if !scopes_valid(p.scopes) {
            return Err(err("a required scope is not a valid scope token"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_registered_tool_passes_the_startup_checks() {
        let reg = Registry::from_inventory().expect("registry builds");
        assert!(!reg.tools.is_empty());
        for t in &reg.tools {
            assert!(valid_tool_name(t.def.name), "{}", t.def.name);
            assert!(!t.def.tool.description.trim().is_empty(), "{}", t.def.name);
            assert_eq!(t.listing["inputSchema"]["type"], "object", "{}", t.def.name);
        }
        let names: Vec<_> = reg.tools.iter().map(|t| t.def.name).collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
    }

    #[test]
    fn tool_name_rules() {
        assert!(valid_tool_name("greet_user"));
        assert!(valid_tool_name("a.b-c_D9"));
        assert!(!valid_tool_name(""));
        assert!(!valid_tool_name("has space"));
        assert!(!valid_tool_name("comma,"));
        assert!(!valid_tool_name(&"x".repeat(129)));
        assert!(valid_tool_name(&"x".repeat(128)));
    }

    #[test]
    fn schemas_never_reach_the_network_or_files() {
        for r in ["https://example.com/s.json", "file:///etc/passwd"] {
            let s = json!({"type":"object","properties":{"a":{"$ref": r}}});
            assert!(compile_schema(&s).is_err(), "{r}");
        }
    }

    #[test]
    fn formats_are_validated() {
        let v = compile_schema(
            &json!({"type":"object","properties":{"e":{"type":"string","format":"email"}}}),
        )
        .unwrap();
        assert!(first_error(&v, &json!({"e":"not-an-email"})).is_some());
        assert!(first_error(&v, &json!({"e":"a@b.example"})).is_none());
    }

    #[test]
    fn errors_name_the_failing_field() {
        let v = compile_schema(&json!({"type":"object","properties":{"name":{"type":"string","minLength":1}},"required":["name"]}))
            .unwrap();
        assert!(first_error(&v, &json!({})).unwrap().contains("name"));
        assert!(
            first_error(&v, &json!({"name":""}))
                .unwrap()
                .contains("/name")
        );
    }

    #[test]
    fn catastrophic_patterns_stay_linear() {
        let v = compile_schema(
            &json!({"type":"object","properties":{"s":{"type":"string","pattern":"^(a+)+$"}}}),
        )
        .unwrap();
        let start = std::time::Instant::now();
        let input = json!({"s": format!("{}!", "a".repeat(100_000))});
        assert!(first_error(&v, &input).is_some());
        assert!(start.elapsed() < std::time::Duration::from_secs(2));
    }
}

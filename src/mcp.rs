//! The MCP dispatcher: classifies each request by protocol era and version, routes it to the
//! method handlers in `mcp/`, and maps every failure to a JSON-RPC error in exactly one place
//! (`McpError::to_error`). It knows nothing about HTTP beyond the `Outcome` it returns.

pub mod asking;
pub mod audit;
pub mod ending;
pub mod lifecycle;
pub mod listen;
pub mod model;
pub mod modern;
pub mod prompts;
pub mod resources;
pub mod result;
pub mod spans;
pub mod tasks;
pub mod tools;
pub mod views;

use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, RandomState};
use std::sync::{Arc, Mutex};

use futures_util::future::AbortHandle;
use serde_json::{Map, Value};

use crate::asking::Pending;
use crate::asking::seal::Seal;
use crate::auth::Caller;
use crate::budget::{self, Budgets};
use crate::changes::Changes;
use crate::config::McpSettings;
use crate::context::LogLevel;
use crate::context::Notifier;
pub use crate::failure::{McpError, Refused, retry_after_secs};
use crate::jsonrpc::{Id, Response};
use crate::mcp::audit::Audit;
use crate::metrics::{self, METRICS};
use crate::registry::Registry;
use crate::request_id::RequestId;
pub use crate::revision::{
    ALL_VERSIONS, BATCH_VERSION, DEFAULT_VERSION, Era, LATEST_VERSION, MODERN_VERSION,
    SUPPORTED_VERSIONS,
};
use model::{Method, Params, Parsed, Request, RequestParamsMeta};
use result::{
    Empty, ListChanged, Listing, Reply, ResourcesCapability, ServerCapabilities, ServerInfo,
    Stamped,
};

/// What handling one request produced.
#[derive(Debug)]
pub enum Outcome {
    Response(Response),
    /// Answered at the HTTP level: 403 (scopes), 429 (tool budget), 503 (shared store), and the
    /// 2026-07-28 pre-dispatch refusals (400, 404). Inside an event stream whose status is
    /// already sent, only its JSON-RPC error travels.
    Refused(Refused),
}

/// The per-request context the dispatcher gets from the transport.
pub struct Call {
    pub caller: Caller,
    pub era: Era,
    /// The validated `_meta` envelope of a 2026-07-28 request.
    pub meta: Option<modern::RequestMeta>,
    /// `Mcp-Param-*` headers (lower-case name after the prefix, decoded value; `None` when the
    /// value's encoding is invalid) of a 2026-07-28 request.
    pub param_headers: Vec<(String, Option<String>)>,
    pub tx: Option<crate::outbox::Outbox>,
    /// The request id of the HTTP request (`X-Request-Id`), for the audit trail.
    pub request_id: RequestId,
    /// The tool-call budget was already charged (with the request budget, in one round trip).
    pub tool_budget_charged: bool,
}

impl Call {
    /// A call of `caller` before its era is known (`era` is then set by the transport), with
    /// no envelope, headers or notification channel yet.
    pub fn new(caller: Caller, request_id: RequestId, tool_budget_charged: bool) -> Call {
        Call {
            caller,
            era: Era::Modern,
            meta: None,
            param_headers: Vec::new(),
            tx: None,
            request_id,
            tool_budget_charged,
        }
    }
}

/// One in-flight request that can be cancelled: who sent it, its id, and a serial of its own,
/// so two requests that share an id never unregister each other.
struct InFlight {
    serial: u64,
    caller: Caller,
    id: Id,
    abort: AbortHandle,
}

/// The hasher of a map whose keys are already hashes (fingerprints from a `RandomState`).
#[derive(Default)]
struct Prehashed(u64);

impl std::hash::Hasher for Prehashed {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// The MCP server: registry, settings, and the little cross-request state a stateless server
/// keeps (per-subject log levels, in-flight requests that can be cancelled, tool-call budgets).
pub struct Server {
    pub registry: Arc<Registry>,
    pub settings: McpSettings,
    pub filter_tools_by_scope: bool,
    /// Every budget (the tool-call budget is charged here).
    budgets: Arc<Budgets>,
    log_levels: Mutex<HashMap<String, LogLevel>>,
    /// In-flight requests by a fingerprint of `(subject, request id)`, hashed once per request:
    /// the guard that removes an entry finds it again without hashing the key again. Entries
    /// keep their caller and id, so a fingerprint shared by two keys cancels only the right one.
    in_flight: Mutex<HashMap<u64, Vec<InFlight>, BuildHasherDefault<Prehashed>>>,
    fingerprints: RandomState,
    serial: std::sync::atomic::AtomicU64,
    /// List-change and resource-update announcements, and the shutdown signal of listen streams.
    pub changes: Arc<Changes>,
    /// Open `subscriptions/listen` streams per subject.
    listeners: Mutex<HashMap<String, usize>>,
    /// Whether each listing is the same for every caller (no item of its kind is scope-filtered):
    /// such listings are `cacheScope: "public"`.
    public: modern::PublicListings,
    /// Questions asked on 2025 response streams, waiting for the client's POSTed answer.
    pub pending: Arc<Pending>,
    /// Seals 2026-07-28 `requestState`.
    seal: Seal,
    /// `tools/list` results, serialized once per set of visible tools, page and era.
    tool_lists: tools::ListCache,
    /// Who this server is, built once (every 2026-07-28 result carries it).
    info: Arc<ServerInfo>,
    /// The shared store (REDIS_URL), for what several instances must agree on.
    shared: Option<Arc<budget::Shared>>,
    /// `requestState`s already accepted by tools that are not idempotent.
    pub(crate) spent: asking::Spent,
    /// Tasks (2026-07-28 tasks extension): their records and the ones running here.
    pub tasks: Arc<crate::tasks::Tasks>,
}

/// What a `Server` is built from, besides the registry.
pub struct ServerParts {
    pub settings: McpSettings,
    pub filter_tools_by_scope: bool,
    /// Every budget; the dispatcher charges the tool-call budget.
    pub budgets: Arc<Budgets>,
    /// The shared store (REDIS_URL), for `requestState`s accepted once.
    pub shared: Option<Arc<budget::Shared>>,
    /// Seals 2026-07-28 `requestState`.
    pub seal: Seal,
    /// This instance's name in the ids of questions it waits on.
    pub instance_id: String,
}

const MAX_TRACKED_LOG_LEVELS: usize = 10_000;

impl Server {
    pub fn new(registry: Arc<Registry>, parts: ServerParts) -> Server {
        let ServerParts {
            settings,
            filter_tools_by_scope,
            budgets,
            shared,
            seal,
            instance_id,
        } = parts;
        let public = modern::PublicListings::of(&registry, filter_tools_by_scope);
        let tasks = crate::tasks::Tasks::new(
            shared.clone(),
            instance_id.clone(),
            crate::tasks::TaskLimits {
                max_per_subject: settings.max_tasks_per_subject,
                heartbeat: settings.task_heartbeat,
                keep: settings.task_ttl,
            },
            audit::task_ended,
        );
        let info = Arc::new(ServerInfo {
            name: settings.server_name.clone(),
            version: env!("CARGO_PKG_VERSION"),
            title: (!settings.server_title.is_empty()).then(|| settings.server_title.clone()),
        });
        Server {
            registry,
            settings,
            filter_tools_by_scope,
            budgets,
            log_levels: Mutex::new(HashMap::new()),
            in_flight: Mutex::new(HashMap::default()),
            fingerprints: RandomState::new(),
            serial: std::sync::atomic::AtomicU64::new(0),
            changes: Arc::new(Changes::default()),
            listeners: Mutex::new(HashMap::new()),
            public,
            pending: Arc::new(Pending::new(instance_id)),
            seal,
            tool_lists: tools::ListCache::default(),
            info,
            shared,
            spent: asking::Spent::default(),
            tasks,
        }
    }

    /// The shared store, when REDIS_URL names one.
    pub(crate) fn shared_store(&self) -> Option<&budget::Shared> {
        self.shared.as_deref()
    }

    /// Drops the names of expired `requestState`s, so memory stays bounded (the budgets purge
    /// their own idle keys).
    pub fn purge_idle(&self) {
        self.spent.purge();
        self.tasks.purge();
    }

    fn caller_key(caller: &Caller) -> String {
        caller.subject().unwrap_or("").to_string()
    }

    pub fn log_level_for(&self, caller: &Caller) -> LogLevel {
        self.log_levels
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(caller.subject().unwrap_or(""))
            .copied()
            .unwrap_or(self.settings.default_log_level)
    }

    fn set_log_level(&self, caller: &Caller, level: LogLevel) {
        let mut map = self.log_levels.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MAX_TRACKED_LOG_LEVELS {
            map.clear();
        }
        map.insert(Self::caller_key(caller), level);
    }

    /// Registers an in-flight request so `notifications/cancelled` from the same caller can stop
    /// it. The returned guard unregisters it.
    pub fn track(self: &Arc<Self>, caller: Caller, id: &Id, abort: AbortHandle) -> InFlightGuard {
        let fingerprint = self.fingerprint(&caller, id);
        let serial = self
            .serial
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.in_flight
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(fingerprint)
            .or_default()
            .push(InFlight {
                serial,
                caller,
                id: id.clone(),
                abort,
            });
        InFlightGuard {
            server: self.clone(),
            fingerprint,
            serial,
        }
    }

    fn fingerprint(&self, caller: &Caller, id: &Id) -> u64 {
        self.fingerprints
            .hash_one((caller.subject().unwrap_or(""), id))
    }

    /// Handles a notification from the client. Nothing is ever answered.
    pub fn notify(&self, caller: &Caller, method: &str, params: &Map<String, Value>) {
        if method == "notifications/cancelled"
            && let Some(id) = params.get("requestId").and_then(Id::from_value)
        {
            // Every in-flight request of this caller with that id: the client asked to cancel
            // the id. Entries are removed by their own guards when the requests end.
            let fingerprint = self.fingerprint(caller, &id);
            let map = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
            let mut cancelled = false;
            for entry in map.get(&fingerprint).into_iter().flatten() {
                if entry.id == id && entry.caller.subject() == caller.subject() {
                    entry.abort.abort();
                    cancelled = true;
                }
            }
            if cancelled {
                log::info!("request {id} cancelled by the client");
            }
        }
    }

    /// Handles one request: its method routed on `Method`, its params typed once. What needs
    /// no wait (an unserved method, `tools/list`) is answered at once, with no future made;
    /// the future of the rest owns only what the wait needs (the transport boxes it, so its
    /// size is copied and allocated on every such request).
    pub fn handle(
        self: &Arc<Self>,
        req: Request,
        call: Call,
    ) -> Handling<impl Future<Output = Outcome> + 'static> {
        // The message's span, when traces are on: current while it is answered.
        let span = spans::message(&req, call.era);
        match self.dispatch(req, call) {
            Handling::Ready(outcome) => {
                if let Some(cx) = &span {
                    spans::end(cx, &outcome);
                }
                Handling::Ready(outcome)
            }
            // Untraced, the work itself (no wrapper to poll or copy).
            Handling::Running(work) => Handling::Running(match span {
                None => futures_util::future::Either::Left(work),
                Some(cx) => futures_util::future::Either::Right(spans::Spanned::new(work, cx)),
            }),
        }
    }

    /// [`Server::handle`] without its span.
    fn dispatch(
        self: &Arc<Self>,
        req: Request,
        call: Call,
    ) -> Handling<impl Future<Output = Outcome> + 'static> {
        let Request { id, method, params } = req;
        let params = match params {
            Parsed::Typed(p) if self.serves(p.method(), call.era) => match &*p {
                Params::ToolsList(list) => {
                    // Served from the listings serialized once per set of visible tools.
                    return Handling::Ready(
                        match self.tool_lists.get(self, list.cursor.as_deref(), &call) {
                            Ok(raw) => Outcome::Response(Response::shared(id, raw)),
                            Err(e) => self.refusal(call.era, Some(id), e),
                        },
                    );
                }
                _ => p,
            },
            Parsed::Untyped {
                method: Some(m),
                error: Some(e),
                ..
            } if self.serves(m, call.era) => {
                return Handling::Ready(self.refusal(call.era, Some(id), e));
            }
            _ => {
                let unknown = McpError::MethodNotFound(method.into_owned());
                return Handling::Ready(self.refusal(call.era, Some(id), unknown));
            }
        };
        let server = Arc::clone(self);
        Handling::Running(async move {
            let method = params.method();
            match server.route(params, &call).await {
                Ok(result) => {
                    let answer = server.answer(method, call.era, result);
                    Outcome::Response(Response::success(id, Arc::new(answer)))
                }
                Err(e) => server.refusal(call.era, Some(id), e),
            }
        })
    }

    /// Whether `method` is answered in `era` by what this binary registers (no tools, no
    /// `tools/*`; and so on).
    fn serves(&self, method: Method, era: Era) -> bool {
        let in_era = match era {
            Era::Legacy(_) => method.in_legacy_era(),
            Era::Modern => method.in_modern_era(),
        };
        in_era
            && match method {
                Method::ToolsList | Method::ToolsCall => !self.registry.tools.is_empty(),
                Method::ResourcesList
                | Method::ResourceTemplatesList
                | Method::ResourcesRead
                | Method::ResourcesSubscribe
                | Method::ResourcesUnsubscribe => self.has_resources(),
                Method::PromptsList | Method::PromptsGet => self.has_prompts(),
                Method::Complete => self.has_prompts() || self.has_resources(),
                Method::TasksGet | Method::TasksUpdate | Method::TasksCancel => {
                    self.registry.has_task_tools()
                }
                _ => true,
            }
    }

    /// An error as the outcome its era gives it (`McpError::status` says which are answered at
    /// the HTTP level); everything else is a JSON-RPC error on a 200.
    pub fn refusal(&self, era: Era, id: Option<Id>, e: McpError) -> Outcome {
        let error = e.for_era(era);
        match error.status(era) {
            Some(status) => {
                if let McpError::InsufficientScope(_) = error {
                    metrics::count(&METRICS.auth_refusals, ["scope"]);
                }
                Outcome::Refused(Refused { id, error, status })
            }
            None => Outcome::Response(Response::error(id, error.to_error())),
        }
    }

    /// Counts an open listen stream against its subject's share; `None` when the share
    /// (`mcp.max_listen_streams`) is used up. The guard gives the slot back.
    pub fn open_listener(self: &Arc<Self>, caller: &Caller) -> Option<ListenerGuard> {
        let key = Self::caller_key(caller);
        let mut map = self.listeners.lock().unwrap_or_else(|e| e.into_inner());
        let open = map.entry(key.clone()).or_default();
        if *open >= self.settings.max_listen_streams {
            return None;
        }
        *open += 1;
        Some(ListenerGuard {
            server: self.clone(),
            key,
        })
    }

    /// `{name, version, title?}`: who this server is.
    pub fn server_info(&self) -> Arc<ServerInfo> {
        self.info.clone()
    }

    /// A page of the registered `items` the caller may see, each as `entry` lists it.
    pub fn visible_page<D, T>(
        &self,
        key: &'static str,
        items: &[D],
        scopes: impl Fn(&D) -> &'static [&'static str],
        entry: impl Fn(&D) -> T,
        p: &model::Paginated,
        caller: &Caller,
    ) -> Result<Listing<T>, McpError> {
        let visible = items
            .iter()
            .filter(|d| caller.missing_scopes(scopes(d)).is_empty())
            .map(entry)
            .collect();
        listing(key, visible, p.cursor.as_deref(), self.settings.page_size)
    }

    /// `result` as sent in `era`: in 2026-07-28 with the members every result carries.
    pub fn answer(&self, method: Method, era: Era, result: Reply) -> Stamped {
        let modern =
            (era == Era::Modern).then(|| modern::members(self, method, result.result_type()));
        Stamped { result, modern }
    }

    fn has_resources(&self) -> bool {
        !self.registry.resources.is_empty()
            || !self.registry.templates.is_empty()
            || !self.registry.views.is_empty()
    }

    fn has_prompts(&self) -> bool {
        !self.registry.prompts.is_empty()
    }

    async fn route(
        self: &Arc<Self>,
        mut params: Box<Params>,
        call: &Call,
    ) -> Result<Reply, McpError> {
        match &mut *params {
            Params::Initialize(p) => lifecycle::initialize(self, p),
            Params::Ping(_) => Ok(Reply::EMPTY),
            Params::SetLevel(p) => {
                let level = LogLevel::parse(&p.level).ok_or_else(|| {
                    McpError::InvalidParams("level must be one of debug, info, notice, warning, error, critical, alert, emergency".into())
                })?;
                self.set_log_level(&call.caller, level);
                Ok(Reply::EMPTY)
            }
            Params::ToolsCall(p) => {
                // The arguments move from the request into the handler: never copied.
                let arguments = p.arguments.take();
                let tool = self.registry.tool(&p.name);
                let audit = Audit::start(call, "tools/call", &p.name, tool.map(|t| t.def.name));
                let checked = if call.tool_budget_charged {
                    Ok(())
                } else {
                    self.check_tool_budget(&call.caller).await
                };
                let result = match checked {
                    Err(e) => Err(e),
                    Ok(()) => {
                        let limit = ending::deadline_secs(self, call);
                        tools::call(
                            self,
                            p,
                            tool,
                            arguments,
                            call,
                            audit.deadline(std::time::Duration::from_secs(limit)),
                        )
                        .await
                    }
                };
                audit.finish(&result);
                result
            }
            Params::ResourcesList(p) => resources::list(self, p, call),
            Params::ResourceTemplatesList(p) => resources::list_templates(self, p, &call.caller),
            Params::ResourcesRead(p) => {
                let audit = Audit::start(call, "resources/read", &p.uri, None);
                let result =
                    resources::read(self, p, call, audit.deadline(self.settings.tool_timeout))
                        .await;
                audit.finish(&result);
                result
            }
            Params::ResourcesSubscribe(p) | Params::ResourcesUnsubscribe(p) => {
                resources::subscribe(self, p, &call.caller)
            }
            Params::PromptsList(p) => prompts::list(self, p, &call.caller),
            Params::PromptsGet(p) => {
                let audit = Audit::start(call, "prompts/get", &p.name, None);
                let result =
                    prompts::get(self, p, call, audit.deadline(self.settings.tool_timeout)).await;
                audit.finish(&result);
                result
            }
            Params::Complete(p) => prompts::complete(self, p, &call.caller),
            Params::Discover(_) => Ok(modern::discover(self)),
            // Boxed, so the store's futures do not swell every request's (see `tools::call`).
            Params::TasksGet(p) => Box::pin(tasks::get(self, p, call)).await,
            Params::TasksUpdate(p) => Box::pin(tasks::update(self, p, call)).await,
            Params::TasksCancel(p) => Box::pin(tasks::cancel(self, p, call)).await,
            // Listed here only by mistake: the transport serves its stream itself.
            Params::ToolsList(_) | Params::Listen(_) => Err(McpError::Internal),
        }
    }

    fn notifier(&self, call: &Call, meta: &RequestParamsMeta) -> Notifier {
        let Some(tx) = &call.tx else {
            return Notifier::default();
        };
        let token = meta
            .progress_token()
            .filter(|t| t.is_string() || t.as_i64().is_some() || t.as_u64().is_some())
            .cloned();
        // 2026-07-28: log messages only when this request's `_meta` asks for a level.
        let level = match &call.meta {
            Some(meta) => meta.log_level,
            None => Some(self.log_level_for(&call.caller)),
        };
        Notifier::new(tx.clone(), token, level)
    }

    /// The refusal of the tool-call budget (counted by the budgets).
    pub fn tool_budget_refusal(refused: budget::Refused) -> McpError {
        match refused {
            budget::Refused::Wait(wait) => McpError::RateLimited(wait),
            budget::Refused::StoreDown => McpError::StoreDown,
        }
    }

    async fn check_tool_budget(&self, caller: &Caller) -> Result<(), McpError> {
        let Some(subject) = caller.subject() else {
            return Ok(());
        };
        self.budgets
            .charge_tool(subject)
            .await
            .map_err(Self::tool_budget_refusal)
    }

    /// The `capabilities` this server declares: only what is registered. Change notifications
    /// are delivered only in 2026-07-28 (on `subscriptions/listen`); a 2025 client has no stream
    /// to receive them, so it is told there are none.
    pub fn capabilities(&self, era: Era) -> ServerCapabilities {
        let list_changed = era == Era::Modern;
        let (resources, prompts) = (self.has_resources(), self.has_prompts());
        ServerCapabilities {
            logging: Empty {},
            tools: (!self.registry.tools.is_empty()).then_some(ListChanged { list_changed }),
            resources: resources.then_some(ResourcesCapability {
                subscribe: true,
                list_changed,
            }),
            prompts: prompts.then_some(ListChanged { list_changed }),
            completions: (prompts || resources).then_some(Empty {}),
            extensions: self.extensions(era),
        }
    }

    /// The extensions served: tasks (2026-07-28 only, when a tool can run as a task) and MCP
    /// Apps (every revision, when a tool has a view).
    fn extensions(&self, era: Era) -> Option<result::Extensions> {
        let tasks = (era == Era::Modern && self.registry.has_task_tools()).then_some(Empty {});
        let ui = (!self.registry.views.is_empty()).then_some(result::UiExtension);
        (tasks.is_some() || ui.is_some()).then_some(result::Extensions { tasks, ui })
    }
}

/// Gives a listen stream's slot back when the stream ends, however it ends.
pub struct ListenerGuard {
    server: Arc<Server>,
    key: String,
}

impl Drop for ListenerGuard {
    fn drop(&mut self) {
        let mut map = self
            .server
            .listeners
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(open) = map.get_mut(&self.key) {
            *open -= 1;
            if *open == 0 {
                map.remove(&self.key);
            }
        }
    }
}

/// Removes an in-flight entry when its request ends, however it ends.
pub struct InFlightGuard {
    server: Arc<Server>,
    fingerprint: u64,
    serial: u64,
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        let mut map = self
            .server
            .in_flight
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(list) = map.get_mut(&self.fingerprint) {
            list.retain(|entry| entry.serial != self.serial);
            if list.is_empty() {
                map.remove(&self.fingerprint);
            }
        }
    }
}

/// Opaque pagination cursors: base64url of `o:<offset>`.
pub mod cursor {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    pub fn encode(offset: usize) -> String {
        URL_SAFE_NO_PAD.encode(format!("o:{offset}"))
    }

    /// `None` for anything this server did not issue (or that points past the end).
    pub fn decode(cursor: &str, len: usize) -> Option<usize> {
        let bytes = URL_SAFE_NO_PAD.decode(cursor).ok()?;
        let text = std::str::from_utf8(&bytes).ok()?;
        let offset: usize = text.strip_prefix("o:")?.parse().ok()?;
        (offset > 0 && offset < len).then_some(offset)
    }
}

/// A page of a listing: `{<key>: [page], nextCursor?}`, the page moved out of `items` (never
/// copied). `Err` for an invalid cursor.
pub fn listing<T>(
    key: &'static str,
    items: Vec<T>,
    cursor: Option<&str>,
    page_size: usize,
) -> Result<Listing<T>, McpError> {
    let len = items.len();
    let start = page_start(cursor, len)?;
    let end = (start + page_size).min(len);
    Ok(Listing {
        key,
        items: items.into_iter().skip(start).take(end - start).collect(),
        next_cursor: (end < len).then(|| cursor::encode(end)),
    })
}

/// Where the page asked for by `cursor` starts in a listing of `len` items.
pub fn page_start(cursor: Option<&str>, len: usize) -> Result<usize, McpError> {
    match cursor {
        None => Ok(0),
        Some(c) => {
            cursor::decode(c, len).ok_or_else(|| McpError::InvalidParams("invalid cursor".into()))
        }
    }
}

/// `Err(InsufficientScope)` naming every scope `required` holds, unless the caller has them all.
pub fn require_scopes(caller: &Caller, required: &[&str]) -> Result<(), McpError> {
    if caller.missing_scopes(required).is_empty() {
        Ok(())
    } else {
        Err(McpError::InsufficientScope(
            required.iter().map(|s| s.to_string()).collect(),
        ))
    }
}

/// What `Server::handle` gives: the outcome already (nothing to wait for), or the future of
/// the routed method.
pub enum Handling<F> {
    Ready(Outcome),
    Running(F),
}

impl<F: Future<Output = Outcome>> Handling<F> {
    /// The outcome, waiting for it if need be.
    pub async fn outcome(self) -> Outcome {
        match self {
            Handling::Ready(outcome) => outcome,
            Handling::Running(f) => f.await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_known() {
        assert_eq!(
            Era::from_version("2025-06-18"),
            Some(Era::Legacy("2025-06-18"))
        );
        assert_eq!(Era::from_version("2026-07-28"), Some(Era::Modern));
        assert_eq!(Era::from_version("2024-11-05"), None);
        assert_eq!(Era::Modern.version(), "2026-07-28");
    }

    #[test]
    fn cursors_round_trip_and_reject_forgeries() {
        let items = || (0..5).collect::<Vec<u32>>();
        let page = listing("n", items(), None, 2).unwrap();
        assert_eq!(page.items, vec![0, 1]);
        let page = listing("n", items(), page.next_cursor.as_deref(), 2).unwrap();
        assert_eq!(page.items, vec![2, 3]);
        let page = listing("n", items(), page.next_cursor.as_deref(), 2).unwrap();
        assert_eq!(page.items, vec![4]);
        assert!(page.next_cursor.is_none());
        for bad in ["nope".to_string(), cursor::encode(99), cursor::encode(0)] {
            assert!(listing("n", items(), Some(&bad), 2).is_err());
        }
    }
}

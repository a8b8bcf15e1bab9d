//! gatehouse: an authenticated MCP server. The library holds everything; `main.rs` only wires.

pub mod allocator;
pub mod asking;
pub mod auth;
#[cfg(feature = "bench-tools")]
mod bench_tools;
pub mod body;
pub mod budget;
pub mod changes;
pub mod config;
#[cfg(feature = "conformance")]
mod conformance;
pub mod conn;
pub mod context;
pub mod doctor;
pub mod edge;
pub mod expect;
pub mod failure;
#[cfg(feature = "test-fixtures")]
mod fixtures;
pub mod hashing;
pub mod header_params;
pub mod jsonrpc;
pub mod logging;
pub mod mcp;
pub mod metrics;
pub mod metrics_endpoint;
pub mod outbound;
pub mod outbox;
pub mod prompt;
pub mod refusal;
pub mod registry;
pub mod request_id;
pub mod resource;
pub mod revision;
pub mod routes;
pub mod schema;
pub mod shared_store;
pub mod startup;
pub mod state;
pub mod tasks;
pub mod telemetry;
pub mod text;
pub mod tool;
pub mod tools;
pub mod transport;
pub mod views;

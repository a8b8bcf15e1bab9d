//! gatehouse: an authenticated MCP server. The library holds everything; `main.rs` only wires.

pub mod ask;
pub mod audit;
pub mod auth;
#[cfg(feature = "bench-tools")]
mod bench_tools;
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
#[cfg(feature = "test-fixtures")]
mod fixtures;
pub mod hashing;
pub mod header_params;
pub mod jsonrpc;
pub mod logging;
pub mod mcp;
pub mod memory;
pub mod metrics;
pub mod outbox;
pub mod prompt;
pub mod refusal;
pub mod registry;
pub mod resource;
pub mod routes;
pub mod schema;
pub mod seal;
pub mod shared;
pub mod startup;
pub mod text;
pub mod tool;
pub mod tools;
pub mod transport;

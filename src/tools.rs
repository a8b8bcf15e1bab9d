//! The drop-in tools: one module per `tools/*.rs` file, declared by `build.rs`. Nothing here is
//! edited by hand; adding a file to `tools/` is enough.

include!(concat!(env!("OUT_DIR"), "/tools.rs"));

//! The one integration-test binary: nearly every test starts the real app on port 0 and speaks
//! HTTP to it (auth tests put a local issuer serving a JWKS over HTTP in front); `in_process`
//! calls the same `routes::app` through actix's test service, without a socket.

mod architecture;
mod asking;
mod auth;
mod doctor;
mod dpop;
mod edge;
mod hardening;
mod helpers;
mod in_process;
mod introspection;
mod issuer;
mod issuers;
mod key_timing;
mod machine_clients;
mod modern;
mod operations;
mod process;
mod readme;
mod refusals;
mod round_two;
mod scale;
mod scale_tasks;
mod surface;
mod tasks;
mod tools;
mod traces;
mod transport;
mod views;

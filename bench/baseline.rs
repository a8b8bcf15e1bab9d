//! The benchmark's floor: a bare actix-web server (same actix-web build as gatehouse) with one
//! POST route returning a fixed JSON-RPC result and a `/health` route. Every figure in
//! `bench/README.md` is a ratio to this binary, measured in the same run.
//!
//! `cargo build --release --example baseline && PORT=18081 WORKERS=1 target/release/examples/baseline`

use actix_web::{App, HttpResponse, HttpServer, web};

const RESULT: &str = r#"{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"Hello, bench!"}],"isError":false}}"#;

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let port: u16 = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(18081);
    let server = HttpServer::new(|| {
        App::new()
            .route(
                "/mcp",
                web::post().to(|_body: web::Bytes| async {
                    HttpResponse::Ok()
                        .content_type("application/json")
                        .body(RESULT)
                }),
            )
            .route(
                "/health",
                web::get().to(|| async {
                    HttpResponse::Ok()
                        .content_type("application/json")
                        .body(r#"{"status":"ok"}"#)
                }),
            )
    });
    // WORKERS as gatehouse's server.workers: unset = one per core (actix's default).
    let server = match std::env::var("WORKERS").ok().and_then(|w| w.parse().ok()) {
        Some(n) => server.workers(n),
        None => server,
    };
    server.bind(("127.0.0.1", port))?.run().await
}

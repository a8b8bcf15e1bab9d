//! Fuzz target: raw HTTP/1.1 request bytes (heads, chunked and sized bodies, garbage) written
//! to the running app over loopback. The app runs once per fuzzing process, auth on with the
//! built-in development issuer. Invariants: no input gets a 5xx, and the server keeps serving
//! (a health check on a fresh connection after every input that got no answer).
#![no_main]

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::OnceLock;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;

fn server_port() -> u16 {
    static PORT: OnceLock<u16> = OnceLock::new();
    *PORT.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let dir = std::env::temp_dir().join("gatehouse-fuzz-keys");
            let env = std::collections::HashMap::from([
                ("GATEHOUSE_SERVER__PORT".to_string(), "0".to_string()),
                ("GATEHOUSE_SERVER__WORKERS".to_string(), "1".to_string()),
                ("GATEHOUSE_SERVER__CLIENT_REQUEST_TIMEOUT_MS".to_string(), "300".to_string()),
                ("GATEHOUSE_SERVER__BODY_TIMEOUT_MS".to_string(), "300".to_string()),
                ("GATEHOUSE_RATE_LIMIT__ENABLED".to_string(), "false".to_string()),
                ("GATEHOUSE_AUTH__DEV_KEY_DIR".to_string(), dir.display().to_string()),
            ]);
            let config = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../config");
            let settings = gatehouse::config::Settings::load(&env, &config).expect("settings");
            actix_web::rt::System::new().block_on(async move {
                let app = gatehouse::startup::Application::build(settings)
                    .await
                    .expect("app builds");
                tx.send(app.port()).unwrap();
                app.run().await.unwrap();
            });
        });
        rx.recv().expect("server started")
    })
}

/// Writes `bytes`, half-closes, and returns what the server answered.
fn exchange(port: u16, bytes: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("server accepts");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = s.write_all(bytes);
    let _ = s.shutdown(Shutdown::Write);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    out
}

fuzz_target!(|data: &[u8]| {
    let port = server_port();
    let answer = exchange(port, data);
    // Every status line in the answer (pipelined requests get several).
    for line in answer.split(|b| *b == b'\n') {
        if line.starts_with(b"HTTP/1.1 5") {
            let text = String::from_utf8_lossy(&data[..data.len().min(512)]);
            panic!("5xx for {text:?}: {}", String::from_utf8_lossy(line));
        }
    }
    if answer.is_empty() {
        // A fresh connection must get a 200 from /health. The server runs inside the fuzzing
        // process with a 300 ms head timeout (a floor since the server adds actix's 500 ms
        // clock step: before that, a stale clock answered 408 to 4 in 10 health checks and,
        // the checks a second apart, to all five), so only a stall of that process longer
        // than the timeout makes /health answer 408; up to five tries a second apart absorb
        // it. A server that stopped serving fails them all, and the message says what it
        // answered.
        let check = || exchange(port, b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n");
        let mut health = check();
        for _ in 0..4 {
            if health.starts_with(b"HTTP/1.1 200") {
                break;
            }
            std::thread::sleep(Duration::from_secs(1));
            health = check();
        }
        assert!(
            health.starts_with(b"HTTP/1.1 200"),
            "the server stopped serving: /health answered {:?}",
            String::from_utf8_lossy(&health[..health.len().min(200)])
        );
    }
});

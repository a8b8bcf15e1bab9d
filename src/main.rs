//! The `gatehouse` binary: reads configuration, sets up logging, and either serves or mints a
//! development token (`gatehouse token ...`). Everything else lives in the library.

use std::process::ExitCode;

use gatehouse::auth::dev_issuer::{DevIssuer, TokenRequest, parse_ttl};
use gatehouse::config::{IssuerSetting, Settings, config_dir, process_environment};
use gatehouse::startup::Application;
use gatehouse::state::public_urls;
use gatehouse::text::redact_urls;

const USAGE: &str = "usage:
  gatehouse                      run the server (APP_ENV picks the profile; see README.md)
  gatehouse token [--sub S | --client C] [--scope A]... [--org O] [--ttl 1h] [--aud URL]
                                 mint a token from the built-in development issuer (--client:
                                 a machine client's, with client_id C and no sub)
  gatehouse doctor [--token -]   check the configuration and the issuer's keys as the server
                                 would; with --token -, explain whether the token on standard
                                 input would be accepted (exit 0 when all is well, 1 otherwise)";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let env = process_environment();
    let doctoring = args.first().is_some_and(|a| a == "doctor");
    let settings = match Settings::load(&env, &config_dir(&env)) {
        Ok(s) => s,
        Err(e) if doctoring => {
            println!("FAIL: {}", redact_urls(&e.to_string()));
            return ExitCode::from(1);
        }
        Err(e) => {
            eprintln!("gatehouse: {}", redact_urls(&e.to_string()));
            return ExitCode::from(2);
        }
    };
    gatehouse::logging::init(settings.log.format);
    match args.first().map(String::as_str) {
        None => serve(settings),
        Some("token") => token(&settings, &args[1..]),
        Some("doctor") => doctor(&settings, &args[1..]),
        Some(other) => {
            eprintln!("gatehouse: unknown command {other:?}\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

fn serve(settings: Settings) -> ExitCode {
    let result = actix_web::rt::System::new().block_on(async move {
        let app = Application::build(settings).await?;
        log::info!(
            "gatehouse {} ({} profile) listening on port {}; MCP endpoint {}",
            env!("CARGO_PKG_VERSION"),
            app.settings.profile.name(),
            app.port(),
            redact_urls(&app.resource)
        );
        log::info!(
            "protected resource metadata: {}",
            redact_urls(&app.metadata_url)
        );
        if let Some(dev) = &app.dev_issuer {
            // Printed to stdout for the developer, never through the logger.
            let token = dev.mint(&TokenRequest {
                subject: "dev-user",
                client: None,
                scopes: &["admin".to_string()],
                organization: Some("dev-org"),
                audience: &app.audiences,
                ttl: std::time::Duration::from_secs(3600),
            });
            let url = format!("http://127.0.0.1:{}{}", app.port(), app.settings.mcp.path);
            println!(
                "\nDevelopment issuer {} is active. A token for sub=dev-user, scope=admin, org=dev-org (1 h):\n\n  export TOKEN={token}\n\nTry:\n  curl -X POST {url} -H \"Authorization: Bearer $TOKEN\" -H 'Content-Type: application/json' -d '{{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{{\"name\":\"greet_user\",\"arguments\":{{\"name\":\"Saif\"}}}}}}'\n\nMint more with: gatehouse token --sub alice --scope admin --org acme --ttl 1h\n",
                dev.issuer
            );
        }
        app.run_until_stopped().await?;
        Ok::<(), gatehouse::state::StartupError>(())
    });
    match result {
        Ok(()) => {
            log::info!("stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("gatehouse: {}", redact_urls(&e.to_string()));
            ExitCode::from(1)
        }
    }
}

fn doctor(settings: &Settings, args: &[String]) -> ExitCode {
    let token = match args {
        [] => None,
        [flag, dash] if flag == "--token" && dash == "-" => {
            let mut text = String::new();
            if std::io::Read::read_to_string(&mut std::io::stdin(), &mut text).is_err() {
                eprintln!("gatehouse doctor: could not read a token from standard input");
                return ExitCode::from(2);
            }
            Some(text)
        }
        _ => {
            eprintln!("gatehouse doctor: expected no argument or --token -\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let report =
        actix_web::rt::System::new().block_on(gatehouse::doctor::run(settings, token.as_deref()));
    print!("{}", report.text);
    if report.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn token(settings: &Settings, args: &[String]) -> ExitCode {
    if settings.auth.issuer != IssuerSetting::Development {
        eprintln!(
            "gatehouse token: an issuer is configured (OAUTH_ISSUER / SK_ENV_URL); tokens come from it, not from the development issuer"
        );
        return ExitCode::from(2);
    }
    let mut sub = "dev-user".to_string();
    let mut client: Option<String> = None;
    let mut scopes: Vec<String> = Vec::new();
    let mut org: Option<String> = None;
    let mut ttl = std::time::Duration::from_secs(3600);
    let mut aud: Vec<String> = Vec::new();
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let Some(value) = it.next() else {
            eprintln!("gatehouse token: {flag} needs a value\n{USAGE}");
            return ExitCode::from(2);
        };
        match flag.as_str() {
            "--sub" => sub = value.clone(),
            "--client" => client = Some(value.clone()),
            "--scope" => scopes.extend(
                value
                    .split([' ', ','])
                    .filter(|s| !s.is_empty())
                    .map(str::to_string),
            ),
            "--org" => org = Some(value.clone()),
            "--aud" => aud.push(value.clone()),
            "--ttl" => match parse_ttl(value) {
                Some(d) => ttl = d,
                None => {
                    eprintln!(
                        "gatehouse token: --ttl {value:?}: use e.g. 90s, 15m, 1h, 2d (at most 30d)"
                    );
                    return ExitCode::from(2);
                }
            },
            other => {
                eprintln!("gatehouse token: unknown flag {other:?}\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    let urls = match public_urls(settings, settings.server.port) {
        Ok(u) => u,
        Err(e) => {
            eprintln!("gatehouse token: {e}");
            return ExitCode::from(2);
        }
    };
    let dev = match DevIssuer::load_or_create(&settings.auth.dev_key_dir, urls.issuer) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("gatehouse token: {e}");
            return ExitCode::from(1);
        }
    };
    if aud.is_empty() {
        aud = urls.audiences;
    }
    println!(
        "{}",
        dev.mint(&TokenRequest {
            subject: &sub,
            client: client.as_deref(),
            scopes: &scopes,
            organization: org.as_deref(),
            audience: &aud,
            ttl,
        })
    );
    ExitCode::SUCCESS
}

//! Outbound HTTP: the one client shape every call gatehouse makes to another service uses (key
//! sets, issuer metadata, token introspection, trace export).

use std::time::Duration;

/// A client builder that never follows a redirect (a 3xx could lead to another host, or from
/// https to http around the production https rule: the caller reports it as an error naming
/// its setting), gives up after `timeout` (connecting included) and names gatehouse.
pub fn client(timeout: Duration) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("gatehouse/", env!("CARGO_PKG_VERSION")))
}

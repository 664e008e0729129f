//! The remote CLI: `http://HOST:PORT/NAME` (or `https://`) wherever a command takes DIR. A `Remote` is one
//! store on a `reel serve`; it sends the requests of docs/HTTP.md with the credentials of
//! `REEL_TOKEN` or `REEL_USER`/`REEL_PASSWORD`, retries while the server cannot be
//! reached (for a bounded time), and turns refusals into the local CLI's exit statuses:
//! 3 for a failed condition, 4 for a refused login or a missing permission.

mod commands;
mod read;

pub use commands::{kind, kv, list, rewind, status, stream, verify, views, write};
pub use read::{member_name, read};

use crate::error::{CliError, CliResult};
use std::path::Path;
use std::time::{Duration, Instant};

/// How long a command keeps trying to reach a server before it gives up.
const REACH_FOR: Duration = Duration::from_secs(10);

/// One store on a server.
#[derive(Debug)]
pub struct Remote {
    agent: ureq::Agent,
    /// `http://HOST:PORT/NAME` as given.
    url: String,
    /// `http://HOST:PORT/v1/stores/NAME`.
    store_url: String,
    /// `http://HOST:PORT`.
    base_url: String,
    /// NAME.
    name: String,
    auth: Option<String>,
}

/// The store `dir` names when it is a server URL.
pub fn target(dir: &Path) -> CliResult<Option<Remote>> {
    let Some(text) = dir.to_str() else {
        return Ok(None);
    };
    let (scheme, rest) = if let Some(r) = text.strip_prefix("http://") {
        ("http", r)
    } else if let Some(r) = text.strip_prefix("https://") {
        ("https", r)
    } else {
        return Ok(None);
    };
    let Some((host, name)) = rest.split_once('/') else {
        return Err(CliError::Input(format!(
            "{text}: a server URL names a store: http://HOST:PORT/NAME"
        )));
    };
    let name = name.trim_end_matches('/');
    if host.is_empty() || name.is_empty() || name.contains('/') {
        return Err(CliError::Input(format!(
            "{text}: a server URL names a store: http://HOST:PORT/NAME"
        )));
    }
    let agent = ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(5)))
            .tls_config(tls_config()?)
            .build(),
    );
    Ok(Some(Remote {
        agent,
        url: text.to_string(),
        store_url: format!("{scheme}://{host}/v1/stores/{}", encode(name)),
        base_url: format!("{scheme}://{host}"),
        name: name.to_string(),
        auth: credentials()?,
    }))
}

/// Whom `https://` trusts: the certificates in the PEM file `REEL_CA_CERT` (a server with
/// a self-signed or private-CA certificate), else the usual public roots.
fn tls_config() -> CliResult<ureq::tls::TlsConfig> {
    let builder = ureq::tls::TlsConfig::builder();
    let Some(path) = std::env::var_os("REEL_CA_CERT").filter(|p| !p.is_empty()) else {
        return Ok(builder.build());
    };
    let shown = Path::new(&path).display().to_string();
    let pem = std::fs::read(&path)
        .map_err(|e| CliError::Input(format!("REEL_CA_CERT: cannot read {shown}: {e}")))?;
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(&pem) {
        match item {
            Ok(ureq::tls::PemItem::Certificate(c)) => certs.push(c),
            Ok(_) => {}
            Err(e) => return Err(CliError::Input(format!("REEL_CA_CERT: {shown}: {e}"))),
        }
    }
    if certs.is_empty() {
        return Err(CliError::Input(format!(
            "REEL_CA_CERT: {shown} holds no PEM certificate"
        )));
    }
    Ok(builder
        .root_certs(ureq::tls::RootCerts::new_with_certs(&certs))
        .build())
}

/// The Authorization header from the environment.
fn credentials() -> CliResult<Option<String>> {
    if let Ok(t) = std::env::var("REEL_TOKEN")
        && !t.is_empty()
    {
        return Ok(Some(format!("Bearer {t}")));
    }
    match (std::env::var("REEL_USER"), std::env::var("REEL_PASSWORD")) {
        (Ok(u), Ok(p)) => {
            use base64ct::Encoding;
            Ok(Some(format!(
                "Basic {}",
                base64ct::Base64::encode_string(format!("{u}:{p}").as_bytes())
            )))
        }
        (Ok(_), Err(_)) => Err(CliError::Input(
            "REEL_USER is set but REEL_PASSWORD is not".into(),
        )),
        _ => Ok(None),
    }
}

/// Percent-encodes everything but unreserved characters (a path segment or query value).
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A request to send.
#[derive(Debug, Default)]
pub struct Call<'a> {
    pub method: &'a str,
    /// After the store URL: `""`, `/records`, `/kv/PATH`...
    pub path: String,
    pub query: Vec<(&'a str, String)>,
    pub headers: Vec<(&'a str, String)>,
    pub body: Option<Vec<u8>>,
    /// Sending it twice does no harm (reads; appends with nonces; compare-and-set), so
    /// a request whose answer was lost may be sent again.
    pub idempotent: bool,
}

impl Remote {
    /// The store's name on its server.
    pub fn store_name(&self) -> &str {
        &self.name
    }

    /// GETs a server-wide route (`/v1/stores`) and parses its JSON.
    pub fn root_json(&self, path: &str) -> CliResult<serde_json::Value> {
        let mut req = ureq::http::Request::builder()
            .method("GET")
            .uri(format!("{}{path}", self.base_url));
        if let Some(a) = &self.auth {
            req = req.header("Authorization", a);
        }
        let req = req
            .body(Vec::new())
            .map_err(|e| CliError::Input(e.to_string()))?;
        let resp = self.agent.run(req).map_err(|e| {
            CliError::Connection(format!("cannot reach the server for {}: {e}", self.url))
        })?;
        let mut resp = check(resp)?;
        let text = resp
            .body_mut()
            .read_to_string()
            .map_err(|e| self.broken(e))?;
        serde_json::from_str(&text)
            .map_err(|e| CliError::Input(format!("the server sent bad JSON ({e}): {text}")))
    }

    /// The URL as given on the command line.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Sends `call`; a refusal becomes the CLI error of its status. Retries while the
    /// server cannot be reached, up to [`REACH_FOR`].
    pub fn send(&self, call: &Call<'_>) -> CliResult<ureq::http::Response<ureq::Body>> {
        let mut url = format!("{}{}", self.store_url, call.path);
        for (i, (k, v)) in call.query.iter().enumerate() {
            url.push(if i == 0 { '?' } else { '&' });
            url.push_str(k);
            url.push('=');
            url.push_str(&encode(v));
        }
        let started = Instant::now();
        let mut pause = Duration::from_millis(50);
        loop {
            let result = self.send_once(call, &url);
            match result {
                Ok(resp) => return check(resp),
                Err(e) if retryable(&e, call.idempotent) && started.elapsed() < REACH_FOR => {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_secs(1));
                }
                Err(e) => {
                    return Err(CliError::Connection(format!(
                        "cannot reach the server for {}: {e}",
                        self.url
                    )));
                }
            }
        }
    }

    fn send_once(
        &self,
        call: &Call<'_>,
        url: &str,
    ) -> Result<ureq::http::Response<ureq::Body>, ureq::Error> {
        let mut req = ureq::http::Request::builder().method(call.method).uri(url);
        if let Some(a) = &self.auth {
            req = req.header("Authorization", a);
        }
        for (k, v) in &call.headers {
            req = req.header(*k, v);
        }
        let req = req
            .body(call.body.clone().unwrap_or_default())
            .map_err(ureq::Error::Http)?;
        self.agent.run(req)
    }

    /// Sends a GET of `path` and returns its body to read line by line as it arrives.
    pub fn lines(
        &self,
        path: &str,
        query: Vec<(&str, String)>,
    ) -> CliResult<impl std::io::BufRead + use<>> {
        let resp = self.send(&Call {
            method: "GET",
            path: path.to_string(),
            query,
            idempotent: true,
            ..Default::default()
        })?;
        Ok(std::io::BufReader::new(
            resp.into_body().into_with_config().limit(u64::MAX).reader(),
        ))
    }

    /// Sends `call` and returns the whole answer.
    pub fn text(&self, call: &Call<'_>) -> CliResult<String> {
        let mut resp = self.send(call)?;
        resp.body_mut()
            .with_config()
            .limit(1 << 30)
            .read_to_string()
            .map_err(|e| self.broken(e))
    }

    /// Sends `call` and parses the JSON answer.
    pub fn json(&self, call: &Call<'_>) -> CliResult<serde_json::Value> {
        let text = self.text(call)?;
        serde_json::from_str(&text)
            .map_err(|e| CliError::Input(format!("the server sent bad JSON ({e}): {text}")))
    }

    pub fn broken(&self, e: impl std::fmt::Display) -> CliError {
        CliError::Connection(format!("the connection to {} broke: {e}", self.url))
    }
}

/// Failures of the connection, not answers of the server. A request that may have
/// reached the server is sent again only when that is harmless.
fn retryable(e: &ureq::Error, idempotent: bool) -> bool {
    match e {
        ureq::Error::ConnectionFailed | ureq::Error::HostNotFound => true,
        ureq::Error::Io(io) => {
            use std::io::ErrorKind as K;
            match io.kind() {
                // Nothing was sent.
                K::ConnectionRefused | K::NotFound => true,
                // Cut off: the request may have arrived.
                K::ConnectionReset
                | K::ConnectionAborted
                | K::BrokenPipe
                | K::UnexpectedEof
                | K::TimedOut
                | K::Interrupted => idempotent,
                // A TLS failure (an untrusted certificate) and the like: retrying changes
                // nothing.
                _ => false,
            }
        }
        ureq::Error::Timeout(_) | ureq::Error::Protocol(_) => idempotent,
        _ => false,
    }
}

/// Turns an error status into the CLI error the local command would give.
fn check(
    mut resp: ureq::http::Response<ureq::Body>,
) -> CliResult<ureq::http::Response<ureq::Body>> {
    let status = resp.status().as_u16();
    if status < 400 {
        return Ok(resp);
    }
    let text = resp.body_mut().read_to_string().unwrap_or_default();
    let message = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v["error"].as_str().map(str::to_string))
        .unwrap_or_else(|| format!("HTTP {status}: {text}"));
    Err(CliError::Remote { status, message })
}

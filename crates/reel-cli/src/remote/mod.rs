//! The remote CLI: `http://HOST:PORT/NAME` (or `https://`) wherever a command takes DIR. A `Remote` is one
//! store on a `reel serve`; it sends the requests of docs/HTTP.md with the credentials of
//! `REEL_TOKEN` or `REEL_USER`/`REEL_PASSWORD`, retries while the server cannot be
//! reached (for a bounded time), and turns refusals into the local CLI's exit statuses:
//! 3 for a failed condition, 4 for a refused login or a missing permission.

mod commands;
mod kv;
mod read;

pub use commands::{kind, list, rewind, status, stream, verify, views, write};
pub use kv::kv;
pub use read::{member_name, read};

use crate::error::{CliError, CliResult};
use std::path::Path;
use std::time::{Duration, Instant};

/// How long a command keeps trying to reach a server before it gives up.
const REACH_FOR: Duration = Duration::from_secs(10);
/// How long the server may take to answer, and to send each part of its answer, unless
/// `REEL_TIMEOUT` (seconds) says otherwise. A server that accepted the connection but
/// hangs (stopped, overloaded, a network path that drops packets) would otherwise hold
/// the command forever. Long polls and live streams add their own waits to it.
const ANSWER_WITHIN: Duration = Duration::from_secs(60);
/// Connections idle longer are not reused: the server closes them after 10 s without a
/// request (`reel_server::HEADER_READ`), and a request sent on a connection the server
/// is closing could be lost.
const IDLE_REUSE: Duration = Duration::from_secs(5);

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
    /// See [`ANSWER_WITHIN`].
    answer_within: Duration,
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
            .max_idle_age(IDLE_REUSE)
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
        answer_within: answer_within()?,
    }))
}

/// [`ANSWER_WITHIN`], or `REEL_TIMEOUT` seconds.
fn answer_within() -> CliResult<Duration> {
    let Some(text) = std::env::var("REEL_TIMEOUT").ok().filter(|t| !t.is_empty()) else {
        return Ok(ANSWER_WITHIN);
    };
    text.trim()
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s > 0.0)
        // At most a day: the waits of long polls are added to it, and a deadline far
        // enough out overflows the clock.
        .and_then(|s| Duration::try_from_secs_f64(s.min(86_400.0)).ok())
        .ok_or_else(|| {
            CliError::Input(format!(
                "REEL_TIMEOUT: expected seconds (more than 0), not `{text}`"
            ))
        })
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
    /// Sending it twice does no harm and gets the same answer (reads, acknowledgements,
    /// rewinds), so a request whose answer was lost is sent again. Not so for a
    /// compare-and-set or an append with nonces: sent again after it was applied, it
    /// would answer "condition failed" or "duplicate" about its own write.
    pub idempotent: bool,
    /// What a caller whose request may or may not have been applied (its answer was
    /// lost) can do to find out, for the error message.
    pub unsure: Option<String>,
    /// How long the server waits by design before it answers (a long poll's `wait`), on
    /// top of the usual time to answer.
    pub waits: Duration,
    /// A live stream: the answer's head is awaited as usual, but then the body may stay
    /// silent as long as nothing happens.
    pub follow: bool,
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
        let call = Call::default();
        let resp = self.agent.run(self.bounded(req, &call)).map_err(|e| {
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
            let e = match self.send_once(call, &url) {
                Ok(resp) => return check(resp),
                Err(e) => e,
            };
            let reach = reach(&e);
            let again = match reach {
                Reach::NotSent => true,
                Reach::MaybeArrived => call.idempotent,
                Reach::Fatal => false,
            };
            if again && started.elapsed() < REACH_FOR {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_secs(1));
                continue;
            }
            let why = match &e {
                ureq::Error::Timeout(t)
                    if !matches!(t, ureq::Timeout::Connect | ureq::Timeout::Resolve) =>
                {
                    format!(
                        "the server did not answer within {} s (REEL_TIMEOUT sets how long to wait)",
                        (self.answer_within + call.waits).as_secs_f64()
                    )
                }
                e => e.to_string(),
            };
            return Err(CliError::Connection(match (reach, &call.unsure) {
                (Reach::MaybeArrived, Some(how)) if !call.idempotent => format!(
                    "{}: no answer came ({why}): whether the request was applied is unknown; {how}",
                    self.url
                ),
                _ => format!("cannot reach the server for {}: {why}", self.url),
            }));
        }
    }

    /// `req` with the time limits of `call` (see [`ANSWER_WITHIN`]).
    fn bounded<S: ureq::AsSendBody>(
        &self,
        req: ureq::http::Request<S>,
        call: &Call<'_>,
    ) -> ureq::http::Request<S> {
        let within = self.answer_within + call.waits;
        self.agent
            .configure_request(req)
            .timeout_recv_response(Some(within))
            // Each read of the answer, but not the silence of a live stream.
            .timeout_per_read((!call.follow).then_some(within))
            .build()
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
        self.agent.run(self.bounded(req, call))
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
            follow: true,
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

/// What a failed send says about the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reach {
    /// It was not sent: sending it again is harmless.
    NotSent,
    /// The connection failed after the request may have arrived: it may have been
    /// applied, and only a request whose repeat is harmless may be sent again.
    MaybeArrived,
    /// Sending again changes nothing (a TLS failure, an untrusted certificate, a bad
    /// URL).
    Fatal,
}

/// Failures of the connection, not answers of the server.
fn reach(e: &ureq::Error) -> Reach {
    match e {
        ureq::Error::ConnectionFailed | ureq::Error::HostNotFound => Reach::NotSent,
        ureq::Error::Io(io) => {
            use std::io::ErrorKind as K;
            match io.kind() {
                K::ConnectionRefused | K::NotFound => Reach::NotSent,
                K::ConnectionReset
                | K::ConnectionAborted
                | K::BrokenPipe
                | K::UnexpectedEof
                | K::TimedOut
                | K::Interrupted => Reach::MaybeArrived,
                _ => Reach::Fatal,
            }
        }
        ureq::Error::Timeout(ureq::Timeout::Connect | ureq::Timeout::Resolve) => Reach::NotSent,
        ureq::Error::Timeout(_) | ureq::Error::Protocol(_) => Reach::MaybeArrived,
        _ => Reach::Fatal,
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

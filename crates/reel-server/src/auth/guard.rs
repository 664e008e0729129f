//! Who is asking, and may they: the `Caller` extractor authenticates a request (HTTP
//! Basic or a bearer token from `POST /v1/auth/token`) once any user exists, and
//! handlers ask it for the permission letters an operation needs on a store and path.
//!
//! Password checks are slow on purpose (argon2id), so a verified Basic credential is
//! remembered in memory for a minute (keyed by the header, checked against the stored
//! hash so that a password change takes effect at once); failed logins are counted per
//! source address and refused for a while past a limit. Credentials are never logged.

use super::acl::{self, Flags, Grant};
use super::{AuthStore, User, password};
use crate::error::{ApiError, ApiResult};
use crate::routes::{AppState, blocking_slow};
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::StatusCode;
use axum::http::request::Parts;
use reel::kv::Element;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Failed logins from one address within [`FAILURE_WINDOW`] before it is refused.
const MAX_FAILURES: u32 = 10;
const FAILURE_WINDOW: Duration = Duration::from_secs(60);
/// How long a verified Basic credential is remembered.
const BASIC_CACHE: Duration = Duration::from_secs(60);

/// Authentication state shared by every request.
#[derive(Debug)]
pub struct Guard {
    root: std::path::PathBuf,
    store: OnceLock<AuthStore>,
    /// Token → (user, the user's password hash when it was issued, expiry): a token
    /// dies with the password it was issued under (`user passwd`, `user del`).
    tokens: Mutex<HashMap<String, (String, String, Instant)>>,
    /// Authorization header → (user, hash it was checked against, expiry).
    basic: Mutex<HashMap<String, (String, String, Instant)>>,
    failures: Mutex<HashMap<IpAddr, Failures>>,
    /// Signalled when a password check ends (see [`Guard::begin_check`]).
    check_ended: Condvar,
    /// How long a token is valid.
    pub token_ttl: Duration,
    /// Whether a store without users may be used from other machines.
    pub open_to_network: bool,
}

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub enum Caller {
    /// No user exists: no authentication, everything allowed (loopback, or
    /// `--insecure-open`).
    Open,
    /// A user allowed everything.
    Admin {
        name: String,
        /// The password hash the user had when authenticated (see [`Guard::recheck`]).
        hash: String,
    },
    /// A user and its grants.
    User {
        name: String,
        hash: String,
        grants: Arc<Vec<Grant>>,
    },
}

impl Guard {
    /// The guard of a server root.
    pub fn new(root: &std::path::Path, token_ttl: Duration, open_to_network: bool) -> Guard {
        Guard {
            root: root.to_path_buf(),
            store: OnceLock::new(),
            tokens: Mutex::new(HashMap::new()),
            basic: Mutex::new(HashMap::new()),
            failures: Mutex::new(HashMap::new()),
            check_ended: Condvar::new(),
            token_ttl,
            open_to_network,
        }
    }

    /// The auth store, once `reel user add` created it.
    pub fn store(&self) -> ApiResult<Option<&AuthStore>> {
        if let Some(s) = self.store.get() {
            return Ok(Some(s));
        }
        match AuthStore::open(&self.root, false)? {
            Some(s) => Ok(Some(self.store.get_or_init(|| s))),
            None => Ok(None),
        }
    }

    fn refuse_if_limited(&self, ip: Option<IpAddr>) -> ApiResult<()> {
        let Some(ip) = ip else { return Ok(()) };
        let f = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        match f.get(&ip) {
            Some(e) if e.limited() => Err(too_many()),
            _ => Ok(()),
        }
    }

    fn note_failure(&self, ip: Option<IpAddr>) {
        let Some(ip) = ip else { return };
        let mut f = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        f.entry(ip).or_insert_with(Failures::new).fail();
    }

    /// Reserves a password check for `ip`, counted as a failure until it succeeds. The
    /// check takes tens of milliseconds: were failures counted only after it, a burst of
    /// concurrent guesses would all be checked before the first one counted. So checks
    /// under way count towards the limit: past it a request waits for them to end (a
    /// burst of right passwords then finds the first one remembered) and is refused once
    /// the failures alone reach the limit.
    fn begin_check(&self, ip: Option<IpAddr>) -> ApiResult<Check<'_>> {
        let Some(ip) = ip else {
            return Ok(Check { guard: self, ip });
        };
        let mut f = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            let e = f.entry(ip).or_insert_with(Failures::new);
            e.expire();
            if e.limited() {
                return Err(too_many());
            }
            if e.count + e.checking < MAX_FAILURES {
                e.checking += 1;
                return Ok(Check {
                    guard: self,
                    ip: Some(ip),
                });
            }
            // Timed, so that a lost wake-up costs a second, not the request.
            f = self
                .check_ended
                .wait_timeout(f, Duration::from_secs(1))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Authenticates `authorization`. A password not checked in the last minute needs
    /// argon2 (tens of milliseconds): without `allow_slow` that gives `Ok(None)`, to be
    /// retried on a thread that may wait.
    pub fn authenticate(
        &self,
        authorization: Option<&str>,
        ip: Option<IpAddr>,
        loopback_peer: bool,
        allow_slow: bool,
    ) -> ApiResult<Option<Caller>> {
        let store = match self.store()? {
            Some(s) if s.any_user()? => s,
            _ => {
                if loopback_peer || self.open_to_network {
                    return Ok(Some(Caller::Open));
                }
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "permission missing: no users are defined, so this server answers only \
                     loopback clients (add users with `reel user add`, or start it with \
                     --insecure-open)",
                ));
            }
        };
        let Some(header) = authorization else {
            return Err(login_failed(
                "credentials required (HTTP Basic or a bearer token)",
            ));
        };
        self.refuse_if_limited(ip)?;
        let mut issued_under = None;
        let name = if let Some(token) = strip_scheme(header, "Bearer") {
            let tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
            match tokens.get(token.trim()) {
                Some((user, hash, until)) if *until > Instant::now() => {
                    issued_under = Some(hash.clone());
                    user.clone()
                }
                Some(_) => return Err(login_failed("the token has expired; get a new one")),
                None => {
                    drop(tokens);
                    self.note_failure(ip);
                    return Err(login_failed("unknown token"));
                }
            }
        } else if let Some(b64) = strip_scheme(header, "Basic") {
            let Some((name, pass)) = decode_basic(b64.trim()) else {
                // A login that failed, as HTTP has it (clients ask for credentials again).
                self.note_failure(ip);
                return Err(login_failed(
                    "login failed: malformed Basic credentials (base64 of USER:PASSWORD)",
                ));
            };
            let user = store.user(&name)?;
            let ok = match &user {
                Some(u) if self.basic_cached(header, &name, u) => true,
                Some(_) if !allow_slow => return Ok(None),
                Some(u) => {
                    let check = self.begin_check(ip)?;
                    // A burst of the same right credentials: the first check done while
                    // this one waited for its turn is remembered, and spares the hash.
                    let ok = self.basic_cached(header, &name, u)
                        || self.basic_verify(header, &name, u, &pass);
                    check.end(ok);
                    if !ok {
                        return Err(login_failed("login failed: wrong user name or password"));
                    }
                    true
                }
                None => false,
            };
            if !ok {
                self.note_failure(ip);
                return Err(login_failed("login failed: wrong user name or password"));
            }
            name
        } else {
            return Err(login_failed(
                "unsupported Authorization scheme (use Basic or Bearer)",
            ));
        };
        let Some(user) = store.user(&name)? else {
            return Err(login_failed("login failed: the user no longer exists"));
        };
        if issued_under.is_some_and(|h| h != user.hash) {
            return Err(login_failed(
                "the token was issued before the user's password changed; get a new one",
            ));
        }
        Ok(Some(Self::caller_of(store, name, user)?))
    }

    fn caller_of(store: &AuthStore, name: String, user: User) -> ApiResult<Caller> {
        if user.admin {
            return Ok(Caller::Admin {
                name,
                hash: user.hash,
            });
        }
        let grants = Arc::new(store.grants(&name)?);
        Ok(Caller::User {
            name,
            hash: user.hash,
            grants,
        })
    }

    /// Where the auth store is (see [`AuthStore::generation`]); `None` without one.
    pub fn generation(&self) -> Option<u64> {
        self.store().ok().flatten().map(AuthStore::generation)
    }

    /// `caller` as the auth store has it now: an error once the user was deleted or its
    /// password changed (or, for a caller let in because no user existed, once one does).
    pub fn recheck(&self, caller: &Caller) -> ApiResult<Caller> {
        let store = match (self.store()?, caller) {
            (Some(s), _) if s.any_user()? => s,
            (_, Caller::Open) => return Ok(Caller::Open),
            // The last user was deleted: no stream goes on under a name that is gone.
            _ => return Err(login_failed("the user no longer exists")),
        };
        let (name, hash) = match caller {
            Caller::Open => {
                return Err(login_failed(
                    "credentials required: users were added since this stream began",
                ));
            }
            Caller::Admin { name, hash } | Caller::User { name, hash, .. } => (name, hash),
        };
        match store.user(name)? {
            None => Err(login_failed("the user no longer exists")),
            Some(u) if u.hash != *hash => Err(login_failed(
                "the user's password changed since this stream began; log in again",
            )),
            Some(u) => Self::caller_of(store, name.clone(), u),
        }
    }

    /// The header was verified against the user's current hash less than a minute ago.
    fn basic_cached(&self, header: &str, name: &str, user: &User) -> bool {
        let cache = self.basic.lock().unwrap_or_else(|e| e.into_inner());
        cache
            .get(header)
            .is_some_and(|(n, h, until)| n == name && *h == user.hash && *until > Instant::now())
    }

    /// Checks the password (argon2) and remembers the header when it matches.
    fn basic_verify(&self, header: &str, name: &str, user: &User, pass: &str) -> bool {
        if !password::verify(pass, &user.hash) {
            return false;
        }
        let mut cache = self.basic.lock().unwrap_or_else(|e| e.into_inner());
        cache.retain(|_, (_, _, until)| *until > Instant::now());
        cache.insert(
            header.to_string(),
            (
                name.to_string(),
                user.hash.clone(),
                Instant::now() + BASIC_CACHE,
            ),
        );
        true
    }

    /// A new token for `user`, valid while the user keeps its current password.
    pub fn issue_token(&self, user: &str) -> ApiResult<String> {
        let found = match self.store()? {
            Some(store) => store.user(user)?,
            None => None,
        };
        let Some(hash) = found.map(|u| u.hash) else {
            return Err(login_failed("login failed: the user no longer exists"));
        };
        let mut bytes = [0u8; 24];
        argon2::password_hash::rand_core::RngCore::fill_bytes(
            &mut argon2::password_hash::rand_core::OsRng,
            &mut bytes,
        );
        let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let mut tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        tokens.retain(|_, (_, _, until)| *until > Instant::now());
        tokens.insert(
            token.clone(),
            (user.to_string(), hash, Instant::now() + self.token_ttl),
        );
        Ok(token)
    }
}

/// The caller of a live stream (a follow, a watch, a replication feed), checked again
/// before each chunk it is sent: a stream is one long request, and a user deleted, whose
/// password changed, or whose grant was revoked must stop receiving at once, not when
/// the connection ends. The auth store is re-read only when it changed, so a chunk
/// costs an atomic load.
#[derive(Debug)]
pub(crate) struct LiveCaller {
    guard: Arc<Guard>,
    caller: Caller,
    /// The auth store's generation at the last check; none before the first, which
    /// re-reads the caller whatever the generation (a revoke between the request's
    /// authentication and the stream's start must count too).
    seen: Option<Option<u64>>,
    store: String,
    path: Vec<Element>,
    needed: Flags,
}

impl LiveCaller {
    /// `caller`, who was allowed `needed` on (`store`, `path`) when the stream began.
    pub(crate) fn new(
        guard: Arc<Guard>,
        caller: Caller,
        store: &str,
        path: &[Element],
        needed: Flags,
    ) -> LiveCaller {
        LiveCaller {
            seen: None,
            guard,
            caller,
            store: store.to_string(),
            path: path.to_vec(),
            needed,
        }
    }

    /// The caller as of the last check.
    pub(crate) fn caller(&self) -> &Caller {
        &self.caller
    }

    /// Fails (401 or 403) when the caller may no longer have what the stream sends.
    pub(crate) async fn check(&mut self) -> ApiResult<()> {
        let now = self.guard.generation();
        if self.seen == Some(now) {
            return Ok(());
        }
        let (guard, caller) = (self.guard.clone(), self.caller.clone());
        let (store, path, needed) = (self.store.clone(), self.path.clone(), self.needed);
        self.caller = crate::routes::inline(move || {
            let fresh = guard.recheck(&caller)?;
            fresh.require(&store, &path, needed)?;
            Ok(fresh)
        })
        .await?;
        self.seen = Some(now);
        Ok(())
    }
}

fn login_failed(why: &str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, why)
}

/// `user:password` from base64.
fn decode_basic(b64: &str) -> Option<(String, String)> {
    use base64ct::Encoding;
    let bytes = base64ct::Base64::decode_vec(b64).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (u, p) = text.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}

impl Caller {
    /// Requires `needed` on (`store`, `path`): 403 naming what is missing otherwise.
    pub fn require(&self, store: &str, path: &[Element], needed: Flags) -> ApiResult<()> {
        // A name no store can have is a bad request, not a question of permission.
        crate::stores::validate_name(store)?;
        match self {
            Caller::Open | Caller::Admin { .. } => Ok(()),
            Caller::User { name, grants, .. } => match acl::decide(grants, store, path) {
                Some(f) if f.allows(needed) => Ok(()),
                Some(f) => Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    format!(
                        "permission missing: user `{name}` lacks `{}` on store `{store}` at `{}`",
                        f.missing(needed),
                        path_text(path)
                    ),
                )),
                None => Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    format!(
                        "permission missing: no grant of user `{name}` matches store `{store}` at `{}` (no matching rule means no access)",
                        path_text(path)
                    ),
                )),
            },
        }
    }

    /// The flags the caller has on (`store`, `path`).
    pub fn flags(&self, store: &str, path: &[Element]) -> Flags {
        match self {
            Caller::Open | Caller::Admin { .. } => Flags::parse("rxwcda").unwrap_or_default(),
            Caller::User { grants, .. } => acl::decide(grants, store, path).unwrap_or_default(),
        }
    }

    /// True when the caller may see that `store` exists (any grant names it or `*`).
    pub fn sees(&self, store: &str) -> bool {
        match self {
            Caller::Open | Caller::Admin { .. } => true,
            Caller::User { grants, .. } => {
                grants.iter().any(|g| g.store == store || g.store == "*")
            }
        }
    }

    /// The user name, if authenticated.
    pub fn name(&self) -> Option<&str> {
        match self {
            Caller::Open => None,
            Caller::Admin { name: n, .. } | Caller::User { name: n, .. } => Some(n),
        }
    }
}

fn path_text(path: &[Element]) -> String {
    let mut p = reel::kv::Path::root();
    for e in path {
        p = p.child(e.clone());
    }
    p.to_string()
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Caller> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .map(|v| v.to_str().map(str::to_string))
            .transpose()
            .map_err(|_| ApiError::bad_request("the Authorization header is not text"))?;
        let peer = parts
            .extensions
            .get::<ConnectInfo<crate::tls::Peer>>()
            .map(|c| c.0.0.ip());
        let loopback = peer.is_none_or(|ip| ip.is_loopback());
        let guard = state.guard.clone();
        if let Some(caller) = guard.authenticate(header.as_deref(), peer, loopback, false)? {
            return Ok(caller);
        }
        blocking_slow(move || {
            guard
                .authenticate(header.as_deref(), peer, loopback, true)?
                .ok_or_else(|| ApiError::internal("authentication did not finish"))
        })
        .await
    }
}

/// Failed logins from one address in the current window, and password checks under way.
#[derive(Debug)]
struct Failures {
    count: u32,
    since: Instant,
    checking: u32,
}

impl Failures {
    fn new() -> Failures {
        Failures {
            count: 0,
            since: Instant::now(),
            checking: 0,
        }
    }

    /// Starts a new window once the last one is over.
    fn expire(&mut self) {
        if self.since.elapsed() >= FAILURE_WINDOW {
            self.count = 0;
            self.since = Instant::now();
        }
    }

    fn fail(&mut self) {
        self.expire();
        self.count += 1;
    }

    fn limited(&self) -> bool {
        self.count >= MAX_FAILURES && self.since.elapsed() < FAILURE_WINDOW
    }
}

fn too_many() -> ApiError {
    ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "too many failed logins from this address; try again in a minute",
    )
}

/// A password check under way (see [`Guard::begin_check`]); ends when dropped, as a
/// failure unless [`Check::end`] said otherwise.
struct Check<'a> {
    guard: &'a Guard,
    ip: Option<IpAddr>,
}

impl Check<'_> {
    fn end(mut self, ok: bool) {
        self.finish(ok);
    }

    fn finish(&mut self, ok: bool) {
        let Some(ip) = self.ip.take() else { return };
        let mut f = self
            .guard
            .failures
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let e = f.entry(ip).or_insert_with(Failures::new);
        e.checking = e.checking.saturating_sub(1);
        if !ok {
            e.fail();
        }
        drop(f);
        self.guard.check_ended.notify_all();
    }
}

impl Drop for Check<'_> {
    fn drop(&mut self) {
        self.finish(false);
    }
}

/// The credentials after `scheme` in an Authorization header: the scheme is
/// case-insensitive (RFC 9110 §11.1), so `bearer` and `BASIC` are taken too.
fn strip_scheme<'h>(header: &'h str, scheme: &str) -> Option<&'h str> {
    let (given, rest) = header.split_once(' ')?;
    given.eq_ignore_ascii_case(scheme).then_some(rest)
}

#[cfg(test)]
mod tests {
    /// `bearer` and `basic` in lower case were refused as unsupported schemes (401).
    #[test]
    fn the_authorization_scheme_is_case_insensitive() {
        assert_eq!(super::strip_scheme("bearer abc", "Bearer"), Some("abc"));
        assert_eq!(super::strip_scheme("BASIC eA==", "Basic"), Some("eA=="));
        assert_eq!(super::strip_scheme("Bearerabc", "Bearer"), None);
        assert_eq!(super::strip_scheme("Basic x", "Bearer"), None);
    }
}

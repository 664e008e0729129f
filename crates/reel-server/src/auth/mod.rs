//! Users, passwords and grants, kept in a kv store of their own under the server's root
//! (`ROOT/.reel-auth`: a name no data route accepts), so that `reel user` and `reel acl`
//! change them while the server runs, and the server sees every change on the next
//! request.

pub mod acl;
mod guard;
pub mod password;

pub(crate) use guard::LiveCaller;
pub use guard::{Caller, Guard};

use crate::error::{ApiError, ApiResult};
use acl::{Flags, Grant, Pattern};
use reel::kv::{Condition, Element, KvStore, Path};
use serde::{Deserialize, Serialize};
use std::path::Path as FsPath;

/// The directory of the auth store under the root.
pub const AUTH_DIR: &str = ".reel-auth";

/// A user as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// argon2id PHC string; never the password.
    pub hash: String,
    /// Allowed everything.
    pub admin: bool,
}

/// The users and grants of one server root.
#[derive(Debug, Clone)]
pub struct AuthStore {
    kv: KvStore,
}

/// Checks a user name.
pub fn validate_user(name: &str) -> ApiResult<()> {
    let ok = !name.is_empty()
        && name.len() <= 100
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'@'));
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "invalid user name `{name}`: use letters, digits, `-`, `_`, `.` and `@`"
        )))
    }
}

fn user_path(name: &str) -> Path {
    Path::root()
        .child(Element::Str("users".into()))
        .child(Element::Str(name.into()))
}

fn grants_path(name: &str) -> Path {
    Path::root()
        .child(Element::Str("grants".into()))
        .child(Element::Str(name.into()))
}

impl AuthStore {
    /// The auth store of `root`; `None` when it does not exist and `create` is false.
    pub fn open(root: &FsPath, create: bool) -> ApiResult<Option<AuthStore>> {
        let dir = root.join(AUTH_DIR);
        if !create && !dir.join(reel::META_FILE).is_file() {
            return Ok(None);
        }
        let kv = KvStore::builder(&dir)
            .create(create)
            .durability(reel::Durability::Always)
            .open()?;
        Ok(Some(AuthStore { kv }))
    }

    /// Changes with every write to the auth store, by any process: a live stream
    /// re-reads its caller's user and grants only when this moved.
    pub fn generation(&self) -> u64 {
        self.kv.spool().next_seq()
    }

    /// The user `name`, if it exists.
    pub fn user(&self, name: &str) -> ApiResult<Option<User>> {
        let Some(e) = self.kv.get(&user_path(name))? else {
            return Ok(None);
        };
        serde_json::from_value(e.json()?)
            .map(Some)
            .map_err(|e| ApiError::internal(format!("user record of `{name}` is unreadable: {e}")))
    }

    /// True when at least one user exists (then every request needs credentials).
    pub fn any_user(&self) -> ApiResult<bool> {
        Ok(!self
            .kv
            .children(&Path::root().child(Element::Str("users".into())))?
            .is_empty())
    }

    /// Every user name, sorted, with whether it is an admin.
    pub fn users(&self) -> ApiResult<Vec<(String, bool)>> {
        let mut out = Vec::new();
        for p in self
            .kv
            .children(&Path::root().child(Element::Str("users".into())))?
        {
            let Some(Element::Str(name)) = p.elements().last() else {
                continue;
            };
            if let Some(u) = self.user(name)? {
                out.push((name.clone(), u.admin));
            }
        }
        out.sort();
        Ok(out)
    }

    /// Adds a user; an error if the name is taken.
    pub fn add_user(&self, name: &str, password: &str, admin: bool) -> ApiResult<()> {
        validate_user(name)?;
        check_password(password)?;
        let user = User {
            hash: password::hash(password).map_err(ApiError::internal)?,
            admin,
        };
        let value = serde_json::to_value(&user).map_err(|e| ApiError::internal(e.to_string()))?;
        match self
            .kv
            .compare_and_set(&user_path(name), value, Condition::Absent)
        {
            Ok(_) => Ok(()),
            Err(reel::Error::Conflict { .. }) => Err(ApiError::new(
                axum::http::StatusCode::CONFLICT,
                format!("user `{name}` exists (change its password with `reel user passwd`)"),
            )),
            Err(e) => Err(e.into()),
        }
    }

    /// Replaces a user's password.
    pub fn set_password(&self, name: &str, password: &str) -> ApiResult<()> {
        check_password(password)?;
        let path = user_path(name);
        let Some(e) = self.kv.get(&path)? else {
            return Err(no_user(name));
        };
        let mut user: User =
            serde_json::from_value(e.json()?).map_err(|e| ApiError::internal(e.to_string()))?;
        user.hash = password::hash(password).map_err(ApiError::internal)?;
        let value = serde_json::to_value(&user).map_err(|e| ApiError::internal(e.to_string()))?;
        self.kv
            .compare_and_set(&path, value, Condition::Rev(e.rev))?;
        Ok(())
    }

    /// Removes a user and its grants.
    pub fn delete_user(&self, name: &str) -> ApiResult<()> {
        match self.kv.delete(&user_path(name)) {
            Ok(_) => {}
            Err(reel::Error::NotFound(_)) => return Err(no_user(name)),
            Err(e) => return Err(e.into()),
        }
        match self.kv.delete(&grants_path(name)) {
            Ok(_) | Err(reel::Error::NotFound(_)) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// A user's grants.
    pub fn grants(&self, name: &str) -> ApiResult<Vec<Grant>> {
        Ok(self.grants_rev(name)?.0)
    }

    fn grants_rev(&self, name: &str) -> ApiResult<(Vec<Grant>, Option<u64>)> {
        let Some(e) = self.kv.get(&grants_path(name))? else {
            return Ok((Vec::new(), None));
        };
        let grants = serde_json::from_value(e.json()?)
            .map_err(|e| ApiError::internal(format!("grants of `{name}` are unreadable: {e}")))?;
        Ok((grants, Some(e.rev)))
    }

    /// Changes a user's grants with `f`, retrying when another process changed them.
    fn update_grants<T>(
        &self,
        name: &str,
        mut f: impl FnMut(&mut Vec<Grant>) -> T,
    ) -> ApiResult<T> {
        loop {
            let (mut grants, rev) = self.grants_rev(name)?;
            let out = f(&mut grants);
            let value =
                serde_json::to_value(&grants).map_err(|e| ApiError::internal(e.to_string()))?;
            let cond = rev.map_or(Condition::Absent, Condition::Rev);
            match self.kv.compare_and_set(&grants_path(name), value, cond) {
                Ok(_) => return Ok(out),
                Err(reel::Error::Conflict { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Grants `flags` on `store` (a name or `*`) for `pattern`, replacing the user's
    /// grant for the same store and pattern.
    pub fn grant(&self, user: &str, flags: &str, store: &str, pattern: &str) -> ApiResult<()> {
        if self.user(user)?.is_none() {
            return Err(no_user(user));
        }
        let flags = Flags::parse(flags).map_err(ApiError::bad_request)?;
        Pattern::parse(pattern).map_err(ApiError::bad_request)?;
        if store != "*" {
            crate::stores::validate_name(store)?;
        }
        let grant = Grant {
            store: store.into(),
            pattern: pattern.into(),
            flags: flags.to_string(),
        };
        self.update_grants(user, |gs| {
            gs.retain(|g| !(g.store == grant.store && g.pattern == grant.pattern));
            gs.push(grant.clone());
        })
    }

    /// Removes the user's grant for `store` and `pattern`; false when there was none.
    pub fn revoke(&self, user: &str, store: &str, pattern: &str) -> ApiResult<bool> {
        self.update_grants(user, |gs| {
            let before = gs.len();
            gs.retain(|g| !(g.store == store && g.pattern == pattern));
            gs.len() != before
        })
    }
}

fn no_user(name: &str) -> ApiError {
    ApiError::not_found(format!("no user named `{name}`"))
}

fn check_password(p: &str) -> ApiResult<()> {
    if p.is_empty() {
        return Err(ApiError::bad_request("the password is empty"));
    }
    Ok(())
}

//! [`Tier`]: one store's prefix in object storage, reached through the `object_store`
//! crate, with blocking methods (a small runtime of its own runs each request).
//!
//! Retries: the `object_store` client retries 5xx answers, timeouts and broken
//! connections itself, conditional puts included; reads are retried here too. A
//! conditional manifest put that fails (a conflict, or a broken connection) is judged by
//! reading the manifest back: a retry of a put that had landed meets its own result as a
//! conflict, and must not be taken for one.

use crate::manifest::Manifest;
use crate::{Error, Result, TierUrl};
use object_store::path::Path as ObjPath;
use object_store::{ObjectStore, PutMode, PutOptions, PutPayload, UpdateVersion};
use std::sync::Arc;
use std::time::Duration;

/// The manifest as read, with the version a conditional put replaces.
#[derive(Debug, Clone)]
pub struct Versioned {
    /// The manifest.
    pub manifest: Manifest,
    /// Its version in the store.
    pub version: UpdateVersion,
}

/// What a conditional manifest put did.
#[derive(Debug)]
pub enum Put {
    /// Stored; the new version.
    Stored(UpdateVersion),
    /// Someone else replaced (or created) it first.
    Conflict,
}

/// One store's prefix in object storage.
#[derive(Debug)]
pub struct Tier {
    url: TierUrl,
    store: Arc<dyn ObjectStore>,
    rt: tokio::runtime::Runtime,
}

impl Tier {
    /// Connects to `url` with the configuration of the `AWS_*` environment variables
    /// (`AWS_ENDPOINT`, `AWS_REGION`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
    /// `AWS_ALLOW_HTTP`, ...), as `object_store` reads them.
    pub fn connect(url: &TierUrl) -> Result<Tier> {
        let mut b = object_store::aws::AmazonS3Builder::from_env()
            .with_bucket_name(&url.bucket)
            .with_conditional_put(object_store::aws::S3ConditionalPut::ETagMatch)
            .with_retry(object_store::RetryConfig {
                max_retries: 4,
                retry_timeout: Duration::from_secs(30),
                backoff: Default::default(),
            });
        if std::env::var_os("AWS_REGION").is_none()
            && std::env::var_os("AWS_DEFAULT_REGION").is_none()
        {
            // S3-compatible servers ignore the region but the signer needs one.
            b = b.with_region("us-east-1");
        }
        let store = b.build().map_err(|e| Error::Store {
            url: url.to_string(),
            op: "configure the client".into(),
            message: redact(&e.to_string()),
        })?;
        Tier::with_store(url.clone(), Arc::new(store))
    }

    /// A tier over any object store (tests use `object_store::memory::InMemory`).
    pub fn with_store(url: TierUrl, store: Arc<dyn ObjectStore>) -> Result<Tier> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::Store {
                url: url.to_string(),
                op: "start the client runtime".into(),
                message: e.to_string(),
            })?;
        Ok(Tier { url, store, rt })
    }

    /// The store's URL.
    pub fn url(&self) -> &TierUrl {
        &self.url
    }

    fn path(&self, rel: &str) -> ObjPath {
        if self.url.prefix.is_empty() {
            ObjPath::from(rel)
        } else {
            ObjPath::from(format!("{}/{rel}", self.url.prefix))
        }
    }

    fn failed(&self, op: impl Into<String>, e: object_store::Error) -> Error {
        Error::Store {
            url: self.url.to_string(),
            op: op.into(),
            message: redact(&e.to_string()),
        }
    }

    /// The manifest, or `None` when there is no store at the URL.
    pub fn manifest(&self) -> Result<Option<Versioned>> {
        let path = self.path("manifest.json");
        let got = self.rt.block_on(async {
            let r = self.store.get(&path).await?;
            let meta = r.meta.clone();
            let bytes = r.bytes().await?;
            Ok::<_, object_store::Error>((meta, bytes))
        });
        let (meta, bytes) = match got {
            Ok(x) => x,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(self.failed("read manifest.json", e)),
        };
        let manifest = Manifest::decode(&bytes).map_err(|why| Error::Corrupt {
            url: self.url.to_string(),
            what: "manifest.json".into(),
            why,
        })?;
        Ok(Some(Versioned {
            manifest,
            version: UpdateVersion {
                e_tag: meta.e_tag,
                version: meta.version,
            },
        }))
    }

    /// The manifest, or [`Error::NoStore`].
    pub fn require_manifest(&self) -> Result<Versioned> {
        self.manifest()?.ok_or_else(|| Error::NoStore {
            url: self.url.to_string(),
        })
    }

    /// Replaces the manifest if it is still at `prev` (creates it when `prev` is
    /// `None` and there is none).
    pub fn put_manifest(&self, m: &Manifest, prev: Option<&UpdateVersion>) -> Result<Put> {
        let path = self.path("manifest.json");
        let mode = match prev {
            Some(v) => PutMode::Update(v.clone()),
            None => PutMode::Create,
        };
        let r = self.rt.block_on(self.store.put_opts(
            &path,
            PutPayload::from(m.encode()),
            PutOptions {
                mode,
                ..Default::default()
            },
        ));
        match r {
            Ok(res) => Ok(Put::Stored(UpdateVersion {
                e_tag: res.e_tag,
                version: res.version,
            })),
            // The client retries a request whose answer was lost: a retry of a put that
            // had landed meets its own result as a conflict. What is stored tells.
            Err(object_store::Error::Precondition { .. })
            | Err(object_store::Error::AlreadyExists { .. }) => {
                let ours = Manifest::decode(&m.encode()).ok();
                match self.manifest()? {
                    Some(v) if Some(&v.manifest) == ours.as_ref() => Ok(Put::Stored(v.version)),
                    _ => Ok(Put::Conflict),
                }
            }
            Err(e) => {
                // The request may have succeeded before the connection failed: what is
                // stored now tells.
                let ours = Manifest::decode(&m.encode()).ok();
                match self.manifest()? {
                    Some(v) if Some(&v.manifest) == ours.as_ref() => Ok(Put::Stored(v.version)),
                    _ => Err(self.failed("replace manifest.json", e)),
                }
            }
        }
    }

    /// Stores a new data object; an existing object of that name is an error (names
    /// carry the writer's epoch, so only a retry of this very put can find one: then its
    /// bytes must be the same).
    pub fn put_object(&self, name: &str, bytes: Vec<u8>) -> Result<()> {
        let path = self.path(name);
        let len = bytes.len();
        let crc = crc32c::crc32c(&bytes);
        let r = self.rt.block_on(self.store.put_opts(
            &path,
            PutPayload::from(bytes),
            PutOptions {
                mode: PutMode::Create,
                ..Default::default()
            },
        ));
        match r {
            Ok(_) => Ok(()),
            Err(object_store::Error::AlreadyExists { .. }) => {
                let there = self.get_object(name)?;
                if there.len() == len && crc32c::crc32c(&there) == crc {
                    Ok(())
                } else {
                    Err(Error::Store {
                        url: self.url.to_string(),
                        op: format!("create {name}"),
                        message: "an object of that name with other contents exists".into(),
                    })
                }
            }
            Err(e) => Err(self.failed(format!("create {name}"), e)),
        }
    }

    /// A data object's bytes; [`Error::Gone`] when it does not exist (merged away
    /// after the manifest naming it was read: read the manifest again).
    pub fn get_object(&self, name: &str) -> Result<Vec<u8>> {
        self.get_opt(name)?.ok_or_else(|| Error::Gone {
            url: self.url.to_string(),
            name: name.to_string(),
        })
    }

    /// An object's bytes, or `None` when missing; transient failures are retried.
    fn get_opt(&self, name: &str) -> Result<Option<Vec<u8>>> {
        let path = self.path(name);
        let mut delay = Duration::from_millis(100);
        let mut attempt = 0;
        loop {
            let r = self.rt.block_on(async {
                let r = self.store.get(&path).await?;
                r.bytes().await
            });
            match r {
                Ok(b) => return Ok(Some(b.to_vec())),
                Err(object_store::Error::NotFound { .. }) => return Ok(None),
                Err(e) if attempt >= 3 => return Err(self.failed(format!("read {name}"), e)),
                Err(_) => {
                    std::thread::sleep(delay);
                    delay *= 2;
                    attempt += 1;
                }
            }
        }
    }

    /// Names (relative to the prefix) of every object under `dir/`.
    pub fn list(&self, dir: &str) -> Result<Vec<String>> {
        Ok(self.list_aged(dir)?.into_iter().map(|(n, _)| n).collect())
    }

    /// Names of every object under `dir/`, with how long ago each was written.
    pub fn list_aged(&self, dir: &str) -> Result<Vec<(String, Duration)>> {
        use futures::TryStreamExt;
        let path = self.path(dir);
        let metas: Vec<object_store::ObjectMeta> = self
            .rt
            .block_on(self.store.list(Some(&path)).try_collect())
            .map_err(|e| self.failed(format!("list {dir}/"), e))?;
        let strip = if self.url.prefix.is_empty() {
            String::new()
        } else {
            format!("{}/", self.url.prefix)
        };
        let now = std::time::SystemTime::now();
        Ok(metas
            .into_iter()
            .map(|m| {
                let full = m.location.to_string();
                let age = now
                    .duration_since(std::time::SystemTime::from(m.last_modified))
                    .unwrap_or_default();
                (full.strip_prefix(&strip).unwrap_or(&full).to_string(), age)
            })
            .collect())
    }

    /// Deletes an object (an orphan); a missing one is fine.
    pub fn delete(&self, name: &str) -> Result<()> {
        let path = self.path(name);
        match self.rt.block_on(self.store.delete(&path)) {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.failed(format!("delete {name}"), e)),
        }
    }

    /// Stores a small object unconditionally (reader positions).
    pub fn put_small(&self, name: &str, bytes: Vec<u8>) -> Result<()> {
        let path = self.path(name);
        self.rt
            .block_on(self.store.put(&path, PutPayload::from(bytes)))
            .map(drop)
            .map_err(|e| self.failed(format!("write {name}"), e))
    }

    /// A small object, or `None` when missing.
    pub fn get_small(&self, name: &str) -> Result<Option<Vec<u8>>> {
        self.get_opt(name)
    }
}

/// Error text without anything that looks like a credential: `object_store` errors can
/// quote request URLs, whose query strings may carry signatures.
fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for word in text.split_inclusive(char::is_whitespace) {
        let lower = word.to_ascii_lowercase();
        if lower.contains("signature=") || lower.contains("credential=") || lower.contains("secret")
        {
            out.push_str("[redacted] ");
        } else {
            out.push_str(word);
        }
    }
    out
}

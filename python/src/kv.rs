//! `reel.KvStore` and `reel.Watch`: the latest value per hierarchical path.

use crate::convert::{from_stored, from_value, to_path, to_value};
use crate::spool::lock;
use crate::{Owner, Release, errors, options, wait_sliced};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString, PyTuple};
use reel::kv::{Condition, Element, Path, WatchEvent, WatchOptions};
use std::sync::Mutex;

/// A kv store: the latest value per hierarchical path, with compare-and-set and watch.
///
/// ``KvStore(path, durability=None, create=True)`` opens the store in the directory
/// ``path`` (creating it unless ``create=False``). Paths are DistKV text
/// (``"a.b:.c"``: elements ``a`` and ``b.c``) or a tuple of elements
/// (``("a", "b.c", 12)``: str, int, float, bool, bytes or None). Values are
/// JSON-compatible or ``bytes``. Every read sees every write committed before it, by
/// any process. Also a mapping: ``kv[p]``, ``kv[p] = v``, ``del kv[p]``, ``p in kv``,
/// ``len(kv)`` and iteration over every path holding a value (as text).
///
/// Safe to share between threads. After ``os.fork()`` the child must open its own.
///
/// A server URL (``http://HOST:PORT/NAME``) in place of ``path`` opens the store ``NAME``
/// of a ``reel serve`` (see ``reel._remote``).
#[pyclass(module = "reel", frozen, subclass)]
#[derive(Debug)]
pub struct KvStore {
    kv: reel::kv::KvStore,
    owner: Owner,
    /// Kept in object storage: writes are refused (see [`errors::tiered_write`]).
    tiered: bool,
}

impl KvStore {
    fn kv(&self) -> PyResult<&reel::kv::KvStore> {
        self.owner.check("KvStore")?;
        Ok(&self.kv)
    }

    /// [`KvStore::kv`] for a write.
    fn writer(&self) -> PyResult<&reel::kv::KvStore> {
        if self.tiered {
            return Err(errors::tiered_write(self.kv.spool().dir()));
        }
        self.kv()
    }

    fn entry(&self, py: Python<'_>, path: &Path) -> PyResult<Option<reel::kv::KvEntry>> {
        let kv = self.kv()?;
        py.release(|| kv.get(path)).map_err(errors::from_reel)
    }

    fn remove(&self, py: Python<'_>, path: &Path, if_rev: Option<u64>) -> PyResult<u64> {
        let kv = self.writer()?;
        py.release(|| match if_rev {
            Some(rev) => kv.delete_if(path, rev),
            None => kv.delete(path),
        })
        .map_err(errors::from_reel)
    }

    /// Every path holding a value: the root's own value too (`descendants` leaves the
    /// path itself out, so `len` and iteration used to miss a value stored at `:`).
    fn all_keys(&self, py: Python<'_>) -> PyResult<Vec<Path>> {
        let kv = self.kv()?;
        py.release(|| {
            let root = Path::default();
            let mut keys = Vec::new();
            if kv.contains(&root)? {
                keys.push(root.clone());
            }
            keys.extend(kv.descendants(&root)?);
            Ok(keys)
        })
        .map_err(errors::from_reel)
    }
}

#[pymethods]
impl KvStore {
    #[new]
    #[pyo3(signature = (path, durability=None, create=true))]
    fn new(
        py: Python<'_>,
        path: std::path::PathBuf,
        durability: Option<&str>,
        create: bool,
    ) -> PyResult<KvStore> {
        let mut b = reel::kv::KvStore::builder(&path).create(create);
        if let Some(d) = durability {
            b = b.durability(options::durability(d)?);
        }
        let kv = py.release(|| b.open()).map_err(errors::from_reel)?;
        Ok(KvStore {
            tiered: errors::is_tiered(kv.spool().dir()),
            kv,
            owner: Owner::here(),
        })
    }

    /// get(path, default=<missing>) -> value
    ///
    /// The value at ``path``; raises ``reel.NotFound`` (a ``KeyError``) when there is
    /// none, unless ``default`` is given.
    #[pyo3(signature = (path, *default))]
    fn get(
        &self,
        py: Python<'_>,
        path: &Bound<'_, PyAny>,
        default: &Bound<'_, PyTuple>,
    ) -> PyResult<Py<PyAny>> {
        if default.len() > 1 {
            return Err(pyo3::exceptions::PyTypeError::new_err(
                "get() takes a path and at most one default",
            ));
        }
        let p = to_path(Some(path))?;
        match self.entry(py, &p)? {
            Some(e) => from_stored(py, e.encoding, &e.bytes),
            None if default.is_empty() => Err(errors::not_found(format!("no value at {p}"))),
            None => Ok(default.get_item(0)?.unbind()),
        }
    }

    /// get_meta(path) -> {"value", "rev", "ts"}
    ///
    /// The value with its revision (the seq of its write, for ``set(if_rev=...)``) and
    /// time (µs since the epoch); ``reel.NotFound`` when there is none.
    fn get_meta<'py>(
        &self,
        py: Python<'py>,
        path: &Bound<'_, PyAny>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let p = to_path(Some(path))?;
        let e = self
            .entry(py, &p)?
            .ok_or_else(|| errors::not_found(format!("no value at {p}")))?;
        let d = PyDict::new(py);
        d.set_item("value", from_stored(py, e.encoding, &e.bytes)?)?;
        d.set_item("rev", e.rev)?;
        d.set_item("ts", e.ts)?;
        Ok(d)
    }

    /// set(path, value, if_rev=None, if_absent=False) -> int
    ///
    /// Stores ``value`` at ``path`` and returns its revision. With ``if_rev`` only if
    /// the path still has that revision, with ``if_absent`` only if it has no value;
    /// otherwise raises ``reel.ConditionFailed`` and stores nothing.
    #[pyo3(signature = (path, value, if_rev=None, if_absent=false))]
    fn set(
        &self,
        py: Python<'_>,
        path: &Bound<'_, PyAny>,
        value: &Bound<'_, PyAny>,
        if_rev: Option<u64>,
        if_absent: bool,
    ) -> PyResult<u64> {
        let kv = self.writer()?;
        let p = to_path(Some(path))?;
        let v = to_value(value)?;
        let cond = match (if_rev, if_absent) {
            (Some(_), true) => {
                return Err(errors::invalid("give if_rev or if_absent, not both".into()));
            }
            (Some(r), false) => Some(Condition::Rev(r)),
            (None, true) => Some(Condition::Absent),
            (None, false) => None,
        };
        py.release(|| match cond {
            Some(c) => kv.compare_and_set(&p, v, c),
            None => kv.set(&p, v),
        })
        .map_err(errors::from_reel)
    }

    /// delete(path, if_rev=None) -> int
    ///
    /// Deletes the value at ``path`` and returns the deletion's revision; raises
    /// ``reel.NotFound`` when there is none, and ``reel.ConditionFailed`` when ``if_rev``
    /// is given and the path has another revision.
    #[pyo3(signature = (path, if_rev=None))]
    fn delete(
        &self,
        py: Python<'_>,
        path: &Bound<'_, PyAny>,
        if_rev: Option<u64>,
    ) -> PyResult<u64> {
        let p = to_path(Some(path))?;
        self.remove(py, &p, if_rev)
    }

    /// delete_tree(path) -> int
    ///
    /// Deletes ``path`` and everything below it in one atomic write; returns how many
    /// values were deleted.
    fn delete_tree(&self, py: Python<'_>, path: &Bound<'_, PyAny>) -> PyResult<usize> {
        let kv = self.writer()?;
        let p = to_path(Some(path))?;
        py.release(|| kv.delete_tree(&p)).map_err(errors::from_reel)
    }

    /// keys(path=None, recursive=False, tuples=False) -> list
    ///
    /// The children of ``path`` (the root by default), or with ``recursive`` every path
    /// below it that holds a value, sorted: as DistKV text, or with ``tuples`` as tuples
    /// of elements.
    #[pyo3(signature = (path=None, recursive=false, tuples=false))]
    fn keys(
        &self,
        py: Python<'_>,
        path: Option<&Bound<'_, PyAny>>,
        recursive: bool,
        tuples: bool,
    ) -> PyResult<Vec<Py<PyAny>>> {
        let kv = self.kv()?;
        let p = to_path(path)?;
        let paths = py
            .release(|| {
                if recursive {
                    kv.descendants(&p)
                } else {
                    kv.children(&p)
                }
            })
            .map_err(errors::from_reel)?;
        paths
            .iter()
            .map(|p| {
                if tuples {
                    path_tuple(py, p)
                } else {
                    Ok(PyString::new(py, &p.to_string()).into_any().unbind())
                }
            })
            .collect()
    }

    /// clear() -> int
    ///
    /// Deletes every value in one atomic write; returns how many.
    fn clear(&self, py: Python<'_>) -> PyResult<usize> {
        let kv = self.writer()?;
        py.release(|| kv.clear()).map_err(errors::from_reel)
    }

    /// tree(path=None) -> dict | None
    ///
    /// The subtree at ``path`` as nested dicts keyed by element text, each node's own
    /// value under ``"_"`` (DistKV's shape; an element starting with ``_`` gets one more
    /// ``_``); ``None`` when nothing is there.
    #[pyo3(signature = (path=None))]
    fn tree(&self, py: Python<'_>, path: Option<&Bound<'_, PyAny>>) -> PyResult<Py<PyAny>> {
        let kv = self.kv()?;
        let p = to_path(path)?;
        let entries = py.release(|| kv.entries(&p)).map_err(errors::from_reel)?;
        if entries.is_empty() {
            return Ok(py.None());
        }
        // The shape of `KvStore::tree_json`, with values as `get` returns them (bytes
        // stay bytes, not `{"$bytes": ...}`).
        let depth = p.elements().len();
        let root = PyDict::new(py);
        for (path, e) in entries {
            let mut node = root.clone();
            for el in &path.elements()[depth..] {
                let text = el.to_string();
                let key = if text.starts_with('_') {
                    format!("_{text}")
                } else {
                    text
                };
                let child = match node.get_item(&key)? {
                    Some(c) => c.cast_into::<PyDict>()?,
                    None => {
                        let c = PyDict::new(py);
                        node.set_item(&key, &c)?;
                        c
                    }
                };
                node = child;
            }
            node.set_item("_", from_value(py, &e.value())?)?;
        }
        Ok(root.into_any().unbind())
    }

    /// watch(path=None, fetch=False, from_rev=None) -> Watch
    ///
    /// Changes at and below ``path`` as they are committed (by any process), as dicts
    /// shaped as ``reel kv watch`` prints them: ``{"path", "value", "rev"}``,
    /// ``{"path", "deleted": True, "rev"}``. With ``fetch`` the current values come
    /// first, then ``{"synced": True}``; with ``from_rev`` the changes after that
    /// revision.
    #[pyo3(signature = (path=None, fetch=false, from_rev=None))]
    fn watch(
        &self,
        py: Python<'_>,
        path: Option<&Bound<'_, PyAny>>,
        fetch: bool,
        from_rev: Option<u64>,
    ) -> PyResult<Watch> {
        let kv = self.kv()?;
        let p = to_path(path)?;
        let w = py
            .release(|| kv.watch(&p, WatchOptions { fetch, from_rev }))
            .map_err(errors::from_reel)?;
        Ok(Watch {
            watch: Mutex::new(Some(w)),
            spool: kv.spool().clone(),
            owner: self.owner,
        })
    }

    fn __getitem__(&self, py: Python<'_>, path: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        self.get(py, path, &PyTuple::empty(py))
    }

    fn __setitem__(
        &self,
        py: Python<'_>,
        path: &Bound<'_, PyAny>,
        value: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        self.set(py, path, value, None, false).map(drop)
    }

    fn __delitem__(&self, py: Python<'_>, path: &Bound<'_, PyAny>) -> PyResult<()> {
        self.delete(py, path, None).map(drop)
    }

    fn __contains__(&self, py: Python<'_>, path: &Bound<'_, PyAny>) -> PyResult<bool> {
        let p = to_path(Some(path))?;
        Ok(self.entry(py, &p)?.is_some())
    }

    fn __len__(&self, py: Python<'_>) -> PyResult<usize> {
        Ok(self.all_keys(py)?.len())
    }

    fn __iter__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let keys: Vec<String> = self.all_keys(py)?.iter().map(Path::to_string).collect();
        PyList::new(py, keys)?
            .into_any()
            .try_iter()
            .map(Bound::into_any)
    }

    fn __repr__(&self) -> String {
        format!(
            "reel.KvStore({:?})",
            self.kv.spool().dir().display().to_string()
        )
    }
}

/// A running watch of ``KvStore.watch``: iterate with ``for`` (never ends), or
/// ``next(timeout)`` for one event (``None`` when none came in time); ``aiter()`` is the
/// asyncio form.
// weakref: reel._aio keeps a wait a cancelled asyncio iteration left running.
#[pyclass(module = "reel", frozen, weakref)]
#[derive(Debug)]
pub struct Watch {
    /// `None` once closed.
    watch: Mutex<Option<reel::kv::Watch>>,
    /// What a wait for the next event waits on, without holding `watch`.
    spool: reel::Spool,
    owner: Owner,
}

impl Watch {
    /// Calls `f` on the open watch: `Ok(t)` when it has what is asked for, else
    /// `Err(seq)` and this waits up to `slice` for the log to reach `seq`, holding no
    /// lock of the watch (another thread's `next(0)` is never held up by the wait).
    fn step<T>(
        &self,
        slice: std::time::Duration,
        f: impl FnOnce(&mut reel::kv::Watch) -> reel::Result<Option<T>>,
    ) -> reel::Result<Option<T>> {
        let got = match lock(&self.watch).as_mut() {
            Some(w) => f(w)?.ok_or(w.position()),
            None => {
                return Err(reel::Error::InvalidArgument(
                    "the watch is closed; start a new one with kv.watch(...)".into(),
                ));
            }
        };
        match got {
            Ok(t) => Ok(Some(t)),
            Err(pos) => {
                self.spool.wait_for(pos, Some(slice));
                Ok(None)
            }
        }
    }
}

/// A path as a tuple of its elements.
pub(crate) fn path_tuple(py: Python<'_>, p: &Path) -> PyResult<Py<PyAny>> {
    let mut items: Vec<Py<PyAny>> = Vec::with_capacity(p.0.len());
    for el in &p.0 {
        items.push(match el {
            Element::Null => py.None(),
            Element::Bool(b) => b.into_pyobject(py)?.to_owned().into_any().unbind(),
            Element::Int(i) => i.into_pyobject(py)?.into_any().unbind(),
            Element::Float(f) => f64::from(*f).into_pyobject(py)?.into_any().unbind(),
            Element::Str(s) => PyString::new(py, s).into_any().unbind(),
            Element::Bytes(b) => PyBytes::new(py, b).into_any().unbind(),
        });
    }
    Ok(PyTuple::new(py, items)?.into_any().unbind())
}

fn event_dict(py: Python<'_>, ev: WatchEvent) -> PyResult<Py<PyAny>> {
    let d = PyDict::new(py);
    match ev {
        WatchEvent::Put { path, value, rev } => {
            d.set_item("path", path)?;
            d.set_item("value", from_value(py, &value)?)?;
            d.set_item("rev", rev)?;
        }
        WatchEvent::Deleted { path, rev } => {
            d.set_item("path", path)?;
            d.set_item("deleted", true)?;
            d.set_item("rev", rev)?;
        }
        WatchEvent::Synced => d.set_item("synced", true)?,
    }
    Ok(d.into_any().unbind())
}

#[pymethods]
impl Watch {
    /// next(timeout=None) -> dict | None
    ///
    /// The next event, waiting up to ``timeout`` seconds (``None``: for ever). Ctrl-C
    /// interrupts the wait.
    #[pyo3(signature = (timeout=None))]
    fn next(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<Option<Py<PyAny>>> {
        self.owner.check("Watch")?;
        let ev = wait_sliced(py, timeout, |slice| {
            self.step(slice, |w| w.next(Some(std::time::Duration::ZERO)))
        })?;
        ev.map(|e| event_dict(py, e)).transpose()
    }

    /// _ready(timeout) -> bool: waits until ``next(0)`` has an event, taking none (what
    /// ``aiter`` waits with: a cancelled wait loses nothing).
    #[pyo3(signature = (timeout=None))]
    fn _ready(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<bool> {
        self.owner.check("Watch")?;
        let ready = wait_sliced(py, timeout, |slice| {
            self.step(slice, |w| {
                Ok(w.ready(Some(std::time::Duration::ZERO))?.then_some(()))
            })
        })?;
        Ok(ready.is_some())
    }

    /// close()
    ///
    /// Stops the watch and releases what it holds (as the remote watch's ``close``); a
    /// second close does nothing.
    fn close(&self, py: Python<'_>) {
        let w = &self.watch;
        py.release(|| drop(lock(w).take()));
    }

    fn __iter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        self.next(py, None)
    }

    /// The watch as an asyncio iterator (``async for ev in watch.aiter()``), waiting in
    /// a worker thread, never blocking the event loop.
    fn aiter<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        py.import("reel._aio")?
            .getattr("ready_aiter")?
            .call1((slf.getattr("next")?, slf.getattr("_ready")?))
    }
}

/// _path_text(path) -> str: a path (text or tuple) in DistKV's canonical text.
#[pyfunction]
pub fn _path_text(path: &Bound<'_, PyAny>) -> PyResult<String> {
    Ok(to_path(Some(path))?.to_string())
}

/// _path_tuple(path) -> tuple: a path (text or tuple) as a tuple of elements.
#[pyfunction]
pub fn _path_tuple(py: Python<'_>, path: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
    path_tuple(py, &to_path(Some(path))?)
}

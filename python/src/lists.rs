//! `reel.ListStore`: keyed lists with per-key offsets, nonces and paging tokens.

use crate::convert::{from_value, to_json};
use crate::{Owner, Release, errors, options};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyIterator, PyList, PyString};
use reel::list::{ListInfo, NewItem, Page, PageRequest, Start};

/// Keyed lists: each key's items form a list with its own offsets (0, 1, 2, ...).
///
/// ``ListStore(path, durability=None, create=True)`` opens the store in the directory
/// ``path``. ``append`` with a nonce is exactly-once: an item whose nonce is not above
/// the last one accepted for its key is counted as a duplicate and not stored, so a
/// retried batch stores nothing twice. ``read`` pages forwards or backwards; each page's
/// ``continuation`` token continues exactly after its last item.
///
/// Safe to share between threads. After ``os.fork()`` the child must open its own.
///
/// A server URL (``http://HOST:PORT/NAME``) in place of ``path`` opens the store ``NAME``
/// of a ``reel serve`` (see ``reel._remote``).
#[pyclass(module = "reel", frozen, subclass)]
#[derive(Debug)]
pub struct ListStore {
    lists: reel::list::ListStore,
    owner: Owner,
    /// Kept in object storage: writes are refused (see [`errors::tiered_write`]).
    tiered: bool,
}

impl ListStore {
    fn lists(&self) -> PyResult<&reel::list::ListStore> {
        self.owner.check("ListStore")?;
        Ok(&self.lists)
    }

    /// [`ListStore::lists`] for a write.
    fn writer(&self) -> PyResult<&reel::list::ListStore> {
        if self.tiered {
            return Err(errors::tiered_write(self.lists.spool().dir()));
        }
        self.lists()
    }
}

/// A page as a dict; nonces are ints whatever their size (JSON, and so the CLI and
/// HTTP, carry those above 2^64 as decimal strings).
fn page_to_py(py: Python<'_>, page: &Page) -> PyResult<Py<PyAny>> {
    let items = PyList::empty(py);
    for i in &page.items {
        let item = PyDict::new(py);
        item.set_item("offset", i.offset)?;
        item.set_item("ts", i.ts)?;
        item.set_item("nonce", i.nonce)?;
        item.set_item("value", from_value(py, &i.value)?)?;
        items.append(item)?;
    }
    let d = PyDict::new(py);
    d.set_item("key", &page.key)?;
    d.set_item("items", items)?;
    d.set_item("continuation", &page.continuation)?;
    Ok(d.into_any().unbind())
}

fn info_to_py(py: Python<'_>, i: &ListInfo) -> PyResult<Py<PyAny>> {
    let d = PyDict::new(py);
    d.set_item("key", &i.key)?;
    d.set_item("count", i.count)?;
    d.set_item("first_offset", i.first_offset)?;
    d.set_item("next_offset", i.next_offset)?;
    d.set_item("first_ts", i.first_ts)?;
    d.set_item("last_ts", i.last_ts)?;
    d.set_item("last_nonce", i.last_nonce)?;
    Ok(d.into_any().unbind())
}

#[pymethods]
impl ListStore {
    #[new]
    #[pyo3(signature = (path, durability=None, create=true))]
    fn new(
        py: Python<'_>,
        path: std::path::PathBuf,
        durability: Option<&str>,
        create: bool,
    ) -> PyResult<ListStore> {
        let mut b = reel::list::ListStore::builder(&path).create(create);
        if let Some(d) = durability {
            b = b.durability(options::durability(d)?);
        }
        let lists = py.release(|| b.open()).map_err(errors::from_reel)?;
        Ok(ListStore {
            tiered: errors::is_tiered(lists.spool().dir()),
            lists,
            owner: Owner::here(),
        })
    }

    /// append(key, values, nonce=None, ts=None) -> {"appended", "duplicates", "next_offset"}
    ///
    /// Appends the values (a list or other iterable of JSON-compatible values; a single
    /// dict is one value) to ``key``'s list in one atomic write. With ``nonce=N`` the
    /// values get nonces N, N+1, ... (as ``reel list append --nonce N``); ``ts`` is the
    /// items' time in µs since the epoch (default: now).
    #[pyo3(signature = (key, values, nonce=None, ts=None))]
    fn append(
        &self,
        py: Python<'_>,
        key: &str,
        values: &Bound<'_, PyAny>,
        nonce: Option<u128>,
        ts: Option<i64>,
    ) -> PyResult<Py<PyAny>> {
        let lists = self.writer()?;
        // A dict, str or bytes is one value; any other iterable is the values.
        let one = values.is_instance_of::<PyDict>()
            || values.is_instance_of::<PyString>()
            || values.is_instance_of::<PyBytes>()
            || !values.hasattr("__iter__")?;
        let values: Vec<Bound<'_, PyAny>> = if one {
            vec![values.clone()]
        } else {
            PyIterator::from_object(values)?.collect::<PyResult<_>>()?
        };
        let mut items = Vec::with_capacity(values.len());
        for (i, v) in values.iter().enumerate() {
            let nonce = match nonce {
                Some(n) => Some(n.checked_add(i as u128).ok_or_else(|| {
                    errors::invalid("nonce + item index overflows 128 bits".into())
                })?),
                None => None,
            };
            items.push(NewItem {
                value: to_json(v)?,
                nonce,
                ts,
            });
        }
        let r = py
            .release(|| lists.append(key, &items))
            .map_err(errors::from_reel)?;
        let d = PyDict::new(py);
        d.set_item("appended", r.appended)?;
        d.set_item("duplicates", r.duplicates)?;
        d.set_item("next_offset", r.next_offset)?;
        Ok(d.into_any().unbind())
    }

    /// read(key, limit=None, reverse=False, from_offset=None, from_time=None, from_nonce=None, continuation=None) -> {"key", "items", "continuation"}
    ///
    /// One page (``limit`` items, default 100) of ``key``'s list, oldest first or with
    /// ``reverse`` newest first, starting at an offset, a time (µs) or a nonce, or
    /// exactly after the previous page (``continuation``). Each item is
    /// ``{"offset", "ts", "nonce", "value"}``. A key that never had a list gives an
    /// empty page, as one whose items all expired does (``info`` tells them apart: it
    /// raises ``reel.NotFound`` for the first).
    #[pyo3(signature = (key, limit=None, reverse=false, from_offset=None, from_time=None, from_nonce=None, continuation=None))]
    #[allow(clippy::too_many_arguments)]
    fn read(
        &self,
        py: Python<'_>,
        key: &str,
        limit: Option<usize>,
        reverse: bool,
        from_offset: Option<u64>,
        from_time: Option<i64>,
        from_nonce: Option<u128>,
        continuation: Option<String>,
    ) -> PyResult<Py<PyAny>> {
        let lists = self.lists()?;
        let start = match (from_offset, from_time, from_nonce) {
            (None, None, None) => Start::End,
            (Some(o), None, None) => Start::Offset(o),
            (None, Some(t), None) => Start::Time(t),
            (None, None, Some(n)) => Start::Nonce(n),
            _ => {
                return Err(errors::invalid(
                    "give at most one of from_offset, from_time and from_nonce".into(),
                ));
            }
        };
        if limit == Some(0) {
            return Err(errors::invalid("limit must be at least 1".into()));
        }
        if continuation.is_some() && !matches!(start, Start::End) {
            // The token says where the page starts: a start given with it was ignored.
            return Err(errors::invalid(
                "give either continuation or one of from_offset, from_time and from_nonce".into(),
            ));
        }
        let req = PageRequest {
            reverse,
            limit,
            start,
            continuation,
        };
        let page = py
            .release(|| lists.read(key, &req))
            .map_err(errors::from_reel)?;
        page_to_py(py, &page)
    }

    /// info(key) -> dict
    ///
    /// ``{"key", "count", "first_offset", "next_offset", "first_ts", "last_ts",
    /// "last_nonce"}``; raises ``reel.NotFound`` for a key that never had a list.
    fn info(&self, py: Python<'_>, key: &str) -> PyResult<Py<PyAny>> {
        let lists = self.lists()?;
        match py.release(|| lists.info(key)).map_err(errors::from_reel)? {
            Some(i) => info_to_py(py, &i),
            None => Err(errors::not_found(format!("no list with key {key:?}"))),
        }
    }

    /// keys() -> list[str]
    ///
    /// Every key that has a list, sorted.
    fn keys(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        let lists = self.lists()?;
        py.release(|| lists.keys()).map_err(errors::from_reel)
    }

    fn __repr__(&self) -> String {
        format!(
            "reel.ListStore({:?})",
            self.lists.spool().dir().display().to_string()
        )
    }
}

//! `reel.Spool`, `reel.Reader`, `reel.Record` and `reel.Stream`: the log from Python.

use crate::convert::{from_json, from_value, to_value};
use crate::stream::{Stream, StreamState};
use crate::{Owner, Release, errors, options, wait_sliced};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyIterator, PyType};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

/// Locks `m`, taking the value even if a thread panicked while holding it: every
/// method leaves the guarded value consistent between calls.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A spool: a directory holding an append-only log of records.
///
/// ``Spool(path, capacity=None, when_full=None, durability=None)`` opens the spool in
/// ``path``, creating it (and the directory) if there is none. ``capacity`` (bytes, or
/// text such as ``"512m"``) and ``when_full`` (``"drop-oldest"`` or ``"reject"``) are
/// settings of a new spool; given for an existing spool they must match its settings.
/// ``durability`` is this handle's: ``"none"`` (default: survives a crash of the
/// process, not of the machine), ``"batch"`` (synced within milliseconds) or
/// ``"always"`` (each append returns once synced).
///
/// Safe to share between threads. After ``os.fork()`` the child must open its own.
///
/// A server URL (``http://HOST:PORT/NAME``) in place of ``path`` opens the store ``NAME``
/// of a ``reel serve`` (see ``reel._remote``).
#[pyclass(module = "reel", frozen, subclass)]
#[derive(Debug)]
pub struct Spool {
    pub(crate) spool: reel::Spool,
    owner: Owner,
    /// Kept in object storage: writes are refused (see [`errors::tiered_write`]).
    tiered: bool,
}

impl Spool {
    fn get(&self) -> PyResult<&reel::Spool> {
        self.owner.check("Spool")?;
        Ok(&self.spool)
    }

    /// [`Spool::get`] for a write.
    fn writer(&self) -> PyResult<&reel::Spool> {
        if self.tiered {
            return Err(errors::tiered_write(self.spool.dir()));
        }
        self.get()
    }
}

#[pymethods]
impl Spool {
    #[new]
    #[pyo3(signature = (path, capacity=None, when_full=None, durability=None))]
    fn new(
        py: Python<'_>,
        path: std::path::PathBuf,
        capacity: Option<&Bound<'_, PyAny>>,
        when_full: Option<&str>,
        durability: Option<&str>,
    ) -> PyResult<Spool> {
        let mut b = reel::Spool::builder(&path);
        let capacity = capacity.map(|c| options::size(c, "capacity")).transpose()?;
        let when_full = when_full.map(options::when_full).transpose()?;
        if let Some(c) = capacity {
            b = b.capacity(c);
        }
        if let Some(w) = when_full {
            b = b.when_full(w);
        }
        if let Some(d) = durability {
            b = b.durability(options::durability(d)?);
        }
        let spool = py.release(|| b.open()).map_err(errors::from_reel)?;
        let status = py.release(|| spool.status()).map_err(errors::from_reel)?;
        if capacity.is_some_and(|c| c != status.capacity)
            || when_full.is_some_and(|w| w != status.when_full)
        {
            return Err(errors::invalid(format!(
                "{} already holds a spool with capacity {} and when_full {:?}; \
                 open it without these settings, or change them with `reel init --size SIZE --when-full POLICY DIR`",
                path.display(),
                status.capacity,
                status.when_full.as_str()
            )));
        }
        Ok(Spool {
            tiered: errors::is_tiered(spool.dir()),
            spool,
            owner: Owner::here(),
        })
    }

    /// The spool's directory.
    #[getter]
    fn path(&self) -> std::path::PathBuf {
        self.spool.dir().to_path_buf()
    }

    /// append(value, key=None) -> int
    ///
    /// Appends one record and returns its seq. ``value`` is anything JSON-compatible
    /// (dict, list, tuple, str, int up to 64 bits, float, bool, None) or ``bytes``; a
    /// value that is not raises ``TypeError`` and nothing is stored.
    #[pyo3(signature = (value, key=None))]
    fn append(
        &self,
        py: Python<'_>,
        value: &Bound<'_, PyAny>,
        key: Option<String>,
    ) -> PyResult<u64> {
        let spool = self.writer()?;
        let mut rec = reel::NewRecord::new(to_value(value)?);
        rec.key = key;
        py.release(|| spool.append(rec)).map_err(errors::from_reel)
    }

    /// append_many(values, key=None) -> int
    ///
    /// Appends every value of the iterable as one batch (one write, all or nothing) and
    /// returns the first seq. Values are checked before anything is stored.
    #[pyo3(signature = (values, key=None))]
    fn append_many(
        &self,
        py: Python<'_>,
        values: &Bound<'_, PyAny>,
        key: Option<String>,
    ) -> PyResult<u64> {
        let spool = self.writer()?;
        let mut recs = Vec::new();
        for v in PyIterator::from_object(values)? {
            let mut rec = reel::NewRecord::new(to_value(&v?)?);
            rec.key = key.clone();
            recs.push(rec);
        }
        if recs.is_empty() {
            return Err(errors::invalid(
                "append_many needs at least one value".into(),
            ));
        }
        py.release(|| spool.append_batch(&recs))
            .map(|r| r.start)
            .map_err(errors::from_reel)
    }

    /// reader(name="default") -> Reader
    ///
    /// Opens the named reader: its position is persisted in the spool and shared with
    /// ``reel read --reader NAME``. A new reader starts at the oldest record. One
    /// process at a time may hold a reader name.
    #[pyo3(signature = (name="default"))]
    fn reader(&self, py: Python<'_>, name: &str) -> PyResult<Reader> {
        let spool = self.get()?;
        let r = py
            .release(|| spool.reader(name))
            .map_err(errors::from_reel)?;
        Ok(Reader {
            committed: Mutex::new(r.position()),
            inner: Arc::new(Mutex::new(Some(r))),
            spool: spool.clone(),
            name: name.to_string(),
            owner: self.owner,
        })
    }

    /// status() -> dict
    ///
    /// What ``reel status --json`` prints: capacity, use, seqs, readers, ...
    fn status(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let spool = self.get()?;
        let st = py.release(|| spool.status()).map_err(errors::from_reel)?;
        let json = serde_json::to_value(&st).map_err(|e| errors::error(e.to_string()))?;
        from_json(py, &json)
    }

    /// sync()
    ///
    /// Makes every record this handle appended durable (survives a power cut).
    fn sync(&self, py: Python<'_>) -> PyResult<()> {
        let spool = self.get()?;
        py.release(|| spool.sync()).map_err(errors::from_reel)
    }

    /// stream(gt=None, gte=None, lt=None, lte=None, reverse=False, limit=None, live=False) -> Stream
    ///
    /// Iterates records by seq range, oldest first (newest first with ``reverse``),
    /// without moving any reader. With ``live=True`` the iteration does not end: after
    /// the records already there it waits for new ones. ``stream(...).aiter()`` is the
    /// asyncio form.
    #[pyo3(signature = (gt=None, gte=None, lt=None, lte=None, reverse=false, limit=None, live=false))]
    #[allow(clippy::too_many_arguments)]
    fn stream(
        &self,
        gt: Option<u64>,
        gte: Option<u64>,
        lt: Option<u64>,
        lte: Option<u64>,
        reverse: bool,
        limit: Option<u64>,
        live: bool,
    ) -> PyResult<Stream> {
        let spool = self.get()?;
        if live && reverse {
            return Err(errors::invalid("a live stream cannot be reversed".into()));
        }
        let opts = reel::StreamOptions {
            gt,
            gte,
            lt,
            lte,
            reverse,
            limit,
            live: false,
        };
        let (start, end) = opts.range();
        let state = if live {
            StreamState::Live {
                spool: spool.clone(),
                next: start,
                end,
                left: limit,
                buf: Default::default(),
            }
        } else {
            StreamState::Done(spool.stream(&opts).map_err(errors::from_reel)?)
        };
        Ok(Stream {
            state: Arc::new(Mutex::new(state)),
            owner: self.owner,
        })
    }

    fn __repr__(&self) -> String {
        format!("reel.Spool({:?})", self.spool.dir().display().to_string())
    }
}

/// One record: ``seq``, ``ts`` (µs since the epoch), ``key`` (or None), ``nonce`` (or
/// None) and ``value``.
#[pyclass(module = "reel", frozen, get_all)]
#[derive(Debug)]
pub struct Record {
    seq: u64,
    ts: i64,
    key: Option<String>,
    nonce: Option<u128>,
    value: Py<PyAny>,
}

impl Record {
    pub(crate) fn new(py: Python<'_>, r: reel::Record) -> PyResult<Record> {
        Ok(Record {
            value: from_value(py, &r.value)?,
            seq: r.seq,
            ts: r.ts,
            key: r.key,
            nonce: r.nonce,
        })
    }
}

#[pymethods]
impl Record {
    #[new]
    #[pyo3(signature = (seq, ts, value, key=None, nonce=None))]
    fn py_new(
        seq: u64,
        ts: i64,
        value: Py<PyAny>,
        key: Option<String>,
        nonce: Option<u128>,
    ) -> Record {
        Record {
            seq,
            ts,
            key,
            nonce,
            value,
        }
    }

    /// Pickling (a record through a ``multiprocessing`` queue): the class and the
    /// constructor's arguments.
    #[allow(clippy::type_complexity)]
    fn __reduce__<'py>(
        slf: &Bound<'py, Self>,
    ) -> (
        Bound<'py, PyType>,
        (u64, i64, Py<PyAny>, Option<String>, Option<u128>),
    ) {
        let r = slf.get();
        (
            slf.get_type(),
            (
                r.seq,
                r.ts,
                r.value.clone_ref(slf.py()),
                r.key.clone(),
                r.nonce,
            ),
        )
    }

    /// The record as a dict: ``{"seq", "ts", "key", "nonce", "value"}``.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("seq", self.seq)?;
        d.set_item("ts", self.ts)?;
        d.set_item("key", &self.key)?;
        d.set_item("nonce", self.nonce)?;
        d.set_item("value", self.value.bind(py))?;
        Ok(d)
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "reel.Record(seq={}, ts={}, key={}, value={})",
            self.seq,
            self.ts,
            self.key
                .as_deref()
                .map_or("None".to_string(), |k| format!("{k:?}")),
            self.value.bind(py).repr()?
        ))
    }

    fn __eq__(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<bool> {
        let Ok(o) = other.cast::<Record>() else {
            return Ok(false);
        };
        let o = o.get();
        Ok(self.seq == o.seq
            && self.ts == o.ts
            && self.key == o.key
            && self.nonce == o.nonce
            && self.value.bind(py).eq(o.value.bind(py))?)
    }
}

/// A named reader: consumes the spool from its persisted position.
///
/// ``next(timeout=None)`` blocks until a record arrives (``None`` after ``timeout``
/// seconds; ``timeout=0`` does not wait); ``for rec in reader`` yields what is there and
/// stops when caught up. ``commit()`` persists the position: the next reader of this
/// name (in Python or ``reel read``) starts after the last record delivered, so a
/// consumer that commits after processing gets every record at least once. As a
/// context manager it commits on a normal exit and closes; after an exception it closes
/// without committing, so the records of the failed block are delivered again. A reader
/// dropped without ``commit()`` or ``close()`` persists nothing. ``aiter()`` is the
/// asyncio form of ``next``.
// weakref: reel._aio keeps a wait a cancelled asyncio iteration left running.
#[pyclass(module = "reel", frozen, weakref)]
#[derive(Debug)]
pub struct Reader {
    inner: Arc<Mutex<Option<reel::Reader>>>,
    /// What a wait for the next record waits on, without holding `inner`.
    spool: reel::Spool,
    /// The position last committed, to step back to when closing after an error.
    committed: Mutex<u64>,
    name: String,
    owner: Owner,
}

fn with_reader<T>(
    inner: &Mutex<Option<reel::Reader>>,
    f: impl FnOnce(&mut reel::Reader) -> reel::Result<T>,
) -> reel::Result<T> {
    match lock(inner).as_mut() {
        Some(r) => f(r),
        None => Err(reel::Error::InvalidArgument(
            "the reader is closed; open it again with spool.reader(name)".into(),
        )),
    }
}

impl Reader {
    fn next_record(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<Option<Record>> {
        self.owner.check("Reader")?;
        let inner = &self.inner;
        let rec = if timeout == Some(0.0) {
            py.release(|| with_reader(inner, |r| r.next()))
                .map_err(errors::from_reel)?
        } else {
            wait_sliced(py, timeout, |slice| {
                let got = with_reader(inner, |r| Ok(r.next()?.ok_or(r.position())))?;
                Ok(self.wait_outside(got, slice))
            })?
        };
        rec.map(|r| Record::new(py, r)).transpose()
    }

    /// `got` when it is a record; else waits up to `slice` for the log to reach `Err`'s
    /// seq. The wait holds no lock of this reader, so another thread's `next(0)` (or a
    /// short timeout) is never held up by it.
    fn wait_outside<T>(&self, got: Result<T, u64>, slice: std::time::Duration) -> Option<T> {
        match got {
            Ok(t) => Some(t),
            Err(pos) => {
                self.spool.wait_for(pos, Some(slice));
                None
            }
        }
    }
}

#[pymethods]
impl Reader {
    /// The reader's name.
    #[getter]
    fn name(&self) -> &str {
        &self.name
    }

    /// Seq of the next record this reader delivers.
    #[getter]
    fn position(&self, py: Python<'_>) -> PyResult<u64> {
        let inner = &self.inner;
        py.release(|| with_reader(inner, |r| Ok(r.position())))
            .map_err(errors::from_reel)
    }

    /// next(timeout=None) -> Record | None
    ///
    /// The next record, waiting for one to be appended (by any process) for up to
    /// ``timeout`` seconds (``None``: for ever; ``0``: not at all). Ctrl-C interrupts
    /// the wait with ``KeyboardInterrupt``.
    #[pyo3(signature = (timeout=None))]
    fn next(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<Option<Record>> {
        self.next_record(py, timeout)
    }

    /// _ready(timeout) -> bool: waits until ``next(0)`` has a record, taking none (what
    /// ``aiter`` waits with: a cancelled wait loses nothing).
    #[pyo3(signature = (timeout=None))]
    fn _ready(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<bool> {
        self.owner.check("Reader")?;
        let inner = &self.inner;
        let ready = wait_sliced(py, timeout, |slice| {
            let got = with_reader(inner, |r| {
                Ok(r.wait(Some(Instant::now()))
                    .then_some(())
                    .ok_or(r.position()))
            })?;
            Ok(self.wait_outside(got, slice))
        })?;
        Ok(ready.is_some())
    }

    /// commit()
    ///
    /// Persists the position (after the last record delivered).
    fn commit(&self, py: Python<'_>) -> PyResult<()> {
        self.owner.check("Reader")?;
        let (inner, committed) = (&self.inner, &self.committed);
        py.release(|| {
            with_reader(inner, |r| {
                r.commit()?;
                *lock(committed) = r.position();
                Ok(())
            })
        })
        .map_err(errors::from_reel)
    }

    /// seek(seq)
    ///
    /// Moves to ``seq`` (the oldest retained record if that is older); persisted by the
    /// next ``commit()``. A seq past the end of the spool raises ``InvalidArgument``:
    /// the records appended up to it would be skipped unseen.
    fn seek(&self, py: Python<'_>, seq: u64) -> PyResult<()> {
        self.owner.check("Reader")?;
        let inner = &self.inner;
        py.release(|| with_reader(inner, |r| r.seek_within(seq)))
            .map_err(errors::from_reel)
    }

    /// rewind()
    ///
    /// Moves to the oldest retained record (replay); persisted by the next ``commit()``.
    fn rewind(&self, py: Python<'_>) -> PyResult<()> {
        self.owner.check("Reader")?;
        let inner = &self.inner;
        py.release(|| {
            with_reader(inner, |r| {
                r.rewind();
                Ok(())
            })
        })
        .map_err(errors::from_reel)
    }

    /// close()
    ///
    /// Commits and releases the reader name (another process may then open it).
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        // A second close (an explicit one inside `with`) does nothing, as remotely.
        if lock(&self.inner).is_none() {
            return Ok(());
        }
        self.commit(py)?;
        let inner = &self.inner;
        py.release(|| drop(lock(inner).take()));
        Ok(())
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (exc_type=None, _exc=None, _tb=None))]
    fn __exit__(
        &self,
        py: Python<'_>,
        exc_type: Option<&Bound<'_, PyType>>,
        _exc: Option<&Bound<'_, PyAny>>,
        _tb: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        if exc_type.is_some() {
            py.release(|| self.release_uncommitted());
        } else {
            self.close(py)?;
        }
        Ok(false)
    }

    fn __iter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<Option<Record>> {
        self.next_record(py, Some(0.0))
    }

    /// The reader as an asyncio iterator: ``async for rec in reader.aiter(): ...``
    /// waits for records in a worker thread, never blocking the event loop, and does not
    /// end. Commit with ``reader.commit()`` as with the blocking form.
    fn aiter<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        py.import("reel._aio")?
            .getattr("ready_aiter")?
            .call1((slf.getattr("next")?, slf.getattr("_ready")?))
    }

    fn __repr__(&self) -> String {
        format!("reel.Reader({:?})", self.name)
    }
}

/// A reader dropped without `commit()` or `close()` (garbage-collected after an
/// exception, or at the exit of a process that never committed) persists nothing: only
/// what the program committed counts as consumed. In a forked child it is forgotten
/// untouched: its position file and lock are the parent's.
impl Drop for Reader {
    fn drop(&mut self) {
        if self.owner.is_here() {
            self.release_uncommitted();
        } else if let Some(r) = lock(&self.inner).take() {
            std::mem::forget(r);
        }
    }
}

impl Reader {
    /// Releases the reader name, keeping the position last committed (the engine's
    /// reader commits where it stands when dropped: it is stepped back first).
    fn release_uncommitted(&self) {
        let Some(mut r) = lock(&self.inner).take() else {
            return;
        };
        r.seek(*lock(&self.committed));
    }
}

//! `reel.Stream`: records of `Spool.stream` by seq range, optionally following the log.

use crate::spool::{Record, lock};
use crate::{Owner, wait_sliced};
use pyo3::prelude::*;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug)]
pub(crate) enum StreamState {
    Done(reel::Stream),
    Live {
        spool: reel::Spool,
        next: u64,
        end: Option<u64>,
        left: Option<u64>,
        buf: std::collections::VecDeque<reel::Record>,
    },
}

/// A live stream ends at its `limit` (`left` reaches 0) or its `lt`/`lte` bound.
fn live_ended(left: Option<u64>, end: Option<u64>, next: u64) -> bool {
    left == Some(0) || end.is_some_and(|e| next >= e)
}

impl StreamState {
    /// Waits up to `wait` until [`StreamState::step`] would return a record or the end
    /// without waiting; takes nothing.
    fn ready(&mut self, wait: Duration) -> reel::Result<bool> {
        match self {
            StreamState::Done(_) => Ok(true),
            StreamState::Live {
                spool,
                next,
                end,
                left,
                buf,
            } => {
                if live_ended(*left, *end, *next) || !buf.is_empty() {
                    return Ok(true);
                }
                Ok(spool.wait_for(*next, Some(wait)))
            }
        }
    }

    /// The next record, waiting up to `wait` for one in a live stream; `Ok(None)` with
    /// `done` set when the stream has ended.
    fn step(&mut self, wait: Duration, done: &mut bool) -> reel::Result<Option<reel::Record>> {
        match self {
            StreamState::Done(s) => {
                let r = s.next().transpose()?;
                *done = r.is_none();
                Ok(r)
            }
            StreamState::Live {
                spool,
                next,
                end,
                left,
                buf,
            } => {
                if live_ended(*left, *end, *next) {
                    *done = true;
                    return Ok(None);
                }
                if buf.is_empty() {
                    let upto = end.unwrap_or(u64::MAX);
                    for r in spool.iter(*next..upto).take(1024) {
                        buf.push_back(r?);
                    }
                    if buf.is_empty() {
                        spool.wait_for(*next, Some(wait));
                        return Ok(None);
                    }
                }
                let r = buf.pop_front();
                if let Some(r) = &r {
                    *next = r.seq + 1;
                    if let Some(l) = left {
                        *l -= 1;
                    }
                }
                Ok(r)
            }
        }
    }
}

/// Records of ``Spool.stream``: iterate with ``for``, or ``next(timeout)`` for one
/// record at a time (``None`` when none came within the timeout or the stream ended);
/// ``aiter()`` is the asyncio form.
// weakref: reel._aio keeps a wait a cancelled asyncio iteration left running.
#[pyclass(module = "reel", frozen, weakref)]
#[derive(Debug)]
pub struct Stream {
    pub(crate) state: Arc<Mutex<StreamState>>,
    pub(crate) owner: Owner,
}

impl Stream {
    /// `Err(StopIteration)`-free form: `Ok(None)` at the end or after `timeout`.
    fn pull(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<(Option<Record>, bool)> {
        self.owner.check("Stream")?;
        let state = &self.state;
        let mut ended = false;
        let ended_ref = &mut ended;
        let got = wait_sliced(py, timeout, |slice| {
            let mut done = false;
            let r = lock(state).step(slice, &mut done)?;
            if done {
                *ended_ref = true;
                // Ends the wait: the caller sees `ended`.
                return Ok(Some(None));
            }
            Ok(r.map(Some))
        })?;
        let rec = got.flatten().map(|r| Record::new(py, r)).transpose()?;
        Ok((rec, ended))
    }
}

#[pymethods]
impl Stream {
    /// next(timeout=None) -> Record | None
    ///
    /// The next record; ``None`` when the stream ended or none came within ``timeout``
    /// seconds (a live stream only ends at its ``lt``/``lte`` bound or ``limit``).
    #[pyo3(signature = (timeout=None))]
    fn next(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<Option<Record>> {
        Ok(self.pull(py, timeout)?.0)
    }

    fn __iter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<Option<Record>> {
        Ok(self.pull(py, None)?.0)
    }

    /// The stream as an asyncio iterator (``async for rec in stream.aiter()``), waiting
    /// in a worker thread, never blocking the event loop.
    fn aiter<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        py.import("reel._aio")?
            .getattr("ready_stream_aiter")?
            .call1((slf.getattr("_next_or_end")?, slf.getattr("_ready")?))
    }

    /// _ready(timeout) -> bool: waits until ``next(0)`` has a record or the stream's
    /// end, taking nothing (what ``aiter`` waits with: a cancelled wait loses nothing).
    #[pyo3(signature = (timeout=None))]
    fn _ready(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<bool> {
        self.owner.check("Stream")?;
        let state = &self.state;
        let ready = wait_sliced(py, timeout, |slice| {
            Ok(lock(state).ready(slice)?.then_some(()))
        })?;
        Ok(ready.is_some())
    }

    /// ``(record, ended)``: what ``aiter`` polls.
    #[pyo3(signature = (timeout=None))]
    fn _next_or_end(
        &self,
        py: Python<'_>,
        timeout: Option<f64>,
    ) -> PyResult<(Option<Record>, bool)> {
        self.pull(py, timeout)
    }
}

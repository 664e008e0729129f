//! reel's Python extension module `reel._reel`: the spool, kv and list classes of the
//! `reel` package, thin wrappers over the embedded API of the `reel` crate.
//!
//! The Python package (`python/reel/`) re-exports these classes and adds what is
//! easier written in Python: the exception hierarchy (`reel/_errors.py`, which this
//! module raises), asyncio iteration (`reel/_aio.py`) and the drop-in shims.
//!
//! Three rules hold for every method here:
//! - engine work runs with the interpreter detached ([`Release::release`], never
//!   [`Python::detach`] directly), so other Python threads run meanwhile; state shared
//!   between threads sits behind a mutex that is only ever taken while detached (taking
//!   it while attached could deadlock against a thread that holds it and waits to
//!   re-attach);
//! - a blocking wait is cut into slices of at most [`SLICE`], checking for signals in
//!   between, so Ctrl-C interrupts it promptly with `KeyboardInterrupt`;
//! - an object used in a process other than the one that opened it (after `fork`)
//!   refuses with a clear error instead of sharing locks and file offsets with its
//!   parent.

mod convert;
mod errors;
mod kv;
mod lists;
mod options;
mod spool;
mod stream;

use pyo3::prelude::*;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Longest a blocking call stays detached before it checks for signals.
const SLICE: Duration = Duration::from_millis(50);

/// The thread that runs the interpreter's exit (its `atexit` callbacks), once it began.
static EXITING: OnceLock<std::thread::ThreadId> = OnceLock::new();
/// Threads past the check for [`EXITING`] that are taking the interpreter back.
static REATTACHING: AtomicUsize = AtomicUsize::new(0);

/// True when the interpreter began to exit and this is not the thread exiting it.
fn exiting_elsewhere() -> bool {
    EXITING
        .get()
        .is_some_and(|&t| t != std::thread::current().id())
}

/// `atexit` callback: the interpreter is about to finalize. Threads released by
/// [`Release::release`] sleep for good from now on instead of re-attaching; those that
/// were already re-attaching get the interpreter first (for at most a second), because
/// one still waiting for it once finalization starts is ended by CPython (below 3.14)
/// with `pthread_exit`, whose unwinding through Rust frames aborts the process
/// ("FATAL: exception not rethrown", exit 134) after the program's own exit.
#[pyfunction]
fn _at_exit(py: Python<'_>) {
    let _ = EXITING.set(std::thread::current().id());
    if REATTACHING.load(Ordering::SeqCst) > 0 {
        py.detach(|| {
            let deadline = Instant::now() + Duration::from_secs(1);
            while REATTACHING.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(1));
            }
        });
    }
}

/// Sleeps for good: the interpreter is exiting and this thread must not re-attach.
fn park_for_good() -> ! {
    loop {
        std::thread::park();
    }
}

/// Detaching from the interpreter for engine work, safely at exit.
pub(crate) trait Release {
    /// Runs `f` detached from the interpreter ([`Python::detach`]); a thread that
    /// finishes `f` once the interpreter began to exit elsewhere (a daemon thread
    /// blocked in a read, say) sleeps for good instead of re-attaching (see
    /// [`_at_exit`]).
    fn release<T: Send, F: Send + FnOnce() -> T>(self, f: F) -> T;
}

impl Release for Python<'_> {
    fn release<T: Send, F: Send + FnOnce() -> T>(self, f: F) -> T {
        let out = self.detach(|| {
            let out = f();
            if exiting_elsewhere() {
                park_for_good();
            }
            REATTACHING.fetch_add(1, Ordering::SeqCst);
            // Checked again after counting itself: either `_at_exit` sees the count
            // and waits for this thread, or this thread sees that the exit began.
            if exiting_elsewhere() {
                REATTACHING.fetch_sub(1, Ordering::SeqCst);
                park_for_good();
            }
            out
        });
        REATTACHING.fetch_sub(1, Ordering::SeqCst);
        out
    }
}

/// The process that opened an object; every call checks it is still this one.
#[derive(Debug, Clone, Copy)]
struct Owner(u32);

impl Owner {
    fn here() -> Owner {
        Owner(std::process::id())
    }

    /// True in the process that opened the object.
    fn is_here(self) -> bool {
        std::process::id() == self.0
    }

    /// Refuses use from a forked child: the parent's file locks and reader positions
    /// are not the child's, and sharing them would corrupt positions silently.
    fn check(self, what: &str) -> PyResult<()> {
        let now = std::process::id();
        if now == self.0 {
            Ok(())
        } else {
            Err(errors::error(format!(
                "this {what} was opened in process {} and cannot be used in process {now} \
                 (a forked child): open it again in the child",
                self.0
            )))
        }
    }
}

/// Calls `step` with slices of the time left until one returns `Some` or `timeout`
/// (seconds; `None` for ever) passes, detached from the interpreter during each slice
/// and checking for signals between slices.
fn wait_sliced<T: Send>(
    py: Python<'_>,
    timeout: Option<f64>,
    mut step: impl FnMut(Duration) -> reel::Result<Option<T>> + Send,
) -> PyResult<Option<T>> {
    let deadline = match timeout {
        Some(t) if t.is_nan() || t < 0.0 => {
            return Err(errors::invalid(format!(
                "timeout must be a number of seconds >= 0, not {t}"
            )));
        }
        // A timeout too long to reach (`inf`, 1e300) is for ever.
        Some(t) => Duration::try_from_secs_f64(t)
            .ok()
            .and_then(|d| Instant::now().checked_add(d)),
        None => None,
    };
    loop {
        let slice = match deadline {
            Some(d) => d.saturating_duration_since(Instant::now()).min(SLICE),
            None => SLICE,
        };
        let got = py.release(|| step(slice)).map_err(errors::from_reel)?;
        if got.is_some() {
            return Ok(got);
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(None);
        }
        py.check_signals()?;
    }
}

/// reel's native module; import `reel`, not this.
#[pymodule]
fn _reel(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.py()
        .import("atexit")?
        .call_method1("register", (wrap_pyfunction!(_at_exit, m)?,))?;
    m.add_class::<spool::Spool>()?;
    m.add_class::<spool::Reader>()?;
    m.add_class::<spool::Record>()?;
    m.add_class::<stream::Stream>()?;
    m.add_class::<kv::KvStore>()?;
    m.add_class::<kv::Watch>()?;
    m.add_class::<lists::ListStore>()?;
    m.add_function(wrap_pyfunction!(kv::_path_text, m)?)?;
    m.add_function(wrap_pyfunction!(kv::_path_tuple, m)?)?;
    Ok(())
}

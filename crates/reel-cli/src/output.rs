//! Standard output, for every command: one buffered writer that counts the bytes the
//! operating system accepted and, when stdout is a pipe, can tell how many of them the
//! consumer has not taken yet.
//!
//! Commands never print with `println!` (which panics on a closed stdout): they write
//! here and return the `io::Error`; `main` turns a broken pipe into a quiet exit. The
//! byte counts let `reel read` commit only records its consumer has taken.

use std::io::{self, Write};
use std::time::{Duration, Instant};

/// Bytes buffered before a write to the operating system.
const FLUSH_AT: usize = 256 << 10;

/// Standard output.
#[derive(Debug)]
pub struct Output {
    buf: Vec<u8>,
    /// Bytes the operating system accepted so far.
    written: u64,
    /// Stdout is a pipe (FIFO): written bytes may still sit in the pipe buffer.
    pipe: bool,
}

/// What became of written output while waiting for the consumer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drain {
    /// The consumer took every written byte (always so for files and terminals).
    Drained,
    /// The consumer closed its end of the pipe.
    Closed,
    /// The deadline passed with bytes still in the pipe.
    Pending,
}

impl Output {
    /// The process's stdout.
    pub fn stdout() -> Output {
        Output {
            buf: Vec::with_capacity(8 << 10),
            written: 0,
            pipe: sys::stdout_is_pipe(),
        }
    }

    /// Writes one line.
    pub fn line(&mut self, args: std::fmt::Arguments<'_>) -> io::Result<()> {
        self.buf.write_fmt(args)?;
        self.buf.push(b'\n');
        self.flush_if_full()
    }

    /// Writes `v` as one line of JSON.
    pub fn json_line(&mut self, v: &impl serde::Serialize) -> io::Result<()> {
        serde_json::to_writer(&mut self.buf, v).map_err(io::Error::from)?;
        self.buf.push(b'\n');
        self.flush_if_full()
    }

    /// Appends raw bytes.
    pub fn bytes(&mut self, b: &[u8]) -> io::Result<()> {
        self.buf.extend_from_slice(b);
        self.flush_if_full()
    }

    fn flush_if_full(&mut self) -> io::Result<()> {
        if self.buf.len() >= FLUSH_AT {
            self.flush()
        } else {
            Ok(())
        }
    }

    /// Hands every buffered byte to the operating system. On failure, `written` counts
    /// exactly the bytes that got out.
    pub fn flush(&mut self) -> io::Result<()> {
        let mut off = 0;
        let result = loop {
            let Some(rest) = self.buf.get(off..).filter(|r| !r.is_empty()) else {
                break Ok(());
            };
            match sys::write(rest) {
                Ok(0) => break Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    off += n;
                    self.written += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => sys::wait_writable(),
                Err(e) => break Err(e),
            }
        };
        self.buf.drain(..off);
        result
    }

    /// Bytes given to this writer so far (written or still buffered).
    pub fn pushed(&self) -> u64 {
        self.written + self.buf.len() as u64
    }

    /// True when stdout is a pipe.
    pub fn is_pipe(&self) -> bool {
        self.pipe
    }

    /// Bytes the consumer has taken: everything written, less what still sits in the
    /// pipe. For files and terminals, everything written.
    pub fn consumed(&self) -> u64 {
        if self.pipe {
            self.written.saturating_sub(sys::unread_in_pipe())
        } else {
            self.written
        }
    }

    /// True when stdout is a pipe whose reading end is closed.
    pub fn consumer_gone(&self) -> bool {
        self.pipe && sys::closed(Duration::ZERO)
    }

    /// Waits until the consumer took every written byte, closed the pipe, or `deadline`
    /// passed. Checks with a growing pause (a pipe has no "drained" event to wait on).
    pub fn wait_drained(&self, deadline: Option<Instant>) -> Drain {
        if !self.pipe {
            return Drain::Drained;
        }
        let mut pause = Duration::from_micros(20);
        loop {
            if sys::unread_in_pipe() == 0 {
                return Drain::Drained;
            }
            let step = match deadline {
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Drain::Pending;
                    }
                    pause.min(left)
                }
                None => pause,
            };
            // poll() returns at once when the consumer closes its end.
            if sys::closed(step) {
                return Drain::Closed;
            }
            pause = (pause * 2).min(Duration::from_millis(10));
        }
    }
}

impl Write for Output {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.bytes(b)?;
        Ok(b.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Output::flush(self)
    }
}

/// A line on stderr. Never fails: with stderr gone there is nobody left to tell.
pub fn note(args: std::fmt::Arguments<'_>) {
    let mut err = io::stderr().lock();
    let _ = err.write_fmt(args).and_then(|()| err.write_all(b"\n"));
}

#[cfg(unix)]
mod sys {
    use rustix::event::{PollFd, PollFlags, Timespec};
    use std::io;
    use std::os::unix::fs::FileTypeExt;
    use std::time::Duration;

    pub fn stdout_is_pipe() -> bool {
        use std::os::fd::AsFd;
        io::stdout()
            .as_fd()
            .try_clone_to_owned()
            .map(std::fs::File::from)
            .and_then(|f| f.metadata())
            .is_ok_and(|m| m.file_type().is_fifo())
    }

    pub fn write(b: &[u8]) -> io::Result<usize> {
        Ok(rustix::io::write(io::stdout(), b)?)
    }

    /// Bytes in the pipe on stdout that its consumer has not read (0 when unknown).
    pub fn unread_in_pipe() -> u64 {
        rustix::io::ioctl_fionread(io::stdout()).unwrap_or(0)
    }

    /// Waits up to `timeout` for the reading end of stdout to close.
    pub fn closed(timeout: Duration) -> bool {
        let out = io::stdout();
        let mut fds = [PollFd::new(&out, PollFlags::empty())];
        let ts = Timespec {
            tv_sec: timeout.as_secs().try_into().unwrap_or(i64::MAX),
            tv_nsec: timeout.subsec_nanos().into(),
        };
        match rustix::event::poll(&mut fds, Some(&ts)) {
            Ok(_) => fds
                .iter()
                .any(|f| f.revents().intersects(PollFlags::ERR | PollFlags::HUP)),
            Err(_) => {
                std::thread::sleep(timeout);
                false
            }
        }
    }

    /// Waits until a non-blocking stdout accepts bytes again.
    pub fn wait_writable() {
        let out = io::stdout();
        let mut fds = [PollFd::new(&out, PollFlags::OUT)];
        let _ = rustix::event::poll(&mut fds, None);
    }
}

#[cfg(not(unix))]
mod sys {
    use std::io::{self, Write};
    use std::time::Duration;

    pub fn stdout_is_pipe() -> bool {
        false
    }
    pub fn write(b: &[u8]) -> io::Result<usize> {
        io::stdout().write(b)
    }
    pub fn unread_in_pipe() -> u64 {
        0
    }
    pub fn closed(timeout: Duration) -> bool {
        std::thread::sleep(timeout);
        false
    }
    pub fn wait_writable() {}
}

//! Range reads with flumedb's options: `gt`/`gte`/`lt`/`lte` bounds by seq, `reverse`,
//! `limit`, and `live` (keep following the log as records arrive).

use super::{Iter, RevIter, Spool};
use crate::error::{Error, Result};
use crate::record::Record;
use std::time::Duration;

/// Options of [`Spool::stream`]. The default streams every retained record once, oldest
/// first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamOptions {
    /// Only seqs greater than this.
    pub gt: Option<u64>,
    /// Only seqs at least this.
    pub gte: Option<u64>,
    /// Only seqs less than this.
    pub lt: Option<u64>,
    /// Only seqs at most this.
    pub lte: Option<u64>,
    /// Newest first.
    pub reverse: bool,
    /// At most this many records.
    pub limit: Option<u64>,
    /// After the records already there, wait for and yield new ones (forward only).
    pub live: bool,
}

impl StreamOptions {
    /// The half-open seq range `[start, end)` the bounds select (`end` None: unbounded).
    pub fn range(&self) -> (u64, Option<u64>) {
        let start = match (self.gt, self.gte) {
            (Some(g), Some(ge)) => g.saturating_add(1).max(ge),
            (Some(g), None) => g.saturating_add(1),
            (None, Some(ge)) => ge,
            (None, None) => 0,
        };
        let end = match (self.lt, self.lte) {
            (Some(l), Some(le)) => Some(l.min(le.saturating_add(1))),
            (Some(l), None) => Some(l),
            (None, Some(le)) => Some(le.saturating_add(1)),
            (None, None) => None,
        };
        (start, end)
    }
}

/// Records selected by [`StreamOptions`]; a live stream blocks in `next` until a record
/// arrives.
#[derive(Debug)]
pub struct Stream {
    inner: Inner,
    left: Option<u64>,
}

#[derive(Debug)]
enum Inner {
    Forward(Iter),
    Reverse(RevIter),
    Live {
        spool: Spool,
        next: u64,
        end: Option<u64>,
        buf: std::vec::IntoIter<Record>,
    },
}

impl Spool {
    /// Streams records by seq range, forwards or backwards, optionally following the log.
    ///
    /// ```
    /// # let tmp = tempfile::tempdir().unwrap();
    /// use reel::{Spool, StreamOptions};
    /// let spool = Spool::create(tmp.path())?;
    /// for n in 0..10 { spool.append(serde_json::json!(n))?; }
    /// let opts = StreamOptions { gt: Some(2), lte: Some(5), reverse: true, ..Default::default() };
    /// let seqs: Vec<u64> = spool.stream(&opts)?.map(|r| r.map(|r| r.seq)).collect::<Result<_, _>>()?;
    /// assert_eq!(seqs, [5, 4, 3]);
    /// # Ok::<(), reel::Error>(())
    /// ```
    pub fn stream(&self, opts: &StreamOptions) -> Result<Stream> {
        if opts.live && opts.reverse {
            return Err(Error::InvalidArgument(
                "a live stream cannot be reversed".into(),
            ));
        }
        let (start, end) = opts.range();
        let inner = if opts.live {
            Inner::Live {
                spool: self.clone(),
                next: start,
                end,
                buf: Vec::new().into_iter(),
            }
        } else if opts.reverse {
            Inner::Reverse(self.iter_rev(start..end.unwrap_or(u64::MAX)))
        } else {
            Inner::Forward(self.iter(start..end.unwrap_or(u64::MAX)))
        };
        Ok(Stream {
            inner,
            left: opts.limit,
        })
    }
}

impl Iterator for Stream {
    type Item = Result<Record>;

    fn next(&mut self) -> Option<Result<Record>> {
        if self.left == Some(0) {
            return None;
        }
        let item = match &mut self.inner {
            Inner::Forward(it) => it.next(),
            Inner::Reverse(it) => it.next(),
            Inner::Live {
                spool,
                next,
                end,
                buf,
            } => loop {
                if let Some(r) = buf.next() {
                    *next = r.seq + 1;
                    break Some(Ok(r));
                }
                if end.is_some_and(|e| *next >= e) {
                    break None;
                }
                let upto = end.unwrap_or(u64::MAX);
                let batch: Result<Vec<Record>> = spool.iter(*next..upto).take(1024).collect();
                match batch {
                    Ok(b) if b.is_empty() => {
                        spool.wait_for(*next, Some(Duration::from_secs(3600)));
                    }
                    Ok(b) => *buf = b.into_iter(),
                    Err(e) => break Some(Err(e)),
                }
            },
        };
        if item.is_some()
            && let Some(l) = self.left.as_mut()
        {
            *l -= 1;
        }
        item
    }
}

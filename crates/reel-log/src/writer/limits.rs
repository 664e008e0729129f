//! The limits every append is checked against (maximum record size, a batch that fits the
//! capacity), measured once per append and checked once per group.

use crate::error::{Error, Result};
use crate::frame::{self, Entry};

/// What the configured limits are checked against: measured when an append arrives,
/// checked by whichever thread writes its group, against the config read once for the
/// whole group (a follower does not read the config).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Extent {
    /// Sum of frame lengths.
    pub(crate) total: u64,
    pub(crate) records: u64,
    pub(crate) max_payload: u64,
    pub(crate) max_frame: u64,
}

impl Extent {
    /// Measures `entries`, refusing what no config allows (over-long keys, unknown
    /// encodings).
    pub(crate) fn of(entries: &[Entry<'_>]) -> Result<Extent> {
        let mut x = Extent::default();
        for e in entries {
            if e.key.is_some_and(|k| k.len() > frame::MAX_KEY_LEN) {
                return Err(Error::InvalidArgument(format!(
                    "key longer than {} bytes",
                    frame::MAX_KEY_LEN
                )));
            }
            if e.encoding > 15 {
                return Err(Error::InvalidArgument(format!(
                    "value encoding {} above 15",
                    e.encoding
                )));
            }
            let frame_len = e.frame_len() as u64;
            x.total += frame_len;
            x.records += 1;
            x.max_payload = x.max_payload.max(e.payload_len() as u64);
            x.max_frame = x.max_frame.max(frame_len);
        }
        Ok(x)
    }

    /// Checks the limits of `config`.
    pub(crate) fn check(&self, config: &crate::meta::Config) -> Result<()> {
        if self.max_payload > config.max_record_size || self.max_frame > config.capacity {
            // The largest record that fits: the configured maximum, or the capacity less
            // the record's framing (a record must fit in the log on its own).
            let framing = self.max_frame.saturating_sub(self.max_payload);
            return Err(Error::RecordTooLarge {
                size: self.max_payload,
                max: config
                    .max_record_size
                    .min(config.capacity.saturating_sub(framing)),
            });
        }
        // A batch is stored whole or not at all, so one that cannot fit even in an empty
        // log must be refused rather than overshoot the capacity (or wait for readers that
        // could never make room for it).
        if self.total > config.capacity {
            return Err(Error::BatchTooLarge {
                bytes: self.total,
                records: self.records,
                capacity: config.capacity,
            });
        }
        Ok(())
    }
}

//! What a store holds ([`StoreKind`], fixed at creation in `reel.meta`) and the checks
//! that keep each kind's data safe: raw appends only into spools, kv and lists opened only
//! as themselves, and the one change of kind there is, an untyped store (created before
//! kinds) taking the kind it is used as when its contents and policy allow it.
//!
//! Reading works on every kind: it is all a log. Tools that know what they do append
//! raw records to any store through the engine handle ([`Spool::log`]), which knows
//! nothing of kinds.

use super::Spool;
use crate::error::{Error, Result};
use crate::list::LISTS_VIEW;
use crate::value::{TAG_LIST_ITEM, TAG_TOMBSTONE};
use crate::view::Checkpoint;
use reel_log::meta::Meta;
use reel_log::segment::{self, FLAG_COMPACTED, SEGMENT_HEADER_LEN};
use reel_log::storage::OpenMode;
use reel_log::{KvPathSyntax, StoreKind, WhenFull};

impl Spool {
    /// What the store holds.
    pub fn kind(&self) -> StoreKind {
        self.log.kind()
    }

    /// Records `kind` in a store created before kinds, if its contents and policy fit:
    /// kv needs no list items and, unless the policy is already compact, nothing but kv
    /// writes (the policy then becomes compact); lists need a policy other than compact.
    /// A store of `kind` already is left as it is; one of another kind fails with
    /// [`Error::WrongKind`]: a store's kind never changes.
    pub fn set_kind(&self, kind: StoreKind) -> Result<()> {
        let have = self.log.kind();
        if have.is_same_kind(kind) {
            return Ok(());
        }
        if have != StoreKind::Untyped {
            return Err(self.wrong_kind(have, kind));
        }
        if kind == StoreKind::Untyped {
            return Err(Error::InvalidArgument(
                "a store cannot be made untyped".into(),
            ));
        }
        // An untyped store's kv keys were written in the text of its time.
        let adopted = match kind {
            StoreKind::Kv(_) => StoreKind::Kv(KvPathSyntax::Legacy),
            k => k,
        };
        let got = self.log.adopt_kind(adopted, |meta| match adopted {
            StoreKind::Kv(_) => self.kv_fit(meta),
            StoreKind::Lists => self.lists_fit(meta),
            _ => Ok(None),
        })?;
        if !got.is_same_kind(kind) {
            return Err(self.wrong_kind(got, kind));
        }
        Ok(())
    }

    /// Makes sure the store can be used as `kind`: one of that kind, or an untyped one
    /// that fits (recorded on a writable handle; a read-only handle never writes and
    /// checks only the policy).
    pub(crate) fn ensure_kind(&self, kind: StoreKind) -> Result<()> {
        let have = self.log.kind();
        if have.is_same_kind(kind) {
            return Ok(());
        }
        if have != StoreKind::Untyped {
            return Err(self.wrong_kind(have, kind));
        }
        if self.log.is_writable() {
            return self.set_kind(kind);
        }
        if kind == StoreKind::Lists {
            let config = self.log.config();
            if config.when_full == WhenFull::Compact {
                return Err(self.cannot_adopt(kind, lists_compact_reason(self)));
            }
        }
        Ok(())
    }

    /// Refuses raw records in a kv or lists store: they would bypass its encoding.
    pub(crate) fn check_raw_append(&self) -> Result<()> {
        match self.log.kind() {
            k @ (StoreKind::Kv(_) | StoreKind::Lists) => Err(self.wrong_kind(k, StoreKind::Spool)),
            _ => Ok(()),
        }
    }

    fn wrong_kind(&self, kind: StoreKind, wanted: StoreKind) -> Error {
        Error::WrongKind {
            dir: self.dir().to_path_buf(),
            kind,
            wanted,
        }
    }

    fn cannot_adopt(&self, wanted: StoreKind, reason: String) -> Error {
        Error::CannotAdopt {
            dir: self.dir().to_path_buf(),
            wanted,
            reason,
        }
    }

    /// Whether an untyped store can become a kv store, and the policy it then needs.
    /// Reads every record (once per store, under the writer lock).
    fn kv_fit(&self, meta: &Meta) -> Result<Option<WhenFull>> {
        let wanted = StoreKind::Kv(KvPathSyntax::Legacy);
        let end = self.log.next_seq();
        let mut reader = self.log.reader(self.log.oldest_seq());
        let mut first_other = None;
        while reader.position() < end {
            let batch = reader.read_batch(4096)?;
            if batch.is_empty() {
                break;
            }
            for r in batch.iter().filter(|r| r.seq < end) {
                if r.encoding == TAG_LIST_ITEM {
                    return Err(self.cannot_adopt(
                        wanted,
                        format!(
                            "it holds list items (the first at seq {}); use reel list on it",
                            r.seq
                        ),
                    ));
                }
                let kv_write = r.key.is_some() && matches!(r.encoding, 0 | 1 | TAG_TOMBSTONE);
                if !kv_write && first_other.is_none() {
                    first_other = Some(r.seq);
                }
            }
        }
        let policy = meta.config.when_full;
        if policy == WhenFull::Compact {
            return Ok(None);
        }
        if let Some(seq) = first_other {
            return Err(self.cannot_adopt(
                wanted,
                format!(
                    "it uses the {policy} when-full policy and holds records that are not kv \
                     writes (the first at seq {seq}), which a kv store's compaction would keep \
                     forever; read it as a spool (reel read, reel stream)"
                ),
            ));
        }
        Ok(Some(WhenFull::Compact))
    }

    /// Whether an untyped store can hold lists. Compaction that already ran removed
    /// items the lists checkpoint may still count: the checkpoint is then discarded, so
    /// the view is rebuilt from the records that are left.
    fn lists_fit(&self, meta: &Meta) -> Result<Option<WhenFull>> {
        if meta.config.when_full == WhenFull::Compact {
            return Err(self.cannot_adopt(StoreKind::Lists, lists_compact_reason(self)));
        }
        if self.any_segment_compacted()? {
            let storage = self.log.storage();
            Checkpoint::remove(&**storage, self.dir(), LISTS_VIEW)?;
        }
        Ok(None)
    }

    fn any_segment_compacted(&self) -> Result<bool> {
        let storage = self.log.storage();
        for s in self.log.segments()? {
            let file = match storage.open(&s.path, OpenMode::Read) {
                Ok(f) => f,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(reel_log::Error::io("open", s.path, e).into()),
            };
            let mut h = [0u8; SEGMENT_HEADER_LEN as usize];
            let n = file
                .read_full_at(&mut h, 0)
                .map_err(|e| reel_log::Error::io("read", &s.path, e))?;
            if let Ok(header) = segment::decode_header(&h[..n], &s.path)
                && header.flags & FLAG_COMPACTED != 0
            {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

fn lists_compact_reason(spool: &Spool) -> String {
    format!(
        "it uses the compact when-full policy, which keeps only the latest record of each \
         key and destroys lists; change the policy first (reel init --when-full drop-oldest \
         {}); items compaction already removed stay lost",
        spool.dir().display()
    )
}

//! The model: what was written, as records and as the kv and list state they make.

use super::*;

/// One record as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rec {
    pub(crate) seq: u64,
    pub(crate) ts: i64,
    pub(crate) key: Option<String>,
    pub(crate) nonce: Option<u128>,
    pub(crate) tag: u8,
    pub(crate) value: Vec<u8>,
}

impl Rec {
    pub(crate) fn of(r: &reel::RecordRef<'_>) -> Rec {
        Rec {
            seq: r.seq,
            ts: r.ts,
            key: r.key.map(str::to_string),
            nonce: r.nonce,
            tag: r.encoding,
            value: r.value.to_vec(),
        }
    }
    pub(crate) fn of_record(r: &reel::Record) -> Rec {
        Rec {
            seq: r.seq,
            ts: r.ts,
            key: r.key.clone(),
            nonce: r.nonce,
            tag: r.value.encoding().tag(),
            value: r.value.as_bytes().to_vec(),
        }
    }
}

/// A kv path's expected entry: (tag, value bytes, rev, ts).
pub(crate) type KvExp = BTreeMap<String, (u8, Vec<u8>, u64, i64)>;

/// kv state after applying `recs` in order.
pub(crate) fn kv_state<'a>(recs: impl IntoIterator<Item = &'a Rec>) -> KvExp {
    let mut m = KvExp::new();
    for r in recs {
        let Some(k) = &r.key else { continue };
        if r.tag == 15 {
            m.remove(k);
        } else {
            m.insert(k.clone(), (r.tag, r.value.clone(), r.seq, r.ts));
        }
    }
    m
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ListExp {
    /// (offset, ts, nonce, MessagePack value)
    pub(crate) items: Vec<(u64, i64, Option<u128>, Vec<u8>)>,
    pub(crate) next_offset: u64,
    pub(crate) last_nonce: Option<u128>,
}

pub(crate) fn lists_state<'a>(
    recs: impl IntoIterator<Item = &'a Rec>,
) -> BTreeMap<String, ListExp> {
    let mut m: BTreeMap<String, ListExp> = BTreeMap::new();
    for r in recs {
        let (Some(k), 2) = (&r.key, r.tag) else {
            continue;
        };
        let offset = u64::from_le_bytes(r.value[..8].try_into().unwrap());
        let l = m.entry(k.clone()).or_default();
        l.items.push((offset, r.ts, r.nonce, r.value[8..].to_vec()));
        l.next_offset = offset + 1;
        l.last_nonce = l.last_nonce.max(r.nonce);
    }
    m
}

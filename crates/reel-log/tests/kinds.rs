//! The store kind in `reel.meta` as the engine sees it (FORMAT.md §4): recorded at
//! creation, refused with a policy that would destroy its data, and adopted once by an
//! untyped store, under the writer lock, with the policy the kind needs.
mod common;
use common::*;
use reel_log::storage::sim::SimStorage;
use reel_log::{Error, KvPathSyntax, Log, LogOptions, StoreKind, WhenFull};
use std::sync::Arc;
use std::time::Duration;

fn create(sim: &SimStorage, kind: StoreKind, when_full: WhenFull) -> reel_log::Result<Log> {
    let mut cfg = small_config();
    cfg.when_full = when_full;
    LogOptions::new()
        .storage(Arc::new(sim.clone()))
        .create(cfg)
        .kind(kind)
        .open(DIR)
}

#[test]
fn the_kind_is_recorded_at_creation_and_read_back() {
    let kv = StoreKind::Kv(KvPathSyntax::DistKv);
    for (kind, policy) in [
        (StoreKind::Spool, WhenFull::Reject),
        (kv, WhenFull::Compact),
        (StoreKind::Lists, WhenFull::DropOldest),
        (StoreKind::Untyped, WhenFull::Compact),
    ] {
        let sim = SimStorage::new();
        let log = create(&sim, kind, policy).unwrap();
        assert_eq!(log.kind(), kind);
        drop(log);
        assert_eq!(reopen(&sim.power_loss(1)).unwrap().kind(), kind);
    }
}

#[test]
fn a_kind_is_never_created_with_a_policy_that_destroys_its_data() {
    for (kind, policy) in [
        (StoreKind::Kv(KvPathSyntax::Legacy), WhenFull::DropOldest),
        (StoreKind::Kv(KvPathSyntax::Legacy), WhenFull::Reject),
        (StoreKind::Lists, WhenFull::Compact),
    ] {
        let sim = SimStorage::new();
        assert!(
            matches!(create(&sim, kind, policy), Err(Error::InvalidArgument(_))),
            "{kind} with {policy}"
        );
        assert!(
            sim.files().is_empty(),
            "{kind} with {policy}: nothing created"
        );
    }
    let sim = SimStorage::new();
    let log = create(&sim, StoreKind::Lists, WhenFull::DropOldest).unwrap();
    assert!(matches!(
        log.compact(Duration::ZERO),
        Err(Error::InvalidArgument(_))
    ));
}

#[test]
fn an_untyped_store_adopts_a_kind_once_with_the_policy_it_needs() {
    let sim = SimStorage::new();
    let log = create(&sim, StoreKind::Untyped, WhenFull::DropOldest).unwrap();
    append_n(&log, 3, 10);
    let other = reopen(&sim).unwrap();
    assert_eq!(other.kind(), StoreKind::Untyped);
    let kv = StoreKind::Kv(KvPathSyntax::DistKv);
    let mut seen = None;
    let got = log
        .adopt_kind(kv, |m| {
            seen = Some((m.kind, m.config.when_full));
            Ok::<_, Error>(Some(WhenFull::Compact))
        })
        .unwrap();
    assert_eq!(got, kv);
    assert_eq!(seen, Some((StoreKind::Untyped, WhenFull::DropOldest)));
    assert_eq!(log.kind(), kv);
    assert_eq!(log.config().when_full, WhenFull::Compact);
    // Another handle re-reads reel.meta (config_gen was bumped), and so does a reopen.
    assert_eq!(other.kind(), kv);
    assert_eq!(other.config().when_full, WhenFull::Compact);
    assert_eq!(reopen(&sim.power_loss(2)).unwrap().kind(), kv);
    // A store that has a kind keeps it: `check` is not even asked.
    let again = log
        .adopt_kind(StoreKind::Lists, |_| -> Result<_, Error> {
            panic!("check called on a typed store")
        })
        .unwrap();
    assert_eq!(again, kv);
    assert_eq!(log.kind(), kv);
}

#[test]
fn adopting_keeps_the_policy_when_check_says_none_and_changes_nothing_when_it_refuses() {
    let sim = SimStorage::new();
    let log = create(&sim, StoreKind::Untyped, WhenFull::Reject).unwrap();
    let refused = log.adopt_kind(StoreKind::Lists, |_| {
        Err::<Option<WhenFull>, _>(Error::InvalidArgument("no".into()))
    });
    assert!(matches!(refused, Err(Error::InvalidArgument(_))));
    assert_eq!(log.kind(), StoreKind::Untyped);
    assert_eq!(
        log.adopt_kind(StoreKind::Lists, |_| Ok::<_, Error>(None))
            .unwrap(),
        StoreKind::Lists
    );
    assert_eq!(log.config().when_full, WhenFull::Reject);
    // Untyped is not a kind to adopt; a read-only handle adopts nothing.
    let sim = SimStorage::new();
    let log = create(&sim, StoreKind::Untyped, WhenFull::Reject).unwrap();
    assert!(matches!(
        log.adopt_kind(StoreKind::Untyped, |_| Ok::<_, Error>(None)),
        Err(Error::InvalidArgument(_))
    ));
    let ro = LogOptions::new()
        .storage(Arc::new(sim.clone()))
        .read_only(true)
        .open(DIR)
        .unwrap();
    assert!(matches!(
        ro.adopt_kind(StoreKind::Spool, |_| Ok::<_, Error>(None)),
        Err(Error::ReadOnly { .. })
    ));
    assert_eq!(log.kind(), StoreKind::Untyped);
}

struct Saves(std::sync::atomic::AtomicU64);

impl reel_log::RetentionBarrier for Saves {
    fn before_drop(&self, below: u64) -> reel_log::Result<()> {
        self.0.store(below, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }
}

/// A lists store's oldest records go only through a handle whose lists view saves what
/// only it will know once they are gone (each list's next offset and last nonce): a
/// handle without one (a follower's replicator used to be one) is refused, and nothing
/// is dropped or appended.
#[test]
fn a_lists_store_drops_records_only_through_a_handle_that_keeps_its_view() {
    let sim = SimStorage::new();
    let log = create(&sim, StoreKind::Lists, WhenFull::DropOldest).unwrap();
    let capacity = log.config().capacity;
    let mut refused = None;
    for _ in 0..capacity / 100 + 10 {
        let oldest = log.oldest_seq();
        let next = log.next_seq();
        let v = vec![b'x'; 100];
        match log.append(&[reel_log::Entry {
            value: &v,
            ..Default::default()
        }]) {
            Ok(_) => assert_eq!(log.oldest_seq(), 0, "nothing dropped"),
            Err(e) => {
                assert_eq!((log.oldest_seq(), log.next_seq()), (oldest, next));
                refused = Some(e);
                break;
            }
        }
    }
    let e = refused.expect("a full lists store without a barrier refuses");
    assert!(matches!(e, Error::RetentionBlocked { .. }), "{e}");
    let barrier: Arc<dyn reel_log::RetentionBarrier> =
        Arc::new(Saves(std::sync::atomic::AtomicU64::new(0)));
    log.add_retention_barrier(Arc::downgrade(&barrier));
    append_n(&log, 1, 100);
    assert!(
        log.oldest_seq() > 0,
        "with the barrier the oldest segment goes"
    );
}

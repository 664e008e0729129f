//! Keeping a view's checkpoint ahead of retention: for views whose state cannot be
//! derived again once retention deleted its records (the lists view: each list's next
//! offset and last nonce outlive its items), the log calls the view before deleting a
//! segment, and the view writes a checkpoint first if its last one does not cover it.

use super::{Shared, View, ViewHandle, write_checkpoint};
use std::sync::{Arc, Weak};

/// What the log holds: the view, weakly, so that a dropped view is no longer called.
struct CheckpointFirst<V: View>(Weak<Shared<V>>);

impl<V: View> reel_log::RetentionBarrier for CheckpointFirst<V> {
    fn before_drop(&self, below: u64) -> reel_log::Result<()> {
        let Some(shared) = self.0.upgrade() else {
            return Ok(());
        };
        let dir = shared.files.dir.clone();
        ViewHandle { shared }
            .checkpoint_through(below)
            .map_err(|e| reel_log::Error::RetentionBlocked {
                reason: format!("the view in {} cannot be checkpointed ({e})", dir.display()),
            })
    }
}

impl<V: View> ViewHandle<V> {
    /// Makes retention in this process checkpoint the view before it deletes records
    /// the view's checkpoint does not cover yet. An append that needs room then fails
    /// rather than drop records whose effect on the view is not saved.
    pub fn checkpoint_before_retention(&self) {
        let barrier: Arc<dyn reel_log::RetentionBarrier> =
            Arc::new(CheckpointFirst(Arc::downgrade(&self.shared)));
        self.shared
            .spool
            .log()
            .add_retention_barrier(Arc::downgrade(&barrier));
        *self
            .shared
            .barrier
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(barrier);
    }

    /// Writes a checkpoint covering every record below `below` unless the last one does.
    /// Called under the log's writer lock: every record below the committed end exists.
    fn checkpoint_through(&self, below: u64) -> crate::Result<()> {
        let mut st = self.lock();
        if st.durable_at >= below {
            return Ok(());
        }
        let end = self.shared.spool.next_seq();
        self.apply_to(&mut st, end)?;
        if st.durable_at >= below {
            return Ok(());
        }
        write_checkpoint(&self.shared.spool, &self.shared.files, &mut st)
    }
}

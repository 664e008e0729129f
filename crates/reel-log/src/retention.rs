//! Hooks into retention from the layers above the log: the guard the `reject` policy
//! asks which records readers still need, and the barriers that make derived state
//! durable before retention deletes the records it came from.

use crate::error::Result;
use crate::log::Log;
use std::sync::Arc;

/// Decides which records the `reject` policy must keep: the lowest seq some reader
/// still needs. Implemented by the layer that owns reader cursors.
pub trait RetentionGuard: Send + Sync + std::fmt::Debug {
    /// The smallest seq not yet consumed by every reader, or `None` when no reader is
    /// registered (then nothing may be dropped).
    fn protected_from(&self) -> Result<Option<u64>>;
}

/// Makes state derived from records durable before retention deletes them. A layer
/// whose state cannot be derived again once its records are gone (the lists view's
/// per-list next offset and last nonce) registers one with
/// [`Log::add_retention_barrier`].
pub trait RetentionBarrier: Send + Sync {
    /// Retention is about to delete every record below `below` (all of them committed).
    /// Called under the writer lock; an error stops the deletion, and the append that
    /// needed the room fails with it, storing nothing.
    fn before_drop(&self, below: u64) -> Result<()>;
}

impl Log {
    /// Installs the guard consulted by the `reject` policy.
    pub fn set_retention_guard(&self, guard: Arc<dyn RetentionGuard>) {
        *self.inner.guard.write().unwrap_or_else(|e| e.into_inner()) = Some(guard);
    }

    /// Registers `barrier`, called before retention (in this process) deletes records;
    /// it stays registered while it is alive.
    pub fn add_retention_barrier(&self, barrier: std::sync::Weak<dyn RetentionBarrier>) {
        self.inner
            .barriers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(barrier);
    }

    /// The barriers still alive (dead ones are forgotten).
    pub(crate) fn live_barriers(&self) -> Vec<Arc<dyn RetentionBarrier>> {
        let mut all = self
            .inner
            .barriers
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        all.retain(|b| b.strong_count() > 0);
        all.iter().filter_map(std::sync::Weak::upgrade).collect()
    }

    /// Calls every live barrier before records below `below` are deleted.
    pub(crate) fn before_drop(&self, below: u64) -> Result<()> {
        let live = self.live_barriers();
        live.iter().try_for_each(|b| b.before_drop(below))
    }
}

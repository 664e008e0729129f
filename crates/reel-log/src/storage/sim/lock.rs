//! File locks on the simulated disk: one lock state per path, shared by every handle of
//! the disk, released when the handle that holds it is dropped (like `flock` at close).

use crate::storage::FileLock;
use std::io;
use std::sync::{Arc, Condvar, Mutex};

#[derive(Debug, Default)]
pub(super) struct SimLockState {
    held: Mutex<bool>,
    freed: Condvar,
}

#[derive(Debug)]
pub(super) struct SimLock {
    state: Arc<SimLockState>,
    /// Whether this handle holds the lock (so that drop releases it, like close()).
    held: Mutex<bool>,
}

impl SimLock {
    pub(super) fn new(state: Arc<SimLockState>) -> SimLock {
        SimLock {
            state,
            held: Mutex::new(false),
        }
    }
}

impl FileLock for SimLock {
    fn lock(&self) -> io::Result<()> {
        let mut mine = self.held.lock().unwrap_or_else(|e| e.into_inner());
        if *mine {
            return Ok(());
        }
        let mut held = self.state.held.lock().unwrap_or_else(|e| e.into_inner());
        while *held {
            held = self
                .state
                .freed
                .wait(held)
                .unwrap_or_else(|e| e.into_inner());
        }
        *held = true;
        *mine = true;
        Ok(())
    }

    fn try_lock(&self) -> io::Result<bool> {
        let mut mine = self.held.lock().unwrap_or_else(|e| e.into_inner());
        if *mine {
            return Ok(true);
        }
        let mut held = self.state.held.lock().unwrap_or_else(|e| e.into_inner());
        if *held {
            return Ok(false);
        }
        *held = true;
        *mine = true;
        Ok(true)
    }

    fn unlock(&self) -> io::Result<()> {
        let mut mine = self.held.lock().unwrap_or_else(|e| e.into_inner());
        if *mine {
            *mine = false;
            *self.state.held.lock().unwrap_or_else(|e| e.into_inner()) = false;
            self.state.freed.notify_one();
        }
        Ok(())
    }
}

impl Drop for SimLock {
    fn drop(&mut self) {
        let _ = self.unlock();
    }
}

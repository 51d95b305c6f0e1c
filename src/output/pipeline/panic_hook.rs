//! What corrlog's panic hook does for the pipelines: write out what every
//! one has queued before the process, perhaps, dies.

use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use super::state::{Deadline, Shared};
use crate::panic::{install_hook, panic_is_caught};

#[cfg(test)]
thread_local! {
    /// The wait the panic hook last chose on this thread.
    pub(super) static HOOK_WAIT: std::cell::Cell<Option<Duration>> =
        const { std::cell::Cell::new(None) };
}

/// The pipelines the panic hook flushes.
static PANIC_FLUSHED: Mutex<Vec<Weak<Shared>>> = Mutex::new(Vec::new());

/// How long the panic hook waits for queued lines to be written.
pub(super) const PANIC_FLUSH_WAIT: Duration = Duration::from_millis(500);

/// The same, for a panic corrlog will catch: the process lives on (unless
/// another panic hook ends it), so only a short wait.
pub(super) const CAUGHT_PANIC_FLUSH_WAIT: Duration = Duration::from_millis(20);

/// Registers a pipeline with corrlog's panic hook (installed the first
/// time), which flushes it after the panic line is written.
pub(super) fn install(shared: Weak<Shared>) {
    {
        let mut list = PANIC_FLUSHED
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        list.retain(|p| p.strong_count() > 0);
        list.push(shared);
    }
    install_hook(Some(flush_all));
}

/// Writes out what every registered pipeline holds, waiting a bounded time.
fn flush_all() {
    let wait = if panic_is_caught() {
        CAUGHT_PANIC_FLUSH_WAIT
    } else {
        PANIC_FLUSH_WAIT
    };
    #[cfg(test)]
    let _ = HOOK_WAIT.try_with(|w| w.set(Some(wait)));
    let deadline = Deadline::after(wait);
    // Never block on the list's lock: the panicking thread may be the one
    // holding it.
    let live: Vec<Arc<Shared>> = match PANIC_FLUSHED.try_lock() {
        Ok(list) => list.iter().filter_map(Weak::upgrade).collect(),
        Err(std::sync::TryLockError::Poisoned(poisoned)) => poisoned
            .into_inner()
            .iter()
            .filter_map(Weak::upgrade)
            .collect(),
        Err(std::sync::TryLockError::WouldBlock) => Vec::new(),
    };
    for shared in live {
        shared.flush_from_panic(deadline);
    }
}

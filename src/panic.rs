//! corrlog's panic boundaries: where a panic is caught and the process
//! lives on (the HTTP layer's handler, response future and body, the line
//! layer's formatting). Depends on nothing else in the crate.

use std::any::Any;
use std::cell::Cell;

/// What `catch_unwind` hands back.
pub(crate) type PanicPayload = Box<dyn Any + Send + 'static>;

thread_local! {
    /// How many [`catch_panic`] calls this thread is inside.
    static CATCHING: Cell<u32> = const { Cell::new(0) };
}

/// `catch_unwind` for corrlog's own panic boundaries. While `f` runs, the
/// pipeline's panic hook can see ([`panic_is_caught`]) that a panic will be
/// caught and the process lives on, so it waits only briefly for the flush:
/// a panicking endpoint must not stall a worker thread behind a slow
/// output.
#[inline]
pub(crate) fn catch_panic<R>(f: impl FnOnce() -> R) -> std::thread::Result<R> {
    struct Leave;
    impl Drop for Leave {
        #[inline]
        fn drop(&mut self) {
            let _ = CATCHING.try_with(|c| c.set(c.get().saturating_sub(1)));
        }
    }
    let _ = CATCHING.try_with(|c| c.set(c.get() + 1));
    let _leave = Leave;
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
}

/// Whether the panic being raised now will be caught by [`catch_panic`].
/// Never when panics abort: then nothing is caught.
pub(crate) fn panic_is_caught() -> bool {
    cfg!(panic = "unwind") && CATCHING.try_with(|c| c.get() > 0).unwrap_or(false)
}

/// The message of a panic, when it is a string.
pub(crate) fn panic_message(payload: &PanicPayload) -> &str {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "panic with a non-string payload"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_caught_panic_is_known_to_be_caught_only_inside() {
        assert!(!panic_is_caught());
        let seen = catch_panic(panic_is_caught);
        assert_eq!(seen.ok(), Some(cfg!(panic = "unwind")));
        assert!(!panic_is_caught(), "the count is restored");
        let payload = catch_panic(|| -> () { panic!("boom {}", 1) }).unwrap_err();
        assert_eq!(panic_message(&payload), "boom 1");
        assert!(!panic_is_caught(), "restored after a panic too");
        let payload = catch_panic(|| std::panic::panic_any(7_u8)).unwrap_err();
        assert_eq!(panic_message(&payload), "panic with a non-string payload");
        let payload = catch_panic(|| panic!("static")).unwrap_err();
        assert_eq!(panic_message(&payload), "static");
    }
}

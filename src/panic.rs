//! corrlog's panic boundaries: where a panic is caught and the process
//! lives on (the HTTP layer's handler, response future and body, the line
//! layer's formatting), and the one process-wide panic hook, which writes
//! the panic as a line and has the pipelines flushed. Depends on nothing
//! else in the crate: the pipeline registers its flush here.

use std::any::Any;
use std::backtrace::{Backtrace, BacktraceStatus};
use std::cell::Cell;
use std::panic::PanicHookInfo;
use std::sync::{Once, OnceLock};

type Hook = Box<dyn Fn(&PanicHookInfo<'_>) + Sync + Send + 'static>;

/// What the pipelines register to be flushed when a thread panics.
static FLUSH: OnceLock<fn()> = OnceLock::new();

thread_local! {
    /// Set by a line layer that wrote the panic line being raised now.
    static LINE_WRITTEN: Cell<bool> = const { Cell::new(false) };
}

/// Installs corrlog's panic hook, once per process (later calls only add
/// `flush`, if none was registered yet). A [`LogLayer`](crate::LogLayer)
/// whose [panic lines](crate::LogLayer::panic_lines) are on installs it
/// when it is added to a subscriber; a pipeline installs it to be flushed.
///
/// When a thread panics, the hook:
/// 1. logs the panic as one ERROR event with target `corrlog::panic`
///    ([`HOOK_EVENT`] its name): the panic's message, `panic.location`
///    (`file:line:column`), `panic.thread`, and `panic.backtrace` when
///    backtraces are enabled, inside the request's context when the panic
///    happens in one;
/// 2. has every pipeline write out what it holds (briefly, when corrlog
///    will catch the panic and the service lives on);
/// 3. calls the hook that was installed before, except the standard
///    library's default hook when a `LogLayer` has written the line: its
///    multi-line text on stderr is what the line replaces.
pub(crate) fn install_hook(flush: Option<fn()>) {
    if let Some(flush) = flush {
        let _ = FLUSH.set(flush);
    }
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        // With no hook set, `take_hook` hands back the default one; a
        // second call now does so for sure. Both are the same zero-sized
        // function boxed by the same code, so their pointers and vtables
        // match; any hook the application set has its own.
        let default = std::panic::take_hook();
        let previous_is_default =
            std::ptr::eq::<dyn Fn(&PanicHookInfo<'_>) + Sync + Send>(&*previous, &*default);
        drop(default);
        std::panic::set_hook(chain(previous, previous_is_default));
    });
}

fn chain(previous: Hook, previous_is_default: bool) -> Hook {
    Box::new(move |info| {
        let written = write_panic_line(info);
        if let Some(flush) = FLUSH.get() {
            flush();
        }
        if !(written && previous_is_default) {
            previous(info);
        }
    })
}

/// Logs the panic; returns whether a line layer wrote it.
fn write_panic_line(info: &PanicHookInfo<'_>) -> bool {
    let message = payload_message(info.payload());
    let location = info
        .location()
        .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()));
    let thread = std::thread::current();
    let backtrace = Backtrace::capture();
    let backtrace = (backtrace.status() == BacktraceStatus::Captured)
        .then(|| from_panic_site(&backtrace.to_string()).to_owned());
    let _ = LINE_WRITTEN.try_with(|w| w.set(false));
    let thread_name = thread.name().unwrap_or("<unnamed>");
    tracing::event!(
        name: HOOK_EVENT,
        target: PANIC_TARGET,
        tracing::Level::ERROR,
        panic.location = location.as_deref(),
        panic.thread = thread_name,
        panic.backtrace = backtrace.as_deref(),
        "{message}"
    );
    LINE_WRITTEN.try_with(Cell::get).unwrap_or(false)
}

/// The backtrace from the code that panicked on: without the frames of
/// this hook and of the standard library's panic machinery above it, as
/// the default hook's short backtrace shows it.
fn from_panic_site(backtrace: &str) -> &str {
    const MACHINERY: [&str; 3] = [
        "rust_begin_unwind",
        "core::panicking::panic",
        "std::panicking::begin_panic",
    ];
    let mut start = 0;
    let mut seen = false;
    let mut offset = 0;
    for line in backtrace.split_inclusive('\n') {
        let frame = line.trim_start();
        let is_frame = frame
            .split_once(": ")
            .is_some_and(|(n, _)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
        if is_frame {
            let machinery = MACHINERY.iter().any(|m| frame.contains(m));
            if machinery {
                seen = true;
            } else if seen {
                start = offset;
                break;
            }
        }
        offset += line.len();
    }
    &backtrace[start..]
}

/// Tells the hook that a line layer wrote the panic line.
pub(crate) fn mark_panic_line_written() {
    let _ = LINE_WRITTEN.try_with(|w| w.set(true));
}

/// The target (logger name) of the line a panic is written as.
pub(crate) const PANIC_TARGET: &str = "corrlog::panic";

/// The name of the hook's event, which [`LogLayer::panic_lines`](crate::LogLayer::panic_lines)
/// turns on and off.
pub(crate) const HOOK_EVENT: &str = "corrlog::panic_hook";

/// Logs a panic corrlog caught at one of its boundaries (a handler, a
/// response body), inside the request's context, unless the panic hook
/// already wrote it as a line on this thread: one panic, one ERROR line
/// (besides the access line), whatever hooks are installed. Without the
/// hook's line (no hook, another hook in its place, or panic lines off),
/// the line has the panic's message and logger, without its location.
pub(crate) fn log_caught_panic(payload: &PanicPayload) {
    if LINE_WRITTEN.try_with(|w| w.replace(false)).unwrap_or(false) {
        return;
    }
    let message = panic_message(payload);
    tracing::error!(target: PANIC_TARGET, "{message}");
}

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
    payload_message(&**payload)
}

fn payload_message(payload: &(dyn Any + Send)) -> &str {
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
    fn the_backtrace_starts_at_the_panic_site() {
        let bt =
            "   0: corrlog::panic::write_panic_line\n             at ./src/panic.rs:95:21\n   \
                  1: std::panicking::rust_panic_with_hook\n   \
                  2: __rustc::rust_begin_unwind\n             at /rustc/x/panicking.rs:689:5\n   \
                  3: core::panicking::panic_fmt\n             at /rustc/x/panicking.rs: 75\n   \
                  4: demo::app::boom\n             at ./examples/demo/app.rs:257:5\n   \
                  5: core::panicking::panic_fmt\n";
        assert_eq!(
            from_panic_site(bt),
            "   4: demo::app::boom\n             at ./examples/demo/app.rs:257:5\n   5: core::panicking::panic_fmt\n"
        );
        // Without the machinery's frames, everything is kept.
        let plain = "   0: app::main\n   1: std::rt::lang_start\n";
        assert_eq!(from_panic_site(plain), plain);
    }

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

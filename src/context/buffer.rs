//! A request's buffered lines: lines below the output's level kept, already
//! encoded, until the request fails (flush) or ends well (discard). The
//! context holds the bytes; the line layer that buffered them says where a
//! flush writes them ([`BufferTarget`]), so this stage formats nothing.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use super::request::RequestContext;

/// Bytes buffered by every request of the process together.
static TOTAL_BYTES: AtomicUsize = AtomicUsize::new(0);

/// Whether buffering is in use in the process (a line layer buffers, or a
/// buffering filter marks events): the HTTP layer then ends each request's
/// buffering even with the access log off, and line layers look for marks.
static IN_USE: AtomicBool = AtomicBool::new(false);

/// Notes that buffering is in use.
pub(crate) fn set_in_use() {
    IN_USE.store(true, Ordering::Relaxed);
}

/// Whether buffering is in use.
pub(crate) fn in_use() -> bool {
    IN_USE.load(Ordering::Relaxed)
}

/// Where a request's buffered lines go when it is flushed: the line layer
/// that buffered them.
pub(crate) trait BufferTarget: Send + Sync + 'static {
    /// Writes one buffered line (with its newline).
    fn write_line(&self, line: &[u8]);
    /// Writes the WARN line that says `evicted` lines of `request` were
    /// dropped from its buffer to keep within the caps.
    fn write_evicted(&self, request: &RequestContext, evicted: u64);
}

/// Where a request's buffering stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Phase {
    /// Lines below the output level are kept.
    #[default]
    Buffering,
    /// The buffer was written out; later lines go straight out.
    Flushed,
    /// The request ended; later lines below the output level are dropped
    /// like any filtered line.
    Ended,
}

/// What happened to a line offered to the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Offer {
    /// Kept.
    Kept,
    /// Not kept: write it now (the request was flushed, or the line alone
    /// is over the request's cap).
    WriteNow,
    /// Not kept: drop it (the request has ended).
    Drop,
    /// Not kept: over the process-wide cap with nothing of this request's
    /// left to evict, the line itself is evicted (and counted).
    Evicted,
}

/// The caps a layer buffers under.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Caps {
    pub(crate) request_bytes: usize,
    pub(crate) total_bytes: usize,
}

/// What the buffer held at the end of a request that ended well.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Discarded {
    /// Lines dropped unwritten.
    pub(crate) lines: u64,
    /// Lines evicted earlier to keep within the caps.
    pub(crate) evicted: u64,
}

/// Most buffers a thread keeps for reuse, and the most lines' lengths a
/// kept one has room for.
const POOL_BUFFERS: usize = 8;
const POOL_MAX_LINES: usize = 1024;

/// A request's first ring: this much room (or an eighth of its cap, when
/// that is less), to start with; it doubles from there.
const FIRST_BYTES: usize = 8 * 1024;

thread_local! {
    /// Buffers of ended requests, for the next ones on this thread: a
    /// request that buffers then allocates nothing in steady state.
    static POOL: std::cell::RefCell<Vec<(Vec<u8>, VecDeque<u32>)>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// The size of a request's first ring.
fn first_size(caps: Caps) -> usize {
    FIRST_BYTES.min(caps.request_bytes / 8)
}

/// A pooled ring of at most `max` bytes, or an empty one.
fn pooled(max: usize) -> (Vec<u8>, VecDeque<u32>) {
    POOL.try_with(|pool| {
        let mut pool = pool.try_borrow_mut().ok()?;
        let i = pool.iter().rposition(|(ring, _)| ring.len() <= max)?;
        Some(pool.swap_remove(i))
    })
    .ok()
    .flatten()
    .unwrap_or_else(|| (Vec::new(), VecDeque::with_capacity(32)))
}

/// Keeps `ring` for the thread's next request, cut to a first ring's
/// size: a new request counts only what it needs against the caps.
fn unpool(mut ring: Vec<u8>, mut lengths: VecDeque<u32>) {
    if ring.is_empty() {
        return;
    }
    if ring.len() > FIRST_BYTES {
        ring.truncate(FIRST_BYTES);
        ring.shrink_to_fit();
    }
    lengths.clear();
    lengths.shrink_to(POOL_MAX_LINES);
    let _ = POOL.try_with(|pool| {
        if let Ok(mut pool) = pool.try_borrow_mut() {
            if pool.len() < POOL_BUFFERS {
                pool.push((ring, lengths));
            }
        }
    });
}

/// Takes `bytes` of the process-wide cap; `false`, taking nothing, if it
/// has not that much left.
fn take_total(bytes: usize, total: usize) -> bool {
    if TOTAL_BYTES.fetch_add(bytes, Ordering::Relaxed) + bytes <= total {
        return true;
    }
    TOTAL_BYTES.fetch_sub(bytes, Ordering::Relaxed);
    false
}

/// One layer's lines for one request, in a ring: `used` bytes from
/// `head`, oldest line first, wrapping at the ring's end. The ring is the
/// allocation the caps count: it grows (doubling, at most to the request's
/// cap) only when the live lines and the new one do not fit, taking its
/// growth from the process-wide cap first; evicting a line only moves
/// `head`, and nothing is moved or left allocated beyond the ring. The
/// lines' lengths are kept beside it (4 bytes a line).
struct Lines {
    target: Arc<dyn BufferTarget>,
    /// The ring; its length is its size (all of it allocated).
    ring: Vec<u8>,
    head: usize,
    used: usize,
    lengths: VecDeque<u32>,
    /// Bytes this request counts against the process-wide cap: the
    /// ring's size.
    reserved: usize,
    evicted: u64,
}

impl Lines {
    fn new(target: &Arc<dyn BufferTarget>, caps: Caps) -> Self {
        let (mut ring, lengths) = pooled(first_size(caps));
        // A pooled ring counts as soon as it is taken.
        if !take_total(ring.len(), caps.total_bytes) {
            ring = Vec::new();
        }
        Lines {
            target: target.clone(),
            reserved: ring.len(),
            ring,
            head: 0,
            used: 0,
            lengths,
            evicted: 0,
        }
    }

    fn live(&self) -> usize {
        self.used
    }

    fn evict_oldest(&mut self) -> bool {
        let Some(len) = self.lengths.pop_front() else {
            return false;
        };
        let len = len as usize;
        self.used -= len;
        self.head = if self.used == 0 {
            0
        } else {
            (self.head + len) % self.ring.len()
        };
        self.evicted += 1;
        true
    }

    /// Makes the ring hold at least `need` bytes, within the request's cap
    /// and what the process-wide cap has left; `false` if it cannot.
    fn make_room(&mut self, need: usize, caps: Caps) -> bool {
        let size = self.ring.len();
        if need <= size {
            return true;
        }
        let grown = (size * 2)
            .max(first_size(caps))
            .max(need)
            .min(caps.request_bytes);
        // Room to grow into if the process-wide cap has it, else just what
        // the line needs.
        let Some(new_size) = [grown, need]
            .into_iter()
            .find(|&n| n >= need && take_total(n - size, caps.total_bytes))
        else {
            return false;
        };
        let mut ring = vec![0; new_size];
        let first = self.used.min(size - self.head);
        ring[..first].copy_from_slice(&self.ring[self.head..self.head + first]);
        ring[first..self.used].copy_from_slice(&self.ring[..self.used - first]);
        self.ring = ring;
        self.head = 0;
        self.reserved = new_size;
        true
    }

    /// Appends `line`; the ring has room for it ([`Lines::make_room`]).
    fn push(&mut self, line: &[u8]) {
        let size = self.ring.len();
        if line.is_empty() {
            self.lengths.push_back(0);
            return;
        }
        let at = (self.head + self.used) % size;
        let first = line.len().min(size - at);
        self.ring[at..at + first].copy_from_slice(&line[..first]);
        self.ring[..line.len() - first].copy_from_slice(&line[first..]);
        self.used += line.len();
        self.lengths.push_back(line.len() as u32);
    }

    /// Calls `f` with each buffered line, oldest first; a line that wraps
    /// is put together in `scratch` first.
    fn for_each(&self, scratch: &mut Vec<u8>, mut f: impl FnMut(&[u8])) {
        let size = self.ring.len();
        let mut at = self.head;
        for &len in &self.lengths {
            let len = len as usize;
            if len == 0 {
                f(&[]);
            } else if at + len <= size {
                f(&self.ring[at..at + len]);
            } else {
                scratch.clear();
                scratch.extend_from_slice(&self.ring[at..]);
                scratch.extend_from_slice(&self.ring[..at + len - size]);
                f(scratch);
            }
            if len > 0 {
                at = (at + len) % size;
            }
        }
    }

    fn release(&mut self) {
        TOTAL_BYTES.fetch_sub(self.reserved, Ordering::Relaxed);
        self.reserved = 0;
        self.head = 0;
        self.used = 0;
        unpool(
            std::mem::take(&mut self.ring),
            std::mem::take(&mut self.lengths),
        );
    }
}

/// A request's buffer state, shared by its context's clones.
#[derive(Default)]
pub(crate) struct Buffer {
    /// The phase, readable without the lock (the level filter asks on
    /// every below-level event); written under it.
    phase: AtomicU8,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// The first layer that buffered, and any others (usually none).
    first: Option<Lines>,
    more: Vec<Lines>,
    /// Evictions of lines already flushed or discarded, for the access line.
    evicted_total: u64,
}

impl Drop for State {
    fn drop(&mut self) {
        for lines in self.layers() {
            lines.release();
        }
    }
}

impl State {
    fn layers(&mut self) -> impl Iterator<Item = &mut Lines> {
        self.first.iter_mut().chain(self.more.iter_mut())
    }

    /// `target`'s lines, made on first use.
    fn lines_for(&mut self, target: &Arc<dyn BufferTarget>, caps: Caps) -> &mut Lines {
        let new = || Lines::new(target, caps);
        let first_is_target = match &self.first {
            None => {
                return self.first.insert(new());
            }
            Some(first) => Arc::ptr_eq(&first.target, target),
        };
        match &mut self.first {
            Some(first) if first_is_target => first,
            _ => {
                let index = match self
                    .more
                    .iter()
                    .position(|l| Arc::ptr_eq(&l.target, target))
                {
                    Some(i) => i,
                    None => {
                        self.more.push(new());
                        self.more.len() - 1
                    }
                };
                &mut self.more[index]
            }
        }
    }
}

impl Buffer {
    fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent whatever panicked while holding it:
        // every change is a push, a pop or an assignment.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn phase(&self) -> Phase {
        match self.phase.load(Ordering::Acquire) {
            0 => Phase::Buffering,
            1 => Phase::Flushed,
            _ => Phase::Ended,
        }
    }

    /// Sets the phase; call with the lock held.
    fn set_phase(&self, phase: Phase) {
        let code = match phase {
            Phase::Buffering => 0,
            Phase::Flushed => 1,
            Phase::Ended => 2,
        };
        self.phase.store(code, Ordering::Release);
    }

    /// Keeps `line` for `target`, evicting this request's oldest lines to
    /// stay within `caps`.
    pub(crate) fn offer(&self, target: &Arc<dyn BufferTarget>, line: &[u8], caps: Caps) -> Offer {
        let mut state = self.lock();
        match self.phase() {
            Phase::Buffering => {}
            Phase::Flushed => return Offer::WriteNow,
            Phase::Ended => return Offer::Drop,
        }
        if line.len() > caps.request_bytes {
            return Offer::WriteNow;
        }
        let lines = state.lines_for(target, caps);
        loop {
            let need = lines.live() + line.len();
            if need <= caps.request_bytes && lines.make_room(need, caps) {
                break;
            }
            if !lines.evict_oldest() {
                // Over the process-wide cap with nothing of ours left to
                // give back: this line is the one evicted.
                lines.evicted += 1;
                return Offer::Evicted;
            }
        }
        lines.push(line);
        Offer::Kept
    }

    /// Writes every buffered line to its layer, oldest first, after a WARN
    /// line for any evicted ones; later lines go straight out. Returns
    /// whether anything was written. Does nothing once ended.
    pub(crate) fn flush(&self, request: &RequestContext) -> bool {
        let mut state = self.lock();
        if self.phase() == Phase::Ended {
            return false;
        }
        self.set_phase(Phase::Flushed);
        let mut wrote = false;
        let mut evicted_total = 0;
        // Where a line that wraps around its ring's end is put together.
        let mut scratch = Vec::new();
        for lines in state.layers() {
            if lines.evicted > 0 {
                lines.target.write_evicted(request, lines.evicted);
                evicted_total += lines.evicted;
                lines.evicted = 0;
                wrote = true;
            }
            lines.for_each(&mut scratch, |line| {
                lines.target.write_line(line);
                wrote = true;
            });
            lines.release();
        }
        state.evicted_total += evicted_total;
        wrote
    }

    /// Ends buffering: drops what is buffered, unwritten; later lines below
    /// the output level are dropped. Returns what was dropped.
    pub(crate) fn end(&self) -> Discarded {
        let mut state = self.lock();
        self.set_phase(Phase::Ended);
        let mut discarded = Discarded {
            lines: 0,
            evicted: state.evicted_total,
        };
        for lines in state.layers() {
            discarded.lines += lines.lengths.len() as u64;
            discarded.evicted += lines.evicted;
            lines.evicted = 0;
            lines.release();
        }
        state.evicted_total = discarded.evicted;
        discarded
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::context::RequestId;

    /// Collects what a flush writes.
    #[derive(Default)]
    struct Lines(Mutex<Vec<String>>);

    impl BufferTarget for Lines {
        fn write_line(&self, line: &[u8]) {
            self.0
                .lock()
                .unwrap()
                .push(String::from_utf8_lossy(line).into_owned());
        }
        fn write_evicted(&self, request: &RequestContext, evicted: u64) {
            self.0
                .lock()
                .unwrap()
                .push(format!("{} evicted {evicted}", request.id()));
        }
    }

    fn line(n: usize) -> Vec<u8> {
        let mut l = format!("line {n:03} ").into_bytes();
        l.resize(99, b'.');
        l.push(b'\n');
        l
    }

    /// One test, as the total is process-wide: no other test in this
    /// binary buffers.
    #[test]
    fn caps_evict_the_oldest_and_count_exactly() {
        let target = Arc::new(Lines::default());
        let dyn_target: Arc<dyn BufferTarget> = target.clone();
        let caps = Caps {
            request_bytes: 1_000,
            total_bytes: 1_500,
        };
        let a = RequestContext::new(RequestId::new("a").unwrap());
        let b = RequestContext::new(RequestId::new("b").unwrap());

        // The request cap: 10 lines of 100 bytes fit; 25 evict 15.
        for n in 0..25 {
            assert_eq!(a.buffer().offer(&dyn_target, &line(n), caps), Offer::Kept);
        }
        assert_eq!(TOTAL_BYTES.load(Ordering::Relaxed), 1_000);
        // The process-wide cap: b gets the 500 bytes left, then evicts its
        // own oldest.
        for n in 0..8 {
            assert_eq!(b.buffer().offer(&dyn_target, &line(n), caps), Offer::Kept);
        }
        assert_eq!(TOTAL_BYTES.load(Ordering::Relaxed), 1_500);
        // A line over the request cap is written at once.
        assert_eq!(
            a.buffer().offer(&dyn_target, &[b'x'; 1_001], caps),
            Offer::WriteNow
        );

        assert!(a.flush_buffer());
        let written = std::mem::take(&mut *target.0.lock().unwrap());
        assert_eq!(written[0], "a evicted 15");
        let expected: Vec<String> = (15..25)
            .map(|n| String::from_utf8(line(n)).unwrap())
            .collect();
        assert_eq!(written[1..], expected);
        assert_eq!(TOTAL_BYTES.load(Ordering::Relaxed), 500);
        // Flushed: later lines go straight out.
        assert_eq!(
            a.buffer().offer(&dyn_target, &line(99), caps),
            Offer::WriteNow
        );
        assert_eq!(
            a.buffer().end(),
            Discarded {
                lines: 0,
                evicted: 15
            }
        );

        // b ended well: its 5 kept lines are dropped, 3 were evicted.
        assert_eq!(
            b.buffer().end(),
            Discarded {
                lines: 5,
                evicted: 3
            }
        );
        assert_eq!(TOTAL_BYTES.load(Ordering::Relaxed), 0);
        assert_eq!(b.buffer().offer(&dyn_target, &line(0), caps), Offer::Drop);
        assert!(!b.flush_buffer(), "nothing after the end");

        // With nothing of its own to evict, a line over the process-wide
        // cap is the one evicted; a dropped context gives its bytes back.
        let c = RequestContext::new(RequestId::new("c").unwrap());
        let d = RequestContext::new(RequestId::new("d").unwrap());
        let wide = Caps {
            request_bytes: 1_000,
            total_bytes: 1_000,
        };
        for n in 0..10 {
            assert_eq!(c.buffer().offer(&dyn_target, &line(n), wide), Offer::Kept);
        }
        assert_eq!(
            d.buffer().offer(&dyn_target, &line(0), wide),
            Offer::Evicted
        );
        drop(c);
        assert_eq!(TOTAL_BYTES.load(Ordering::Relaxed), 0);
        assert_eq!(
            d.buffer().end(),
            Discarded {
                lines: 0,
                evicted: 1
            }
        );
        assert!(target.0.lock().unwrap().is_empty());

        // A step larger than what the process-wide cap has left: the
        // request takes just what its lines need, and keeps all that fit.
        let e = RequestContext::new(RequestId::new("e").unwrap());
        let narrow = Caps {
            request_bytes: 64_000,
            total_bytes: 1_000,
        };
        for n in 0..12 {
            assert_eq!(e.buffer().offer(&dyn_target, &line(n), narrow), Offer::Kept);
        }
        assert_eq!(TOTAL_BYTES.load(Ordering::Relaxed), 1_000);
        assert_eq!(
            e.buffer().end(),
            Discarded {
                lines: 10,
                evicted: 2
            }
        );
        assert_eq!(TOTAL_BYTES.load(Ordering::Relaxed), 0);

        // Evicting for a long time keeps the allocation at the cap: the
        // ring never grows past it; the newest lines are kept, in order,
        // lines that wrap around the ring's end included.
        let f = RequestContext::new(RequestId::new("f").unwrap());
        for n in 0..10_000 {
            assert_eq!(
                f.buffer().offer(&dyn_target, &line(n % 1000), caps),
                Offer::Kept
            );
        }
        {
            let state = f.buffer().lock();
            let lines = state.first.as_ref().unwrap();
            assert_eq!(lines.ring.len(), caps.request_bytes);
            assert!(lines.ring.capacity() <= caps.request_bytes);
            assert_eq!(lines.reserved, caps.request_bytes);
            assert_eq!(lines.live(), 1_000);
            let mut newest = Vec::new();
            lines.for_each(&mut Vec::new(), |l| newest.push(l.to_vec()));
            let expected: Vec<Vec<u8>> = (990..1000).map(line).collect();
            assert_eq!(newest, expected);
        }
        drop(f);
        assert_eq!(TOTAL_BYTES.load(Ordering::Relaxed), 0);

        // Two layers buffering for one request: each gets its own lines.
        let other = Arc::new(Lines::default());
        let dyn_other: Arc<dyn BufferTarget> = other.clone();
        let g = RequestContext::new(RequestId::new("g").unwrap());
        for n in 0..3 {
            assert_eq!(g.buffer().offer(&dyn_target, &line(n), caps), Offer::Kept);
            assert_eq!(
                g.buffer().offer(&dyn_other, &line(10 + n), caps),
                Offer::Kept
            );
            assert_eq!(
                g.buffer().offer(&dyn_other, &line(20 + n), caps),
                Offer::Kept
            );
        }
        assert!(g.flush_buffer());
        let text = |lines: &Lines| lines.0.lock().unwrap().concat();
        let expected = |ns: &[usize]| {
            ns.iter()
                .map(|&n| String::from_utf8(line(n)).unwrap())
                .collect::<String>()
        };
        assert_eq!(text(&target), expected(&[0, 1, 2]));
        assert_eq!(text(&other), expected(&[10, 20, 11, 21, 12, 22]));
        assert_eq!(TOTAL_BYTES.load(Ordering::Relaxed), 0);

        // A line exactly the request's cap is kept, not written at once.
        let whole = RequestContext::new(RequestId::new("whole").unwrap());
        let big = vec![b'x'; caps.request_bytes];
        assert_eq!(whole.buffer().offer(&dyn_target, &big, caps), Offer::Kept);
        drop(whole);
        assert_eq!(TOTAL_BYTES.load(Ordering::Relaxed), 0);

        // The ring doubles (an eighth of the cap first), so a request's
        // lines are copied a bounded number of times.
        target.0.lock().unwrap().clear();
        let k = RequestContext::new(RequestId::new("k").unwrap());
        let h = RequestContext::new(RequestId::new("h").unwrap());
        for n in 0..10 {
            assert_eq!(k.buffer().offer(&dyn_target, &line(n), caps), Offer::Kept);
        }
        assert_eq!(TOTAL_BYTES.load(Ordering::Relaxed), 1_000);
        for n in 0..3 {
            assert_eq!(h.buffer().offer(&dyn_target, &line(n), caps), Offer::Kept);
        }
        assert_eq!(TOTAL_BYTES.load(Ordering::Relaxed), 1_000 + 500);
        // The process-wide cap holds h's ring at 500 bytes: its oldest
        // lines are evicted and the ring wraps around its end.
        for n in 3..8 {
            assert_eq!(h.buffer().offer(&dyn_target, &line(n), caps), Offer::Kept);
        }
        // Room again: the wrapped ring grows, its lines kept in order.
        drop(k);
        for n in 8..10 {
            assert_eq!(h.buffer().offer(&dyn_target, &line(n), caps), Offer::Kept);
        }
        assert_eq!(TOTAL_BYTES.load(Ordering::Relaxed), 1_000);
        assert!(h.flush_buffer());
        let written = target.0.lock().unwrap().clone();
        assert_eq!(written[0], "h evicted 3");
        assert_eq!(written[1..].concat(), expected(&[3, 4, 5, 6, 7, 8, 9]));
        drop(h);
        assert_eq!(TOTAL_BYTES.load(Ordering::Relaxed), 0);
    }
}

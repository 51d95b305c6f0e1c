//! The caller side: what a logging thread does with its line.

use std::io::{self, Write};

use super::state::{batch_bytes, wait_for, Deadline, Intake, WriterState};
use super::{Backpressure, Pipeline};
use crate::fmt::Sink;

impl Sink for Pipeline {
    fn write_line(&self, line: &[u8]) {
        let shared = &*self.shared;
        let mut st = shared.lock();
        st.stats.submitted += 1;
        if let Intake::Closed { warned } = &mut st.intake {
            let first = !std::mem::replace(warned, true);
            st.drop_line();
            drop(st);
            if first {
                let _ = writeln!(
                    io::stderr().lock(),
                    "corrlog: a line was logged after the log pipeline shut down and was \
                     dropped (so are any later ones); keep the guard (or corrlog::Logging) \
                     alive until the program ends, e.g. not `let _ = ...init()`"
                );
            }
            return;
        }
        if line.len() > st.capacity {
            st.drop_line();
            return;
        }
        if st.queue.len() + line.len() > st.capacity {
            let max_wait = match st.policy {
                Backpressure::Drop => {
                    st.drop_line();
                    return;
                }
                Backpressure::Block { max_wait } => max_wait,
            };
            if st.intake == Intake::Shedding || shared.is_writer_thread() {
                st.drop_line();
                return;
            }
            // A line that arrived before shutdown keeps waiting through it:
            // the writer does not stop while a caller is blocked here, so a
            // clean shutdown loses nothing.
            let deadline = Deadline::after(max_wait);
            st.blocked += 1;
            let mut gave_up = false;
            while st.queue.len() + line.len() > st.capacity && !st.writer_done() {
                match deadline.remaining() {
                    // Shedding is for overload; once shutdown has begun, a
                    // line that arrived before it waits out its own
                    // deadline.
                    Some(left) if st.intake != Intake::Shedding => {
                        st = wait_for(&shared.room, st, left);
                    }
                    _ => {
                        if st.intake == Intake::Open {
                            st.intake = Intake::Shedding;
                        }
                        gave_up = true;
                        break;
                    }
                }
            }
            st.blocked -= 1;
            if gave_up || st.writer_done() {
                st.drop_line();
                // A closing writer may be waiting for the last blocked
                // caller.
                if st.closed() {
                    shared.work.notify_one();
                }
                return;
            }
        }
        st.queue.extend_from_slice(line);
        st.queued_lines += 1;
        let queued = st.queue.len() as u64;
        if queued > st.stats.high_water_bytes {
            st.stats.high_water_bytes = queued;
        }
        let wake = match st.writer {
            WriterState::Idle => true,
            WriterState::Lingering => st.queue.len() >= batch_bytes(st.capacity),
            WriterState::Writing | WriterState::Done => false,
        };
        if wake {
            st.writer = WriterState::Writing;
            shared.work.notify_one();
        }
    }
}

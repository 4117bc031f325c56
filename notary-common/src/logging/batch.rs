//! Hands log lines to tracing-appender's writer thread in batches.
//!
//! tracing-appender's worker blocks on its channel and is woken by every message. At tens
//! of thousands of access-log lines a second on two cores, that wake-up (a futex call and a
//! context switch per line) cost more than formatting the line. Here every thread appends
//! its line to one shared buffer under a mutex (a copy of about 300 bytes), and the buffer
//! goes to the writer thread as one message when it holds [`BATCH_BYTES`], or at the latest
//! after [`BATCH_INTERVAL`] (a ticker thread), so the writer wakes a few hundred times a
//! second at most. Nothing here ever waits for the write itself: the channel is lossy, and
//! the lines of a dropped batch are counted.

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tracing_appender::non_blocking::{ErrorCounter, NonBlocking};
use tracing_subscriber::fmt::MakeWriter;

/// A batch is handed over once it holds this many bytes.
pub const BATCH_BYTES: usize = 16 * 1024;
/// ... or at the latest after this long.
pub const BATCH_INTERVAL: Duration = Duration::from_millis(50);

/// The shared batch and its hand-over to the writer thread.
pub struct Batcher {
    pending: Mutex<Pending>,
    writer: NonBlocking,
    channel_drops: ErrorCounter,
    dropped_lines: AtomicU64,
    stopped: AtomicBool,
}

#[derive(Default)]
struct Pending {
    bytes: Vec<u8>,
    lines: u64,
}

impl Batcher {
    /// Batches in front of `writer`; starts the ticker thread that hands over what is
    /// pending every [`BATCH_INTERVAL`] until [`Batcher::stop`].
    pub fn start(writer: NonBlocking) -> Arc<Batcher> {
        let batcher = Arc::new(Batcher {
            pending: Mutex::new(Pending {
                bytes: Vec::with_capacity(BATCH_BYTES * 2),
                lines: 0,
            }),
            channel_drops: writer.error_counter(),
            writer,
            dropped_lines: AtomicU64::new(0),
            stopped: AtomicBool::new(false),
        });
        let ticker = Arc::downgrade(&batcher);
        let spawned = std::thread::Builder::new()
            .name("log-batch".into())
            .spawn(move || loop {
                std::thread::sleep(BATCH_INTERVAL);
                let Some(batcher) = ticker.upgrade() else {
                    return;
                };
                if batcher.stopped.load(Ordering::Acquire) {
                    return;
                }
                batcher.hand_over();
            });
        if spawned.is_err() {
            // Without a ticker every line is handed over at once: slower, never lost.
            batcher.stopped.store(true, Ordering::Release);
        }
        batcher
    }

    /// Lines dropped because the writer thread's queue was full.
    pub fn dropped_lines(&self) -> u64 {
        self.dropped_lines.load(Ordering::Relaxed)
    }

    /// Hands over what is pending; later lines go straight through. Called at exit.
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::Release);
        self.hand_over();
    }

    fn lock(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn push(&self, line: &[u8]) {
        let mut pending = self.lock();
        pending.bytes.extend_from_slice(line);
        pending.lines += 1;
        if pending.bytes.len() >= BATCH_BYTES || self.stopped.load(Ordering::Acquire) {
            self.send(&mut pending);
        }
    }

    fn hand_over(&self) {
        let mut pending = self.lock();
        self.send(&mut pending);
    }

    /// Sends the batch as one message (under the lock, so the drop counter's change is
    /// this batch's alone).
    fn send(&self, pending: &mut Pending) {
        if pending.bytes.is_empty() {
            return;
        }
        let before = self.channel_drops.dropped_lines();
        let _ = self.writer.clone().write_all(&pending.bytes);
        if self.channel_drops.dropped_lines() != before {
            self.dropped_lines
                .fetch_add(pending.lines, Ordering::Relaxed);
        }
        pending.bytes.clear();
        pending.lines = 0;
    }
}

/// The fmt layer's writer: one `write_all` per formatted event.
pub struct BatchWriter<'a>(&'a Batcher);

impl Write for BatchWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.push(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// [`MakeWriter`] over a shared [`Batcher`].
#[derive(Clone)]
pub struct MakeBatchWriter(pub Arc<Batcher>);

impl<'a> MakeWriter<'a> for MakeBatchWriter {
    type Writer = BatchWriter<'a>;
    fn make_writer(&'a self) -> Self::Writer {
        BatchWriter(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex as StdMutex;
    use std::time::Instant;

    #[derive(Clone, Default)]
    struct Sink(Arc<StdMutex<Vec<u8>>>);

    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn wait_for(sink: &Sink, want: usize) -> Vec<u8> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let got = sink.0.lock().unwrap().clone();
            if got.len() >= want || Instant::now() > deadline {
                return got;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn a_lone_line_is_written_by_the_ticker() {
        let sink = Sink::default();
        let (writer, _guard) = tracing_appender::non_blocking(sink.clone());
        let batcher = Batcher::start(writer);
        MakeBatchWriter(batcher.clone())
            .make_writer()
            .write_all(b"one line\n")
            .unwrap();
        assert_eq!(wait_for(&sink, 9), b"one line\n");
        assert_eq!(batcher.dropped_lines(), 0);
    }

    #[test]
    fn lines_from_many_threads_arrive_whole_and_in_order_per_thread() {
        let sink = Sink::default();
        let (writer, guard) = tracing_appender::non_blocking(sink.clone());
        let batcher = Batcher::start(writer);
        let make = MakeBatchWriter(batcher.clone());
        std::thread::scope(|s| {
            for t in 0..4 {
                let make = make.clone();
                s.spawn(move || {
                    for i in 0..5_000 {
                        let line = format!("thread={t} line={i} {}\n", "x".repeat(i % 200));
                        make.make_writer().write_all(line.as_bytes()).unwrap();
                    }
                });
            }
        });
        batcher.stop();
        drop(guard);
        let text = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        let mut next = [0usize; 4];
        for line in text.lines() {
            let mut words = line.split(' ');
            let t: usize = words.next().unwrap()["thread=".len()..].parse().unwrap();
            let i: usize = words.next().unwrap()["line=".len()..].parse().unwrap();
            assert_eq!(i, next[t], "thread {t} out of order");
            next[t] += 1;
        }
        assert_eq!(next, [5_000; 4]);
        assert_eq!(batcher.dropped_lines(), 0);
    }

    /// A writer that never returns fills the queue; lines are then dropped and counted,
    /// and nobody waits.
    #[test]
    fn a_stuck_writer_drops_and_counts_lines_without_blocking() {
        struct Stuck(Arc<StdMutex<()>>);
        impl Write for Stuck {
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                drop(self.0.lock().unwrap());
                Ok(buf.len())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let gate = Arc::new(StdMutex::new(()));
        let held = gate.lock().unwrap();
        let (writer, _guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
            .buffered_lines_limit(2)
            .lossy(true)
            .finish(Stuck(gate.clone()));
        let batcher = Batcher::start(writer);
        let make = MakeBatchWriter(batcher.clone());
        let started = Instant::now();
        let line = vec![b'x'; BATCH_BYTES];
        for _ in 0..20 {
            make.make_writer().write_all(&line).unwrap();
        }
        assert!(started.elapsed() < Duration::from_secs(5));
        // One batch is in the writer's hands, two queued; the rest were dropped.
        assert!(batcher.dropped_lines() >= 15, "{}", batcher.dropped_lines());
        drop(held);
    }
}

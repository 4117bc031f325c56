//! A one-line progress display on stderr: redrawn in place on a terminal, one line per step
//! otherwise (logs, CI), so long runs show where they are without an extra dependency.

use std::io::{IsTerminal as _, Write as _};
use std::time::Instant;

/// Progress over a known number of items.
pub struct Progress {
    label: &'static str,
    total: usize,
    done: usize,
    tty: bool,
    started: Instant,
}

impl Progress {
    /// Starts a display for `total` items.
    pub fn new(label: &'static str, total: usize) -> Progress {
        Progress {
            label,
            total,
            done: 0,
            tty: std::io::stderr().is_terminal(),
            started: Instant::now(),
        }
    }

    /// Announces the next item.
    pub fn step(&mut self, item: &str) {
        self.done += 1;
        let width = 24;
        let filled = ((self.done - 1) * width)
            .checked_div(self.total)
            .unwrap_or(width);
        let bar = format!("{}{}", "#".repeat(filled), "-".repeat(width - filled));
        let line = format!("{} [{bar}] {}/{} {item}", self.label, self.done, self.total);
        let mut err = std::io::stderr().lock();
        if self.tty {
            let _ = write!(err, "\r\x1b[2K{line}");
        } else {
            let _ = writeln!(err, "{line}");
        }
        let _ = err.flush();
    }

    /// Ends the display.
    pub fn finish(&mut self) {
        let mut err = std::io::stderr().lock();
        let line = format!(
            "{} [{}] {}/{} done in {:.1}s",
            self.label,
            "#".repeat(24),
            self.done,
            self.total,
            self.started.elapsed().as_secs_f64()
        );
        if self.tty {
            let _ = writeln!(err, "\r\x1b[2K{line}");
        } else {
            let _ = writeln!(err, "{line}");
        }
    }
}

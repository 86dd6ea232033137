//! Progress of long work (seeding, catching up): a bar with the rate and the time remaining on
//! a terminal, a plain log line every [`EVERY`] otherwise (a pipe, a file, a log collector).

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tracing::info;

/// How often a plain progress line is logged when standard error is not a terminal.
pub const EVERY: Duration = Duration::from_secs(10);

/// One piece of long work.
#[derive(Debug)]
pub struct Progress {
    what: &'static str,
    unit: &'static str,
    bar: Option<ProgressBar>,
    started: Instant,
    logged: Instant,
    done: u64,
    total: Option<u64>,
}

/// Whether standard error is a terminal (a bar can be drawn).
pub fn on_terminal() -> bool {
    std::io::stderr().is_terminal()
}

impl Progress {
    /// Starts tracking `what` (e.g. "seeding"), counted in `unit` (e.g. "persons"), out of
    /// `total` when known.
    pub fn new(what: &'static str, unit: &'static str, total: Option<u64>) -> Self {
        let bar = on_terminal().then(|| {
            let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr_with_hz(2));
            let template = if total.is_some() {
                "{prefix} [{bar:30}] {human_pos}/{human_len} {msg} ({per_sec}, {eta} left)"
            } else {
                "{prefix} {human_pos} {msg} ({per_sec}, {elapsed})"
            };
            if let Ok(style) = ProgressStyle::with_template(template) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_prefix(what);
            bar.set_message(unit);
            bar
        });
        Self {
            what,
            unit,
            bar,
            started: Instant::now(),
            logged: Instant::now(),
            done: 0,
            total,
        }
    }

    /// Sets or changes the total (e.g. once the register's head is known).
    pub fn set_total(&mut self, total: u64) {
        self.total = Some(total);
        if let Some(bar) = &self.bar {
            bar.set_length(total);
        }
    }

    /// Counts `n` more units done.
    pub fn advance(&mut self, n: u64) {
        self.done += n;
        if let Some(bar) = &self.bar {
            bar.set_position(self.done);
            if self.total.is_some_and(|t| self.done >= t) {
                // Caught up: the bar ends; what follows is logged.
                bar.finish();
                self.bar = None;
            }
            return;
        }
        if self.logged.elapsed() >= EVERY {
            self.logged = Instant::now();
            let rate = self.rate();
            let remaining = self.total.map(|t| t.saturating_sub(self.done));
            let eta_s = remaining
                .filter(|_| rate > 0.0)
                .map(|r| (r as f64 / rate).round() as u64);
            info!(
                what = self.what,
                unit = self.unit,
                done = self.done,
                total = self.total,
                per_s = rate as u64,
                remaining_s = eta_s,
                "progress"
            );
        }
    }

    /// Units per second so far.
    pub fn rate(&self) -> f64 {
        self.done as f64 / self.started.elapsed().as_secs_f64().max(1e-3)
    }

    /// Ends the bar (the final numbers stay on the terminal).
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_rates() {
        let mut p = Progress::new("catching up", "events", None);
        p.set_total(100);
        p.advance(40);
        p.advance(10);
        assert_eq!(p.done, 50);
        assert!(p.rate() > 0.0);
        p.finish();
    }
}

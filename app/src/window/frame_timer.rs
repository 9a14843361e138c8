//! How long the window's frames take on the UI thread (shown in the status line, asserted in tests).

use std::collections::VecDeque;
use std::time::Duration;

/// Frames remembered for the statistics.
const WINDOW: usize = 240;

#[derive(Debug, Default, Clone)]
pub struct FrameTimer {
    recent: VecDeque<Duration>,
}

impl FrameTimer {
    pub fn record(&mut self, frame: Duration) {
        if self.recent.len() == WINDOW {
            self.recent.pop_front();
        }
        self.recent.push_back(frame);
    }

    pub fn frames(&self) -> impl Iterator<Item = Duration> + '_ {
        self.recent.iter().copied()
    }

    pub fn mean_ms(&self) -> Option<f64> {
        (!self.recent.is_empty())
            .then(|| self.recent.iter().map(Duration::as_secs_f64).sum::<f64>() * 1e3 / self.recent.len() as f64)
    }

    pub fn max_ms(&self) -> Option<f64> {
        self.recent.iter().max().map(|d| d.as_secs_f64() * 1e3)
    }
}

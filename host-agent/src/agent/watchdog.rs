//! A guard against an operation that can never finish: the engine is busy,
//! has nothing in flight (so no timer will fire and no result can come) and
//! sends nothing. The protocol never leads there; an engine bug or a buffer
//! the engine cannot use does, and without this the agent would wait
//! forever. After `limit` in that state the agent fails with
//! [`super::AgentError::Internal`] instead.

use std::time::{Duration, Instant};

/// Tracks how long the operation has been unable to move.
#[derive(Debug)]
pub(crate) struct Watchdog {
    limit: Duration,
    stuck_since: Option<Instant>,
}

impl Watchdog {
    pub(crate) fn new(limit: Duration) -> Self {
        Watchdog {
            limit,
            stuck_since: None,
        }
    }

    /// One turn of the I/O loop at `now`: `can_move` is whether anything
    /// was sent or received, or anything is in flight. Returns how long
    /// the operation has been stuck once that reaches the limit.
    pub(crate) fn observe(&mut self, now: Instant, can_move: bool) -> Option<Duration> {
        if can_move {
            self.stuck_since = None;
            return None;
        }
        let since = *self.stuck_since.get_or_insert(now);
        let stuck = now.saturating_duration_since(since);
        (stuck >= self.limit).then_some(stuck)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fires_only_after_the_limit_without_any_movement() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut w = Watchdog::new(s(5));
        assert_eq!(w.observe(t0, false), None);
        assert_eq!(w.observe(t0 + s(4), false), None);
        // Movement resets the count.
        assert_eq!(w.observe(t0 + s(4), true), None);
        assert_eq!(w.observe(t0 + s(8), false), None);
        assert_eq!(w.observe(t0 + s(12), false), None);
        assert_eq!(w.observe(t0 + s(13), false), Some(s(5)));
    }
}

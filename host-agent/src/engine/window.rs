//! The window: one entry per window position (slot of the lease), holding
//! which packet is in flight there, its retransmission timer and its
//! backoff, plus the round-trip estimate that sets the timeout. It keeps no
//! bytes: a retransmission is rebuilt from the operation, whose state for a
//! packet does not change before that packet's result is in.
//!
//! Times inside are nanoseconds since the operation began (`u64`): every
//! packet takes a timer, a deadline and a round-trip sample, and integer
//! arithmetic costs a fraction of `Instant`/`Duration`'s (seconds and
//! nanoseconds, normalized and overflow-checked at each step). A driver
//! passes the same `now` for a whole batch of packets, so the conversion
//! of the last instant is kept and reused.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::timers::Timers;

/// One window position.
#[derive(Debug)]
struct Entry {
    /// Global packet counter of the packet last placed here.
    counter: u64,
    /// Sent and its result not yet in.
    waiting: bool,
    /// When it was first sent (for stall reports and round-trip samples).
    first_sent: u64,
    /// Timeout applied after the next (re)transmission.
    rto: u64,
    /// Transmissions so far; tags timers so that old ones are recognized.
    transmissions: u32,
    /// Whether a retransmission is queued (its timer fired, not yet resent).
    due: bool,
}

/// The in-flight state of all window positions.
#[derive(Debug)]
pub(crate) struct Window {
    entries: Vec<Entry>,
    /// Retransmission timers; entries whose packet got its result or was
    /// resent are left in place and skipped (the top is always live).
    timers: Timers,
    /// Packets whose timer fired, in firing order, to be resent.
    due: VecDeque<u64>,
    /// The instant internal times count from (set when an operation begins).
    epoch: Option<Instant>,
    /// The last instant converted, and what it converted to.
    last: Option<(Instant, u64)>,
    /// Timeout before any round trip is measured, and the floor after.
    initial_rto: u64,
    max_rto: u64,
    rtt: RttEstimate,
    /// Doublings of the timeout for new packets since the last valid
    /// round-trip sample: when timeouts fire because the network is slow
    /// (not lossy), every packet would otherwise time out in turn and the
    /// retransmissions slow it further (RFC 6298, 5.5).
    backoff: u32,
}

/// Smoothed round trip and its variation (RFC 6298's estimator), from
/// results of packets sent once (Karn: a retransmitted packet's result
/// cannot tell which copy it answers). Without it a fixed timeout below
/// the round trip of a large window or world retransmits every packet.
/// Nanoseconds.
#[derive(Debug, Default, Clone, Copy)]
struct RttEstimate {
    /// Smoothed round trip; `None` before the first sample.
    srtt: Option<u64>,
    rttvar: u64,
}

impl RttEstimate {
    fn sample(&mut self, rtt: u64) {
        match self.srtt {
            None => {
                self.srtt = Some(rtt);
                self.rttvar = rtt / 2;
            }
            Some(srtt) => {
                let delta = srtt.abs_diff(rtt);
                self.rttvar = (self.rttvar.saturating_mul(3).saturating_add(delta)) / 4;
                self.srtt = Some(srtt.saturating_mul(7).saturating_add(rtt) / 8);
            }
        }
    }

    /// srtt + 4 rttvar, kept within `[floor, cap]`; `floor` before any sample.
    fn rto(&self, floor: u64, cap: u64) -> u64 {
        match self.srtt {
            None => floor,
            Some(srtt) => srtt
                .saturating_add(self.rttvar.saturating_mul(4))
                .clamp(floor, cap.max(floor)),
        }
    }
}

/// A duration in nanoseconds, saturating (beyond 584 years).
fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl Window {
    /// A window of `size` positions, all free.
    pub(crate) fn new(size: u16, initial_rto: Duration, max_rto: Duration) -> Self {
        let initial_rto = nanos(initial_rto);
        let entries = (0..size)
            .map(|_| Entry {
                counter: 0,
                waiting: false,
                first_sent: 0,
                rto: initial_rto,
                transmissions: 0,
                due: false,
            })
            .collect();
        Window {
            entries,
            timers: Timers::default(),
            due: VecDeque::new(),
            epoch: None,
            last: None,
            initial_rto,
            max_rto: nanos(max_rto),
            rtt: RttEstimate::default(),
            backoff: 0,
        }
    }

    /// Starts an operation at `now`: nothing in flight, times counted from
    /// here (the round-trip estimate is kept).
    pub(crate) fn begin(&mut self, now: Instant) {
        self.clear();
        self.epoch = Some(now);
        self.last = Some((now, 0));
    }

    /// `now` as nanoseconds since the operation began (0 for an earlier
    /// instant: a clock that went backwards only delays timers).
    fn at(&mut self, now: Instant) -> u64 {
        if let Some((instant, at)) = self.last {
            if instant == now {
                return at;
            }
        }
        let epoch = *self.epoch.get_or_insert(now);
        let at = nanos(now.saturating_duration_since(epoch));
        self.last = Some((now, at));
        at
    }

    fn instant(&self, at: u64) -> Option<Instant> {
        self.epoch.map(|epoch| epoch + Duration::from_nanos(at))
    }

    /// The timeout a first transmission gets now, in nanoseconds.
    fn current_rto_nanos(&self) -> u64 {
        let rto = self.rtt.rto(self.initial_rto, self.max_rto);
        rto.saturating_mul(1 << self.backoff.min(16))
            .min(self.max_rto.max(self.initial_rto))
    }

    /// The timeout a first transmission gets now.
    #[cfg(test)]
    pub(crate) fn current_rto(&self) -> Duration {
        Duration::from_nanos(self.current_rto_nanos())
    }

    /// Number of positions (W).
    pub(crate) fn size(&self) -> u64 {
        self.entries.len() as u64
    }

    fn position(&self, counter: u64) -> usize {
        (counter % self.size()) as usize
    }

    /// Whether packet `counter` may take its position: the packet there
    /// before it (W earlier) has its result.
    pub(crate) fn is_free_for(&self, counter: u64) -> bool {
        !self.entries[self.position(counter)].waiting
    }

    /// Whether the result of already-sent packet `counter` is in. A position
    /// only moves on to a later packet once its result is in.
    pub(crate) fn has_result(&self, counter: u64) -> bool {
        let entry = &self.entries[self.position(counter)];
        entry.counter > counter || (entry.counter == counter && !entry.waiting)
    }

    /// The packet waiting for its result at `position`, if any.
    pub(crate) fn waiting_at(&self, position: usize) -> Option<u64> {
        let entry = self.entries.get(position)?;
        entry.waiting.then_some(entry.counter)
    }

    /// When the waiting packet `counter` was first sent.
    pub(crate) fn first_sent(&self, counter: u64) -> Option<Instant> {
        let entry = &self.entries[self.position(counter)];
        if entry.waiting && entry.counter == counter {
            self.instant(entry.first_sent)
        } else {
            None
        }
    }

    /// Places packet `counter`, sent now. The position must be free.
    pub(crate) fn occupy(&mut self, counter: u64, now: Instant) {
        let now = self.at(now);
        let position = self.position(counter);
        let rto = self.current_rto_nanos();
        let entry = &mut self.entries[position];
        debug_assert!(!entry.waiting);
        entry.counter = counter;
        entry.waiting = true;
        entry.first_sent = now;
        entry.rto = rto;
        entry.transmissions = 1;
        entry.due = false;
        self.timers.push((now.saturating_add(rto), counter, 1));
    }

    /// Records the result of the waiting packet at `position`, arrived at
    /// `now`; a packet sent once gives a round-trip sample.
    pub(crate) fn complete(&mut self, position: usize, now: Instant) {
        let now = self.at(now);
        let entry = &mut self.entries[position];
        entry.waiting = false;
        entry.due = false;
        if entry.transmissions == 1 {
            self.rtt.sample(now.saturating_sub(entry.first_sent));
            self.backoff = 0;
        }
        self.prune();
    }

    /// Fires every timer due at `now`: the packet is queued for
    /// retransmission and its timeout doubles (up to the cap).
    pub(crate) fn expire(&mut self, now: Instant) {
        let now = self.at(now);
        while let Some((deadline, counter, transmissions)) = self.timers.peek() {
            if deadline > now {
                break;
            }
            self.timers.pop();
            let position = self.position(counter);
            let max_rto = self.max_rto;
            let entry = &mut self.entries[position];
            if entry.waiting && entry.counter == counter && entry.transmissions == transmissions {
                entry.due = true;
                entry.rto = entry.rto.saturating_mul(2).min(max_rto);
                self.due.push_back(counter);
                self.backoff = self.backoff.saturating_add(1);
            }
        }
        self.prune();
    }

    /// Queues for retransmission now every packet from `oldest` to
    /// `overtaken` (counters) that still waits and was sent once: a later
    /// packet's result is in, and results come back in the order packets
    /// were sent unless one was lost (each round completes with its last
    /// contribution, and every worker's packets travel in order). Its
    /// timeout is not doubled: no timer fired. A packet already resent is
    /// left to its timer, so a loss costs at most one early resend.
    /// Returns how many were queued.
    pub(crate) fn resend_overtaken(&mut self, oldest: u64, overtaken: u64) -> u64 {
        let mut queued = 0;
        for counter in oldest..=overtaken.min(oldest.saturating_add(self.size() - 1)) {
            let position = self.position(counter);
            let entry = &mut self.entries[position];
            if entry.waiting && entry.counter == counter && entry.transmissions == 1 && !entry.due {
                entry.due = true;
                self.due.push_back(counter);
                queued += 1;
            }
        }
        if queued > 0 {
            self.prune();
        }
        queued
    }

    /// The next queued retransmission, sent now: its timer restarts with the
    /// backed-off timeout. Returns the packet's counter.
    pub(crate) fn next_retransmission(&mut self, now: Instant) -> Option<u64> {
        if self.due.is_empty() {
            return None;
        }
        let now = self.at(now);
        while let Some(counter) = self.due.pop_front() {
            let position = self.position(counter);
            let entry = &mut self.entries[position];
            if entry.waiting && entry.counter == counter && entry.due {
                entry.due = false;
                entry.transmissions += 1;
                let deadline = now.saturating_add(entry.rto);
                self.timers.push((deadline, counter, entry.transmissions));
                return Some(counter);
            }
        }
        None
    }

    /// Earliest live retransmission deadline.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        let (deadline, _, _) = self.timers.peek()?;
        self.instant(deadline)
    }

    /// Absolute slots of packets waiting for their result, in slot order.
    pub(crate) fn waiting_slots(&self, slot_base: u16) -> Vec<u16> {
        self.entries
            .iter()
            .enumerate()
            .filter(|(_, e)| e.waiting)
            .map(|(i, _)| slot_base.wrapping_add(i as u16))
            .collect()
    }

    /// Forgets everything in flight (used when an operation is abandoned);
    /// the round-trip estimate is kept.
    pub(crate) fn clear(&mut self) {
        for entry in &mut self.entries {
            entry.waiting = false;
            entry.due = false;
        }
        self.timers.clear();
        self.due.clear();
    }

    /// Drops dead timers from the top so that `next_deadline` is exact.
    fn prune(&mut self) {
        while let Some((_, counter, transmissions)) = self.timers.peek() {
            let entry = &self.entries[self.position(counter)];
            if entry.waiting
                && entry.counter == counter
                && entry.transmissions == transmissions
                && !entry.due
            {
                break;
            }
            self.timers.pop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn timeout_follows_the_round_trip_above_the_floor() {
        let t0 = Instant::now();
        let mut w = Window::new(4, 10 * MS, 100 * MS);
        assert_eq!(w.current_rto(), 10 * MS);
        // Round trips of 1 ms keep the floor.
        for k in 0..8u64 {
            w.occupy(k, t0 + k as u32 * MS);
            w.complete(w.position(k), t0 + (k as u32 + 1) * MS);
        }
        assert_eq!(w.current_rto(), 10 * MS);
        // Round trips of 30 ms raise it above 30 ms, below the cap.
        let t1 = t0 + 100 * MS;
        for k in 8..40u64 {
            let sent = t1 + (k as u32) * MS;
            w.occupy(k, sent);
            w.complete(w.position(k), sent + 30 * MS);
        }
        let rto = w.current_rto();
        assert!(rto > 30 * MS && rto < 100 * MS, "{rto:?}");
        // Ten-second round trips are capped.
        for k in 40..60u64 {
            let sent = t1 + Duration::from_secs(k);
            w.occupy(k, sent);
            w.complete(w.position(k), sent + Duration::from_secs(10));
        }
        assert_eq!(w.current_rto(), 100 * MS);
    }

    #[test]
    fn instants_round_trip_exactly_across_operations() {
        let t0 = Instant::now();
        let mut w = Window::new(2, 10 * MS, 100 * MS);
        w.begin(t0);
        let sent = t0 + Duration::from_nanos(1_234_567);
        w.occupy(0, sent);
        assert_eq!(w.first_sent(0), Some(sent));
        assert_eq!(w.next_deadline(), Some(sent + 10 * MS));
        // The deadline fires at exactly that instant, not a nanosecond early.
        w.expire(sent + 10 * MS - Duration::from_nanos(1));
        assert_eq!(w.next_retransmission(sent + 10 * MS), None);
        w.expire(sent + 10 * MS);
        assert_eq!(w.next_retransmission(sent + 10 * MS), Some(0));
        assert_eq!(w.next_deadline(), Some(sent + 30 * MS), "backed off: 20 ms");
        // A new operation counts from its own start; nothing is left over.
        let t1 = t0 + Duration::from_secs(10);
        w.begin(t1);
        assert_eq!((w.next_deadline(), w.first_sent(0)), (None, None));
        w.occupy(2, t1 + MS);
        assert_eq!(w.first_sent(2), Some(t1 + MS));
        // A clock that went backwards counts as the operation's start.
        w.occupy(3, t1 - MS);
        assert_eq!(w.first_sent(3), Some(t1));
    }

    #[test]
    fn retransmitted_packets_give_no_sample() {
        let t0 = Instant::now();
        let mut w = Window::new(1, 10 * MS, 100 * MS);
        w.occupy(0, t0);
        w.expire(t0 + 10 * MS);
        assert!(w.next_retransmission(t0 + 10 * MS).is_some());
        // New packets wait longer until a round trip is measured again.
        assert_eq!(w.current_rto(), 20 * MS);
        // Its result after 90 ms says nothing about the round trip.
        w.complete(0, t0 + 90 * MS);
        assert_eq!(w.current_rto(), 20 * MS);
        w.occupy(1, t0 + 100 * MS);
        w.complete(0, t0 + 101 * MS);
        assert_eq!(w.current_rto(), 10 * MS);
    }

    #[test]
    fn overtaken_packets_are_resent_once_without_backoff() {
        let t0 = Instant::now();
        let mut w = Window::new(8, 10 * MS, 100 * MS);
        for counter in 0..6 {
            w.occupy(counter, t0);
        }
        // 0 and 2 are overtaken; 1 has its result; 4 and 5 are not overtaken.
        w.complete(1, t0 + MS);
        assert_eq!(w.resend_overtaken(0, 3), 3);
        let resent: Vec<u64> = std::iter::from_fn(|| w.next_retransmission(t0 + MS)).collect();
        assert_eq!(resent, [0, 2, 3]);
        // Once resent, a packet is left to its timer, which is not doubled.
        assert_eq!(w.resend_overtaken(0, 3), 0);
        assert_eq!(w.current_rto(), 10 * MS, "no backoff");
        w.expire(t0 + 10 * MS);
        let timed_out: Vec<u64> =
            std::iter::from_fn(|| w.next_retransmission(t0 + 10 * MS)).collect();
        assert_eq!(timed_out, [4, 5], "first timers of the packets not resent");
        w.expire(t0 + 11 * MS);
        let after: Vec<u64> = std::iter::from_fn(|| w.next_retransmission(t0 + 11 * MS)).collect();
        assert_eq!(
            after,
            [0, 2, 3],
            "the early resends' timers, 10 ms after them"
        );
        // The range never wraps past the window.
        let mut w = Window::new(4, 10 * MS, 100 * MS);
        w.occupy(0, t0);
        assert_eq!(w.resend_overtaken(0, 100), 1);
    }
}

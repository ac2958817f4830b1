//! The window's retransmission timers: a priority queue keyed by
//! (deadline, packet counter, transmission), earliest first.
//!
//! First transmissions go out in counter order with the same initial
//! timeout, so their keys nearly always arrive in ascending order: those
//! are appended to a sorted queue (O(1) push and pop) and everything else
//! (backed-off retransmissions, a clock that went backwards) goes to a
//! heap. The minimum is the smaller of the two fronts, so the queue yields
//! exactly what a single heap would, at a fraction of the cost per packet.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

/// A timer: (deadline in the window's nanoseconds, packet counter,
/// transmission it belongs to).
pub(crate) type Timer = (u64, u64, u32);

/// Min-priority queue of [`Timer`]s.
#[derive(Debug, Default)]
pub(crate) struct Timers {
    /// Ascending; every push that keeps it ascending lands here.
    sorted: VecDeque<Timer>,
    /// The rest.
    heap: BinaryHeap<Reverse<Timer>>,
}

impl Timers {
    pub(crate) fn push(&mut self, timer: Timer) {
        match self.sorted.back() {
            Some(last) if timer < *last => self.heap.push(Reverse(timer)),
            _ => self.sorted.push_back(timer),
        }
    }

    /// The earliest timer.
    pub(crate) fn peek(&self) -> Option<Timer> {
        match (self.sorted.front(), self.heap.peek()) {
            (Some(&a), Some(&Reverse(b))) => Some(a.min(b)),
            (Some(&a), None) => Some(a),
            (None, Some(&Reverse(b))) => Some(b),
            (None, None) => None,
        }
    }

    /// Removes the earliest timer.
    pub(crate) fn pop(&mut self) -> Option<Timer> {
        match (self.sorted.front(), self.heap.peek()) {
            (Some(a), Some(Reverse(b))) if b < a => self.heap.pop().map(|Reverse(t)| t),
            (Some(_), _) => self.sorted.pop_front(),
            (None, _) => self.heap.pop().map(|Reverse(t)| t),
        }
    }

    pub(crate) fn clear(&mut self) {
        self.sorted.clear();
        self.heap.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Against a plain heap, under pushes in and out of order and
    /// interleaved pops (a deterministic pseudo-random schedule).
    #[test]
    fn pops_exactly_what_a_heap_pops() {
        let base = 1_000_000_000u64;
        let mut timers = Timers::default();
        let mut heap = BinaryHeap::new();
        let mut x = 12_345u64;
        let mut counter = 0;
        for _ in 0..20_000 {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            let r = x >> 33;
            if r.is_multiple_of(3) {
                assert_eq!(timers.pop(), heap.pop().map(|Reverse(t)| t));
            } else {
                counter += 1 + r % 2;
                // Mostly rising deadlines, sometimes earlier ones, and ties.
                let ms = if r.is_multiple_of(7) {
                    r % 50
                } else {
                    counter / 2
                };
                let timer = (base + ms * 1_000_000, counter, (r % 3) as u32);
                timers.push(timer);
                heap.push(Reverse(timer));
            }
            assert_eq!(timers.peek(), heap.peek().map(|&Reverse(t)| t));
        }
        while let Some(Reverse(t)) = heap.pop() {
            assert_eq!(timers.pop(), Some(t));
        }
        assert_eq!(timers.pop(), None);
        timers.push((base, 1, 1));
        timers.clear();
        assert_eq!(timers.peek(), None);
    }
}

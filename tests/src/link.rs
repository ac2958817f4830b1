//! Faults of one direction of one simulated link: base delay, loss,
//! duplication and reordering (an extra random delay), drawn from the
//! link's own seeded generator.

use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// What one direction of a link does to datagrams.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinkFaults {
    /// One-way delay of every copy.
    pub delay: Duration,
    /// Probability that a datagram is lost.
    pub drop: f64,
    /// Probability that a datagram (not lost) arrives twice.
    pub duplicate: f64,
    /// Probability that a copy is held back by an extra random delay.
    pub reorder: f64,
    /// Largest extra delay of a held-back copy.
    pub reorder_delay: Duration,
}

impl LinkFaults {
    /// A link that delivers everything, in order, after 10 µs.
    pub const PERFECT: LinkFaults = LinkFaults {
        delay: Duration::from_micros(10),
        drop: 0.0,
        duplicate: 0.0,
        reorder: 0.0,
        reorder_delay: Duration::from_millis(10),
    };

    /// A link with the same probability `rate` of loss, duplication and
    /// reordering (extra delay up to 10 ms, several retransmission timeouts).
    pub fn lossy(rate: f64) -> LinkFaults {
        LinkFaults {
            drop: rate,
            duplicate: rate,
            reorder: rate,
            ..LinkFaults::PERFECT
        }
    }

    /// Checks that the probabilities are probabilities.
    pub fn validate(&self) -> Result<(), String> {
        for (name, p) in [
            ("drop", self.drop),
            ("duplicate", self.duplicate),
            ("reorder", self.reorder),
        ] {
            if !(0.0..=1.0).contains(&p) {
                return Err(format!("{name} probability {p} is outside 0..=1"));
            }
        }
        Ok(())
    }
}

/// What happened to one datagram on a link.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Fate {
    /// Arrival delays of its copies (0, 1 or 2 of them).
    pub arrivals: [Option<Duration>; 2],
    /// It was lost.
    pub dropped: bool,
    /// It was duplicated.
    pub duplicated: bool,
    /// Copies held back by an extra delay.
    pub reordered: u8,
}

/// One direction of one link.
#[derive(Debug)]
pub(crate) struct Link {
    faults: LinkFaults,
    rng: SmallRng,
}

impl Link {
    pub(crate) fn new(faults: LinkFaults, seed: u64) -> Link {
        Link {
            faults,
            rng: SmallRng::seed_from_u64(seed),
        }
    }

    /// Decides the fate of the next datagram.
    pub(crate) fn transmit(&mut self) -> Fate {
        let mut fate = Fate::default();
        if self.rng.gen_bool(self.faults.drop) {
            fate.dropped = true;
            return fate;
        }
        fate.duplicated = self.rng.gen_bool(self.faults.duplicate);
        let copies = if fate.duplicated { 2 } else { 1 };
        for arrival in fate.arrivals.iter_mut().take(copies) {
            let mut delay = self.faults.delay;
            if self.rng.gen_bool(self.faults.reorder) {
                fate.reordered += 1;
                delay += self
                    .rng
                    .gen_range(Duration::ZERO..=self.faults.reorder_delay);
            }
            *arrival = Some(delay);
        }
        fate
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perfect_link_delivers_once_in_time() {
        let mut link = Link::new(LinkFaults::PERFECT, 1);
        for _ in 0..100 {
            let fate = link.transmit();
            assert_eq!(fate.arrivals, [Some(Duration::from_micros(10)), None]);
        }
    }

    #[test]
    fn faults_occur_at_about_their_rates_and_replay() {
        let faults = LinkFaults::lossy(0.2);
        let fates = |seed| {
            let mut link = Link::new(faults, seed);
            (0..10_000).map(|_| link.transmit()).collect::<Vec<_>>()
        };
        let a = fates(7);
        assert_eq!(a, fates(7), "same seed, same fates");
        assert_ne!(a, fates(8));
        let dropped = a.iter().filter(|f| f.dropped).count();
        let duplicated = a.iter().filter(|f| f.duplicated).count();
        let late = a.iter().filter(|f| f.reordered > 0).count();
        assert!((1700..2300).contains(&dropped), "{dropped}");
        assert!((1400..1900).contains(&duplicated), "{duplicated}");
        assert!((1500..2400).contains(&late), "{late}");
        for f in &a {
            for d in f.arrivals.iter().flatten() {
                assert!(*d >= faults.delay && *d <= faults.delay + faults.reorder_delay);
            }
        }
    }

    #[test]
    fn invalid_probabilities_are_rejected() {
        assert!(LinkFaults::lossy(1.5).validate().is_err());
        assert!(LinkFaults {
            drop: -0.1,
            ..LinkFaults::PERFECT
        }
        .validate()
        .is_err());
        // A dead link is a valid scenario (hang detection).
        LinkFaults {
            drop: 1.0,
            ..LinkFaults::PERFECT
        }
        .validate()
        .unwrap();
        LinkFaults::lossy(0.2).validate().unwrap();
    }
}

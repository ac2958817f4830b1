//! The two tables an L2 switch with its own IP address keeps: where each MAC
//! address was last seen (for forwarding), and which MAC each IPv4 neighbour
//! uses (to address aggregation results to a worker's MAC).

use std::collections::HashMap;
use std::hash::Hash;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

/// Default MAC aging time, as Linux bridges and most switches (300 s).
pub const DEFAULT_AGING: Duration = Duration::from_secs(300);

/// Entries that age: each value with when it was last refreshed; one older
/// than the aging time is treated as absent. Both tables are one of these.
#[derive(Debug)]
struct AgingMap<K, V> {
    entries: HashMap<K, (V, Instant)>,
    aging: Duration,
}

impl<K: Eq + Hash, V: Copy + PartialEq> AgingMap<K, V> {
    fn new(aging: Duration) -> Self {
        AgingMap {
            entries: HashMap::new(),
            aging,
        }
    }

    /// Sets `key` to `value` as of `now`; returns whether what a lookup at
    /// `now` gives for `key` changed (new, another value, or back after
    /// aging out), which is what caches of lookups must hear about.
    fn learn(&mut self, key: K, value: V, now: Instant) -> bool {
        let before = self.entries.insert(key, (value, now));
        before.is_none_or(|(was, seen)| was != value || !fresh(self.aging, seen, now))
    }

    fn lookup(&self, key: &K, now: Instant) -> Option<V> {
        self.entries
            .get(key)
            .filter(|(_, seen)| fresh(self.aging, *seen, now))
            .map(|(value, _)| *value)
    }

    fn expire(&mut self, now: Instant) {
        let aging = self.aging;
        self.entries.retain(|_, (_, seen)| fresh(aging, *seen, now));
    }
}

/// Whether an entry refreshed at `seen` still holds at `now`.
fn fresh(aging: Duration, seen: Instant, now: Instant) -> bool {
    now.saturating_duration_since(seen) < aging
}

/// MAC address -> (port, last seen). An entry older than the aging time is
/// treated as unknown, so a host that moved is found again by flooding.
#[derive(Debug)]
pub struct MacTable(AgingMap<[u8; 6], usize>);

impl MacTable {
    /// An empty table whose entries expire `aging` after they were last refreshed.
    pub fn new(aging: Duration) -> Self {
        MacTable(AgingMap::new(aging))
    }

    /// Records that `mac` sent a frame on `port` at `now`; returns whether
    /// that changed where `mac` is (new, moved, or back after aging out).
    pub fn learn(&mut self, mac: [u8; 6], port: usize, now: Instant) -> bool {
        self.0.learn(mac, port, now)
    }

    /// The port `mac` was last seen on, unless the entry has aged out.
    pub fn lookup(&self, mac: &[u8; 6], now: Instant) -> Option<usize> {
        self.0.lookup(mac, now)
    }

    /// Removes aged entries (called periodically so the table stays bounded).
    pub fn expire(&mut self, now: Instant) {
        self.0.expire(now);
    }

    /// Number of entries (aged or not).
    pub fn len(&self) -> usize {
        self.0.entries.len()
    }

    /// Whether the table holds no entry.
    pub fn is_empty(&self) -> bool {
        self.0.entries.is_empty()
    }
}

/// IPv4 address -> MAC address, learned from ARP and from IPv4 frames sent
/// to the switch. Entries age like the MAC table.
#[derive(Debug)]
pub struct NeighborTable(AgingMap<Ipv4Addr, [u8; 6]>);

impl NeighborTable {
    /// An empty table.
    pub fn new(aging: Duration) -> Self {
        NeighborTable(AgingMap::new(aging))
    }

    /// Records that `ip` uses `mac`; returns whether that changed the MAC
    /// of `ip` (new, another one, or back after aging out). Unspecified,
    /// broadcast and multicast addresses are not neighbours.
    pub fn learn(&mut self, ip: Ipv4Addr, mac: [u8; 6], now: Instant) -> bool {
        if ip.is_unspecified() || ip.is_broadcast() || ip.is_multicast() {
            return false;
        }
        self.0.learn(ip, mac, now)
    }

    /// The MAC address of `ip`, unless unknown or aged.
    pub fn lookup(&self, ip: &Ipv4Addr, now: Instant) -> Option<[u8; 6]> {
        self.0.lookup(ip, now)
    }

    /// Removes aged entries.
    pub fn expire(&mut self, now: Instant) {
        self.0.expire(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_entries_age_out() {
        let t0 = Instant::now();
        let mut t = MacTable::new(Duration::from_secs(10));
        assert!(t.learn([2, 0, 0, 0, 0, 1], 3, t0), "new");
        assert!(!t.learn([2, 0, 0, 0, 0, 1], 3, t0), "refreshed only");
        assert_eq!(t.lookup(&[2, 0, 0, 0, 0, 1], t0), Some(3));
        assert_eq!(t.lookup(&[2, 0, 0, 0, 0, 2], t0), None);
        let later = t0 + Duration::from_secs(10);
        assert_eq!(t.lookup(&[2, 0, 0, 0, 0, 1], later), None);
        assert!(
            t.learn([2, 0, 0, 0, 0, 1], 1, later),
            "moved after aging out"
        );
        assert_eq!(t.lookup(&[2, 0, 0, 0, 0, 1], later), Some(1));
        assert!(t.learn([2, 0, 0, 0, 0, 1], 2, later), "moved");
        assert!(!t.learn([2, 0, 0, 0, 0, 1], 2, later + Duration::from_secs(9)));
        assert!(
            t.learn([2, 0, 0, 0, 0, 1], 2, later + Duration::from_secs(30)),
            "back after aging out"
        );
        t.expire(later + Duration::from_secs(41));
        assert!(t.is_empty());
    }

    #[test]
    fn neighbors_ignore_non_unicast() {
        let t0 = Instant::now();
        let mut n = NeighborTable::new(Duration::from_secs(10));
        assert!(!n.learn(Ipv4Addr::UNSPECIFIED, [2, 0, 0, 0, 0, 1], t0));
        assert!(n.learn(Ipv4Addr::new(10, 0, 0, 1), [2, 0, 0, 0, 0, 1], t0));
        assert!(!n.learn(Ipv4Addr::new(10, 0, 0, 1), [2, 0, 0, 0, 0, 1], t0));
        assert_eq!(n.lookup(&Ipv4Addr::UNSPECIFIED, t0), None);
        assert_eq!(
            n.lookup(&Ipv4Addr::new(10, 0, 0, 1), t0),
            Some([2, 0, 0, 0, 0, 1])
        );
        assert!(
            n.learn(Ipv4Addr::new(10, 0, 0, 1), [2, 0, 0, 0, 0, 2], t0),
            "another MAC"
        );
        n.expire(t0 + Duration::from_secs(10));
        assert_eq!(n.lookup(&Ipv4Addr::new(10, 0, 0, 1), t0), None);
    }
}

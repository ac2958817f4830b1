//! The headers of the results the L2 switch sends, kept per destination
//! (a member, or a job's multicast group) for one instant. A round's results go to the same few members over and over;
//! finding a member's MAC and port (two hash lookups with aging checks) and
//! writing its headers (with the IPv4 checksum) for each of them was about
//! 2 % of all samples of an n=8 run with 1 KiB packets.
//!
//! An entry holds only for the instant it was made at (the tables' aging is
//! judged at that instant) and only while neither table changes what it
//! says of an address: the switch clears the cache when they do.

use std::net::SocketAddrV4;
use std::time::Instant;

use packet_format::OUTER_HEADERS_LEN;

use super::logic::PortMask;

/// Most members remembered at once (a job's world; more are looked up each time).
const MAX_ENTRIES: usize = 64;

/// Where a result to one destination goes and the headers it carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResultHead {
    /// The ports it leaves on: the one a member's MAC was learned on; for a
    /// group, the replication port or the members' ports.
    pub ports: PortMask,
    /// Ethernet, IPv4 and UDP headers for a payload of the cached length.
    pub bytes: [u8; OUTER_HEADERS_LEN],
}

/// Result headers by (destination, payload length), for one instant.
#[derive(Debug, Default)]
pub struct ResultHeads {
    at: Option<Instant>,
    entries: Vec<(SocketAddrV4, usize, ResultHead)>,
}

impl ResultHeads {
    /// The headers of a result of `payload_len` bytes to `to` made at `now`, if any.
    pub fn get(&self, now: Instant, to: SocketAddrV4, payload_len: usize) -> Option<ResultHead> {
        if self.at != Some(now) {
            return None;
        }
        self.entries
            .iter()
            .find(|(addr, len, _)| *addr == to && *len == payload_len)
            .map(|&(_, _, head)| head)
    }

    /// Remembers `head` for results of `payload_len` bytes to `to` at `now`
    /// (forgetting every entry of another instant).
    pub fn insert(&mut self, now: Instant, to: SocketAddrV4, payload_len: usize, head: ResultHead) {
        if self.at != Some(now) {
            self.entries.clear();
            self.at = Some(now);
        }
        if self.entries.len() < MAX_ENTRIES {
            self.entries.push((to, payload_len, head));
        }
    }

    /// Forgets every entry (a table changed).
    pub fn clear(&mut self) {
        self.entries.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn an_entry_holds_for_its_instant_until_cleared() {
        let now = Instant::now();
        let to = SocketAddrV4::new([10, 0, 0, 1].into(), 4000);
        let head = ResultHead {
            ports: PortMask::one(3),
            bytes: [7; OUTER_HEADERS_LEN],
        };
        let mut heads = ResultHeads::default();
        heads.insert(now, to, 1024, head);
        assert_eq!(heads.get(now, to, 1024), Some(head));
        // Another length, member or instant is another entry.
        assert_eq!(heads.get(now, to, 1000), None);
        assert_eq!(
            heads.get(now, SocketAddrV4::new(*to.ip(), 4001), 1024),
            None
        );
        let later = now + Duration::from_micros(1);
        assert_eq!(heads.get(later, to, 1024), None);
        heads.insert(later, to, 64, head);
        assert_eq!(
            heads.get(later, to, 1024),
            None,
            "the old instant's entries are gone"
        );
        assert_eq!(heads.get(later, to, 64), Some(head));
        heads.clear();
        assert_eq!(heads.get(later, to, 64), None);
    }

    #[test]
    fn a_groups_entry_holds_its_port_set_for_its_instant_until_cleared() {
        let now = Instant::now();
        let group = SocketAddrV4::new([239, 77, 0, 7].into(), 48864);
        let head = ResultHead {
            ports: PortMask(0b101),
            bytes: [1; OUTER_HEADERS_LEN],
        };
        let mut heads = ResultHeads::default();
        assert_eq!(heads.get(now, group, 1024), None);
        heads.insert(now, group, 1024, head);
        assert_eq!(heads.get(now, group, 1024), Some(head));
        let later = now + Duration::from_micros(1);
        assert_eq!(heads.get(later, group, 1024), None);
        heads.insert(later, group, 1024, head);
        heads.clear();
        assert_eq!(heads.get(later, group, 1024), None);
    }
}

//! The headers of the results the L2 switch sends, kept per member for one
//! instant. A round's results go to the same few members over and over;
//! finding a member's MAC and port (two hash lookups with aging checks) and
//! writing its headers (with the IPv4 checksum) for each of them was about
//! 2 % of all samples of an n=8 run with 1 KiB packets.
//!
//! The ports of a job's members are kept the same way, by group, for
//! results sent to the job's multicast group.
//!
//! An entry holds only for the instant it was made at (the tables' aging is
//! judged at that instant) and only while neither table changes what it
//! says of an address: the switch clears the cache when they do.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Instant;

use packet_format::OUTER_HEADERS_LEN;

use super::logic::PortMask;

/// Most members remembered at once (a job's world; more are looked up each time).
const MAX_ENTRIES: usize = 64;

/// Where a result to one member goes and the headers it carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResultHead {
    /// The port the member's MAC was learned on.
    pub port: usize,
    /// Ethernet, IPv4 and UDP headers for a payload of the cached length.
    pub bytes: [u8; OUTER_HEADERS_LEN],
}

/// Result headers by (member, payload length), and members' ports by
/// group, for one instant.
#[derive(Debug, Default)]
pub struct ResultHeads {
    at: Option<Instant>,
    entries: Vec<(SocketAddrV4, usize, ResultHead)>,
    /// The ports of a group's members; `None`: a member's port is unknown.
    groups: Vec<(Ipv4Addr, Option<PortMask>)>,
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
        self.keep_only(now);
        if self.entries.len() < MAX_ENTRIES {
            self.entries.push((to, payload_len, head));
        }
    }

    /// The ports of `group`'s members as made at `now`, if remembered.
    pub fn group_ports(&self, now: Instant, group: Ipv4Addr) -> Option<Option<PortMask>> {
        if self.at != Some(now) {
            return None;
        }
        self.groups
            .iter()
            .find(|(g, _)| *g == group)
            .map(|&(_, ports)| ports)
    }

    /// Remembers the ports of `group`'s members at `now`.
    pub fn insert_group(&mut self, now: Instant, group: Ipv4Addr, ports: Option<PortMask>) {
        self.keep_only(now);
        if self.groups.len() < MAX_ENTRIES {
            self.groups.push((group, ports));
        }
    }

    /// Forgets the entries of any other instant.
    fn keep_only(&mut self, now: Instant) {
        if self.at != Some(now) {
            self.clear();
            self.at = Some(now);
        }
    }

    /// Forgets every entry (a table changed).
    pub fn clear(&mut self) {
        self.entries.clear();
        self.groups.clear();
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
            port: 3,
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
    fn group_ports_hold_for_their_instant_until_cleared() {
        let now = Instant::now();
        let group = Ipv4Addr::new(239, 77, 0, 7);
        let mut heads = ResultHeads::default();
        assert_eq!(heads.group_ports(now, group), None);
        heads.insert_group(now, group, Some(PortMask(0b101)));
        heads.insert_group(now, Ipv4Addr::new(239, 77, 0, 8), None);
        assert_eq!(heads.group_ports(now, group), Some(Some(PortMask(0b101))));
        assert_eq!(
            heads.group_ports(now, Ipv4Addr::new(239, 77, 0, 8)),
            Some(None),
            "a group with a member's port unknown is remembered as such"
        );
        let later = now + Duration::from_micros(1);
        assert_eq!(heads.group_ports(later, group), None);
        heads.insert(
            later,
            SocketAddrV4::new(group, 1),
            8,
            ResultHead {
                port: 0,
                bytes: [0; OUTER_HEADERS_LEN],
            },
        );
        assert_eq!(
            heads.group_ports(later, group),
            None,
            "the old instant's groups are gone"
        );
        heads.insert_group(later, group, Some(PortMask(1)));
        heads.clear();
        assert_eq!(heads.group_ports(later, group), None);
    }
}

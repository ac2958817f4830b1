//! The job description file read by the P4 configuration generator.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::str::FromStr;

use packet_format::{TOFINO_MAX_WORKERS, TOFINO_SLOTS};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{P4ConfigError, Target};
use crate::core::JobSpec;

/// An Ethernet address, written `02:00:00:00:00:01` in job files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// The address as a 48-bit integer (for `bfrt_python` fields).
    pub fn as_u64(self) -> u64 {
        self.0.iter().fold(0, |acc, b| (acc << 8) | u64::from(*b))
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

impl FromStr for MacAddr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut out = [0u8; 6];
        let mut parts = s.split(':');
        for byte in out.iter_mut() {
            let part = parts
                .next()
                .ok_or_else(|| format!("bad MAC address {s:?}"))?;
            if part.len() != 2 {
                return Err(format!("bad MAC address {s:?}"));
            }
            *byte = u8::from_str_radix(part, 16).map_err(|_| format!("bad MAC address {s:?}"))?;
        }
        if parts.next().is_some() {
            return Err(format!("bad MAC address {s:?}"));
        }
        Ok(MacAddr(out))
    }
}

impl Serialize for MacAddr {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for MacAddr {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// The switch's data-plane addresses (what workers send to and ARP for).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SwitchAddr {
    /// IPv4 address the P4 program answers ARP for and sends results from.
    pub ip: Ipv4Addr,
    /// Ethernet address of the switch's data-plane ports.
    pub mac: MacAddr,
}

/// One rank of a job (its index in [`JobEntry::ranks`] is the rank).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RankEntry {
    /// Worker's IPv4 address.
    pub ip: Ipv4Addr,
    /// Worker's Ethernet address.
    pub mac: MacAddr,
    /// Worker's UDP source port (results are sent back to it).
    pub udp_port: u16,
    /// Switch port (device port) the worker is attached to.
    pub switch_port: u16,
}

/// One job: its id, key, slot lease and ranks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobEntry {
    /// Job id carried in every packet.
    pub id: u16,
    /// Per-job key carried in every packet.
    pub key: u32,
    /// First slot of the lease.
    pub slot_base: u16,
    /// Number of slots leased.
    pub slot_count: u16,
    /// Ranks in order (index = rank).
    pub ranks: Vec<RankEntry>,
}

/// A job description file: the switch and its jobs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobFile {
    /// The switch's data-plane addresses.
    pub switch: SwitchAddr,
    /// Jobs to install.
    pub jobs: Vec<JobEntry>,
}

/// Where a worker's IP lives: its MAC and the switch port it hangs off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostEntry {
    /// Worker's Ethernet address.
    pub mac: MacAddr,
    /// Switch (device) port.
    pub port: u16,
}

/// IP -> (MAC, switch port) of every worker host, which `JobSpec` (addresses
/// only) does not carry but table entries and multicast nodes need.
pub type HostTable = BTreeMap<Ipv4Addr, HostEntry>;

/// One line of a host file (`switch-emu controller --hosts`): a worker
/// host's IPv4 address, MAC and switch port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostFileEntry {
    /// Worker's IPv4 address (the source of its aggregation packets).
    pub ip: Ipv4Addr,
    /// Worker's Ethernet address.
    pub mac: MacAddr,
    /// Switch (device) port the worker hangs off.
    pub port: u16,
}

/// Parses a host file: a JSON array of [`HostFileEntry`]. Each IP may
/// appear once, and ports must fit the 9-bit port fields of the programs.
pub fn hosts_from_json(text: &str) -> Result<HostTable, P4ConfigError> {
    let entries: Vec<HostFileEntry> = serde_json::from_str(text)?;
    let mut hosts = HostTable::new();
    for e in entries {
        if e.port > MAX_PORT {
            return Err(P4ConfigError::Invalid(format!(
                "host {}: switch port {} > {MAX_PORT}",
                e.ip, e.port
            )));
        }
        let entry = HostEntry {
            mac: e.mac,
            port: e.port,
        };
        if hosts.insert(e.ip, entry).is_some() {
            return Err(P4ConfigError::Invalid(format!(
                "host {} appears twice",
                e.ip
            )));
        }
    }
    Ok(hosts)
}

/// Largest device port a v1model / TNA port field (9 bits) can hold.
const MAX_PORT: u16 = 511;

impl JobEntry {
    /// The core's view of the job (members by rank).
    pub fn spec(&self) -> JobSpec {
        JobSpec {
            id: self.id,
            key: self.key,
            slot_base: self.slot_base,
            slot_count: self.slot_count,
            world: self.ranks.len() as u16,
            members: self
                .ranks
                .iter()
                .map(|r| SocketAddrV4::new(r.ip, r.udp_port))
                .collect(),
        }
    }
}

impl JobFile {
    /// Every host named by a rank, checked to have one MAC and port per IP.
    pub fn hosts(&self) -> Result<HostTable, P4ConfigError> {
        let mut hosts = HostTable::new();
        for job in &self.jobs {
            for rank in &job.ranks {
                let entry = HostEntry {
                    mac: rank.mac,
                    port: rank.switch_port,
                };
                if let Some(known) = hosts.insert(rank.ip, entry) {
                    if known != entry {
                        return Err(P4ConfigError::Invalid(format!(
                            "host {} appears with two MAC/port pairs",
                            rank.ip
                        )));
                    }
                }
            }
        }
        Ok(hosts)
    }

    /// Checks that every job fits the P4 program on `target`.
    pub fn validate(&self, target: Target) -> Result<(), P4ConfigError> {
        self.hosts()?;
        let mut ids = BTreeSet::new();
        let mut leases: Vec<(u16, u16, u16)> = Vec::new();
        for job in &self.jobs {
            let bad = |why: String| Err(P4ConfigError::Invalid(format!("job {}: {why}", job.id)));
            if !ids.insert(job.id) {
                return bad("job id used twice".into());
            }
            if job.id == u16::MAX {
                return bad("job id 65535 has no multicast group (group = id + 1)".into());
            }
            spec_fits(&job.spec()).or_else(bad)?;
            let mut members = BTreeSet::new();
            for (rank, r) in job.ranks.iter().enumerate() {
                if !members.insert((r.ip, r.udp_port)) {
                    return bad(format!(
                        "rank {rank} repeats address {}:{}",
                        r.ip, r.udp_port
                    ));
                }
                if r.switch_port > MAX_PORT {
                    return bad(format!(
                        "rank {rank}: switch port {} > {MAX_PORT}",
                        r.switch_port
                    ));
                }
            }
            if target == Target::Tofino {
                // Registers are per pipe: every rank of a job must reach the
                // same pipe's ingress (device port bits 8:7).
                let pipes: BTreeSet<u16> = job.ranks.iter().map(|r| r.switch_port >> 7).collect();
                if pipes.len() > 1 {
                    return bad(format!("ranks sit on several Tofino pipes {pipes:?}"));
                }
            }
            let end = job.slot_base + job.slot_count;
            for &(other, base, other_end) in &leases {
                if job.slot_base < other_end && base < end {
                    return bad(format!("lease overlaps job {other}'s"));
                }
            }
            leases.push((job.id, job.slot_base, end));
        }
        Ok(())
    }
}

/// Checks one job against the P4 program's sizes (shared with the live target).
pub(crate) fn spec_fits(spec: &JobSpec) -> Result<(), String> {
    let world = spec.members.len();
    if world == 0 || world > usize::from(TOFINO_MAX_WORKERS) {
        return Err(format!(
            "{world} ranks; the program takes 1..={TOFINO_MAX_WORKERS}"
        ));
    }
    if usize::from(spec.world) != world {
        return Err(format!("world {} but {world} members", spec.world));
    }
    if spec.slot_count == 0 {
        return Err("empty slot lease".into());
    }
    if u32::from(spec.slot_base) + u32::from(spec.slot_count) > u32::from(TOFINO_SLOTS) {
        return Err(format!(
            "lease {}+{} exceeds the {TOFINO_SLOTS} slots of the program",
            spec.slot_base, spec.slot_count
        ));
    }
    Ok(())
}

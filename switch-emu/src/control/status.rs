//! The status document (the JSON of `Reply::Status`) and its rendering as
//! the human table of `switch-emu status`. Times are seconds before the
//! moment the status was taken, so the document needs no shared clock.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::dataplane::CounterSet;

/// Everything `switch-emu status` shows.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StatusReport {
    /// The limits the switch runs with.
    pub config: ConfigView,
    /// Slot pool occupancy.
    pub lease: PoolView,
    /// Jobs whose every rank has joined (installed on the dataplane).
    pub jobs: Vec<JobView>,
    /// Jobs still gathering joins.
    pub pending: Vec<PendingView>,
    /// Switch-wide dataplane counters (drops per reason), if the target keeps them.
    pub counters: Option<CounterSet>,
    /// Control-plane counters (joins, jobs started, failed, expired...).
    pub control: BTreeMap<String, u64>,
    /// Recently ended jobs, newest first.
    pub ended: Vec<EndedView>,
    /// Counters of the driver (datagrams, injected loss, send errors...),
    /// filled in by the driver that answers the request.
    #[serde(default)]
    pub driver: BTreeMap<String, u64>,
}

/// Limits of the switch.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ConfigView {
    /// Slots in the pool.
    pub slots: u16,
    /// Largest world size.
    pub max_workers: u16,
    /// Largest elements per packet.
    pub max_elements_per_packet: u16,
    /// Largest lease of one job.
    pub job_quota: u16,
    /// Silence after which a job with waiting slots expires.
    pub worker_timeout_s: f64,
    /// Time a job may take to gather all its joins.
    pub join_timeout_s: f64,
}

/// Slot pool occupancy.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PoolView {
    /// Slots in the pool.
    pub slots: u16,
    /// Free slots.
    pub free: u32,
    /// Largest lease grantable now.
    pub largest_free: u16,
    /// Free ranges, ascending.
    pub free_ranges: Vec<RangeView>,
}

/// A slot range.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RangeView {
    /// First slot.
    pub base: u16,
    /// Number of slots.
    pub count: u16,
}

/// A running job.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct JobView {
    /// Name given by the workers.
    pub name: String,
    /// Job id carried in packets.
    pub id: u16,
    /// World size.
    pub world: u16,
    /// Window (slots leased).
    pub window: u16,
    /// Elements per packet.
    pub elements_per_packet: u16,
    /// Seconds since the job was installed.
    pub age_s: f64,
    /// The job's slot range.
    pub lease: RangeView,
    /// One entry per rank.
    pub members: Vec<MemberView>,
    /// Rounds waiting for contributions.
    pub incomplete_slots: Vec<SlotStatus>,
    /// The job's dataplane counters, if the target keeps them.
    pub counters: Option<CounterSet>,
    /// The multicast group its results go to (`None`: unicast to each member).
    #[serde(default)]
    pub result_group: Option<String>,
}

/// A rank of a running job.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MemberView {
    /// Rank.
    pub rank: u16,
    /// Registered data address.
    pub address: String,
    /// Whether the rank has sent `leave`.
    pub left: bool,
    /// Seconds since the switch last heard from the rank (`None`: never, or unknown).
    pub last_heard_ago_s: Option<f64>,
}

/// An incomplete round.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SlotStatus {
    /// Slot index.
    pub slot: u16,
    /// Set (0 or 1).
    pub set: u8,
    /// Sequence number of the round.
    pub seq: u32,
    /// Ranks whose contribution is in.
    pub contributed: Vec<u16>,
    /// Ranks the round waits for.
    pub missing: Vec<u16>,
    /// Seconds since the round's first contribution.
    pub age_s: f64,
}

/// A job gathering joins.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PendingView {
    /// Name.
    pub name: String,
    /// World size.
    pub world: u16,
    /// Window requested.
    pub window: u16,
    /// Elements per packet requested.
    pub elements_per_packet: u16,
    /// Ranks that have joined.
    pub joined: Vec<u16>,
    /// Ranks not yet joined.
    pub missing: Vec<u16>,
    /// Seconds since the first join.
    pub waiting_s: f64,
    /// Seconds until the join times out.
    pub timeout_in_s: f64,
}

/// A job that ended.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EndedView {
    /// Name.
    pub name: String,
    /// Job id it had (`None` if it never started).
    pub id: Option<u16>,
    /// `completed` (every rank left), `failed` (disconnect, join timeout,
    /// pool exhausted) or `expired` (silence).
    pub outcome: String,
    /// Why, for the user.
    pub reason: String,
    /// Ranks at fault, where known.
    pub ranks: Vec<u16>,
    /// Seconds since it ended.
    pub ago_s: f64,
}

/// Most incomplete slots listed per job in the table (the JSON has all).
const TABLE_SLOTS: usize = 16;

fn ranks(list: &[u16]) -> String {
    if list.is_empty() {
        return "-".into();
    }
    list.iter()
        .map(u16::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

fn counters_line(out: &mut String, indent: &str, set: &CounterSet) {
    let totals: Vec<String> = set.totals.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let _ = writeln!(out, "{indent}counters: {}", totals.join(" "));
    let drops: Vec<String> = set
        .drops
        .iter()
        .filter(|(_, &v)| v > 0)
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let drops = if drops.is_empty() {
        "none".to_string()
    } else {
        drops.join(" ")
    };
    let _ = writeln!(out, "{indent}drops: {drops}");
}

impl StatusReport {
    /// The human table of `switch-emu status` (and of the counters the
    /// server prints on exit and on SIGUSR1).
    pub fn render(&self) -> String {
        let mut out = String::new();
        let c = &self.config;
        let _ = writeln!(
            out,
            "switch: {} slots ({} free, largest free range {}), max {} workers, max {} elements/packet, job quota {} slots, worker timeout {:.1}s",
            c.slots, self.lease.free, self.lease.largest_free, c.max_workers,
            c.max_elements_per_packet, c.job_quota, c.worker_timeout_s
        );
        let _ = writeln!(out, "\njobs ({}):", self.jobs.len());
        for job in &self.jobs {
            let _ = writeln!(
                out,
                "  {} id={} world={} elements={} age={:.1}s",
                job.name, job.id, job.world, job.elements_per_packet, job.age_s
            );
            let retx = job
                .counters
                .as_ref()
                .and_then(|c| c.totals.get("retransmissions"))
                .map_or("-".to_string(), u64::to_string);
            let _ = writeln!(
                out,
                "    slots leased: {} ({}..{}), in flight: {}, retransmissions: {}, results to {}",
                job.lease.count,
                job.lease.base,
                u32::from(job.lease.base) + u32::from(job.lease.count),
                job.incomplete_slots.len(),
                retx,
                job.result_group.as_deref().unwrap_or("each member")
            );
            let _ = writeln!(
                out,
                "    {:>5}  {:<22} {:>12}  left",
                "rank", "address", "last heard"
            );
            for m in &job.members {
                let heard = m
                    .last_heard_ago_s
                    .map_or("never".to_string(), |s| format!("{s:.3}s ago"));
                let _ = writeln!(
                    out,
                    "    {:>5}  {:<22} {:>12}  {}",
                    m.rank,
                    m.address,
                    heard,
                    if m.left { "yes" } else { "no" }
                );
            }
            if job.incomplete_slots.is_empty() {
                let _ = writeln!(out, "    incomplete slots: none");
            } else {
                let _ = writeln!(out, "    incomplete slots: {}", job.incomplete_slots.len());
                let _ = writeln!(
                    out,
                    "    {:>6} {:>3} {:>10}  {:>8}  {:<16} contributed",
                    "slot", "set", "seq", "waiting", "missing"
                );
                for s in job.incomplete_slots.iter().take(TABLE_SLOTS) {
                    let _ = writeln!(
                        out,
                        "    {:>6} {:>3} {:>10}  {:>7.3}s  {:<16} {}",
                        s.slot,
                        s.set,
                        s.seq,
                        s.age_s,
                        ranks(&s.missing),
                        ranks(&s.contributed)
                    );
                }
                if job.incomplete_slots.len() > TABLE_SLOTS {
                    let _ = writeln!(
                        out,
                        "    ... {} more (see --json)",
                        job.incomplete_slots.len() - TABLE_SLOTS
                    );
                }
            }
            if let Some(counters) = &job.counters {
                counters_line(&mut out, "    ", counters);
            }
        }
        if !self.pending.is_empty() {
            let _ = writeln!(out, "\npending joins ({}):", self.pending.len());
            for p in &self.pending {
                let _ = writeln!(
                    out,
                    "  {} world={} joined={} missing={} waiting {:.1}s (times out in {:.1}s)",
                    p.name,
                    p.world,
                    ranks(&p.joined),
                    ranks(&p.missing),
                    p.waiting_s,
                    p.timeout_in_s
                );
            }
        }
        if let Some(counters) = &self.counters {
            let _ = writeln!(out, "\ndataplane counters:");
            counters_line(&mut out, "  ", counters);
        }
        if !self.driver.is_empty() {
            let line: Vec<String> = self
                .driver
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            let _ = writeln!(out, "driver: {}", line.join(" "));
        }
        let line: Vec<String> = self
            .control
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let _ = writeln!(out, "control: {}", line.join(" "));
        if !self.ended.is_empty() {
            let _ = writeln!(out, "\nrecently ended jobs:");
            for e in &self.ended {
                let id = e.id.map_or("-".to_string(), |id| id.to_string());
                let _ = writeln!(
                    out,
                    "  {} id={} {} {:.1}s ago: {} (ranks {})",
                    e.name,
                    id,
                    e.outcome,
                    e.ago_s,
                    e.reason,
                    ranks(&e.ranks)
                );
            }
        }
        out
    }
}

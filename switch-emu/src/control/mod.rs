//! The job control plane: joins, leases, expiry and status, as a sans-IO
//! state machine. A driver feeds it requests, disconnects and time, and
//! sends the replies it returns; it owns no socket or clock.
//!
//! # Protocol
//! One TCP connection per worker to the switch's control port (48865 by
//! default), carrying newline-delimited JSON ([`packet_format::control`]),
//! one message a line. Tools open a connection, send one request and read
//! one reply.
//!
//! * `{"op":"join","job":NAME,"rank":R,"world":N,"data_addr":"IP:PORT","window":W,"elements_per_packet":E}`
//!   — checked at once; a refusal is an immediate `{"reply":"error",...}`:
//!   - `bad_request`: the connection already belongs to a job, the name is
//!     empty or longer than 128 bytes, or the address is unspecified;
//!   - `limit_exceeded`: world is 0 or above `max_workers`, window is 0 or
//!     above the per-job quota, elements per packet 0 or above the switch's limit;
//!   - `rank_out_of_range`: rank >= world;
//!   - `address_in_use`: another worker of any pending or running job uses `data_addr`;
//!   - `parameters_differ`: world, window or elements differ from the job's first joiner;
//!   - `rank_taken`: another connection holds this rank, or a job of this
//!     name is running already;
//!   - `pool_exhausted`: no free slot range of `window` slots exists now.
//!
//!   There is no queue: a join that cannot be served gets its error at once.
//!   Otherwise the join waits, with no reply, until `world` ranks have joined.
//!   Then the switch leases `window` contiguous slots, draws a random 32-bit
//!   key and a free job id, installs the job on the dataplane and sends
//!   `{"reply":"joined",...}` ([`packet_format::control::JobParams`]) to every rank.
//!   With [`ControlConfig::result_groups`] the reply names the job's
//!   multicast group (`result_group`, see [`result_group()`]), which every
//!   rank joins before it sends.
//!   If the pool has meanwhile run out (another job took the space), every
//!   rank gets `pool_exhausted` instead. A job whose ranks have not all
//!   joined within `join_timeout` fails: every joined rank gets `job_failed`.
//! * `{"op":"leave"}` — answered with `{"reply":"left"}`. Before the job
//!   started it withdraws the join (the rank is free again). In a running
//!   job it marks the rank done: the job stays installed (so that a peer can
//!   still fetch a lost result by retransmitting) until every rank has left;
//!   then it is removed and its lease reclaimed. The connection may join again.
//! * `{"op":"status"}` — answered with `{"reply":"status",...}`, a
//!   [`StatusReport`] (the job keys are never shown).
//!
//! Membership is the connection: when a member of a running job
//! disconnects without `leave`, the job is expired: it is removed from the
//! dataplane, its lease reclaimed, and every other connected member gets
//! `{"reply":"job_failed","reason":...,"ranks":[R]}`. The same happens when
//! a job has a round waiting for a rank that has not been heard for
//! `worker_timeout` (silence expiry; needs [`Dataplane::activity`]).
//! Ended jobs (name, outcome, reason, ranks, time) are kept for `status`;
//! the outcome is `completed` (every rank left), `expired` (a member vanished
//! or went silent while running) or `failed` (it never started).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use packet_format::control::{
    ControlError, ControlErrorKind, JobParams, JoinRequest, Reply, Request,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::core::JobSpec;
use crate::dataplane::{Dataplane, DataplaneError};
use crate::metrics::LeaseFigures;

pub mod lease;
pub mod result_group;
pub mod status;
#[cfg(test)]
mod tests;

use lease::{Lease, LeasePool};
pub use result_group::result_group;
use status::{
    ConfigView, EndedView, JobView, MemberView, PendingView, PoolView, RangeView, SlotStatus,
    StatusReport,
};

/// Identifies a control connection; chosen by the driver, never reused.
pub type ConnId = u64;

/// Replies to send: (connection, message).
pub type Outbox = Vec<(ConnId, Reply)>;

/// Longest job name accepted.
pub const MAX_NAME_LEN: usize = 128;

/// Settings of the control plane.
#[derive(Debug, Clone)]
pub struct ControlConfig {
    /// Slots in the switch's pool (the lease space).
    pub slots: u16,
    /// Largest world size.
    pub max_workers: u16,
    /// Largest elements per packet.
    pub max_elements_per_packet: u16,
    /// Largest lease (window) one job may hold.
    pub job_quota: u16,
    /// Time a job may take to gather all its joins.
    pub join_timeout: Duration,
    /// Silence after which a job with waiting rounds expires.
    pub worker_timeout: Duration,
    /// The data-plane address told to workers in [`JobParams`].
    pub switch_data_addr: SocketAddrV4,
    /// Seed for keys and nothing else; `None` draws from the OS (use a seed
    /// only in tests: keys must be unguessable).
    pub key_seed: Option<u64>,
    /// Ended jobs kept for status.
    pub history: usize,
    /// First address of the multicast groups results are sent to (job `id`
    /// gets `result_groups + id`, port of `switch_data_addr`); `None`:
    /// results go by unicast to each member. See [`result_group()`].
    pub result_groups: Option<Ipv4Addr>,
}

impl Default for ControlConfig {
    fn default() -> Self {
        ControlConfig {
            slots: packet_format::TOFINO_SLOTS,
            max_workers: packet_format::TOFINO_MAX_WORKERS,
            max_elements_per_packet: packet_format::TOFINO_ELEMENTS_PER_PACKET,
            job_quota: 1024,
            join_timeout: Duration::from_secs(30),
            worker_timeout: Duration::from_secs(3),
            switch_data_addr: SocketAddrV4::new(Ipv4Addr::LOCALHOST, packet_format::UDP_PORT),
            key_seed: None,
            history: 32,
            result_groups: None,
        }
    }
}

/// Why a [`ControlConfig`] cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ControlConfigError {
    /// The pool has no slots.
    #[error("the slot pool is empty")]
    NoSlots,
    /// The quota is 0.
    #[error("the per-job quota must be at least 1 slot")]
    NoQuota,
    /// A timeout is zero.
    #[error("{0} must be positive")]
    ZeroTimeout(&'static str),
    /// The base of the result groups cannot give every job a multicast group.
    #[error("result group base {0} must be a multicast address a.b.0.0 outside 224.0.0.0/16 (the job id fills the last 16 bits), e.g. 239.72.0.0")]
    ResultGroups(Ipv4Addr),
}

#[derive(Debug)]
struct Pending {
    world: u16,
    window: u16,
    elements: u16,
    /// rank -> (connection, address)
    joined: BTreeMap<u16, (ConnId, SocketAddrV4)>,
    first_at: Instant,
    deadline: Instant,
}

#[derive(Debug)]
struct Member {
    addr: SocketAddrV4,
    /// `None` once the rank has left.
    conn: Option<ConnId>,
}

#[derive(Debug)]
struct Running {
    name: String,
    id: u16,
    window: u16,
    elements: u16,
    lease: Lease,
    members: Vec<Member>,
    started_at: Instant,
    next_check: Instant,
}

#[derive(Debug, Clone)]
enum Membership {
    Pending { name: String, rank: u16 },
    Running { id: u16, rank: u16 },
}

#[derive(Debug)]
struct Ended {
    name: String,
    id: Option<u16>,
    outcome: &'static str,
    reason: String,
    ranks: Vec<u16>,
    at: Instant,
}

/// The control plane (see the module docs for the protocol).
#[derive(Debug)]
pub struct Controller {
    config: ControlConfig,
    pool: LeasePool,
    pending: BTreeMap<String, Pending>,
    running: BTreeMap<u16, Running>,
    names: HashMap<String, u16>,
    conns: HashMap<ConnId, Membership>,
    addrs: HashMap<SocketAddrV4, ConnId>,
    rng: StdRng,
    next_id: u16,
    ended: VecDeque<Ended>,
    counters: BTreeMap<&'static str, u64>,
}

fn error(kind: ControlErrorKind, message: String) -> Reply {
    Reply::Error(ControlError { kind, message })
}

impl Controller {
    /// A control plane with every slot free and no jobs.
    pub fn new(config: ControlConfig) -> Result<Self, ControlConfigError> {
        if config.slots == 0 {
            return Err(ControlConfigError::NoSlots);
        }
        if config.job_quota == 0 {
            return Err(ControlConfigError::NoQuota);
        }
        if config.join_timeout.is_zero() {
            return Err(ControlConfigError::ZeroTimeout("join timeout"));
        }
        if config.worker_timeout.is_zero() {
            return Err(ControlConfigError::ZeroTimeout("worker timeout"));
        }
        if let Some(base) = config.result_groups {
            result_group::check_base(base)?;
        }
        let rng = match config.key_seed {
            Some(seed) => StdRng::seed_from_u64(seed),
            None => StdRng::from_entropy(),
        };
        let counters = [
            "joins",
            "join_errors",
            "jobs_started",
            "jobs_completed",
            "jobs_failed",
            "jobs_expired",
            "join_timeouts",
        ]
        .into_iter()
        .map(|name| (name, 0))
        .collect();
        Ok(Controller {
            pool: LeasePool::new(config.slots),
            config,
            pending: BTreeMap::new(),
            running: BTreeMap::new(),
            names: HashMap::new(),
            conns: HashMap::new(),
            addrs: HashMap::new(),
            rng,
            next_id: 1,
            ended: VecDeque::new(),
            counters,
        })
    }

    /// The settings.
    pub fn config(&self) -> &ControlConfig {
        &self.config
    }

    /// Number of running jobs.
    pub fn running_jobs(&self) -> usize {
        self.running.len()
    }

    /// Pool size, leased slots and jobs ended badly, for the metrics.
    pub fn lease_figures(&self) -> LeaseFigures {
        let count = |name| self.counters.get(name).copied().unwrap_or(0);
        LeaseFigures {
            pool_slots: u64::from(self.pool.slots()),
            leased_slots: u64::from(self.pool.slots()) - u64::from(self.pool.free_slots()),
            expired_jobs: count("jobs_failed") + count("jobs_expired"),
        }
    }

    /// The name of running job `id`.
    pub fn job_name(&self, id: u16) -> Option<&str> {
        self.running.get(&id).map(|job| job.name.as_str())
    }

    fn bump(&mut self, counter: &'static str) {
        *self.counters.entry(counter).or_default() += 1;
    }

    /// Handles one request from connection `conn`.
    pub fn handle_request(
        &mut self,
        now: Instant,
        conn: ConnId,
        request: Request,
        dp: &mut dyn Dataplane,
    ) -> Outbox {
        match request {
            Request::Join(join) => match self.join(now, conn, join, dp) {
                Ok(outbox) => outbox,
                Err(reply) => {
                    self.bump("join_errors");
                    vec![(conn, reply)]
                }
            },
            Request::Leave => self.leave(now, conn, dp),
            Request::Status => {
                let report = self.status(now, &*dp);
                let value = serde_json::to_value(report).unwrap_or_default();
                vec![(conn, Reply::Status(value))]
            }
        }
    }

    fn check_join(&self, conn: ConnId, j: &JoinRequest) -> Result<(), Reply> {
        use ControlErrorKind::*;
        let c = &self.config;
        if let Some(m) = self.conns.get(&conn) {
            let job = match m {
                Membership::Pending { name, .. } => name.clone(),
                Membership::Running { id, .. } => self.running[id].name.clone(),
            };
            return Err(error(
                BadRequest,
                format!(
                    "this connection already joined job '{job}'; use one connection per worker"
                ),
            ));
        }
        if j.job.is_empty() || j.job.len() > MAX_NAME_LEN {
            return Err(error(
                BadRequest,
                format!("job name must be 1..={MAX_NAME_LEN} bytes"),
            ));
        }
        if j.data_addr.ip().is_unspecified() || j.data_addr.port() == 0 {
            return Err(error(
                BadRequest,
                format!(
                    "data address {} is not a usable unicast address",
                    j.data_addr
                ),
            ));
        }
        if j.world == 0 || j.world > c.max_workers {
            return Err(error(
                LimitExceeded,
                format!("world size {} is outside 1..={}", j.world, c.max_workers),
            ));
        }
        if j.rank >= j.world {
            return Err(error(
                RankOutOfRange,
                format!("rank {} is not below the world size {}", j.rank, j.world),
            ));
        }
        let quota = c.job_quota.min(c.slots);
        if j.window == 0 || j.window > quota {
            return Err(error(
                LimitExceeded,
                format!(
                    "window {} is outside 1..={quota} (the per-job slot quota)",
                    j.window
                ),
            ));
        }
        if j.elements_per_packet == 0 || j.elements_per_packet > c.max_elements_per_packet {
            return Err(error(
                LimitExceeded,
                format!(
                    "{} elements per packet is outside 1..={}",
                    j.elements_per_packet, c.max_elements_per_packet
                ),
            ));
        }
        if let Some(id) = self.names.get(&j.job) {
            return Err(error(
                RankTaken,
                format!("job '{}' is running (id {id}); every rank is taken", j.job),
            ));
        }
        if self.addrs.contains_key(&j.data_addr) {
            return Err(error(
                AddressInUse,
                format!("data address {} is used by another worker", j.data_addr),
            ));
        }
        if let Some(p) = self.pending.get(&j.job) {
            if (p.world, p.window, p.elements) != (j.world, j.window, j.elements_per_packet) {
                return Err(error(
                    ParametersDiffer,
                    format!(
                        "job '{}' was joined with world {} window {} elements {}; this join asks world {} window {} elements {}",
                        j.job, p.world, p.window, p.elements, j.world, j.window, j.elements_per_packet
                    ),
                ));
            }
            if p.joined.contains_key(&j.rank) {
                return Err(error(
                    RankTaken,
                    format!(
                        "rank {} of job '{}' is held by another connection",
                        j.rank, j.job
                    ),
                ));
            }
        } else if self.pool.largest_free() < j.window {
            return Err(error(
                PoolExhausted,
                format!(
                    "no free range of {} slots (largest free range {}, {} free of {})",
                    j.window,
                    self.pool.largest_free(),
                    self.pool.free_slots(),
                    self.config.slots
                ),
            ));
        }
        Ok(())
    }

    fn join(
        &mut self,
        now: Instant,
        conn: ConnId,
        j: JoinRequest,
        dp: &mut dyn Dataplane,
    ) -> Result<Outbox, Reply> {
        self.check_join(conn, &j)?;
        self.bump("joins");
        let timeout = self.config.join_timeout;
        let p = self
            .pending
            .entry(j.job.clone())
            .or_insert_with(|| Pending {
                world: j.world,
                window: j.window,
                elements: j.elements_per_packet,
                joined: BTreeMap::new(),
                first_at: now,
                deadline: now + timeout,
            });
        p.joined.insert(j.rank, (conn, j.data_addr));
        let complete = p.joined.len() == usize::from(p.world);
        self.addrs.insert(j.data_addr, conn);
        self.conns.insert(
            conn,
            Membership::Pending {
                name: j.job.clone(),
                rank: j.rank,
            },
        );
        if !complete {
            return Ok(Vec::new());
        }
        let p = self
            .pending
            .remove(&j.job)
            .expect("pending job just updated");
        Ok(self.start(now, j.job, p, dp))
    }

    /// Forgets a pending job's members (connections and addresses).
    fn forget_pending(&mut self, p: &Pending) {
        for (conn, addr) in p.joined.values() {
            self.conns.remove(conn);
            self.addrs.remove(addr);
        }
    }

    fn fail_pending(
        &mut self,
        now: Instant,
        name: String,
        p: Pending,
        kind: ControlErrorKind,
        reason: String,
    ) -> Outbox {
        self.forget_pending(&p);
        let joined: Vec<u16> = p.joined.keys().copied().collect();
        let missing: Vec<u16> = (0..p.world).filter(|r| !p.joined.contains_key(r)).collect();
        self.bump("jobs_failed");
        let outbox = p
            .joined
            .values()
            .map(|(conn, _)| (*conn, error(kind, reason.clone())))
            .collect();
        self.record(
            now,
            name,
            None,
            "failed",
            reason,
            if missing.is_empty() { joined } else { missing },
        );
        outbox
    }

    /// Where job `id`'s results go, if the driver multicasts them.
    fn result_group_of(&self, id: u16) -> Option<SocketAddrV4> {
        let port = self.config.switch_data_addr.port();
        self.config
            .result_groups
            .map(|base| SocketAddrV4::new(result_group(base, id), port))
    }

    fn free_id(&mut self) -> Option<u16> {
        for _ in 0..=u16::MAX as u32 {
            let id = self.next_id;
            self.next_id = self.next_id.wrapping_add(1);
            if !self.running.contains_key(&id) {
                return Some(id);
            }
        }
        None
    }

    fn start(&mut self, now: Instant, name: String, p: Pending, dp: &mut dyn Dataplane) -> Outbox {
        let Some(lease) = self.pool.allocate(p.window) else {
            let reason = format!(
                "job '{name}': every rank joined but no free range of {} slots is left (largest free range {})",
                p.window,
                self.pool.largest_free()
            );
            return self.fail_pending(now, name, p, ControlErrorKind::PoolExhausted, reason);
        };
        let Some(id) = self.free_id() else {
            self.pool.release(lease);
            let reason = "every job id is in use".to_string();
            return self.fail_pending(now, name, p, ControlErrorKind::LimitExceeded, reason);
        };
        let key: u32 = self.rng.gen();
        let spec = JobSpec {
            id,
            key,
            slot_base: lease.base,
            slot_count: lease.count,
            world: p.world,
            members: p.joined.values().map(|(_, addr)| *addr).collect(),
        };
        if let Err(e) = dp.install_job(&spec) {
            self.pool.release(lease);
            let kind = match e {
                DataplaneError::Rejected(_) => ControlErrorKind::LimitExceeded,
                DataplaneError::Target(_) => ControlErrorKind::JobFailed,
            };
            let reason = format!("job '{name}': {e}");
            return self.fail_pending(now, name, p, kind, reason);
        }
        let params = JobParams {
            job_id: id,
            key,
            world: p.world,
            slot_base: lease.base,
            window: lease.count,
            elements_per_packet: p.elements,
            switch_data_addr: self.config.switch_data_addr,
            result_group: self.result_group_of(id),
        };
        let mut outbox = Vec::with_capacity(p.joined.len());
        let mut members = Vec::with_capacity(p.joined.len());
        for (&rank, &(conn, addr)) in &p.joined {
            self.conns.insert(conn, Membership::Running { id, rank });
            outbox.push((conn, Reply::Joined(params)));
            members.push(Member {
                addr,
                conn: Some(conn),
            });
        }
        self.names.insert(name.clone(), id);
        self.running.insert(
            id,
            Running {
                name,
                id,
                window: p.window,
                elements: p.elements,
                lease,
                members,
                started_at: now,
                next_check: now + self.config.worker_timeout,
            },
        );
        self.bump("jobs_started");
        outbox
    }

    /// Removes a running job from the dataplane and the books, reclaims its lease.
    fn end_job(
        &mut self,
        now: Instant,
        id: u16,
        outcome: &'static str,
        reason: String,
        ranks: Vec<u16>,
        dp: &mut dyn Dataplane,
    ) -> Option<Running> {
        let job = self.running.remove(&id)?;
        // A removal the target fails leaves its entries behind; the lease is
        // still reclaimed since the next install resets the slots.
        let _ = dp.remove_job(id);
        let released = self.pool.release(job.lease);
        debug_assert!(released, "lease of job {id} was not held");
        self.names.remove(&job.name);
        for m in &job.members {
            self.addrs.remove(&m.addr);
            if let Some(conn) = m.conn {
                self.conns.remove(&conn);
            }
        }
        self.bump(match outcome {
            "completed" => "jobs_completed",
            "expired" => "jobs_expired",
            _ => "jobs_failed",
        });
        self.record(now, job.name.clone(), Some(id), outcome, reason, ranks);
        Some(job)
    }

    /// Ends a running job as failed or expired and tells its connected members.
    fn fail_job(
        &mut self,
        now: Instant,
        id: u16,
        outcome: &'static str,
        reason: String,
        ranks: Vec<u16>,
        dp: &mut dyn Dataplane,
    ) -> Outbox {
        let Some(job) = self.end_job(now, id, outcome, reason.clone(), ranks.clone(), dp) else {
            return Vec::new();
        };
        job.members
            .iter()
            .filter_map(|m| m.conn)
            .map(|conn| {
                (
                    conn,
                    Reply::JobFailed {
                        reason: reason.clone(),
                        ranks: ranks.clone(),
                    },
                )
            })
            .collect()
    }

    fn record(
        &mut self,
        now: Instant,
        name: String,
        id: Option<u16>,
        outcome: &'static str,
        reason: String,
        ranks: Vec<u16>,
    ) {
        self.ended.push_front(Ended {
            name,
            id,
            outcome,
            reason,
            ranks,
            at: now,
        });
        self.ended.truncate(self.config.history);
    }

    /// Withdraws a pending join (leave or disconnect before the job started).
    fn withdraw(&mut self, name: &str, rank: u16, conn: ConnId) {
        self.conns.remove(&conn);
        if let Some(p) = self.pending.get_mut(name) {
            if let Some((_, addr)) = p.joined.remove(&rank) {
                self.addrs.remove(&addr);
            }
            if p.joined.is_empty() {
                self.pending.remove(name);
            }
        }
    }

    fn leave(&mut self, now: Instant, conn: ConnId, dp: &mut dyn Dataplane) -> Outbox {
        match self.conns.get(&conn).cloned() {
            None => {}
            Some(Membership::Pending { name, rank }) => self.withdraw(&name, rank, conn),
            Some(Membership::Running { id, rank }) => {
                self.conns.remove(&conn);
                let job = self.running.get_mut(&id).expect("member of a running job");
                job.members[usize::from(rank)].conn = None;
                if job.members.iter().all(|m| m.conn.is_none()) {
                    let reason = "every rank left".to_string();
                    self.end_job(now, id, "completed", reason, Vec::new(), dp);
                }
            }
        }
        vec![(conn, Reply::Left)]
    }

    /// The connection `conn` closed. A member of a running job that had not
    /// left fails the job; a pending join is withdrawn.
    pub fn handle_disconnect(
        &mut self,
        now: Instant,
        conn: ConnId,
        dp: &mut dyn Dataplane,
    ) -> Outbox {
        match self.conns.get(&conn).cloned() {
            None => Vec::new(),
            Some(Membership::Pending { name, rank }) => {
                self.withdraw(&name, rank, conn);
                Vec::new()
            }
            Some(Membership::Running { id, rank }) => {
                let job = &self.running[&id];
                let reason = format!(
                    "job '{}': rank {rank} ({}) closed its control connection without leaving",
                    job.name,
                    job.members[usize::from(rank)].addr
                );
                // The disconnected member gets nothing: its connection is gone.
                self.conns.remove(&conn);
                if let Some(job) = self.running.get_mut(&id) {
                    job.members[usize::from(rank)].conn = None;
                }
                self.fail_job(now, id, "expired", reason, vec![rank], dp)
            }
        }
    }

    /// The earliest time [`Controller::handle_timeout`] has work to do.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let pending = self.pending.values().map(|p| p.deadline);
        let running = self.running.values().map(|r| r.next_check);
        pending.chain(running).min()
    }

    /// Times out pending joins and expires silent jobs whose deadline has passed.
    pub fn handle_timeout(&mut self, now: Instant, dp: &mut dyn Dataplane) -> Outbox {
        let mut outbox = Vec::new();
        let late: Vec<String> = self
            .pending
            .iter()
            .filter(|(_, p)| p.deadline <= now)
            .map(|(name, _)| name.clone())
            .collect();
        for name in late {
            let p = self.pending.remove(&name).expect("listed above");
            let missing: Vec<u16> = (0..p.world).filter(|r| !p.joined.contains_key(r)).collect();
            let reason = format!(
                "job '{name}': only {} of {} ranks joined within {:.1}s; missing ranks {missing:?}",
                p.joined.len(),
                p.world,
                self.config.join_timeout.as_secs_f64()
            );
            self.bump("join_timeouts");
            outbox.extend(self.fail_pending(now, name, p, ControlErrorKind::JobFailed, reason));
        }
        let due: Vec<u16> = self
            .running
            .values()
            .filter(|r| r.next_check <= now)
            .map(|r| r.id)
            .collect();
        for id in due {
            match self.check_silence(now, id, &*dp) {
                Ok(next) => {
                    if let Some(job) = self.running.get_mut(&id) {
                        job.next_check = next;
                    }
                }
                Err((reason, ranks)) => {
                    outbox.extend(self.fail_job(now, id, "expired", reason, ranks, dp));
                }
            }
        }
        outbox
    }

    /// Either the next time the job could expire, or why it expires now.
    /// A job expires when a round has waited `worker_timeout` for a rank
    /// that has been silent (no packet with its address and key) for as
    /// long; a rank counts as heard when the job started.
    fn check_silence(
        &self,
        now: Instant,
        id: u16,
        dp: &dyn Dataplane,
    ) -> Result<Instant, (String, Vec<u16>)> {
        let timeout = self.config.worker_timeout;
        let job = &self.running[&id];
        let Some(activity) = dp.activity(id) else {
            return Ok(now + timeout);
        };
        let heard = |rank: u16| {
            activity
                .last_heard
                .get(usize::from(rank))
                .copied()
                .flatten()
                .map_or(job.started_at, |t| t.max(job.started_at))
        };
        let mut next = now + timeout;
        let mut silent: BTreeMap<u16, (Instant, usize)> = BTreeMap::new();
        for slot in &activity.incomplete {
            for &rank in &slot.missing {
                let expires = slot.since.max(heard(rank)) + timeout;
                if expires <= now {
                    silent.entry(rank).or_insert((heard(rank), 0)).1 += 1;
                } else {
                    next = next.min(expires);
                }
            }
        }
        if silent.is_empty() {
            return Ok(next);
        }
        let ranks: Vec<u16> = silent.keys().copied().collect();
        let detail: Vec<String> = silent
            .iter()
            .map(|(rank, (since, slots))| {
                format!(
                    "rank {rank} ({}) silent for {:.1}s, awaited by {slots} slot(s)",
                    job.members[usize::from(*rank)].addr,
                    now.saturating_duration_since(*since).as_secs_f64()
                )
            })
            .collect();
        let reason = format!(
            "job '{}' expired (worker timeout {:.1}s): {}",
            job.name,
            timeout.as_secs_f64(),
            detail.join("; ")
        );
        Err((reason, ranks))
    }

    /// The status document as of `now`.
    pub fn status(&self, now: Instant, dp: &dyn Dataplane) -> StatusReport {
        let ago = |t: Instant| now.saturating_duration_since(t).as_secs_f64();
        let c = &self.config;
        let jobs = self
            .running
            .values()
            .map(|job| {
                let activity = dp.activity(job.id);
                let members = job
                    .members
                    .iter()
                    .enumerate()
                    .map(|(rank, m)| MemberView {
                        rank: rank as u16,
                        address: m.addr.to_string(),
                        left: m.conn.is_none(),
                        last_heard_ago_s: activity
                            .as_ref()
                            .and_then(|a| a.last_heard.get(rank).copied().flatten())
                            .map(ago),
                    })
                    .collect();
                let incomplete_slots = activity
                    .as_ref()
                    .map(|a| {
                        a.incomplete
                            .iter()
                            .map(|s| SlotStatus {
                                slot: s.slot,
                                set: u8::from(s.set),
                                seq: s.seq,
                                contributed: (0..job.members.len() as u16)
                                    .filter(|r| s.contributed & (1u64 << r) != 0)
                                    .collect(),
                                missing: s.missing.clone(),
                                age_s: ago(s.since),
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                JobView {
                    name: job.name.clone(),
                    id: job.id,
                    world: job.members.len() as u16,
                    window: job.window,
                    elements_per_packet: job.elements,
                    age_s: ago(job.started_at),
                    lease: RangeView {
                        base: job.lease.base,
                        count: job.lease.count,
                    },
                    members,
                    incomplete_slots,
                    counters: activity.map(|a| a.counters),
                    result_group: self.result_group_of(job.id).map(|g| g.to_string()),
                }
            })
            .collect();
        let pending = self
            .pending
            .iter()
            .map(|(name, p)| PendingView {
                name: name.clone(),
                world: p.world,
                window: p.window,
                elements_per_packet: p.elements,
                joined: p.joined.keys().copied().collect(),
                missing: (0..p.world).filter(|r| !p.joined.contains_key(r)).collect(),
                waiting_s: ago(p.first_at),
                timeout_in_s: p.deadline.saturating_duration_since(now).as_secs_f64(),
            })
            .collect();
        StatusReport {
            config: ConfigView {
                slots: c.slots,
                max_workers: c.max_workers,
                max_elements_per_packet: c.max_elements_per_packet,
                job_quota: c.job_quota,
                worker_timeout_s: c.worker_timeout.as_secs_f64(),
                join_timeout_s: c.join_timeout.as_secs_f64(),
            },
            lease: PoolView {
                slots: self.pool.slots(),
                free: self.pool.free_slots(),
                largest_free: self.pool.largest_free(),
                free_ranges: self
                    .pool
                    .free_ranges()
                    .map(|l| RangeView {
                        base: l.base,
                        count: l.count,
                    })
                    .collect(),
            },
            jobs,
            pending,
            counters: dp.counters(),
            control: self
                .counters
                .iter()
                .map(|(k, v)| (k.to_string(), *v))
                .collect(),
            ended: self
                .ended
                .iter()
                .map(|e| EndedView {
                    name: e.name.clone(),
                    id: e.id,
                    outcome: e.outcome.to_string(),
                    reason: e.reason.clone(),
                    ranks: e.ranks.clone(),
                    ago_s: ago(e.at),
                })
                .collect(),
            driver: BTreeMap::new(),
        }
    }
}

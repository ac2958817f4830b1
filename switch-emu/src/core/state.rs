//! The switch core proper: jobs, admission, and the per-(slot, set)
//! aggregation state machine described in the module docs of [`super`].

use std::fmt;
use std::net::SocketAddrV4;
use std::time::Instant;

use packet_format::{Error as WireError, MsgType, Packet, Repr, NO_EXPONENT};

use super::{Config, ConfigError, Counters, DropReason, JobCounters, Verdict};

/// A job as the control plane installs it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct JobSpec {
    /// Job id carried in every packet.
    pub id: u16,
    /// Per-job key; packets with another key are dropped.
    pub key: u32,
    /// First slot of the lease.
    pub slot_base: u16,
    /// Number of slots leased, starting at `slot_base`.
    pub slot_count: u16,
    /// Number of workers; a round completes when all have contributed.
    pub world: u16,
    /// Registered address of each rank (index = rank).
    pub members: Vec<SocketAddrV4>,
}

impl JobSpec {
    /// Whether `slot` lies in this job's lease.
    pub fn leases(&self, slot: u16) -> bool {
        slot >= self.slot_base && slot - self.slot_base < self.slot_count
    }

    /// One past the last leased slot (may be 65536, hence `u32`).
    pub fn slot_end(&self) -> u32 {
        u32::from(self.slot_base) + u32::from(self.slot_count)
    }
}

/// Why a job cannot be installed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JobError {
    /// A job with this id is installed already.
    #[error("job {0} is already installed")]
    DuplicateId(u16),
    /// The world size is 0 or above the switch's `max_workers`.
    #[error("job {job}: world size {world} is outside 1..={max}")]
    World {
        /// Job id.
        job: u16,
        /// Requested world size.
        world: u16,
        /// The switch's `max_workers`.
        max: u16,
    },
    /// `members` does not hold one address per rank.
    #[error("job {job}: world size {world} but {members} member addresses")]
    Members {
        /// Job id.
        job: u16,
        /// Requested world size.
        world: u16,
        /// Number of addresses given.
        members: usize,
    },
    /// The lease is empty or reaches past the slot pool.
    #[error("job {job}: lease {base}+{count} is empty or outside the pool of {slots} slots")]
    Lease {
        /// Job id.
        job: u16,
        /// Requested first slot.
        base: u16,
        /// Requested slot count.
        count: u16,
        /// Slots in the pool.
        slots: u16,
    },
    /// The lease overlaps the lease of an installed job.
    #[error("job {job}: lease overlaps the lease of job {other}")]
    Overlap {
        /// Job id.
        job: u16,
        /// The installed job whose lease overlaps.
        other: u16,
    },
}

/// A round that has started but not completed: what a stalled job waits for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotView {
    /// Slot index.
    pub slot: u16,
    /// Set (`false` = 0, `true` = 1).
    pub set: bool,
    /// Sequence number of the round.
    pub seq: u32,
    /// Ranks whose contribution is in (bit = rank).
    pub contributed: u64,
    /// Ranks still missing, ascending.
    pub missing: Vec<u16>,
    /// When the round's first contribution arrived.
    pub since: Instant,
}

/// Read-only copy of one (slot, set) state, for tests and diagnostics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotState<'a> {
    /// False after a reset, until the first contribution.
    pub valid: bool,
    /// Ranks whose bit is set.
    pub bitmap: u64,
    /// Contributions accepted in this round.
    pub count: u16,
    /// Sequence number of the round.
    pub seq: u32,
    /// Element count of the round.
    pub elem_count: u16,
    /// Largest exponent contributed ([`NO_EXPONENT`] if none).
    pub max_exp: i16,
    /// When the round's first contribution arrived.
    pub first_at: Option<Instant>,
    /// The sums (`elem_count` elements, host order).
    pub sums: &'a [i32],
}

/// Per-(slot, set) registers other than the sums.
#[derive(Debug, Clone, Copy)]
struct Meta {
    bitmap: u64,
    seq: u32,
    count: u16,
    elem_count: u16,
    max_exp: i16,
    valid: bool,
    first_at: Option<Instant>,
}

impl Meta {
    const RESET: Meta = Meta {
        bitmap: 0,
        seq: 0,
        count: 0,
        elem_count: 0,
        max_exp: NO_EXPONENT,
        valid: false,
        first_at: None,
    };
}

/// The two sets of the slot pool. Sums live in one flat vector per set
/// (`stride` elements per slot) so that adding a payload is one tight loop.
struct Pool {
    stride: usize,
    meta: [Vec<Meta>; 2],
    sums: [Vec<i32>; 2],
}

/// Serial-number comparison (RFC 1982 style): `a` is after `b`.
fn serial_gt(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) > 0
}

impl Pool {
    fn new(config: &Config) -> Pool {
        let slots = usize::from(config.slots);
        let stride = usize::from(config.max_elements_per_packet);
        Pool {
            stride,
            meta: [vec![Meta::RESET; slots], vec![Meta::RESET; slots]],
            sums: [vec![0; slots * stride], vec![0; slots * stride]],
        }
    }

    fn reset(&mut self, slots: std::ops::Range<usize>) {
        for set in 0..2 {
            self.meta[set][slots.clone()].fill(Meta::RESET);
            self.sums[set][slots.start * self.stride..slots.end * self.stride].fill(0);
        }
    }

    fn state(&self, slot: usize, set: usize) -> SlotState<'_> {
        let m = &self.meta[set][slot];
        let start = slot * self.stride;
        SlotState {
            valid: m.valid,
            bitmap: m.bitmap,
            count: m.count,
            seq: m.seq,
            elem_count: m.elem_count,
            max_exp: m.max_exp,
            first_at: m.first_at,
            sums: &self.sums[set][start..start + usize::from(m.elem_count)],
        }
    }

    /// Step 3 of the rules: the contribution `repr` of an admitted worker.
    #[allow(clippy::too_many_arguments)]
    fn contribute(
        &mut self,
        now: Instant,
        src: SocketAddrV4,
        repr: &Repr,
        payload: &[[u8; 4]],
        world: u16,
        counters: &mut JobCounters,
        out: &mut Vec<u8>,
    ) -> Verdict {
        let set = usize::from(repr.set);
        let slot = usize::from(repr.slot);
        let bit = 1u64 << repr.rank;
        let start = slot * self.stride;
        let sums = &mut self.sums[set][start..start + self.stride];
        let st = &mut self.meta[set][slot];

        if st.bitmap & bit != 0 {
            // A retransmission: it changes no state.
            counters.retransmissions += 1;
            return if repr.seq != st.seq {
                Verdict::Drop(DropReason::StaleSequence)
            } else if st.count == world {
                write_result(out, repr, st, sums);
                Verdict::Unicast { to: src }
            } else {
                Verdict::Drop(DropReason::DuplicateIncomplete)
            };
        }

        let n = usize::from(repr.elem_count);
        if st.bitmap != 0 {
            // A complete round whose bit for this rank was cleared: the worker
            // has moved on, so this is a delayed copy and must not be added
            // (it would push count past world and corrupt the stored result).
            if repr.seq != st.seq || st.count >= world {
                return Verdict::Drop(DropReason::StaleSequence);
            }
            if repr.elem_count != st.elem_count {
                return Verdict::Drop(DropReason::LengthMismatch);
            }
            cpu_dispatch::words::add(&mut sums[..n], payload);
            st.max_exp = st.max_exp.max(repr.exponent);
            st.count += 1;
            st.bitmap |= bit;
        } else {
            // A stale copy of an old round must never start a new one.
            if st.valid && !serial_gt(repr.seq, st.seq) {
                return Verdict::Drop(DropReason::StaleSequence);
            }
            cpu_dispatch::words::load(&mut sums[..n], payload);
            *st = Meta {
                bitmap: bit,
                seq: repr.seq,
                count: 1,
                elem_count: repr.elem_count,
                max_exp: repr.exponent,
                valid: true,
                first_at: Some(now),
            };
        }

        counters.contributions += 1;
        let verdict = if st.count == world {
            write_result(out, repr, st, sums);
            counters.completed_slots += 1;
            Verdict::Multicast { job: repr.job_id }
        } else {
            Verdict::Absorbed
        };
        self.meta[1 - set][slot].bitmap &= !bit;
        verdict
    }
}

/// Appends the result of a complete round to `out`.
fn write_result(out: &mut Vec<u8>, trigger: &Repr, st: &Meta, sums: &[i32]) {
    let repr = Repr {
        msg_type: MsgType::Result,
        seq: st.seq,
        elem_count: st.elem_count,
        exponent: st.max_exp,
        ..*trigger
    };
    let start = out.len();
    out.resize(start + repr.buffer_len(), 0);
    let mut packet = Packet::new_unchecked(&mut out[start..]);
    repr.emit(&mut packet);
    cpu_dispatch::words::store(
        packet.payload_words_mut(),
        &sums[..usize::from(st.elem_count)],
    );
}

/// An installed job and what the switch knows about it.
#[derive(Debug)]
struct Job {
    spec: JobSpec,
    counters: JobCounters,
    last_heard: Vec<Option<Instant>>,
}

/// The aggregation switch: a sans-IO state machine (see [`super`]).
pub struct SwitchCore {
    config: Config,
    pool: Pool,
    jobs: Vec<Job>,
    /// Job id -> 1 + index into `jobs` (0 = none): one load per packet.
    job_index: Vec<u32>,
    counters: Counters,
}

impl fmt::Debug for SwitchCore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SwitchCore")
            .field("config", &self.config)
            .field("jobs", &self.jobs)
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

impl SwitchCore {
    /// A switch with an empty slot pool of `config.slots` slots.
    pub fn new(config: Config) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(SwitchCore {
            config,
            pool: Pool::new(&config),
            jobs: Vec::new(),
            job_index: vec![0; usize::from(u16::MAX) + 1],
            counters: Counters::default(),
        })
    }

    /// The limits this switch was built with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Registers a job and resets its leased slots, so that nothing of a
    /// previous tenant can be returned to it.
    pub fn install_job(&mut self, spec: JobSpec) -> Result<(), JobError> {
        let job = spec.id;
        if self.job_index[usize::from(job)] != 0 {
            return Err(JobError::DuplicateId(job));
        }
        if spec.world == 0 || spec.world > self.config.max_workers {
            return Err(JobError::World {
                job,
                world: spec.world,
                max: self.config.max_workers,
            });
        }
        if spec.members.len() != usize::from(spec.world) {
            return Err(JobError::Members {
                job,
                world: spec.world,
                members: spec.members.len(),
            });
        }
        if spec.slot_count == 0 || spec.slot_end() > u32::from(self.config.slots) {
            return Err(JobError::Lease {
                job,
                base: spec.slot_base,
                count: spec.slot_count,
                slots: self.config.slots,
            });
        }
        if let Some(other) = self.jobs.iter().find(|other| {
            u32::from(spec.slot_base) < other.spec.slot_end()
                && u32::from(other.spec.slot_base) < spec.slot_end()
        }) {
            return Err(JobError::Overlap {
                job,
                other: other.spec.id,
            });
        }
        self.pool
            .reset(usize::from(spec.slot_base)..spec.slot_end() as usize);
        self.jobs.push(Job {
            last_heard: vec![None; usize::from(spec.world)],
            counters: JobCounters::default(),
            spec,
        });
        self.job_index[usize::from(job)] = self.jobs.len() as u32;
        Ok(())
    }

    /// Unregisters a job. Its slots keep their state until the next
    /// `install_job` that leases them resets them.
    pub fn remove_job(&mut self, id: u16) -> Option<JobSpec> {
        let index = self.index_of(id)?;
        self.job_index[usize::from(id)] = 0;
        let job = self.jobs.swap_remove(index);
        if let Some(moved) = self.jobs.get(index) {
            self.job_index[usize::from(moved.spec.id)] = index as u32 + 1;
        }
        Some(job.spec)
    }

    /// The installed jobs, in no particular order.
    pub fn jobs(&self) -> impl Iterator<Item = &JobSpec> + '_ {
        self.jobs.iter().map(|job| &job.spec)
    }

    /// An installed job.
    pub fn job(&self, id: u16) -> Option<&JobSpec> {
        self.index_of(id).map(|i| &self.jobs[i].spec)
    }

    /// Registered addresses of a job's ranks (the multicast group).
    pub fn members(&self, job: u16) -> Option<&[SocketAddrV4]> {
        self.job(job).map(|spec| &spec.members[..])
    }

    /// Switch-wide counters.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Counters of one installed job.
    pub fn job_counters(&self, job: u16) -> Option<&JobCounters> {
        self.index_of(job).map(|i| &self.jobs[i].counters)
    }

    /// Per rank, when the switch last received a packet from it with the
    /// right source and key (whatever became of the packet): liveness.
    pub fn last_heard(&self, job: u16) -> Option<&[Option<Instant>]> {
        self.index_of(job).map(|i| &self.jobs[i].last_heard[..])
    }

    /// The job's rounds that started and have not completed, by slot then set.
    pub fn incomplete_slots(&self, job: u16) -> Vec<SlotView> {
        let Some(spec) = self.job(job) else {
            return Vec::new();
        };
        let everyone = u64::MAX >> (64 - u32::from(spec.world));
        let mut views = Vec::new();
        for slot in usize::from(spec.slot_base)..spec.slot_end() as usize {
            for set in 0..2 {
                let m = &self.pool.meta[set][slot];
                if m.bitmap == 0 || m.count >= spec.world {
                    continue;
                }
                let Some(since) = m.first_at else { continue };
                let missing = everyone & !m.bitmap;
                views.push(SlotView {
                    slot: slot as u16,
                    set: set == 1,
                    seq: m.seq,
                    contributed: m.bitmap,
                    missing: (0..spec.world)
                        .filter(|r| missing & (1 << r) != 0)
                        .collect(),
                    since,
                });
            }
        }
        views
    }

    /// The state of one (slot, set), or `None` if `slot` is outside the pool.
    pub fn slot_state(&self, slot: u16, set: bool) -> Option<SlotState<'_>> {
        (slot < self.config.slots).then(|| self.pool.state(usize::from(slot), usize::from(set)))
    }

    /// Handles one datagram (aggregation header and payload) from `src`.
    /// `out` is cleared; it holds the result packet when the verdict is
    /// `Multicast` or `Unicast`. Every datagram is counted exactly once.
    pub fn handle_packet(
        &mut self,
        now: Instant,
        src: SocketAddrV4,
        datagram: &[u8],
        out: &mut Vec<u8>,
    ) -> Verdict {
        out.clear();
        self.handle_packet_append(now, src, datagram, out)
    }

    /// [`SwitchCore::handle_packet`] appending the result packet to `out`
    /// (what it holds stays; nothing is appended unless the verdict is
    /// `Multicast` or `Unicast`), so that a driver can collect a round's
    /// results in one buffer without copying each.
    pub fn handle_packet_append(
        &mut self,
        now: Instant,
        src: SocketAddrV4,
        datagram: &[u8],
        out: &mut Vec<u8>,
    ) -> Verdict {
        let c = &mut self.counters;
        c.packets += 1;
        c.bytes += datagram.len() as u64;
        let verdict = self.process(now, src, datagram, out);
        let c = &mut self.counters;
        match verdict {
            Verdict::Absorbed => c.absorbed += 1,
            Verdict::Multicast { .. } => c.multicast_results += 1,
            Verdict::Unicast { .. } => c.unicast_results += 1,
            Verdict::Drop(reason) => c.drops[reason.index()] += 1,
        }
        verdict
    }

    fn index_of(&self, id: u16) -> Option<usize> {
        match self.job_index[usize::from(id)] {
            0 => None,
            n => Some(n as usize - 1),
        }
    }

    fn process(
        &mut self,
        now: Instant,
        src: SocketAddrV4,
        datagram: &[u8],
        out: &mut Vec<u8>,
    ) -> Verdict {
        let Ok(packet) = Packet::new_checked(datagram) else {
            return Verdict::Drop(DropReason::Truncated);
        };
        let repr = match Repr::parse(&packet) {
            Ok(repr) => repr,
            Err(WireError::BadVersion(_)) => return Verdict::Drop(DropReason::BadVersion),
            Err(WireError::Truncated) => return Verdict::Drop(DropReason::Truncated),
            Err(_) => return Verdict::Drop(DropReason::Malformed),
        };
        if repr.msg_type != MsgType::Contribution {
            return Verdict::Drop(DropReason::NotContribution);
        }
        let Some(index) = self.index_of(repr.job_id) else {
            return Verdict::Drop(DropReason::UnknownJob);
        };
        let job = &mut self.jobs[index];
        job.counters.packets += 1;
        job.counters.bytes += datagram.len() as u64;
        let verdict = admit(&self.config, job, now, src, &repr).unwrap_or_else(|| {
            self.pool.contribute(
                now,
                src,
                &repr,
                packet.payload_words(),
                job.spec.world,
                &mut job.counters,
                out,
            )
        });
        if let Verdict::Drop(reason) = verdict {
            job.counters.drops[reason.index()] += 1;
        } else if let Verdict::Unicast { .. } = verdict {
            job.counters.unicast_results += 1;
        }
        verdict
    }
}

/// Step 2 of the rules: `Some(drop)` unless the packet may touch the job's slots.
fn admit(
    config: &Config,
    job: &mut Job,
    now: Instant,
    src: SocketAddrV4,
    repr: &Repr,
) -> Option<Verdict> {
    let spec = &job.spec;
    let rank = usize::from(repr.rank);
    let reason = if repr.rank >= spec.world {
        DropReason::UnknownRank
    } else if spec.members[rank] != src {
        DropReason::WrongSource
    } else if repr.key != spec.key {
        DropReason::BadKey
    } else {
        job.last_heard[rank] = Some(now);
        if !spec.leases(repr.slot) {
            DropReason::SlotOutsideLease
        } else if repr.elem_count > config.max_elements_per_packet {
            DropReason::TooManyElements
        } else {
            return None;
        }
    };
    Some(Verdict::Drop(reason))
}

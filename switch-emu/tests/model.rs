//! The switch core against a deliberately simple reference model.
//!
//! The model is a direct transcription of the protocol rules (HashMaps,
//! its own byte parsing and result encoding, no performance concerns). Both
//! are fed the same random sequences of packets and job changes; after every
//! step the verdicts, the result bytes, all counters and the state of every
//! (slot, set) must be identical.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use switch_emu::core::{
    Config, Counters, DropReason, JobCounters, JobError, JobSpec, SwitchCore, Verdict,
};

const NO_EXPONENT: i16 = i16::MIN;

// ---------------------------------------------------------------- the model

#[derive(Debug, Clone, PartialEq, Eq)]
struct ModelSlot {
    sums: Vec<i32>,
    bitmap: u64,
    count: u16,
    max_exp: i16,
    elem_count: u16,
    seq: u32,
    valid: bool,
    first_at: Option<Instant>,
}

impl ModelSlot {
    fn reset() -> ModelSlot {
        ModelSlot {
            sums: Vec::new(),
            bitmap: 0,
            count: 0,
            max_exp: NO_EXPONENT,
            elem_count: 0,
            seq: 0,
            valid: false,
            first_at: None,
        }
    }
}

struct ModelJob {
    spec: JobSpec,
    counters: JobCounters,
    last_heard: Vec<Option<Instant>>,
}

struct Model {
    config: Config,
    jobs: HashMap<u16, ModelJob>,
    /// (slot, set) -> state; a missing entry is a reset slot.
    slots: HashMap<(u16, u8), ModelSlot>,
    counters: Counters,
}

fn be16(d: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([d[at], d[at + 1]])
}

fn be32(d: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([d[at], d[at + 1], d[at + 2], d[at + 3]])
}

fn slot_of(slots: &HashMap<(u16, u8), ModelSlot>, slot: u16, set: u8) -> ModelSlot {
    slots
        .get(&(slot, set))
        .cloned()
        .unwrap_or_else(ModelSlot::reset)
}

fn serial_gt(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) > 0
}

impl Model {
    fn new(config: Config) -> Model {
        Model {
            config,
            jobs: HashMap::new(),
            slots: HashMap::new(),
            counters: Counters::default(),
        }
    }

    /// Specs used here are valid and never overlap: only the id can clash.
    fn install_job(&mut self, spec: JobSpec) -> Result<(), JobError> {
        if self.jobs.contains_key(&spec.id) {
            return Err(JobError::DuplicateId(spec.id));
        }
        for slot in spec.slot_base..spec.slot_base + spec.slot_count {
            self.slots.remove(&(slot, 0));
            self.slots.remove(&(slot, 1));
        }
        let job = ModelJob {
            last_heard: vec![None; spec.world as usize],
            counters: JobCounters::default(),
            spec,
        };
        self.jobs.insert(job.spec.id, job);
        Ok(())
    }

    fn remove_job(&mut self, id: u16) -> Option<JobSpec> {
        self.jobs.remove(&id).map(|job| job.spec)
    }

    fn slot(&self, slot: u16, set: u8) -> ModelSlot {
        slot_of(&self.slots, slot, set)
    }

    fn handle_packet(
        &mut self,
        now: Instant,
        src: SocketAddrV4,
        d: &[u8],
        out: &mut Vec<u8>,
    ) -> Verdict {
        out.clear();
        self.counters.packets += 1;
        self.counters.bytes += d.len() as u64;
        let verdict = self.process(now, src, d, out);
        match verdict {
            Verdict::Absorbed => self.counters.absorbed += 1,
            Verdict::Multicast { .. } => self.counters.multicast_results += 1,
            Verdict::Unicast { .. } => self.counters.unicast_results += 1,
            Verdict::Drop(reason) => self.counters.drops[reason as usize] += 1,
        }
        verdict
    }

    fn process(&mut self, now: Instant, src: SocketAddrV4, d: &[u8], out: &mut Vec<u8>) -> Verdict {
        use DropReason::*;
        // 1. Parsing.
        if d.len() < 24 {
            return Verdict::Drop(Truncated);
        }
        let elem_count = be16(d, 18);
        if d.len() < 24 + 4 * elem_count as usize {
            return Verdict::Drop(Truncated);
        }
        if d[0] != 1 {
            return Verdict::Drop(BadVersion);
        }
        if d[1] != 1 && d[1] != 2 {
            return Verdict::Drop(Malformed);
        }
        if d[2] > 1 {
            return Verdict::Drop(Malformed);
        }
        if d[1] != 1 {
            return Verdict::Drop(NotContribution);
        }
        let set = d[2];
        let flags = d[3];
        let job_id = be16(d, 4);
        let rank = be16(d, 6);
        let key = be32(d, 8);
        let seq = be32(d, 12);
        let slot = be16(d, 16);
        let exponent = be16(d, 20) as i16;
        let payload: Vec<i32> = (0..elem_count as usize)
            .map(|i| be32(d, 24 + 4 * i) as i32)
            .collect();

        // 2. Admission.
        let Some(job) = self.jobs.get_mut(&job_id) else {
            return Verdict::Drop(UnknownJob);
        };
        job.counters.packets += 1;
        job.counters.bytes += d.len() as u64;
        let spec = job.spec.clone();
        let verdict = if rank >= spec.world {
            Verdict::Drop(UnknownRank)
        } else if spec.members[rank as usize] != src {
            Verdict::Drop(WrongSource)
        } else if key != spec.key {
            Verdict::Drop(BadKey)
        } else {
            job.last_heard[rank as usize] = Some(now);
            if slot < spec.slot_base || slot >= spec.slot_base + spec.slot_count {
                Verdict::Drop(SlotOutsideLease)
            } else if elem_count > self.config.max_elements_per_packet {
                Verdict::Drop(TooManyElements)
            } else {
                // 3. The slot.
                let mut st = slot_of(&self.slots, slot, set);
                let mut other = slot_of(&self.slots, slot, 1 - set);
                let bit = 1u64 << rank;
                let world = spec.world;
                let result = |st: &ModelSlot, out: &mut Vec<u8>| {
                    out.extend([1, 2, set, flags]);
                    out.extend(job_id.to_be_bytes());
                    out.extend(rank.to_be_bytes());
                    out.extend(spec.key.to_be_bytes());
                    out.extend(st.seq.to_be_bytes());
                    out.extend(slot.to_be_bytes());
                    out.extend(st.elem_count.to_be_bytes());
                    out.extend(st.max_exp.to_be_bytes());
                    out.extend([0, 0]);
                    for sum in &st.sums {
                        out.extend(sum.to_be_bytes());
                    }
                };
                if st.bitmap & bit != 0 {
                    job.counters.retransmissions += 1;
                    if seq == st.seq && st.count == world {
                        result(&st, out);
                        Verdict::Unicast { to: src }
                    } else if seq != st.seq {
                        Verdict::Drop(StaleSequence)
                    } else {
                        Verdict::Drop(DuplicateIncomplete)
                    }
                } else {
                    let accepted = if st.bitmap != 0 {
                        if seq != st.seq {
                            Err(StaleSequence)
                        } else if st.count == world {
                            // Amendment: a copy from a worker that moved on.
                            Err(StaleSequence)
                        } else if elem_count != st.elem_count {
                            Err(LengthMismatch)
                        } else {
                            for (sum, x) in st.sums.iter_mut().zip(&payload) {
                                *sum = sum.wrapping_add(*x);
                            }
                            st.max_exp = st.max_exp.max(exponent);
                            st.count += 1;
                            st.bitmap |= bit;
                            Ok(())
                        }
                    } else if st.valid && !serial_gt(seq, st.seq) {
                        Err(StaleSequence)
                    } else {
                        st = ModelSlot {
                            sums: payload,
                            bitmap: bit,
                            count: 1,
                            max_exp: exponent,
                            elem_count,
                            seq,
                            valid: true,
                            first_at: Some(now),
                        };
                        Ok(())
                    };
                    match accepted {
                        Err(reason) => Verdict::Drop(reason),
                        Ok(()) => {
                            other.bitmap &= !bit;
                            job.counters.contributions += 1;
                            let verdict = if st.count == world {
                                result(&st, out);
                                job.counters.completed_slots += 1;
                                Verdict::Multicast { job: job_id }
                            } else {
                                Verdict::Absorbed
                            };
                            self.slots.insert((slot, set), st);
                            self.slots.insert((slot, 1 - set), other);
                            verdict
                        }
                    }
                }
            }
        };
        let job = self.jobs.get_mut(&job_id).unwrap();
        match verdict {
            Verdict::Drop(reason) => job.counters.drops[reason as usize] += 1,
            Verdict::Unicast { .. } => job.counters.unicast_results += 1,
            _ => {}
        }
        verdict
    }
}

// ---------------------------------------------------------------- the inputs

const SLOTS: u16 = 11;
const MAX_ELEMENTS: u16 = 8;

/// (id, key, slot_base, slot_count, world, normal element count). Slot 10 is
/// leased to nobody; job 4 uses bitmap bits above 31.
const JOBS: [(u16, u32, u16, u16, u16, u16); 4] = [
    (1, 0xaaaa_0001, 0, 4, 3, 3),
    (2, 0xbbbb_0002, 4, 3, 2, 8),
    (3, 0xcccc_0003, 7, 2, 1, 0),
    (4, 0xdddd_0004, 9, 1, 40, 1),
];

fn member(job: u16, rank: u16) -> SocketAddrV4 {
    SocketAddrV4::new(Ipv4Addr::new(127, 1, job as u8, rank as u8), 50000 + rank)
}

fn job_spec(i: usize) -> JobSpec {
    let (id, key, slot_base, slot_count, world, _) = JOBS[i];
    JobSpec {
        id,
        key,
        slot_base,
        slot_count,
        world,
        members: (0..world).map(|r| member(id, r)).collect(),
    }
}

#[derive(Debug, Clone)]
enum Src {
    Registered,
    OtherRank(u16),
    Stranger,
}

#[derive(Debug, Clone)]
enum Mutation {
    None,
    Truncate(usize),
    SetByte(usize, u8),
    Append(usize),
}

#[derive(Debug, Clone)]
struct Pkt {
    /// Index into JOBS; JOBS.len() means an unknown job id.
    job: usize,
    bad_rank: bool,
    rank: u16,
    /// Round jitter: round = step / 10 + k - 2 (workers move forward
    /// together, with stragglers and early ones); slot = base + round % count,
    /// set = (round / count) % 2, seq = seq0 + round.
    k: u8,
    /// Off-pattern placement: (slot, set, seq offset or absolute seq).
    place: Option<(u16, bool, Result<i32, u32>)>,
    len: Option<u16>,
    values: Vec<i32>,
    exponent: i16,
    flags: u8,
    msg_type: u8,
    src: Src,
    key_ok: bool,
    mutation: Mutation,
}

#[derive(Debug, Clone)]
enum Op {
    Packet(Pkt),
    Remove(usize),
    Install(usize),
}

fn value() -> impl Strategy<Value = i32> {
    prop_oneof![
        4 => -3i32..=3,
        4 => any::<i32>(),
        1 => Just(i32::MAX),
        1 => Just(i32::MIN),
    ]
}

fn pkt() -> impl Strategy<Value = Pkt> {
    let place = prop_oneof![
        10 => Just(None),
        1 => (0..SLOTS + 2, any::<bool>(), prop_oneof![
            3 => (-6i32..12).prop_map(Ok),
            1 => any::<u32>().prop_map(Err),
        ]).prop_map(Some),
    ];
    let src = prop_oneof![
        30 => Just(Src::Registered),
        1 => (0u16..3).prop_map(Src::OtherRank),
        1 => Just(Src::Stranger),
    ];
    let mutation = prop_oneof![
        40 => Just(Mutation::None),
        2 => (0usize..60).prop_map(Mutation::Truncate),
        2 => ((0usize..4), any::<u8>()).prop_map(|(i, b)| Mutation::SetByte(i, b)),
        2 => ((4usize..24), any::<u8>()).prop_map(|(i, b)| Mutation::SetByte(i, b)),
        1 => (1usize..6).prop_map(Mutation::Append),
    ];
    (
        (
            prop_oneof![
                12 => Just(0usize),
                10 => Just(1),
                4 => Just(2),
                3 => Just(3),
                1 => Just(JOBS.len()),
            ],
            prop::bool::weighted(0.04),
            any::<u16>(),
            0u8..4,
            place,
        ),
        (
            prop_oneof![12 => Just(None), 1 => (0..=MAX_ELEMENTS + 2).prop_map(Some)],
            prop::collection::vec(value(), (MAX_ELEMENTS + 2) as usize),
            prop_oneof![Just(NO_EXPONENT), -4i16..6, any::<i16>()],
            prop_oneof![3 => Just(0u8), 1 => any::<u8>()],
            prop_oneof![40 => Just(1u8), 1 => Just(2u8), 1 => any::<u8>()],
            src,
            prop::bool::weighted(0.96),
            mutation,
        ),
    )
        .prop_map(
            |(
                (job, bad_rank, rank, k, place),
                (len, values, exponent, flags, msg_type, src, key_ok, mutation),
            )| Pkt {
                job,
                bad_rank,
                rank,
                k,
                place,
                len,
                values,
                exponent,
                flags,
                msg_type,
                src,
                key_ok,
                mutation,
            },
        )
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        100 => pkt().prop_map(Op::Packet),
        1 => (0..JOBS.len()).prop_map(Op::Remove),
        2 => (0..JOBS.len()).prop_map(Op::Install),
    ]
}

/// The datagram and source address a [`Pkt`] describes.
fn build(p: &Pkt, seq0: u32, step: usize) -> (SocketAddrV4, Vec<u8>) {
    let (id, key, base, count, world, normal_len) =
        JOBS.get(p.job).copied().unwrap_or((77, 0x7777, 0, 1, 1, 1));
    let rank = if p.bad_rank {
        world + p.rank % 3
    } else {
        p.rank % world
    };
    let (slot, set, seq) = match p.place {
        None => {
            let round = (step / 10) as i64 + i64::from(p.k) - 2;
            (
                base + round.rem_euclid(i64::from(count)) as u16,
                round.div_euclid(i64::from(count)).rem_euclid(2) == 1,
                seq0.wrapping_add(round as u32),
            )
        }
        Some((slot, set, Ok(offset))) => (slot, set, seq0.wrapping_add_signed(offset)),
        Some((slot, set, Err(seq))) => (slot, set, seq),
    };
    let len = p.len.unwrap_or(normal_len);
    let mut d = vec![1, p.msg_type, u8::from(set), p.flags];
    d.extend(id.to_be_bytes());
    d.extend(rank.to_be_bytes());
    d.extend(if p.key_ok { key } else { key ^ 0x100 }.to_be_bytes());
    d.extend(seq.to_be_bytes());
    d.extend(slot.to_be_bytes());
    d.extend(len.to_be_bytes());
    d.extend(p.exponent.to_be_bytes());
    d.extend([0x5a, 0xa5]); // reserved: ignored
    for v in &p.values[..len as usize] {
        d.extend(v.to_be_bytes());
    }
    match p.mutation {
        Mutation::None => {}
        Mutation::Truncate(n) => d.truncate(n),
        Mutation::SetByte(i, b) => d[i] = b,
        Mutation::Append(n) => d.extend(std::iter::repeat_n(0xee, n)),
    }
    let src = match p.src {
        Src::Registered => member(id, rank),
        Src::OtherRank(r) => member(id, (rank + 1 + r) % world.max(1)),
        Src::Stranger => SocketAddrV4::new(Ipv4Addr::new(127, 9, 9, 9), 50000 + rank),
    };
    (src, d)
}

// ---------------------------------------------------------------- the check

fn assert_same(core: &SwitchCore, model: &Model, step: usize) -> Result<(), TestCaseError> {
    prop_assert_eq!(
        core.counters(),
        &model.counters,
        "counters after step {}",
        step
    );
    let mut ids: Vec<u16> = core.jobs().map(|s| s.id).collect();
    ids.sort_unstable();
    let mut model_ids: Vec<u16> = model.jobs.keys().copied().collect();
    model_ids.sort_unstable();
    prop_assert_eq!(&ids, &model_ids, "jobs after step {}", step);
    for id in ids {
        let job = &model.jobs[&id];
        prop_assert_eq!(core.job(id), Some(&job.spec));
        prop_assert_eq!(
            core.job_counters(id),
            Some(&job.counters),
            "job {} counters after step {}",
            id,
            step
        );
        prop_assert_eq!(core.last_heard(id), Some(&job.last_heard[..]));
        let incomplete: Vec<(u16, bool, u32, u64)> = core
            .incomplete_slots(id)
            .iter()
            .map(|v| (v.slot, v.set, v.seq, v.contributed))
            .collect();
        let mut expected = Vec::new();
        for slot in job.spec.slot_base..job.spec.slot_base + job.spec.slot_count {
            for set in 0..2 {
                let s = model.slot(slot, set);
                if s.bitmap != 0 && s.count < job.spec.world {
                    expected.push((slot, set == 1, s.seq, s.bitmap));
                }
            }
        }
        prop_assert_eq!(incomplete, expected, "incomplete slots after step {}", step);
    }
    for slot in 0..SLOTS {
        for set in 0..2u8 {
            let c = core.slot_state(slot, set == 1).unwrap();
            let m = model.slot(slot, set);
            let core_view = (
                c.valid,
                c.bitmap,
                c.count,
                c.seq,
                c.elem_count,
                c.max_exp,
                c.first_at,
                c.sums,
            );
            let model_view = (
                m.valid,
                m.bitmap,
                m.count,
                m.seq,
                m.elem_count,
                m.max_exp,
                m.first_at,
                &m.sums[..],
            );
            prop_assert_eq!(
                core_view,
                model_view,
                "slot {} set {} after step {}",
                slot,
                set,
                step
            );
        }
    }
    prop_assert_eq!(core.slot_state(SLOTS, false), None);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::Direct("tests/model.proptest-regressions"),
        )),
        ..ProptestConfig::default()
    })]

    #[test]
    fn core_matches_reference_model(
        seq0 in prop_oneof![Just(0u32), Just(u32::MAX - 3), Just((1u32 << 31) - 2), any::<u32>()],
        ops in prop::collection::vec(op(), 50..=200),
    ) {
        let config = Config { max_workers: 64, slots: SLOTS, max_elements_per_packet: MAX_ELEMENTS };
        let mut core = SwitchCore::new(config).unwrap();
        let mut model = Model::new(config);
        for i in 0..JOBS.len() {
            core.install_job(job_spec(i)).unwrap();
            model.install_job(job_spec(i)).unwrap();
        }
        let mut now = Instant::now();
        let (mut core_out, mut model_out) = (Vec::new(), Vec::new());
        for (step, op) in ops.iter().enumerate() {
            now += Duration::from_micros(10);
            match op {
                Op::Packet(p) => {
                    let (src, d) = build(p, seq0, step);
                    core_out.push(0xff); // the core must clear it
                    let v = core.handle_packet(now, src, &d, &mut core_out);
                    let m = model.handle_packet(now, src, &d, &mut model_out);
                    prop_assert_eq!(v, m, "verdict at step {}", step);
                    prop_assert_eq!(&core_out, &model_out, "result bytes at step {}", step);
                }
                Op::Remove(i) => {
                    let id = JOBS[*i].0;
                    prop_assert_eq!(core.remove_job(id), model.remove_job(id));
                }
                Op::Install(i) => {
                    prop_assert_eq!(core.install_job(job_spec(*i)), model.install_job(job_spec(*i)));
                }
            }
            assert_same(&core, &model, step)?;
        }
    }
}

/// Guards the generator itself: the random sequences must complete rounds
/// and hit every drop reason, or the comparison above proves little.
#[test]
fn generator_completes_rounds_and_hits_every_drop_reason() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let config = Config {
        max_workers: 64,
        slots: SLOTS,
        max_elements_per_packet: MAX_ELEMENTS,
    };
    let mut runner = TestRunner::deterministic();
    let mut total = Counters::default();
    for _ in 0..100 {
        let mut core = SwitchCore::new(config).unwrap();
        for i in 0..JOBS.len() {
            core.install_job(job_spec(i)).unwrap();
        }
        let now = Instant::now();
        let mut out = Vec::new();
        for step in 0..200 {
            let p = pkt().new_tree(&mut runner).unwrap().current();
            let (src, d) = build(&p, u32::MAX - 3, step);
            core.handle_packet(now, src, &d, &mut out);
        }
        let c = core.counters();
        total.multicast_results += c.multicast_results;
        total.absorbed += c.absorbed;
        total.unicast_results += c.unicast_results;
        for (sum, n) in total.drops.iter_mut().zip(c.drops) {
            *sum += n;
        }
    }
    let c = &total;
    assert!(c.absorbed > 2000, "{c:?}");
    assert!(c.multicast_results > 1000, "{c:?}");
    assert!(c.unicast_results > 300, "{c:?}");
    for reason in DropReason::ALL {
        assert!(c.dropped(reason) > 0, "{reason} never generated: {c:?}");
    }
}

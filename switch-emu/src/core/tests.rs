//! Unit tests of the switch core: every drop reason, and the round rules.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use packet_format::{Flags, MsgType, Packet, Repr, NO_EXPONENT};

use super::*;

/// Job 1: world 3, slots 0..4. Job 2: world 2, slots 4..8.
const J1: u16 = 1;
const J2: u16 = 2;

fn addr(job: u16, rank: u16) -> SocketAddrV4 {
    SocketAddrV4::new(
        Ipv4Addr::new(127, 0, job as u8, rank as u8 + 1),
        40000 + rank,
    )
}

fn key(job: u16) -> u32 {
    0x5eed_0000 | u32::from(job)
}

fn spec(id: u16, slot_base: u16, slot_count: u16, world: u16) -> JobSpec {
    JobSpec {
        id,
        key: key(id),
        slot_base,
        slot_count,
        world,
        members: (0..world).map(|r| addr(id, r)).collect(),
    }
}

fn repr(job: u16, rank: u16, seq: u32, slot: u16, set: bool, n: usize, exponent: i16) -> Repr {
    Repr {
        msg_type: MsgType::Contribution,
        set,
        flags: Flags::default(),
        job_id: job,
        rank,
        key: key(job),
        seq,
        slot,
        elem_count: n as u16,
        exponent,
    }
}

fn bytes(repr: &Repr, elements: &[i32]) -> Vec<u8> {
    let mut out = Vec::new();
    repr.emit_to_vec(elements, &mut out);
    out
}

/// A contribution with the right source, key and exponent 0.
fn contribution(job: u16, rank: u16, seq: u32, slot: u16, set: bool, elements: &[i32]) -> Vec<u8> {
    bytes(
        &repr(job, rank, seq, slot, set, elements.len(), 0),
        elements,
    )
}

/// The result packet the switch must emit.
fn result(trigger: &Repr, seq: u32, exponent: i16, sums: &[i32]) -> Vec<u8> {
    let repr = Repr {
        msg_type: MsgType::Result,
        seq,
        elem_count: sums.len() as u16,
        exponent,
        ..*trigger
    };
    bytes(&repr, sums)
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Owned {
    valid: bool,
    bitmap: u64,
    count: u16,
    seq: u32,
    elem_count: u16,
    max_exp: i16,
    first_at: Option<Instant>,
    sums: Vec<i32>,
}

struct Fixture {
    core: SwitchCore,
    now: Instant,
    out: Vec<u8>,
}

impl Fixture {
    fn new() -> Fixture {
        let mut core = SwitchCore::new(Config::default()).unwrap();
        core.install_job(spec(J1, 0, 4, 3)).unwrap();
        core.install_job(spec(J2, 4, 4, 2)).unwrap();
        Fixture {
            core,
            now: Instant::now(),
            out: vec![0xaa],
        }
    }

    fn send_from(&mut self, src: SocketAddrV4, datagram: &[u8]) -> Verdict {
        self.now += Duration::from_millis(1);
        self.out.push(0xaa); // must be cleared by the core
        self.core
            .handle_packet(self.now, src, datagram, &mut self.out)
    }

    /// Sends from the registered address of the rank named in the header.
    fn send(&mut self, datagram: &[u8]) -> Verdict {
        let p = Packet::new_checked(datagram).unwrap();
        self.send_from(addr(p.job_id(), p.rank()), datagram)
    }

    fn state(&self, slot: u16, set: bool) -> Owned {
        let s = self.core.slot_state(slot, set).unwrap();
        Owned {
            valid: s.valid,
            bitmap: s.bitmap,
            count: s.count,
            seq: s.seq,
            elem_count: s.elem_count,
            max_exp: s.max_exp,
            first_at: s.first_at,
            sums: s.sums.to_vec(),
        }
    }

    fn snapshot(&self) -> Vec<Owned> {
        (0..8)
            .flat_map(|slot| [false, true].map(|set| self.state(slot, set)))
            .collect()
    }

    fn assert_counters_add_up(&self) {
        let c = self.core.counters();
        assert_eq!(
            c.packets,
            c.absorbed + c.multicast_results + c.unicast_results + c.total_drops()
        );
    }
}

/// Starts a round in job 1 (slot 0, set 0, seq 7, ranks 0 and 1) and one in
/// job 2 (slot 4, set 1, seq 9, rank 0).
fn ongoing() -> Fixture {
    let mut f = Fixture::new();
    assert_eq!(
        f.send(&contribution(J1, 0, 7, 0, false, &[1, 2, 3])),
        Verdict::Absorbed
    );
    assert_eq!(
        f.send(&contribution(J1, 1, 7, 0, false, &[10, 20, 30])),
        Verdict::Absorbed
    );
    assert_eq!(
        f.send(&contribution(J2, 0, 9, 4, true, &[5])),
        Verdict::Absorbed
    );
    assert!(f.out.is_empty());
    f
}

/// Completes both rounds of [`ongoing`] and checks the results are exact.
fn complete_ongoing(f: &mut Fixture) {
    let last = contribution(J1, 2, 7, 0, false, &[100, 200, 300]);
    assert_eq!(f.send(&last), Verdict::Multicast { job: J1 });
    let trigger = repr(J1, 2, 7, 0, false, 3, 0);
    assert_eq!(f.out, result(&trigger, 7, 0, &[111, 222, 333]));
    assert_eq!(
        f.send(&contribution(J2, 1, 9, 4, true, &[6])),
        Verdict::Multicast { job: J2 }
    );
    assert_eq!(f.out, result(&repr(J2, 1, 9, 4, true, 1, 0), 9, 0, &[11]));
    f.assert_counters_add_up();
}

/// Sends `datagram` from `src` into [`ongoing`] rounds and checks it is
/// dropped for `reason`, counted (per job when attributable), changes no slot
/// state, and that both rounds still complete exactly.
fn assert_dropped(src: SocketAddrV4, datagram: &[u8], reason: DropReason, job: Option<u16>) {
    let mut f = ongoing();
    let before = f.snapshot();
    let job_before = [J1, J2].map(|j| f.core.job_counters(j).unwrap().clone());
    assert_eq!(f.send_from(src, datagram), Verdict::Drop(reason));
    assert!(f.out.is_empty());
    assert_eq!(f.core.counters().dropped(reason), 1);
    assert_eq!(f.core.counters().total_drops(), 1);
    for (j, before) in [J1, J2].into_iter().zip(job_before) {
        let after = f.core.job_counters(j).unwrap();
        let expect = u64::from(job == Some(j));
        assert_eq!(after.dropped(reason), expect, "{reason} on job {j}");
        assert_eq!(after.drops.iter().sum::<u64>(), expect);
        assert_eq!(after.packets, before.packets + expect);
        assert_eq!(after.contributions, before.contributions);
    }
    assert_eq!(f.snapshot(), before, "a drop changed slot state");
    complete_ongoing(&mut f);
}

#[test]
fn append_keeps_what_the_buffer_held() {
    // The same rounds through handle_packet_append: nothing is appended
    // until a round completes, then exactly the result handle_packet gives.
    let mut f = ongoing();
    let mut out = vec![0xaa, 0xbb];
    let last = contribution(J1, 2, 7, 0, false, &[100, 200, 300]);
    f.now += Duration::from_millis(1);
    let dropped = f
        .core
        .handle_packet_append(f.now, addr(J1, 2), &last[..10], &mut out);
    assert_eq!(dropped, Verdict::Drop(DropReason::Truncated));
    assert_eq!(out, [0xaa, 0xbb]);
    let verdict = f
        .core
        .handle_packet_append(f.now, addr(J1, 2), &last, &mut out);
    assert_eq!(verdict, Verdict::Multicast { job: J1 });
    let trigger = repr(J1, 2, 7, 0, false, 3, 0);
    assert_eq!(out[..2], [0xaa, 0xbb]);
    assert_eq!(out[2..], result(&trigger, 7, 0, &[111, 222, 333]));
    f.assert_counters_add_up();
}

#[test]
fn drop_truncated() {
    let good = contribution(J1, 2, 7, 0, false, &[100, 200, 300]);
    assert_dropped(
        addr(J1, 2),
        &good[..good.len() - 1],
        DropReason::Truncated,
        None,
    );
    assert_dropped(addr(J1, 2), &good[..10], DropReason::Truncated, None);
    assert_dropped(addr(J1, 2), &[], DropReason::Truncated, None);
}

#[test]
fn drop_bad_version() {
    let mut bad = contribution(J1, 2, 7, 0, false, &[100, 200, 300]);
    bad[0] = 2;
    assert_dropped(addr(J1, 2), &bad, DropReason::BadVersion, None);
}

#[test]
fn drop_malformed() {
    let mut bad = contribution(J1, 2, 7, 0, false, &[100, 200, 300]);
    bad[2] = 2; // set 2
    assert_dropped(addr(J1, 2), &bad, DropReason::Malformed, None);
    let mut bad = contribution(J1, 2, 7, 0, false, &[100, 200, 300]);
    bad[1] = 7; // unknown message type
    assert_dropped(addr(J1, 2), &bad, DropReason::Malformed, None);
}

#[test]
fn drop_not_contribution() {
    let r = Repr {
        msg_type: MsgType::Result,
        ..repr(J1, 2, 7, 0, false, 3, 0)
    };
    assert_dropped(
        addr(J1, 2),
        &bytes(&r, &[100, 200, 300]),
        DropReason::NotContribution,
        None,
    );
}

#[test]
fn drop_unknown_job() {
    let bad = contribution(3, 0, 7, 0, false, &[100, 200, 300]);
    assert_dropped(addr(3, 0), &bad, DropReason::UnknownJob, None);
}

#[test]
fn drop_unknown_rank() {
    let bad = contribution(J1, 3, 7, 0, false, &[100, 200, 300]);
    assert_dropped(addr(J1, 3), &bad, DropReason::UnknownRank, Some(J1));
}

#[test]
fn drop_wrong_source() {
    let bad = contribution(J1, 2, 7, 0, false, &[100, 200, 300]);
    // Another member of the job, a member of another job, and a stranger.
    assert_dropped(addr(J1, 0), &bad, DropReason::WrongSource, Some(J1));
    assert_dropped(addr(J2, 0), &bad, DropReason::WrongSource, Some(J1));
    let port = SocketAddrV4::new(*addr(J1, 2).ip(), addr(J1, 2).port() + 1);
    assert_dropped(port, &bad, DropReason::WrongSource, Some(J1));
}

#[test]
fn drop_bad_key() {
    let r = Repr {
        key: key(J1) ^ 1,
        ..repr(J1, 2, 7, 0, false, 3, 0)
    };
    assert_dropped(
        addr(J1, 2),
        &bytes(&r, &[100, 200, 300]),
        DropReason::BadKey,
        Some(J1),
    );
    // Job 2's key on job 1.
    let r = Repr { key: key(J2), ..r };
    assert_dropped(
        addr(J1, 2),
        &bytes(&r, &[100, 200, 300]),
        DropReason::BadKey,
        Some(J1),
    );
}

#[test]
fn drop_slot_outside_lease() {
    // Job 2's slot (with its round in progress), and a slot outside the pool.
    let bad = contribution(J1, 1, 9, 4, true, &[7]);
    assert_dropped(addr(J1, 1), &bad, DropReason::SlotOutsideLease, Some(J1));
    let bad = contribution(J1, 2, 7, 9000, false, &[100, 200, 300]);
    assert_dropped(addr(J1, 2), &bad, DropReason::SlotOutsideLease, Some(J1));
}

#[test]
fn drop_too_many_elements() {
    let bad = contribution(J1, 2, 7, 0, false, &[1; 65]);
    assert_dropped(addr(J1, 2), &bad, DropReason::TooManyElements, Some(J1));
}

#[test]
fn drop_stale_sequence() {
    // Older and newer rounds in the slot that has a round in progress.
    for seq in [6, 8, 7 + (1 << 31), 7u32.wrapping_sub(4)] {
        let bad = contribution(J1, 2, seq, 0, false, &[100, 200, 300]);
        assert_dropped(addr(J1, 2), &bad, DropReason::StaleSequence, Some(J1));
    }
}

#[test]
fn drop_length_mismatch() {
    let bad = contribution(J1, 2, 7, 0, false, &[100, 200]);
    assert_dropped(addr(J1, 2), &bad, DropReason::LengthMismatch, Some(J1));
    let bad = contribution(J1, 2, 7, 0, false, &[]);
    assert_dropped(addr(J1, 2), &bad, DropReason::LengthMismatch, Some(J1));
}

#[test]
fn drop_duplicate_incomplete() {
    // Even with other data, a second copy from rank 0 changes nothing.
    let bad = contribution(J1, 0, 7, 0, false, &[1000, 1000, 1000]);
    assert_dropped(addr(J1, 0), &bad, DropReason::DuplicateIncomplete, Some(J1));
}

#[test]
fn retransmission_of_another_round_is_stale() {
    let bad = contribution(J1, 0, 3, 0, false, &[1, 2, 3]);
    assert_dropped(addr(J1, 0), &bad, DropReason::StaleSequence, Some(J1));
}

#[test]
fn complete_multicasts_once_then_unicasts() {
    let mut f = ongoing();
    complete_ongoing(&mut f);
    assert_eq!(f.core.counters().multicast_results, 2);
    let expected_for =
        |rank: u16| result(&repr(J1, rank, 7, 0, false, 3, 0), 7, 0, &[111, 222, 333]);
    for rank in [0, 2, 1, 0] {
        let again = contribution(J1, rank, 7, 0, false, &[100, 200, 300]);
        assert_eq!(f.send(&again), Verdict::Unicast { to: addr(J1, rank) });
        assert_eq!(f.out, expected_for(rank));
    }
    let c = f.core.counters();
    assert_eq!(
        (c.multicast_results, c.unicast_results, c.absorbed),
        (2, 4, 3)
    );
    let j = f.core.job_counters(J1).unwrap();
    assert_eq!(
        (
            j.contributions,
            j.completed_slots,
            j.retransmissions,
            j.unicast_results
        ),
        (3, 1, 4, 4)
    );
    assert_eq!(j.packets, 7);
    f.assert_counters_add_up();
}

#[test]
fn unicast_carries_the_trigger_flags() {
    let mut f = ongoing();
    complete_ongoing(&mut f);
    let r = Repr {
        flags: Flags::FLOAT,
        ..repr(J1, 1, 7, 0, false, 3, 0)
    };
    assert_eq!(
        f.send(&bytes(&r, &[0, 0, 0])),
        Verdict::Unicast { to: addr(J1, 1) }
    );
    assert_eq!(f.out, result(&r, 7, 0, &[111, 222, 333]));
}

#[test]
fn set_clear_rule() {
    let mut f = ongoing();
    complete_ongoing(&mut f);
    // Rank 0 moves on to the next round of slot 0 (set 1): its bit in set 0 goes.
    assert_eq!(
        f.send(&contribution(J1, 0, 11, 0, true, &[4, 4, 4])),
        Verdict::Absorbed
    );
    let s0 = f.state(0, false);
    assert_eq!((s0.bitmap, s0.count, s0.seq), (0b110, 3, 7));
    assert_eq!(f.state(0, true).bitmap, 0b001);
    // Rank 1 (bit still set) can still fetch the result of seq 7.
    let again = contribution(J1, 1, 7, 0, false, &[10, 20, 30]);
    assert_eq!(f.send(&again), Verdict::Unicast { to: addr(J1, 1) });
    assert_eq!(
        f.out,
        result(&repr(J1, 1, 7, 0, false, 3, 0), 7, 0, &[111, 222, 333])
    );
    // A drop clears nothing: a stale copy into set 1 from rank 1.
    let stale = contribution(J1, 1, 3, 0, true, &[1, 1, 1]);
    assert_eq!(f.send(&stale), Verdict::Drop(DropReason::StaleSequence));
    assert_eq!(f.state(0, false).bitmap, 0b110);
}

#[test]
fn delayed_copy_after_moving_on_is_stale() {
    // Rank 0's contribution to seq 7 is duplicated by the network; the copy
    // arrives after rank 0 moved on. It must not be added again: rank 2 lost
    // the multicast and still needs the exact result.
    let mut f = ongoing();
    complete_ongoing(&mut f);
    assert_eq!(
        f.send(&contribution(J1, 0, 11, 0, true, &[4, 4, 4])),
        Verdict::Absorbed
    );
    let copy = contribution(J1, 0, 7, 0, false, &[1, 2, 3]);
    assert_eq!(f.send(&copy), Verdict::Drop(DropReason::StaleSequence));
    assert_eq!(f.state(0, true).bitmap, 0b001, "a drop must not clear");
    let again = contribution(J1, 2, 7, 0, false, &[100, 200, 300]);
    assert_eq!(f.send(&again), Verdict::Unicast { to: addr(J1, 2) });
    assert_eq!(
        f.out,
        result(&repr(J1, 2, 7, 0, false, 3, 0), 7, 0, &[111, 222, 333])
    );
}

#[test]
fn result_survives_until_the_round_after_next() {
    let mut f = Fixture::new();
    let w = 4u32; // job 1's window: seq p uses slot p % 4, set (p / 4) % 2
    for rank in 0..3 {
        f.send(&contribution(J1, rank, 0, 0, false, &[rank.into()]));
    }
    assert_eq!(f.core.counters().multicast_results, 1);
    // Ranks 0 and 1 got the result and start the next round (seq 4, set 1);
    // rank 2 lost it and retransmits: the stored result is still there.
    for rank in 0..2 {
        assert_eq!(
            f.send(&contribution(J1, rank, w, 0, true, &[10])),
            Verdict::Absorbed
        );
    }
    let again = contribution(J1, 2, 0, 0, false, &[2]);
    assert_eq!(f.send(&again), Verdict::Unicast { to: addr(J1, 2) });
    assert_eq!(f.out, result(&repr(J1, 2, 0, 0, false, 1, 0), 0, 0, &[3]));
    assert_eq!(
        f.send(&contribution(J1, 2, w, 0, true, &[10])),
        Verdict::Multicast { job: J1 }
    );
    // The round after next (seq 8, set 0) overwrites it.
    assert_eq!(
        f.send(&contribution(J1, 0, 2 * w, 0, false, &[5])),
        Verdict::Absorbed
    );
    assert_eq!(f.state(0, false).sums, vec![5]);
    assert_eq!(f.send(&again), Verdict::Drop(DropReason::StaleSequence));
}

#[test]
fn wrapping_add() {
    let mut f = Fixture::new();
    f.send(&contribution(
        J1,
        0,
        1,
        2,
        true,
        &[i32::MAX, i32::MIN, -1, 0],
    ));
    f.send(&contribution(J1, 1, 1, 2, true, &[1, -1, -1, 0]));
    let last = contribution(J1, 2, 1, 2, true, &[i32::MAX, 0, i32::MIN, -5]);
    assert_eq!(f.send(&last), Verdict::Multicast { job: J1 });
    let sums = [
        i32::MAX.wrapping_add(1).wrapping_add(i32::MAX),
        i32::MAX,
        (-2i32).wrapping_add(i32::MIN),
        -5,
    ];
    assert_eq!(f.out, result(&repr(J1, 2, 1, 2, true, 4, 0), 1, 0, &sums));
}

#[test]
fn max_exponent() {
    let mut f = Fixture::new();
    for (rank, exp) in [(0, NO_EXPONENT), (1, 3), (2, -5)] {
        f.send(&bytes(&repr(J1, rank, 2, 1, false, 1, exp), &[1]));
    }
    assert_eq!(f.out, result(&repr(J1, 2, 2, 1, false, 1, -5), 2, 3, &[3]));
    // Exponent-only packets (no elements); all without exponent stays NO_EXPONENT.
    for rank in 0..2 {
        f.send(&bytes(&repr(J2, rank, 0, 5, false, 0, NO_EXPONENT), &[]));
    }
    assert_eq!(
        f.out,
        result(
            &repr(J2, 1, 0, 5, false, 0, NO_EXPONENT),
            0,
            NO_EXPONENT,
            &[]
        )
    );
    for (rank, exp) in [(0, i16::MAX), (1, -1)] {
        f.send(&bytes(&repr(J2, rank, 0, 6, false, 0, exp), &[]));
    }
    assert_eq!(
        f.out,
        result(&repr(J2, 1, 0, 6, false, 0, -1), 0, i16::MAX, &[])
    );
}

#[test]
fn sequence_numbers_wrap() {
    let mut core = SwitchCore::new(Config::default()).unwrap();
    core.install_job(spec(5, 100, 1, 1)).unwrap();
    let now = Instant::now();
    let mut out = Vec::new();
    let mut send = |core: &mut SwitchCore, seq: u32| {
        let datagram = contribution(5, 0, seq, 100, seq % 2 == 1, &[seq as i32]);
        core.handle_packet(now, addr(5, 0), &datagram, &mut out)
    };
    // World 1, window 1: every packet completes its round; the set alternates
    // across the wrap because u32::MAX is odd.
    for seq in [u32::MAX - 2, u32::MAX - 1, u32::MAX, 0, 1, 2] {
        assert_eq!(
            send(&mut core, seq),
            Verdict::Multicast { job: 5 },
            "seq {seq}"
        );
    }
    // Set 0 holds seq 2 with rank 0's bit set: older seqs are stale.
    assert_eq!(
        send(&mut core, u32::MAX - 1),
        Verdict::Drop(DropReason::StaleSequence)
    );
    assert_eq!(send(&mut core, 0), Verdict::Drop(DropReason::StaleSequence));
    // Set 1 (seq 3) clears the bit in set 0; a copy from before the wrap
    // still cannot start a round there, the next one can.
    assert_eq!(send(&mut core, 3), Verdict::Multicast { job: 5 });
    assert_eq!(core.slot_state(100, false).unwrap().bitmap, 0);
    assert_eq!(
        send(&mut core, u32::MAX - 1),
        Verdict::Drop(DropReason::StaleSequence)
    );
    assert_eq!(send(&mut core, 2), Verdict::Drop(DropReason::StaleSequence));
    assert_eq!(send(&mut core, 4), Verdict::Multicast { job: 5 });
    assert_eq!(core.slot_state(100, false).unwrap().seq, 4);
}

#[test]
fn install_job_checks_and_resets() {
    let mut core = SwitchCore::new(Config::default()).unwrap();
    core.install_job(spec(1, 10, 10, 2)).unwrap();
    assert_eq!(
        core.install_job(spec(1, 30, 1, 2)),
        Err(JobError::DuplicateId(1))
    );
    assert_eq!(
        core.install_job(spec(2, 30, 1, 33)),
        Err(JobError::World {
            job: 2,
            world: 33,
            max: 32
        })
    );
    assert_eq!(
        core.install_job(spec(2, 30, 1, 0)),
        Err(JobError::World {
            job: 2,
            world: 0,
            max: 32
        })
    );
    let mut short = spec(2, 30, 1, 3);
    short.members.pop();
    assert_eq!(
        core.install_job(short),
        Err(JobError::Members {
            job: 2,
            world: 3,
            members: 2
        })
    );
    for (base, count) in [(8190, 3), (30, 0), (u16::MAX, u16::MAX)] {
        assert_eq!(
            core.install_job(spec(2, base, count, 2)),
            Err(JobError::Lease {
                job: 2,
                base,
                count,
                slots: 8192
            })
        );
    }
    for (base, count) in [(19, 1), (5, 6), (0, 100), (12, 1)] {
        assert_eq!(
            core.install_job(spec(2, base, count, 2)),
            Err(JobError::Overlap { job: 2, other: 1 })
        );
    }
    core.install_job(spec(2, 20, 1, 2)).unwrap();
    core.install_job(spec(3, 0, 10, 2)).unwrap();
    core.install_job(spec(4, 8191, 1, 2)).unwrap();
    let mut ids: Vec<u16> = core.jobs().map(|s| s.id).collect();
    ids.sort_unstable();
    assert_eq!(ids, [1, 2, 3, 4]);

    // Job 1 leaves state behind in slot 15; job 9 leases it and finds it reset.
    let now = Instant::now();
    let mut out = Vec::new();
    core.handle_packet(
        now,
        addr(1, 0),
        &contribution(1, 0, 9, 15, true, &[42]),
        &mut out,
    );
    assert!(core.slot_state(15, true).unwrap().valid);
    assert_eq!(core.remove_job(1), Some(spec(1, 10, 10, 2)));
    assert_eq!(core.remove_job(1), None);
    assert!(
        core.slot_state(15, true).unwrap().valid,
        "remove_job frees nothing itself"
    );
    assert_eq!(core.members(4), Some(&spec(4, 8191, 1, 2).members[..]));
    core.install_job(spec(9, 15, 1, 2)).unwrap();
    let s = core.slot_state(15, true).unwrap();
    assert_eq!(
        (
            s.valid,
            s.bitmap,
            s.count,
            s.seq,
            s.elem_count,
            s.max_exp,
            s.first_at
        ),
        (false, 0, 0, 0, 0, NO_EXPONENT, None)
    );
    // The old job's id is gone; its packets are now unknown.
    let v = core.handle_packet(
        now,
        addr(1, 1),
        &contribution(1, 1, 9, 15, true, &[1]),
        &mut out,
    );
    assert_eq!(v, Verdict::Drop(DropReason::UnknownJob));
    assert_eq!(core.slot_state(8192, false), None);
    // Swap-removal kept every other job reachable.
    for id in [2, 3, 4, 9] {
        assert_eq!(core.job(id).unwrap().id, id);
        assert!(core.job_counters(id).is_some());
    }
}

#[test]
fn emulator_limits_allow_64_workers_and_jumbo_packets() {
    let config = Config {
        max_workers: 64,
        slots: 4,
        max_elements_per_packet: Config::max_elements_limit(),
    };
    let mut core = SwitchCore::new(config).unwrap();
    assert_eq!(core.config(), &config);
    core.install_job(spec(1, 0, 4, 64)).unwrap();
    let n = usize::from(Config::max_elements_limit());
    let mut out = Vec::new();
    let now = Instant::now();
    let mut last = Verdict::Absorbed;
    for rank in 0..64 {
        let elements: Vec<i32> = (0..n as i32).map(|i| i * i32::from(rank)).collect();
        let datagram = contribution(1, rank, 0, 3, true, &elements);
        last = core.handle_packet(now, addr(1, rank), &datagram, &mut out);
    }
    assert_eq!(last, Verdict::Multicast { job: 1 });
    let sums: Vec<i32> = (0..n as i32).map(|i| i * (63 * 64 / 2)).collect();
    assert_eq!(out, result(&repr(1, 63, 0, 3, true, n, 0), 0, 0, &sums));
    assert_eq!(
        SwitchCore::new(Config {
            max_workers: 65,
            ..config
        })
        .err(),
        Some(ConfigError::Workers(65))
    );
}

#[test]
fn incomplete_slots_and_last_heard() {
    let f = ongoing();
    let views = f.core.incomplete_slots(J1);
    assert_eq!(views.len(), 1);
    let v = &views[0];
    assert_eq!((v.slot, v.set, v.seq, v.contributed), (0, false, 7, 0b011));
    assert_eq!(v.missing, [2]);
    assert_eq!(Some(v.since), f.state(0, false).first_at);
    let heard = f.core.last_heard(J1).unwrap();
    assert!(heard[0].unwrap() < heard[1].unwrap());
    assert_eq!(heard[2], None);
    assert!(f.core.incomplete_slots(77).is_empty());
    assert_eq!(f.core.last_heard(77), None);

    let mut f = f;
    complete_ongoing(&mut f);
    assert!(f.core.incomplete_slots(J1).is_empty());
    assert!(f.core.incomplete_slots(J2).is_empty());
    // Admitted but dropped packets still prove the worker alive; spoofed ones do not.
    let t = f.now;
    f.send(&contribution(J1, 1, 7, 7, false, &[1]));
    assert!(f.core.last_heard(J1).unwrap()[1].unwrap() > t);
    let t = f.now;
    f.send_from(addr(J1, 0), &contribution(J1, 2, 7, 0, false, &[1, 2, 3]));
    assert!(f.core.last_heard(J1).unwrap()[2].unwrap() < t);
}

#[test]
fn counters_count_bytes_and_packets() {
    let mut f = ongoing();
    let bad = [0u8; 5];
    f.send_from(addr(J1, 0), &bad);
    let c = f.core.counters();
    assert_eq!(c.packets, 4);
    assert_eq!(c.bytes, (24 + 12) * 2 + (24 + 4) + 5);
    assert_eq!(f.core.job_counters(J1).unwrap().bytes, (24 + 12) * 2);
    f.assert_counters_add_up();
}

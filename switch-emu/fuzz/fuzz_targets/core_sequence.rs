//! Arbitrary packet sequences against a core with two jobs: it never
//! panics, and the protocol invariants hold after every step.
//!
//! Input: records of `[src: u8][dt_ms: u8][len: u16 BE][len bytes of datagram]`
//! (a short last record takes what is left). `src` < 0x80 sends from the
//! registered address of the (job, rank) named in the header; otherwise
//! from `member(src >> 5 & 1, src & 0x1f)`, mostly another worker's address.
#![no_main]

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use packet_format::{MsgType, Packet, Repr};
use switch_emu::core::{Config, DropReason, JobSpec, SwitchCore, Verdict};

const SLOTS: u16 = 8;
/// (id, key, slot_base, slot_count, world); slot 7 is leased to nobody.
const JOBS: [(u16, u32, u16, u16, u16); 2] = [(1, 0x1111_1111, 0, 4, 3), (2, 0x2222_2222, 4, 3, 2)];

fn member(job: usize, rank: u16) -> SocketAddrV4 {
    SocketAddrV4::new(
        Ipv4Addr::new(127, 0, job as u8 + 1, rank as u8),
        40000u16.wrapping_add(rank),
    )
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct State {
    valid: bool,
    bitmap: u64,
    count: u16,
    seq: u32,
    elem_count: u16,
    max_exp: i16,
    first_at: Option<Instant>,
    sums: Vec<i32>,
}

fn snapshot(core: &SwitchCore) -> Vec<[State; 2]> {
    (0..SLOTS)
        .map(|slot| {
            [false, true].map(|set| {
                let s = core.slot_state(slot, set).expect("slot inside the pool");
                State {
                    valid: s.valid,
                    bitmap: s.bitmap,
                    count: s.count,
                    seq: s.seq,
                    elem_count: s.elem_count,
                    max_exp: s.max_exp,
                    first_at: s.first_at,
                    sums: s.sums.to_vec(),
                }
            })
        })
        .collect()
}

fn world_of(slot: u16) -> Option<u16> {
    JOBS.iter()
        .find(|j| slot >= j.2 && slot < j.2 + j.3)
        .map(|j| j.4)
}

fuzz_target!(|data: &[u8]| {
    let config = Config {
        max_workers: 64,
        slots: SLOTS,
        max_elements_per_packet: 8,
    };
    let mut core = SwitchCore::new(config).unwrap();
    for (i, &(id, key, slot_base, slot_count, world)) in JOBS.iter().enumerate() {
        let members = (0..world).map(|r| member(i, r)).collect();
        core.install_job(JobSpec {
            id,
            key,
            slot_base,
            slot_count,
            world,
            members,
        })
        .unwrap();
    }
    // Whether a (slot, set) lost a bit to the set-clear rule since its round began.
    let mut lost = [[false; 2]; SLOTS as usize];
    let mut now = Instant::now();
    let mut out = Vec::new();
    let mut rest = data;
    while rest.len() >= 4 {
        let (src_sel, dt) = (rest[0], rest[1]);
        let len = usize::from(u16::from_be_bytes([rest[2], rest[3]])).min(rest.len() - 4);
        let datagram = &rest[4..4 + len];
        rest = &rest[4 + len..];
        now += Duration::from_millis(u64::from(dt));

        let header = Packet::new_checked(datagram)
            .ok()
            .and_then(|p| Repr::parse(&p).ok());
        let src = match header {
            Some(h) if src_sel < 0x80 => JOBS
                .iter()
                .position(|j| j.0 == h.job_id)
                .map_or(member(3, h.rank), |i| member(i, h.rank)),
            _ => member(usize::from(src_sel >> 5 & 1), u16::from(src_sel & 0x1f)),
        };

        let before = snapshot(&core);
        let verdict = core.handle_packet(now, src, datagram, &mut out);
        let after = snapshot(&core);

        match verdict {
            Verdict::Drop(reason) => {
                assert!(out.is_empty());
                assert_eq!(before, after, "drop {reason:?} changed state");
                if reason == DropReason::Truncated {
                    assert!(header.is_none());
                }
            }
            Verdict::Unicast { to } => {
                assert_eq!(before, after, "a retransmission changed state");
                let h = header.unwrap();
                assert_eq!(to, src);
                let st = &after[usize::from(h.slot)][usize::from(h.set)];
                assert_eq!(Some(st.count), world_of(h.slot));
                assert!(st.bitmap & (1 << h.rank) != 0);
                check_result(&out, &h, st);
            }
            Verdict::Absorbed | Verdict::Multicast { .. } => {
                let h = header.unwrap();
                assert_eq!(h.msg_type, MsgType::Contribution);
                let (slot, set) = (usize::from(h.slot), usize::from(h.set));
                let st = &after[slot][set];
                let world = world_of(h.slot).unwrap();
                assert!(st.valid && st.bitmap & (1 << h.rank) != 0);
                assert_eq!(st.seq, h.seq);
                if st.count == 1 {
                    lost[slot][set] = false; // a new round
                } else {
                    assert_eq!(st.count, before[slot][set].count + 1);
                }
                if after[slot][1 - set].bitmap != before[slot][1 - set].bitmap {
                    lost[slot][1 - set] = true;
                }
                for (i, (b, a)) in before.iter().zip(&after).enumerate() {
                    if i != slot {
                        assert_eq!(b, a, "slot {i} changed by a packet to slot {slot}");
                    }
                }
                if let Verdict::Multicast { job } = verdict {
                    assert_eq!(job, h.job_id);
                    assert_eq!(st.count, world);
                    check_result(&out, &h, st);
                } else {
                    assert!(out.is_empty());
                    assert!(st.count < world);
                }
            }
        }

        // Invariants of every (slot, set).
        for (slot, states) in after.iter().enumerate() {
            let world = world_of(slot as u16);
            for (set, st) in states.iter().enumerate() {
                let Some(world) = world else {
                    assert!(!st.valid && st.bitmap == 0, "unleased slot {slot} touched");
                    continue;
                };
                if !st.valid {
                    assert!(st.bitmap == 0 && st.count == 0 && st.elem_count == 0);
                    continue;
                }
                assert!(st.count >= 1 && st.count <= world);
                assert!(st.bitmap >> world == 0, "bit of a rank outside the world");
                assert!(st.bitmap.count_ones() <= u32::from(st.count));
                if !lost[slot][set] {
                    assert_eq!(st.bitmap.count_ones(), u32::from(st.count));
                }
                assert!(st.elem_count <= config.max_elements_per_packet);
            }
        }
        let c = core.counters();
        assert_eq!(
            c.packets,
            c.absorbed + c.multicast_results + c.unicast_results + c.total_drops()
        );
    }
});

/// The result packet in `out` carries the slot's state.
fn check_result(out: &[u8], trigger: &Repr, st: &State) {
    let packet = Packet::new_checked(out).expect("complete result");
    let repr = Repr::parse(&packet).expect("valid result");
    let expected = Repr {
        msg_type: MsgType::Result,
        seq: st.seq,
        elem_count: st.elem_count,
        exponent: st.max_exp,
        ..*trigger
    };
    assert_eq!(repr, expected);
    assert_eq!(out.len(), repr.buffer_len());
    let sums: Vec<i32> = packet
        .payload_words()
        .iter()
        .map(|w| i32::from_be_bytes(*w))
        .collect();
    assert_eq!(sums, st.sums);
}

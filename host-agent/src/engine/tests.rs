//! Unit tests of the engine, driven by hand-made results.

use std::time::{Duration, Instant};

use packet_format::{Flags, MsgType, Packet, Repr, NO_EXPONENT};

use super::*;

fn config(world: u16, window: u16, epp: u16) -> EngineConfig {
    EngineConfig {
        job_id: 5,
        key: 0xfeed_f00d,
        rank: 0,
        world,
        slot_base: 100,
        window,
        elements_per_packet: epp,
        ..EngineConfig::default()
    }
}

fn repr_of(bytes: &[u8]) -> Repr {
    Repr::parse(&Packet::new_checked(bytes).unwrap()).unwrap()
}

fn elements_of(bytes: &[u8]) -> Vec<i32> {
    let packet = Packet::new_checked(bytes).unwrap();
    packet
        .payload_words()
        .iter()
        .map(|w| i32::from_be_bytes(*w))
        .collect()
}

/// What the switch would return for a complete round of these contributions.
fn aggregate(contributions: &[&[u8]]) -> Vec<u8> {
    let mut repr = repr_of(contributions[0]);
    let mut sums = vec![0i32; usize::from(repr.elem_count)];
    for c in contributions {
        let r = repr_of(c);
        repr.exponent = repr.exponent.max(r.exponent);
        for (s, v) in sums.iter_mut().zip(elements_of(c)) {
            *s = s.wrapping_add(v);
        }
    }
    repr.msg_type = MsgType::Result;
    let mut out = Vec::new();
    repr.emit_to_vec(&sums, &mut out);
    out
}

/// The result of a single-worker round: the contribution itself.
fn reflect(contribution: &[u8]) -> Vec<u8> {
    aggregate(&[contribution])
}

/// World 2, window 2, 3 elements per packet, every retransmission after 5 ms.
fn two_workers_with_fixed_timeout() -> EngineConfig {
    EngineConfig {
        retransmit_timeout: Duration::from_millis(5),
        max_retransmit_timeout: Duration::from_millis(5),
        ..config(2, 2, 3)
    }
}

/// The result of a two-worker round whose peer sent 4x this worker's
/// values with an exponent 2 higher: results differ from contributions.
fn with_peer(contribution: &[u8]) -> Vec<u8> {
    let mut r = repr_of(contribution);
    r.rank = 1;
    if r.exponent != NO_EXPONENT {
        r.exponent += 2;
    }
    let values: Vec<i32> = elements_of(contribution)
        .iter()
        .map(|v| v.wrapping_mul(4))
        .collect();
    let mut peer = Vec::new();
    r.emit_to_vec(&values, &mut peer);
    aggregate(&[contribution, &peer])
}

/// Sends everything the engine will send now.
fn drain(engine: &mut Engine, now: Instant) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = Vec::new();
    while engine.poll_transmit(now, &mut buf) {
        out.push(buf.clone());
    }
    out
}

/// Runs a single-worker allreduce to completion with in-order results.
fn run_single(engine: &mut Engine, now: Instant) {
    loop {
        let sent = drain(engine, now);
        if sent.is_empty() {
            break;
        }
        for p in sent {
            engine.handle_packet(now, &reflect(&p));
        }
    }
    assert_eq!(engine.poll_event(), Some(Event::Done));
}

#[test]
fn i32_chunking_with_a_short_last_block() {
    let now = Instant::now();
    let mut e = Engine::new(config(1, 8, 4)).unwrap();
    let data: Vec<i32> = (1..=10).collect();
    e.start_i32(now, &data).unwrap();
    let sent = drain(&mut e, now);
    let counts: Vec<u16> = sent.iter().map(|p| repr_of(p).elem_count).collect();
    assert_eq!(counts, [4, 4, 2]);
    assert_eq!(elements_of(&sent[2]), [9, 10]);
    for (k, p) in sent.iter().enumerate() {
        let r = repr_of(p);
        assert_eq!((r.seq, r.slot, r.set), (k as u32, 100 + k as u16, false));
        assert_eq!((r.job_id, r.key, r.rank), (5, 0xfeed_f00d, 0));
        assert_eq!(
            (r.msg_type, r.flags, r.exponent),
            (MsgType::Contribution, Flags::default(), NO_EXPONENT)
        );
    }
    assert!(e.is_busy());
    for p in &sent {
        e.handle_packet(now, &reflect(p));
    }
    assert_eq!(e.poll_event(), Some(Event::Done));
    assert!(!e.is_busy() && e.is_done());
    let mut out = vec![0; 10];
    e.take_i32(&mut out).unwrap();
    assert_eq!(out, data);
    assert_eq!(e.take_i32(&mut out), Err(EngineError::NotDone));
}

#[test]
fn i32_sum_of_three_workers_wraps() {
    let now = Instant::now();
    let mut engines: Vec<Engine> = (0..3)
        .map(|rank| {
            Engine::new(EngineConfig {
                rank,
                ..config(3, 2, 3)
            })
            .unwrap()
        })
        .collect();
    let inputs: Vec<Vec<i32>> = (0..3)
        .map(|r| {
            (0..7)
                .map(|i| (i32::MAX - 5).wrapping_add(i * (r + 1)))
                .collect()
        })
        .collect();
    for (e, d) in engines.iter_mut().zip(&inputs) {
        e.start_i32(now, d).unwrap();
    }
    while engines.iter().any(Engine::is_busy) {
        let sent: Vec<Vec<Vec<u8>>> = engines.iter_mut().map(|e| drain(e, now)).collect();
        assert!(sent.iter().all(|s| !s.is_empty()), "no progress");
        for k in 0..sent[0].len() {
            let round: Vec<&[u8]> = sent.iter().map(|s| s[k].as_slice()).collect();
            let result = aggregate(&round);
            for e in &mut engines {
                e.handle_packet(now, &result);
            }
        }
    }
    let expected: Vec<i32> = (0..7)
        .map(|i| inputs.iter().fold(0i32, |acc, d| acc.wrapping_add(d[i])))
        .collect();
    for e in &mut engines {
        let mut out = vec![0; 7];
        e.take_i32(&mut out).unwrap();
        assert_eq!(out, expected);
    }
}

#[test]
fn window_gates_i32_packets() {
    let now = Instant::now();
    let mut e = Engine::new(config(1, 4, 2)).unwrap();
    e.start_i32(now, &[7; 40]).unwrap();
    let first = drain(&mut e, now);
    assert_eq!(first.len(), 4, "never more than W in flight");
    // A result for packet 1 frees only position 1: packet 5 (slot 101, set 1).
    e.handle_packet(now, &reflect(&first[1]));
    assert!(drain(&mut e, now).is_empty(), "packet 4 waits for result 0");
    e.handle_packet(now, &reflect(&first[0]));
    let next = drain(&mut e, now);
    assert_eq!(next.len(), 2);
    let r = repr_of(&next[0]);
    assert_eq!((r.seq, r.slot, r.set), (4, 100, true));
    let r = repr_of(&next[1]);
    assert_eq!((r.seq, r.slot, r.set), (5, 101, true));
}

#[test]
fn float_data_waits_for_the_exponent_result() {
    let now = Instant::now();
    // C = 3 blocks, W = 8: L = 3, packets 0..6.
    let mut e = Engine::new(config(1, 8, 2)).unwrap();
    let data = [1.0f32, -2.0, 0.25, 0.5, 0.0, 3.0];
    e.start_f32(now, &data).unwrap();
    let first = drain(&mut e, now);
    assert_eq!(first.len(), 3, "only exponent packets before any result");
    let exps: Vec<i16> = first.iter().map(|p| repr_of(p).exponent).collect();
    assert_eq!(exps, [1, -1, 2]);
    assert!(first.iter().all(|p| repr_of(p).elem_count == 0));
    assert!(first.iter().all(|p| repr_of(p).flags == Flags::FLOAT));
    // Result 1 does not release packet 3 (it carries block 0, needs result 0).
    e.handle_packet(now, &reflect(&first[1]));
    assert!(drain(&mut e, now).is_empty());
    e.handle_packet(now, &reflect(&first[0]));
    let next = drain(&mut e, now);
    assert_eq!(next.len(), 2, "packets 3 and 4 (blocks 0 and 1)");
    let r = repr_of(&next[0]);
    assert_eq!((r.seq, r.elem_count, r.exponent), (3, 2, NO_EXPONENT));
    // Block 0 = [1, -2] quantized with f = (2^31-1)/2^1.
    let f = crate::quantize::scale(1, 1);
    assert_eq!(
        elements_of(&next[0]),
        [f.round() as i32, (-2.0 * f).round() as i32]
    );
    e.handle_packet(now, &reflect(&first[2]));
    for p in next {
        e.handle_packet(now, &reflect(&p));
    }
    run_single(&mut e, now);
    let mut out = [0.0f32; 6];
    e.take_f32(&mut out).unwrap();
    assert_eq!(out, data);
}

#[test]
fn float_round_trip_within_the_bound() {
    let now = Instant::now();
    let mut e = Engine::new(config(1, 3, 5)).unwrap();
    let data: Vec<f32> = (0..23)
        .map(|i| match i % 4 {
            0 => 0.0,
            1 => -(i as f32) * 1e-7,
            2 => (i as f32) * 1234.5,
            _ => 1.0 / (i as f32),
        })
        .collect();
    e.start_f32(now, &data).unwrap();
    run_single(&mut e, now);
    let mut out = vec![0.0f32; data.len()];
    e.take_f32(&mut out).unwrap();
    for (b, (xs, ys)) in data.chunks(5).zip(out.chunks(5)).enumerate() {
        let e_max = crate::quantize::block_exponent(xs);
        for (x, y) in xs.iter().zip(ys) {
            let exact = f64::from(*x);
            let err = (f64::from(*y) - exact).abs();
            assert!(
                err <= crate::quantize::error_bound(1, e_max, exact),
                "block {b}: {x} -> {y}"
            );
        }
    }
}

#[test]
fn non_finite_input_names_its_index() {
    let now = Instant::now();
    let mut e = Engine::new(config(1, 4, 4)).unwrap();
    let mut data = vec![1.0f32; 9];
    data[5] = f32::NAN;
    data[7] = f32::INFINITY;
    assert_eq!(
        e.start_f32(now, &data),
        Err(EngineError::NonFinite { index: 5 })
    );
    assert!(!e.is_busy());
    assert_eq!(e.next_seq(), 0);
    data[5] = 0.0;
    assert_eq!(
        e.start_f32(now, &data),
        Err(EngineError::NonFinite { index: 7 })
    );
    data[7] = f32::NEG_INFINITY;
    assert_eq!(
        e.start_f32(now, &data),
        Err(EngineError::NonFinite { index: 7 })
    );
}

#[test]
fn a_packet_overtaken_by_three_results_is_resent_at_once() {
    let t0 = Instant::now();
    let mut e = Engine::new(config(1, 8, 1)).unwrap();
    e.start_i32(t0, &[10, 11, 12, 13, 14, 15]).unwrap();
    let sent = drain(&mut e, t0);
    assert_eq!(sent.len(), 6);
    // Packet 0's result is lost; the results of 1 and 2 are not enough.
    let ms = Duration::from_millis;
    for p in &sent[1..3] {
        e.handle_packet(t0 + ms(1), &reflect(p));
    }
    assert!(drain(&mut e, t0 + ms(1)).is_empty());
    // The result of 3 overtakes 0 by three packets: 0 goes again, before
    // its timeout, byte-identical.
    e.handle_packet(t0 + ms(1), &reflect(&sent[3]));
    assert!(e.poll_timeout() > Some(t0 + ms(1)));
    assert_eq!(drain(&mut e, t0 + ms(1)), [sent[0].clone()]);
    assert_eq!(e.stats().early_retransmissions, 1);
    assert_eq!(e.stats().retransmissions, 1);
    // More results later: not resent again before its timer.
    e.handle_packet(t0 + ms(2), &reflect(&sent[4]));
    assert!(drain(&mut e, t0 + ms(2)).is_empty());
    e.handle_packet(t0 + ms(3), &reflect(&sent[0]));
    e.handle_packet(t0 + ms(3), &reflect(&sent[5]));
    assert_eq!(e.poll_event(), Some(Event::Done));
    let mut out = [0; 6];
    e.take_i32(&mut out).unwrap();
    assert_eq!(out, [10, 11, 12, 13, 14, 15]);
    assert_eq!(e.stats().early_retransmissions, 1);
}

#[test]
fn the_last_packets_result_overtakes_every_packet_before_it() {
    let t0 = Instant::now();
    let mut e = Engine::new(config(1, 8, 1)).unwrap();
    e.start_i32(t0, &[1, 2, 3, 4]).unwrap();
    let sent = drain(&mut e, t0);
    // Packet 2's result is lost; the last packet's arrives.
    for k in [0, 1, 3] {
        e.handle_packet(t0, &reflect(&sent[k]));
    }
    assert_eq!(drain(&mut e, t0), [sent[2].clone()]);
    assert_eq!(e.stats().early_retransmissions, 1);
    e.handle_packet(t0, &reflect(&sent[2]));
    assert_eq!(e.poll_event(), Some(Event::Done));
}

#[test]
fn retransmission_is_byte_identical_and_backs_off() {
    let t0 = Instant::now();
    let cfg = EngineConfig {
        retransmit_timeout: Duration::from_millis(2),
        max_retransmit_timeout: Duration::from_millis(10),
        ..config(1, 2, 4)
    };
    let mut e = Engine::new(cfg).unwrap();
    e.start_i32(t0, &[1, 2, 3, 4, 5, 6, 7, 8, 9]).unwrap();
    let sent = drain(&mut e, t0);
    assert_eq!(sent.len(), 2);
    let ms = Duration::from_millis;
    assert_eq!(e.poll_timeout(), Some(t0 + ms(2)));
    e.handle_timeout(t0 + ms(1));
    assert!(drain(&mut e, t0 + ms(1)).is_empty(), "not yet due");
    // Expected gaps between transmissions: 2, 4, 8, then capped at 10.
    let mut now = t0;
    for gap in [2, 4, 8, 10, 10] {
        now += ms(gap);
        assert_eq!(e.poll_timeout(), Some(now));
        e.handle_timeout(now);
        let again = drain(&mut e, now);
        assert_eq!(again, sent, "same bytes, both positions");
    }
    assert_eq!(e.stats().retransmissions, 10);
    assert_eq!(e.stats().packets_sent, 12);
    // Results stop the timers. No round trip was measured since the
    // timeouts (Karn: a retransmitted packet's result gives no sample), so
    // the next packet keeps the backed-off timeout (RFC 6298, 5.5).
    e.handle_packet(now, &reflect(&sent[0]));
    e.handle_packet(now, &reflect(&sent[1]));
    let next = drain(&mut e, now);
    assert_eq!(next.len(), 1);
    assert_eq!(repr_of(&next[0]).seq, 2);
    assert_eq!(e.poll_timeout(), Some(now + ms(10)));
    e.handle_timeout(now + ms(10));
    let again = drain(&mut e, now + ms(10));
    assert_eq!(again, next, "only the new packet is due");
}

#[test]
fn float_retransmission_is_rebuilt_byte_identical() {
    // Retransmissions are built again from the operation: the bytes must not
    // change while other packets' results overwrite their blocks and set
    // their max exponents. Two workers, so that results differ from the
    // contributions (the peer's values are 4x this worker's).
    let t0 = Instant::now();
    let ms = Duration::from_millis;
    let cfg = two_workers_with_fixed_timeout();
    let mut e = Engine::new(cfg).unwrap();
    let data = [0.5f32, -1.5, 3.0, 7.0, -0.125, 2.0, 1e-3, -9.0, 0.0];
    e.start_f32(t0, &data).unwrap();
    // C = 3 blocks, W = 2: L = 2, packets 0..5.
    let result = with_peer;
    let exponents = drain(&mut e, t0);
    assert_eq!(exponents.len(), 2);
    e.handle_packet(t0, &result(&exponents[0]));
    let block0 = drain(&mut e, t0);
    assert_eq!(block0.len(), 1, "packet 2 (block 0)");
    e.handle_packet(t0, &result(&exponents[1]));
    let block1 = drain(&mut e, t0);
    assert_eq!(block1.len(), 1, "packet 3 (block 1)");
    // Both time out: rebuilt as sent.
    e.handle_timeout(t0 + ms(5));
    let again = drain(&mut e, t0 + ms(5));
    assert_eq!(again, [block0[0].clone(), block1[0].clone()]);
    // Block 0's result overwrites its values and frees its position for
    // packet 4 (block 2); packet 3, still waiting, is rebuilt unchanged.
    e.handle_packet(t0 + ms(6), &result(&block0[0]));
    let block2 = drain(&mut e, t0 + ms(6));
    assert_eq!(block2.len(), 1, "packet 4 (block 2)");
    e.handle_timeout(t0 + ms(20));
    let later = drain(&mut e, t0 + ms(20));
    assert_eq!(later, [block1[0].clone(), block2[0].clone()]);
    e.handle_packet(t0 + ms(21), &result(&block1[0]));
    e.handle_packet(t0 + ms(21), &result(&block2[0]));
    assert_eq!(e.poll_event(), Some(Event::Done));
    assert_eq!(e.stats().retransmissions, 4);
}

#[test]
fn duplicate_and_foreign_results_are_ignored() {
    let now = Instant::now();
    let mut e = Engine::new(config(1, 4, 2)).unwrap();
    e.start_i32(now, &[1, 2, 3, 4]).unwrap();
    let sent = drain(&mut e, now);
    let good = reflect(&sent[0]);
    let mut bad = Vec::new();
    let variants: [fn(&mut Repr); 6] = [
        |r| r.job_id += 1,
        |r| r.key ^= 1,
        |r| r.seq += 4,
        |r| r.set = !r.set,
        |r| r.slot += 2,
        |r| r.msg_type = MsgType::Contribution,
    ];
    for change in variants {
        let mut r = repr_of(&good);
        change(&mut r);
        let mut out = Vec::new();
        r.emit_to_vec(&elements_of(&good), &mut out);
        bad.push(out);
    }
    // Wrong length for this packet.
    let mut r = repr_of(&good);
    r.elem_count = 1;
    let mut out = Vec::new();
    r.emit_to_vec(&[9], &mut out);
    bad.push(out);
    bad.push(good[..10].to_vec());
    bad.push(Vec::new());
    for b in &bad {
        e.handle_packet(now, b);
    }
    assert_eq!(e.stats().results_ignored, bad.len() as u64);
    assert_eq!(e.stats().results_received, 0);
    e.handle_packet(now, &good);
    e.handle_packet(now, &good);
    assert_eq!(e.stats().results_received, 1);
    assert_eq!(e.stats().results_ignored, bad.len() as u64 + 1);
    e.handle_packet(now, &reflect(&sent[1]));
    assert_eq!(e.poll_event(), Some(Event::Done));
    // After the operation, its results are foreign too.
    e.handle_packet(now, &good);
    assert_eq!(e.stats().results_ignored, bad.len() as u64 + 2);
    let mut out = [0; 4];
    e.take_i32(&mut out).unwrap();
    assert_eq!(out, [1, 2, 3, 4]);
}

#[test]
fn sequence_and_set_continue_across_calls_and_types() {
    let now = Instant::now();
    let mut e = Engine::new(config(1, 2, 2)).unwrap();
    e.start_i32(now, &[1, 2, 3, 4, 5]).unwrap(); // 3 packets: seq 0..3
    assert_eq!(e.next_seq(), 3);
    run_single(&mut e, now);
    let mut out = [0; 5];
    e.take_i32(&mut out).unwrap();
    // f32 of 2 blocks: L = 2, 4 packets, seq 3..7.
    e.start_f32(now, &[1.0, 2.0, 3.0]).unwrap();
    assert_eq!(e.next_seq(), 7);
    let sent = drain(&mut e, now);
    let ids: Vec<(u32, u16, bool)> = sent
        .iter()
        .map(|p| {
            let r = repr_of(p);
            (r.seq, r.slot, r.set)
        })
        .collect();
    assert_eq!(ids, [(3, 101, true), (4, 100, false)]);
    for p in sent {
        e.handle_packet(now, &reflect(&p));
    }
    let sent = drain(&mut e, now);
    let r = repr_of(&sent[0]);
    assert_eq!((r.seq, r.slot, r.set), (5, 101, false));
    for p in sent {
        e.handle_packet(now, &reflect(&p));
    }
    assert_eq!(e.poll_event(), Some(Event::Done));
    let mut f = [0.0; 3];
    e.take_f32(&mut f).unwrap();
    assert_eq!(f, [1.0, 2.0, 3.0]);
    // An empty tensor uses no sequence numbers and is done at once.
    e.start_i32(now, &[]).unwrap();
    assert_eq!(e.poll_event(), Some(Event::Done));
    assert_eq!(e.next_seq(), 7);
    e.take_i32(&mut []).unwrap();
}

#[test]
fn stall_is_reported_once_and_retransmission_continues() {
    let t0 = Instant::now();
    let cfg = EngineConfig {
        stall_timeout: Duration::from_millis(50),
        ..config(1, 4, 2)
    };
    let mut e = Engine::new(cfg).unwrap();
    e.start_i32(t0, &[1, 2, 3, 4, 5, 6]).unwrap();
    let sent = drain(&mut e, t0);
    e.handle_packet(t0, &reflect(&sent[1]));
    let mut now = t0;
    let mut stalls = Vec::new();
    while now < t0 + Duration::from_millis(400) {
        now = e.poll_timeout().unwrap();
        e.handle_timeout(now);
        drain(&mut e, now);
        while let Some(ev) = e.poll_event() {
            stalls.push((now, ev));
        }
    }
    assert_eq!(
        stalls,
        [(
            t0 + Duration::from_millis(50),
            Event::Stalled {
                slots: vec![100, 102],
                waited: Duration::from_millis(50)
            }
        )]
    );
    assert_eq!(e.stats().stalls, 1);
    assert!(e.stats().retransmissions > 5, "keeps retransmitting");
    assert!(e.is_busy());
    e.abort();
    assert!(!e.is_busy());
    assert_eq!(e.poll_timeout(), None);
    assert!(drain(&mut e, now).is_empty());
    let mut out = [0; 6];
    assert_eq!(e.take_i32(&mut out), Err(EngineError::NotDone));
    // The sequence continues after the aborted operation.
    assert_eq!(e.next_seq(), 3);
}

#[test]
fn api_misuse_is_refused() {
    let now = Instant::now();
    let mut e = Engine::new(config(1, 4, 2)).unwrap();
    e.start_i32(now, &[1, 2, 3]).unwrap();
    assert_eq!(e.start_i32(now, &[1]), Err(EngineError::Busy));
    assert_eq!(e.start_f32(now, &[1.0]), Err(EngineError::Busy));
    let mut out = [0; 3];
    assert_eq!(e.take_i32(&mut out), Err(EngineError::NotDone));
    run_single(&mut e, now);
    let mut f = [0.0; 3];
    assert_eq!(e.take_f32(&mut f), Err(EngineError::WrongType));
    let mut short = [0; 2];
    assert_eq!(
        e.take_i32(&mut short),
        Err(EngineError::LengthMismatch {
            expected: 3,
            got: 2
        })
    );
    e.take_i32(&mut out).unwrap();
    assert_eq!(out, [1, 2, 3]);
    assert!(matches!(
        Engine::new(EngineConfig {
            window: 0,
            ..config(1, 4, 2)
        }),
        Err(EngineError::InvalidConfig(_))
    ));
}

#[test]
fn invalid_result_exponent_is_ignored() {
    let now = Instant::now();
    let mut e = Engine::new(config(1, 4, 2)).unwrap();
    e.start_f32(now, &[1.0, 2.0]).unwrap();
    let sent = drain(&mut e, now);
    let mut r = repr_of(&sent[0]);
    r.msg_type = MsgType::Result;
    r.exponent = 300;
    let mut out = Vec::new();
    r.emit_to_vec(&[], &mut out);
    e.handle_packet(now, &out);
    assert_eq!(e.stats().results_ignored, 1);
    // Below this worker's own exponent (1 for block [1, 2]): not a max.
    r.exponent = 0;
    out.clear();
    r.emit_to_vec(&[], &mut out);
    e.handle_packet(now, &out);
    assert_eq!(e.stats().results_ignored, 2);
    e.handle_packet(now, &reflect(&sent[0]));
    assert_eq!(e.stats().results_received, 1);
}

#[test]
fn in_place_results_go_to_the_callers_buffer() {
    let now = Instant::now();
    let mut e = Engine::new(config(1, 8, 2)).unwrap();
    let data = [1.0f32, -2.0, 0.25, 0.5, 0.0, 3.0];
    let mut buf = data;
    e.start_f32_in_place(now, &buf).unwrap();
    // Nothing copied yet; without the buffer only the exponent packets go.
    assert_eq!(e.input_f32(), Some(&[][..]));
    let exponents = drain(&mut e, now);
    assert_eq!(exponents.len(), 3);
    for p in &exponents {
        e.handle_packet_into(now, &reflect(p), Output::F32(&mut buf));
    }
    assert!(
        drain(&mut e, now).is_empty(),
        "data packets need the buffer"
    );
    let mut packets = 0;
    let mut out = Vec::new();
    loop {
        let mut sent = Vec::new();
        while e.poll_transmit_into(now, &mut out, Output::F32(&mut buf)) {
            sent.push(std::mem::take(&mut out));
        }
        if sent.is_empty() {
            break;
        }
        for p in sent {
            packets += 1;
            let r = reflect(&p);
            // The plain call, and a buffer of another length or type, are ignored.
            e.handle_packet(now, &r);
            e.handle_packet_into(now, &r, Output::F32(&mut [0.0; 5]));
            e.handle_packet_into(now, &r, Output::I32(&mut [0; 6]));
            e.handle_packet_into(now, &r, Output::F32(&mut buf));
        }
    }
    assert_eq!(packets, 3, "one per block");
    assert_eq!(e.poll_event(), Some(Event::Done));
    assert_eq!(e.stats().results_ignored, 3 * 3);
    // World 1: the sum is the input (exact for these values); the engine
    // holds a copy of every block it sent.
    assert_eq!(buf, data);
    assert_eq!(e.input_f32(), Some(&data[..]));
    assert_eq!(e.input_i32(), None);
    assert_eq!(e.take_f32(&mut [0.0; 6]), Err(EngineError::InPlaceMismatch));
    e.finish_in_place().unwrap();
    assert_eq!(e.finish_in_place(), Err(EngineError::NotDone));
    // A plain operation: results through handle_packet_into are ignored,
    // finish_in_place is refused, take works.
    e.start_i32(now, &[1, 2, 3]).unwrap();
    assert_eq!(e.input_i32(), None);
    let sent = drain(&mut e, now);
    for p in &sent {
        e.handle_packet_into(now, &reflect(p), Output::I32(&mut [0; 3]));
    }
    assert!(e.is_busy());
    for p in &sent {
        e.handle_packet(now, &reflect(p));
    }
    assert_eq!(e.finish_in_place(), Err(EngineError::InPlaceMismatch));
    let mut ints = [0; 3];
    e.take_i32(&mut ints).unwrap();
    assert_eq!(ints, [1, 2, 3]);
}

#[test]
fn out_of_place_sends_and_sums_as_a_plain_operation() {
    // Same input, same results and losses: the out-of-place engine must
    // send the same bytes (retransmissions included, rebuilt from the
    // caller's input) and write the same sums, and keep no copy.
    let t0 = Instant::now();
    let ms = Duration::from_millis;
    let cfg = two_workers_with_fixed_timeout();
    let data = [0.5f32, -1.5, 3.0, 7.0, -0.125, 2.0, 1e-3, -9.0, 0.0, 4.5];
    let mut plain = Engine::new(cfg.clone()).unwrap();
    let mut apart = Engine::new(cfg).unwrap();
    plain.start_f32(t0, &data).unwrap();
    apart.start_f32_out_of_place(t0, &data).unwrap();
    assert_eq!(apart.input_f32(), None, "nothing is kept for a restore");
    let mut output = [f32::NAN; 10];
    let mut now = t0;
    let mut lost_rounds = 0;
    for round in 0.. {
        assert!(round < 100, "no end");
        let sent = drain(&mut plain, now);
        let mut sent_apart = Vec::new();
        let mut buf = Vec::new();
        while apart.poll_transmit_from(now, &mut buf, Input::F32(&data)) {
            sent_apart.push(std::mem::take(&mut buf));
        }
        assert_eq!(sent_apart, sent, "round {round}");
        // Every third round's results are lost: both retransmit.
        if round % 3 == 2 && !sent.is_empty() {
            lost_rounds += 1;
        } else {
            for p in &sent {
                let r = with_peer(p);
                plain.handle_packet(now, &r);
                apart.handle_packet_into(now, &r, Output::F32(&mut output));
            }
        }
        if plain.is_done() {
            break;
        }
        now += ms(5);
        plain.handle_timeout(now);
        apart.handle_timeout(now);
    }
    assert!(lost_rounds > 0 && apart.stats().retransmissions > 0);
    assert_eq!(apart.stats(), plain.stats());
    assert_eq!(apart.poll_event(), Some(Event::Done));
    let mut expected = [0.0f32; 10];
    plain.take_f32(&mut expected).unwrap();
    assert_eq!(output.map(f32::to_bits), expected.map(f32::to_bits));
    assert_eq!(
        apart.take_f32(&mut [0.0; 10]),
        Err(EngineError::InPlaceMismatch)
    );
    apart.finish_in_place().unwrap();
    assert_eq!(apart.finish_in_place(), Err(EngineError::NotDone));
}

#[test]
fn out_of_place_sends_only_from_its_input() {
    let now = Instant::now();
    let mut e = Engine::new(config(1, 8, 2)).unwrap();
    let data = [1, -2, 3, 4, 5];
    e.start_i32_out_of_place(now, &data).unwrap();
    let mut buf = Vec::new();
    let mut copy = data;
    // Without the input, or with another buffer, nothing goes.
    assert!(!e.poll_transmit(now, &mut buf));
    assert!(!e.poll_transmit_into(now, &mut buf, Output::I32(&mut copy)));
    assert!(!e.poll_transmit_from(now, &mut buf, Input::I32(&data[1..])));
    assert!(!e.poll_transmit_from(now, &mut buf, Input::F32(&[0.0; 5])));
    assert!(buf.is_empty());
    let mut output = [0; 5];
    loop {
        let mut sent = Vec::new();
        while e.poll_transmit_from(now, &mut buf, Input::I32(&data)) {
            sent.push(std::mem::take(&mut buf));
        }
        if sent.is_empty() {
            break;
        }
        for p in sent {
            // The plain call is ignored; the output takes the result.
            e.handle_packet(now, &reflect(&p));
            e.handle_packet_into(now, &reflect(&p), Output::I32(&mut output));
        }
    }
    assert_eq!(e.poll_event(), Some(Event::Done));
    assert_eq!(e.stats().results_ignored, 3);
    assert_eq!(output, data);
    assert_eq!(e.input_i32(), None);
    e.finish_in_place().unwrap();
}

/// A sink whose new space holds old bytes, as a driver's reused send queue does.
struct DirtySink(Vec<u8>);

impl PacketSink for DirtySink {
    fn append(&mut self, len: usize) -> &mut [u8] {
        let start = self.0.len();
        self.0.resize(start + len, 0xa5);
        &mut self.0[start..]
    }
}

#[test]
fn packets_written_over_old_bytes_equal_packets_in_zeroed_space() {
    // Every byte of a packet is written: exponent-only packets, a block that
    // is zero everywhere (sent without quantizing), a short last block, i32.
    let t0 = Instant::now();
    let floats = [1.5f32, -2.0, 0.25, 0.0, 0.0, 0.0, 3.0, -7.5, 1e-3, 42.0];
    let ints = [7i32, -1, i32::MAX, 0, 5];
    for float in [true, false] {
        let mut clean = Engine::new(config(1, 2, 3)).unwrap();
        let mut dirty = Engine::new(config(1, 2, 3)).unwrap();
        for e in [&mut clean, &mut dirty] {
            if float {
                e.start_f32(t0, &floats).unwrap();
            } else {
                e.start_i32(t0, &ints).unwrap();
            }
        }
        let mut packets = 0;
        loop {
            let mut want = Vec::new();
            let mut got = DirtySink(Vec::new());
            let sent = clean.poll_transmit_append(t0, &mut want);
            assert_eq!(dirty.poll_transmit_append(t0, &mut got), sent);
            if !sent {
                break;
            }
            assert_eq!(got.0, want, "packet {packets} (float {float})");
            clean.handle_packet(t0, &reflect(&want));
            dirty.handle_packet(t0, &reflect(&got.0));
            packets += 1;
        }
        assert_eq!(packets, if float { 4 + 2 } else { 2 });
        assert!(clean.is_done() && dirty.is_done());
    }
}

//! A live UDP switch under hostile traffic: a 2-rank job keeps exact results
//! while other sockets send garbage, forged and misdirected packets and a
//! flood; every drop reason moves, and the switch keeps serving.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, SocketAddrV4, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use packet_format::control::{JobParams, JoinRequest, Reply, Request};
use packet_format::{Flags, MsgType, Packet, Repr, NO_EXPONENT};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use switch_emu::control::status::StatusReport;
use switch_emu::udp::{client, Server, ServerConfig, ServerHandle};

const WINDOW: u16 = 8;
const ELEMS: u16 = 64;
const ROUNDS: u32 = 300;
const FLOOD: usize = 100_000;

fn v4(addr: SocketAddr) -> SocketAddrV4 {
    match addr {
        SocketAddr::V4(a) => a,
        other => panic!("not IPv4: {other}"),
    }
}

fn start() -> ServerHandle {
    let config = ServerConfig {
        log: false,
        join_timeout: Duration::from_secs(5),
        ..ServerConfig::loopback_ephemeral()
    };
    Server::bind(config).unwrap().spawn().unwrap()
}

fn send_line(stream: &TcpStream, req: &Request) {
    let mut line = serde_json::to_vec(req).unwrap();
    line.push(b'\n');
    (&*stream).write_all(&line).unwrap();
}

fn read_reply(reader: &mut BufReader<TcpStream>) -> Reply {
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"))
}

struct Member {
    reader: BufReader<TcpStream>,
    udp: UdpSocket,
}

/// Joins `world` ranks over TCP; returns them with the job's parameters.
fn join_job(control: SocketAddrV4, job: &str, world: u16) -> (Vec<Member>, JobParams) {
    let mut members = Vec::new();
    for rank in 0..world {
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let stream = TcpStream::connect(control).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        send_line(
            &stream,
            &Request::Join(JoinRequest {
                job: job.into(),
                rank,
                world,
                data_addr: v4(udp.local_addr().unwrap()),
                window: WINDOW,
                elements_per_packet: ELEMS,
            }),
        );
        members.push(Member {
            reader: BufReader::new(stream),
            udp,
        });
    }
    let mut params = Vec::new();
    for m in &mut members {
        match read_reply(&mut m.reader) {
            Reply::Joined(p) => params.push(p),
            other => panic!("join refused: {other:?}"),
        }
    }
    assert!(params.iter().all(|p| *p == params[0]));
    (members, params[0])
}

fn values(round: u32, rank: u16) -> Vec<i32> {
    (0..i32::from(ELEMS))
        .map(|i| {
            (round as i32)
                .wrapping_mul(0x0100_0193)
                .wrapping_add(i.wrapping_mul(0x7fff_0001))
                .wrapping_add(i32::from(rank) * 977)
        })
        .collect()
}

fn contribution(p: &JobParams, rank: u16, seq: u32, slot: u16, elements: &[i32]) -> Vec<u8> {
    let repr = Repr {
        msg_type: MsgType::Contribution,
        set: (seq / u32::from(p.window)) % 2 == 1,
        flags: Flags::default(),
        job_id: p.job_id,
        rank,
        key: p.key,
        seq,
        slot,
        elem_count: elements.len() as u16,
        exponent: NO_EXPONENT,
    };
    let mut out = Vec::new();
    repr.emit_to_vec(elements, &mut out);
    out
}

fn slot_of(p: &JobParams, seq: u32) -> u16 {
    p.slot_base + (seq % u32::from(p.window)) as u16
}

/// One lock-step round: every rank sends, then waits for its result,
/// retransmitting the same bytes on timeout. Returns each rank's result.
fn round(members: &[Member], p: &JobParams, switch: SocketAddrV4, seq: u32) -> Vec<Vec<i32>> {
    let packets: Vec<Vec<u8>> = (0..members.len() as u16)
        .map(|r| contribution(p, r, seq, slot_of(p, seq), &values(seq, r)))
        .collect();
    let mut results = vec![None; members.len()];
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut buf = [0u8; 2048];
    for (m, pkt) in members.iter().zip(&packets) {
        m.udp.send_to(pkt, switch).unwrap();
    }
    while results.iter().any(Option::is_none) {
        assert!(Instant::now() < deadline, "round {seq} never completed");
        for (r, m) in members.iter().enumerate() {
            if results[r].is_some() {
                continue;
            }
            m.udp
                .set_read_timeout(Some(Duration::from_millis(20)))
                .unwrap();
            match m.udp.recv_from(&mut buf) {
                Ok((n, _)) => {
                    let packet = Packet::new_checked(&buf[..n]).unwrap();
                    let repr = Repr::parse(&packet).unwrap();
                    assert_eq!(repr.msg_type, MsgType::Result);
                    if repr.seq == seq {
                        assert_eq!(
                            (repr.job_id, repr.key, repr.slot),
                            (p.job_id, p.key, slot_of(p, seq))
                        );
                        results[r] = Some(
                            (0..usize::from(repr.elem_count))
                                .map(|i| packet.element(i).unwrap())
                                .collect(),
                        );
                    }
                }
                Err(_) => {
                    m.udp.send_to(&packets[r], switch).unwrap();
                }
            }
        }
    }
    results.into_iter().map(Option::unwrap).collect()
}

fn expected(seq: u32, world: u16) -> Vec<i32> {
    let mut sum = vec![0i32; usize::from(ELEMS)];
    for r in 0..world {
        for (s, v) in sum.iter_mut().zip(values(seq, r)) {
            *s = s.wrapping_add(v);
        }
    }
    sum
}

/// Sends every kind of hostile datagram, interleaved with a flood of
/// valid-looking contributions of a job that does not exist.
fn hostile(switch: SocketAddrV4, p: JobParams) -> usize {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut rng = SmallRng::seed_from_u64(42);
    let mut sent = 0usize;
    let good = contribution(&p, 0, 5, p.slot_base, &[1; 64]);
    let mut flood = good.clone();
    Packet::new_unchecked(&mut flood[..]).set_job_id(p.job_id.wrapping_add(200));
    let mut send = |bytes: &[u8]| {
        // A full receive buffer on the switch drops silently; that is fine.
        let _ = sock.send_to(bytes, switch);
        sent += 1;
    };
    for _ in 0..10 {
        for _ in 0..20 {
            // Random bytes.
            let len = rng.gen_range(0..200);
            let bytes: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
            send(&bytes);
        }
        // Truncated headers and a payload shorter than announced.
        for cut in [1, 10, 23, good.len() - 1] {
            send(&good[..cut]);
        }
        // Wrong version.
        let mut wrong = good.clone();
        wrong[0] = 9;
        send(&wrong);
        // Unknown job.
        let mut pkt = good.clone();
        Packet::new_unchecked(&mut pkt[..]).set_job_id(p.job_id.wrapping_add(100));
        send(&pkt);
        // A valid header (right job, key, slot) claiming rank 0, from another socket.
        send(&good);
        // Slot outside the lease, from a foreign socket (source is checked first).
        let mut pkt = good.clone();
        Packet::new_unchecked(&mut pkt[..]).set_slot(p.slot_base + p.window + 1);
        send(&pkt);
        for _ in 0..FLOOD / 10 {
            send(&flood);
        }
    }
    sent
}

fn drops(report: &StatusReport, reason: &str) -> u64 {
    report.counters.as_ref().unwrap().drops[reason]
}

#[test]
fn hostile_traffic_does_not_change_results() {
    let server = start();
    let addrs = server.local_addrs();
    let (members, p) = join_job(addrs.control, "victim", 2);
    assert_eq!(p.switch_data_addr, addrs.data);

    let attacker = std::thread::spawn(move || hostile(addrs.data, p));
    // Forgeries that need the registered socket (the attacker "controls" it
    // only for these): wrong key, slot outside the lease. Sent from rank 0's
    // socket, with seq far ahead so they could never be a valid round.
    let mut bad_key = contribution(&p, 0, 7, p.slot_base, &[5; 64]);
    Packet::new_unchecked(&mut bad_key[..]).set_key(p.key ^ 0x5a5a_5a5a);
    let outside = contribution(&p, 0, 7, p.slot_base + p.window, &[5; 64]);
    for _ in 0..10 {
        members[0].udp.send_to(&bad_key, addrs.data).unwrap();
        members[0].udp.send_to(&outside, addrs.data).unwrap();
    }

    // Rounds while the attack lasts (and at least ROUNDS of them).
    let mut seq = 0;
    while seq < ROUNDS || !attacker.is_finished() {
        let want = expected(seq, 2);
        for (r, got) in round(&members, &p, addrs.data, seq).into_iter().enumerate() {
            assert_eq!(got, want, "round {seq}, rank {r}");
        }
        seq += 1;
    }
    let sent = attacker.join().unwrap();
    assert!(sent > FLOOD);

    // The switch still serves: more exact rounds after the flood.
    for seq in seq..seq + 20 {
        let want = expected(seq, 2);
        for got in round(&members, &p, addrs.data, seq) {
            assert_eq!(got, want, "round {seq} after the flood");
        }
    }

    let report = client::status(SocketAddr::V4(addrs.control), Duration::from_secs(5)).unwrap();
    for reason in [
        "truncated",
        "bad_version",
        "unknown_job",
        "wrong_source",
        "bad_key",
        "slot_outside_lease",
    ] {
        assert!(
            drops(&report, reason) > 0,
            "{reason} did not move: {:?}",
            report.counters
        );
    }
    assert!(
        drops(&report, "unknown_job") >= 1000,
        "the flood reached the core: {:?}",
        report.counters
    );
    let job = &report.jobs[0];
    let job_counters = job.counters.as_ref().unwrap();
    assert_eq!(job_counters.totals["completed_slots"], u64::from(seq + 20));
    for reason in ["wrong_source", "bad_key", "slot_outside_lease"] {
        assert!(job_counters.drops[reason] > 0, "job counter {reason}");
    }
    assert!(report.driver["rx_datagrams"] > 0);

    // Clean end: both leave, the lease is free again.
    for mut m in members {
        send_line(m.reader.get_ref(), &Request::Leave);
        assert_eq!(read_reply(&mut m.reader), Reply::Left);
    }
    let report = client::status(SocketAddr::V4(addrs.control), Duration::from_secs(5)).unwrap();
    assert!(report.jobs.is_empty());
    assert_eq!(report.lease.free, u32::from(report.config.slots));
    assert_eq!(report.ended[0].outcome, "completed");
    server.shutdown();
    let last = server.join().unwrap();
    assert!(drops(&last, "unknown_job") >= 1000);
}

#[test]
fn disconnect_fails_the_job_for_the_other_rank() {
    let server = start();
    let addrs = server.local_addrs();
    let (mut members, p) = join_job(addrs.control, "fragile", 2);
    assert_eq!(round(&members, &p, addrs.data, 0)[0], expected(0, 2));
    let gone = members.pop().unwrap();
    drop(gone);
    let t = Instant::now();
    match read_reply(&mut members[0].reader) {
        Reply::JobFailed { ranks, reason } => {
            assert_eq!(ranks, [1]);
            assert!(reason.contains("rank 1"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    assert!(t.elapsed() < Duration::from_secs(2));
    let report = client::status(SocketAddr::V4(addrs.control), Duration::from_secs(5)).unwrap();
    assert!(report.jobs.is_empty());
    assert_eq!(report.ended[0].outcome, "expired");
    assert_eq!(report.lease.free, u32::from(report.config.slots));
    server.shutdown();
    server.join().unwrap();
}

#[test]
fn silent_rank_expires_the_job() {
    let server = Server::bind(ServerConfig {
        log: false,
        worker_timeout: Duration::from_millis(300),
        ..ServerConfig::loopback_ephemeral()
    })
    .unwrap()
    .spawn()
    .unwrap();
    let addrs = server.local_addrs();
    let (mut members, p) = join_job(addrs.control, "stalled", 2);
    // Rank 0 contributes to slot 0; rank 1 stays silent (its process paused).
    let pkt = contribution(&p, 0, 0, p.slot_base, &values(0, 0));
    members[0].udp.send_to(&pkt, addrs.data).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let report = client::status(SocketAddr::V4(addrs.control), Duration::from_secs(5)).unwrap();
    let slots = &report.jobs[0].incomplete_slots;
    assert_eq!(
        (
            slots.len(),
            slots[0].missing.as_slice(),
            slots[0].contributed.as_slice()
        ),
        (1, &[1][..], &[0][..])
    );
    let t = Instant::now();
    for m in &mut members {
        match read_reply(&mut m.reader) {
            Reply::JobFailed { ranks, reason } => {
                assert_eq!(ranks, [1], "{reason}");
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(t.elapsed() < Duration::from_secs(2));
    let report = client::status(SocketAddr::V4(addrs.control), Duration::from_secs(5)).unwrap();
    assert_eq!(report.ended[0].outcome, "expired");
    assert_eq!(report.lease.free, u32::from(report.config.slots));
    server.shutdown();
    server.join().unwrap();
}

/// A window of contributions in one burst (one GSO message where the
/// kernel offers it, so the switch may receive it as one GRO buffer): every
/// result arrives, exact, with offloads on and off.
#[test]
fn pipelined_window_with_and_without_offloads() {
    for offloads in [true, false] {
        let server = Server::bind(ServerConfig {
            log: false,
            gro: offloads,
            gso: offloads,
            ..ServerConfig::loopback_ephemeral()
        })
        .unwrap();
        let used = server.offloads();
        assert!(offloads || (!used.gro && !used.gso));
        let server = server.spawn().unwrap();
        let addrs = server.local_addrs();
        let (members, p) = join_job(addrs.control, "solo", 1);
        let fd = std::os::fd::AsRawFd::as_raw_fd(&members[0].udp);
        for burst in 0..20u32 {
            let mut data = Vec::new();
            let mut runs = Vec::new();
            for k in 0..u32::from(WINDOW) {
                let seq = burst * u32::from(WINDOW) + k;
                let pkt = contribution(&p, 0, seq, slot_of(&p, seq), &values(seq, 0));
                runs.push(udp_batch::Run {
                    dst: Some(addrs.data),
                    offset: data.len(),
                    len: pkt.len(),
                    segment: None,
                });
                data.extend_from_slice(&pkt);
            }
            let sent = if used.gso {
                let one = udp_batch::Run {
                    dst: Some(addrs.data),
                    offset: 0,
                    len: data.len(),
                    segment: Some(runs[0].len as u16),
                };
                udp_batch::send_runs(fd, &data, &[one]).unwrap()
            } else {
                udp_batch::send_runs(fd, &data, &runs).unwrap()
            };
            assert!(sent >= 1);
            let mut got = std::collections::BTreeMap::new();
            let mut buf = [0u8; 2048];
            members[0]
                .udp
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            while got.len() < usize::from(WINDOW) {
                let (n, _) = members[0]
                    .udp
                    .recv_from(&mut buf)
                    .expect("a result of the burst");
                let packet = Packet::new_checked(&buf[..n]).unwrap();
                let elements: Vec<i32> = (0..usize::from(ELEMS))
                    .map(|i| packet.element(i).unwrap())
                    .collect();
                got.insert(packet.seq(), elements);
            }
            for (seq, elements) in got {
                assert_eq!(elements, expected(seq, 1), "seq {seq}, offloads {offloads}");
            }
        }
        server.shutdown();
        let report = server.join().unwrap();
        assert_eq!(report.driver["tx_datagrams"], 20 * u64::from(WINDOW));
        if used.gso && used.gro {
            // A burst sent as one GSO message arrives as one GRO buffer, and
            // its eight results to one worker leave as one GSO message.
            assert_eq!(
                report.driver["rx_buffers_coalesced"], 20,
                "{:?}",
                report.driver
            );
            assert_eq!(report.driver["tx_gso_messages"], 20, "{:?}", report.driver);
        }
        if !used.gso {
            assert_eq!(report.driver["tx_gso_messages"], 0);
        }
    }
}

/// Seeded loss injection in the driver: results stay exact (workers
/// retransmit) and the driver counts what it dropped.
#[test]
fn injected_loss_keeps_results_exact() {
    let server = Server::bind(ServerConfig {
        log: false,
        drop: 0.2,
        seed: 7,
        ..ServerConfig::loopback_ephemeral()
    })
    .unwrap()
    .spawn()
    .unwrap();
    let addrs = server.local_addrs();
    let (members, p) = join_job(addrs.control, "lossy", 2);
    for seq in 0..100 {
        for got in round(&members, &p, addrs.data, seq) {
            assert_eq!(got, expected(seq, 2), "round {seq}");
        }
    }
    server.shutdown();
    let report = server.join().unwrap();
    assert!(report.driver["injected_loss"] > 10, "{:?}", report.driver);
    let job = &report.jobs[0].counters.as_ref().unwrap().totals;
    assert!(
        job["retransmissions"] > 0 || job["unicast_results"] > 0,
        "{job:?}"
    );
}

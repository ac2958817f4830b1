//! `switch-emu serve --port ...` (the binary, started with exactly the flags
//! `SwitchProcess` and the Mininet `InaSwitch` pass) as the switch of 3
//! worker namespaces: workers join through the control plane, which is
//! reached in-band through the switch's CPU port, send int32 contributions
//! over kernel UDP to the switch IP and get exact sums; `switch-emu status`
//! then shows the job and the L2 counters. Needs root (see `ina_tests::netns`).

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, SocketAddrV4, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use ina_tests::netns::{binary, enter_netns, in_ns, root_or_skip, unique_name, TopoGuard};
use ina_tests::pcapfile;
use packet_format::control::{JobParams, JoinRequest, Reply, Request};
use packet_format::frame::parse_udp;
use packet_format::{Flags, MsgType, Packet, Repr, NO_EXPONENT};
use switch_emu::control::status::StatusReport;
use switch_emu::topo::run::SwitchProcess;
use switch_emu::topo::{TopoSpec, Topology};

const WORLD: usize = 3;
const WINDOW: u16 = 4;
const ELEMS: u16 = 64;
const ROUNDS: u32 = 200;

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

fn values(seq: u32, rank: usize) -> Vec<i32> {
    (0..i32::from(ELEMS))
        .map(|i| {
            (seq as i32)
                .wrapping_mul(0x0100_0193)
                .wrapping_add(i.wrapping_mul(0x7fff_0001))
                .wrapping_add(rank as i32 * 977)
        })
        .collect()
}

fn expected(seq: u32) -> Vec<i32> {
    let mut sum = vec![0i32; usize::from(ELEMS)];
    for rank in 0..WORLD {
        for (s, v) in sum.iter_mut().zip(values(seq, rank)) {
            *s = s.wrapping_add(v);
        }
    }
    sum
}

fn contribution(p: &JobParams, rank: usize, seq: u32) -> Vec<u8> {
    let repr = Repr {
        msg_type: MsgType::Contribution,
        set: (seq / u32::from(p.window)) % 2 == 1,
        flags: Flags::default(),
        job_id: p.job_id,
        rank: rank as u16,
        key: p.key,
        seq,
        slot: p.slot_base + (seq % u32::from(p.window)) as u16,
        elem_count: ELEMS,
        exponent: NO_EXPONENT,
    };
    let mut out = Vec::new();
    repr.emit_to_vec(&values(seq, rank), &mut out);
    out
}

/// One worker inside its namespace: joins, runs `ROUNDS` lock-step rounds
/// (retransmitting on timeout), checks every sum, leaves. Returns the
/// number of retransmissions.
fn worker(t: &Topology, rank: usize) -> u64 {
    let w = &t.workers[rank];
    enter_netns(&w.netns);
    let control = SocketAddrV4::new(t.switch_ip, packet_format::CONTROL_PORT);
    let udp = UdpSocket::bind(SocketAddrV4::new(w.ip, 0)).unwrap();
    udp.set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let SocketAddr::V4(data_addr) = udp.local_addr().unwrap() else {
        panic!("not IPv4")
    };
    let stream = TcpStream::connect_timeout(&control.into(), Duration::from_secs(5)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    send_line(
        &stream,
        &Request::Join(JoinRequest {
            job: "l2serve".into(),
            rank: rank as u16,
            world: WORLD as u16,
            data_addr,
            window: WINDOW,
            elements_per_packet: ELEMS,
        }),
    );
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let p = match read_reply(&mut reader) {
        Reply::Joined(p) => p,
        other => panic!("rank {rank}: join refused: {other:?}"),
    };
    assert_eq!(*p.switch_data_addr.ip(), t.switch_ip);
    let mut retransmissions = 0;
    let mut buf = [0u8; 2048];
    for seq in 0..ROUNDS {
        let packet = contribution(&p, rank, seq);
        udp.send_to(&packet, p.switch_data_addr).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        let sums = loop {
            assert!(
                Instant::now() < deadline,
                "rank {rank}: round {seq} never completed"
            );
            let n = match udp.recv_from(&mut buf) {
                Ok((n, _)) => n,
                Err(_) => {
                    retransmissions += 1;
                    udp.send_to(&packet, p.switch_data_addr).unwrap();
                    continue;
                }
            };
            let pkt = Packet::new_checked(&buf[..n]).expect("result header");
            let repr = Repr::parse(&pkt).expect("result repr");
            if repr.msg_type != MsgType::Result || repr.seq != seq {
                continue;
            }
            break pkt
                .payload()
                .chunks_exact(4)
                .map(|c| i32::from_be_bytes(c.try_into().unwrap()))
                .collect::<Vec<i32>>();
        };
        assert_eq!(sums, expected(seq), "rank {rank}: round {seq}");
    }
    send_line(&stream, &Request::Leave);
    assert_eq!(read_reply(&mut reader), Reply::Left);
    retransmissions
}

#[test]
fn serve_in_l2_mode_runs_jobs_through_the_cpu_port() {
    if !root_or_skip() {
        return;
    }
    let (_guard, t) = TopoGuard::up(TopoSpec {
        name: unique_name("l2sv"),
        workers: WORLD,
        rate: None,
        mtu: Some(1500),
        loss: None,
        fabric: switch_emu::topo::Fabric::SwitchEmu,
    });
    let exe = binary("switch-emu", "switch-emu");
    let pcap = std::env::temp_dir().join(format!("ina-l2-serve-{}.pcap", std::process::id()));
    let mut switch = SwitchProcess::start(
        &t,
        &exe.to_string_lossy(),
        &["--pcap".to_string(), pcap.to_string_lossy().into_owned()],
    )
    .expect("switch");
    let retransmissions: u64 = std::thread::scope(|s| {
        let handles: Vec<_> = (0..WORLD)
            .map(|rank| {
                let t = &t;
                s.spawn(move || worker(t, rank))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    // `switch-emu status` from a worker namespace, through the switch.
    let control = format!("{}:{}", t.switch_ip, packet_format::CONTROL_PORT);
    let out = in_ns(
        &t.workers[1].netns,
        &[
            &exe.to_string_lossy(),
            "status",
            "--json",
            "--control",
            &control,
        ],
    );
    assert!(
        out.status.success(),
        "status: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    switch.stop();
    let report: StatusReport = serde_json::from_slice(&out.stdout).expect("status JSON");
    eprintln!("{}", report.render());
    assert_eq!(report.control["jobs_started"], 1);
    assert_eq!(report.control["jobs_completed"], 1);
    let d = &report.driver;
    let contributions = u64::from(ROUNDS) * WORLD as u64;
    assert!(d["agg_in"] >= contributions, "{d:?}");
    assert!(d["agg_out"] >= contributions, "{d:?}");
    assert!(d["to_cpu"] > 0 && d["arp_replies"] > 0, "{d:?}");
    assert!(d["control_connections"] > WORLD as u64, "{d:?}");
    let counters = report.counters.expect("dataplane counters");
    let packets = counters.totals["packets"];
    assert!(
        (contributions..=contributions + retransmissions).contains(&packets),
        "{packets} packets, {retransmissions} retransmissions: {counters:?}"
    );
    // The capture holds each result as its receiver got it: the switch
    // sends a result as its own headers and the payload all members share,
    // and the capture puts them together.
    let bytes = std::fs::read(&pcap).unwrap();
    std::fs::remove_file(&pcap).unwrap();
    let mut results = [0u32; WORLD];
    for frame in pcapfile::frames(&bytes).unwrap() {
        // ARP and the control plane's TCP pass too; the IPv4 checksum of
        // every UDP frame is verified.
        let Ok(udp) = parse_udp(&frame) else { continue };
        if udp.src.port != packet_format::UDP_PORT {
            continue;
        }
        let pkt = Packet::new_checked(udp.payload).expect("a result");
        let repr = Repr::parse(&pkt).expect("a result");
        assert_eq!(repr.msg_type, MsgType::Result);
        let rank = t
            .workers
            .iter()
            .position(|w| w.ip == udp.dst.ip)
            .expect("to a worker");
        let sums: Vec<i32> = pkt
            .payload()
            .chunks_exact(4)
            .map(|c| i32::from_be_bytes(c.try_into().unwrap()))
            .collect();
        assert_eq!(
            sums,
            expected(repr.seq),
            "captured result {} to rank {rank}",
            repr.seq
        );
        results[rank] += 1;
    }
    assert!(results.iter().all(|&n| n >= ROUNDS), "{results:?}");
}

//! Arbitrary frames, each with an arbitrary offload header, into the L2
//! switch (with a two-worker job whose MACs it has learned), and its
//! originated frames through the driver's staging: nothing panics; a UDP
//! super-frame is captured as datagrams that parse and add up to its
//! payload; every frame a port would send, split as a capture splits it,
//! is a valid UDP/IPv4 frame when it is a result, and a merged run's partial
//! checksum completes to a valid one; no result is lost or duplicated by
//! the merging. Results go to each member, to the job's group out of each
//! member's port, or to the group through a replication port, as the
//! input's first byte says.
//!
//! Input: a mode byte, then records of `[port: u8][offload: 10 bytes][len:
//! u16 BE][len bytes of frame]` (a short last record takes what is left).
#![no_main]

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use packet_format::frame::{parse_udp, parse_udp_no_checksum};
use packet_format::{MsgType, Packet, Repr};
use switch_emu::core::{Config, JobSpec, SwitchCore};
use switch_emu::l2::offload::{complete_checksum, for_each_datagram, Offload};
use switch_emu::l2::staging::{stage_originated, Staged};
use switch_emu::l2::{L2Config, L2Switch, TxFrames};

const PORTS: usize = 3;
const SW_MAC: [u8; 6] = [2, 0xaa, 0, 0, 0, 0xfe];
const SW_IP: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 254);

fn worker_mac(n: u8) -> [u8; 6] {
    [2, 0, 0, 0, 0, n]
}

/// An ARP request from worker `n` for the switch, so the switch learns it.
fn arp_request(n: u8) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&[0xff; 6]);
    f.extend_from_slice(&worker_mac(n));
    f.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1]);
    f.extend_from_slice(&worker_mac(n));
    f.extend_from_slice(&[10, 77, 0, n]);
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&SW_IP.octets());
    f
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, data)) = data.split_first() else {
        return;
    };
    let (result_groups, replication_port) = match mode % 3 {
        0 => (None, false),
        1 => (Some(Ipv4Addr::new(239, 77, 0, 0)), false),
        _ => (Some(Ipv4Addr::new(239, 77, 0, 0)), true),
    };
    let mut core = SwitchCore::new(Config::default()).expect("default config");
    core.install_job(JobSpec {
        id: 1,
        key: 0x1111_1111,
        slot_base: 0,
        slot_count: 8,
        world: 2,
        members: vec![
            SocketAddrV4::new(Ipv4Addr::new(10, 77, 0, 1), 40001),
            SocketAddrV4::new(Ipv4Addr::new(10, 77, 0, 2), 40002),
        ],
    })
    .expect("job");
    let mut sw = L2Switch::new(L2Config {
        mac: SW_MAC,
        ip: SW_IP,
        ports: PORTS,
        aging: Duration::from_secs(300),
        cpu_port: Some(PORTS - 1),
        result_groups,
        replication_port,
    });
    let now = Instant::now();
    let mut tx = TxFrames::default();
    for (port, n) in [(0, 1u8), (1, 2)] {
        sw.handle_frame(now, port, &arp_request(n), &mut core, &mut tx);
    }
    tx.clear();
    // The replication port, if any, is port number PORTS.
    let mut staged: Vec<Staged> = (0..PORTS + usize::from(replication_port))
        .map(|_| Staged::default())
        .collect();
    let mut scratch = Vec::new();
    let mut rest = data;
    while rest.len() >= 13 {
        let port = usize::from(rest[0]) % (PORTS + 1);
        let offload = Offload::parse(rest[1..11].try_into().expect("10 bytes"));
        let len = usize::from(u16::from_be_bytes([rest[11], rest[12]]));
        let body = &rest[13..];
        let frame = &body[..len.min(body.len())];
        rest = &body[frame.len()..];

        // The capture's split: a parsed super-frame's datagrams add up to it.
        let mut payload = Vec::new();
        let mut pieces = 0;
        for_each_datagram(offload, frame, &mut scratch, |d| {
            pieces += 1;
            if let Ok(udp) = parse_udp_no_checksum(d) {
                payload.extend_from_slice(udp.payload);
            }
        });
        if let (Some(size), Ok(udp)) = (offload.udp_segment_size(), parse_udp_no_checksum(frame)) {
            if frame[14] == 0x45 {
                assert_eq!(pieces, udp.payload.len().div_ceil(size));
                assert_eq!(payload, udp.payload);
            }
        }

        tx.clear();
        sw.handle_offloaded(now, port, offload, frame, &mut core, &mut tx);
        // Every copy of a result to a worker or a group (not flooded).
        let results_in: usize = tx
            .iter()
            .filter(|f| f.head.is_some_and(|h| h[..6] != [0xff; 6]))
            .map(|f| f.ports.iter().filter(|&p| p < staged.len()).count())
            .sum();
        for s in &mut staged {
            s.clear();
        }
        stage_originated(&mut staged, &tx);
        let mut results_out = 0;
        for s in &mut staged {
            s.finish_runs();
            for (h, parts) in s.frames(tx.bytes()) {
                let bytes: Vec<u8> = parts.flatten().copied().collect();
                let mut whole = bytes.clone();
                if h.udp_segment_size().is_some() {
                    complete_checksum(&mut whole, h);
                    assert!(
                        parse_udp(&whole).is_ok(),
                        "a merged run's checksum completes"
                    );
                }
                for_each_datagram(h, &bytes, &mut scratch, |d| {
                    if let Ok(udp) = parse_udp(d) {
                        let repr =
                            Repr::parse(&Packet::new_checked(udp.payload).expect("a result"))
                                .expect("a result");
                        if repr.msg_type == MsgType::Result && udp.dst.mac != [0xff; 6] {
                            results_out += 1;
                        }
                    }
                });
            }
        }
        assert_eq!(
            results_out, results_in,
            "results lost or duplicated by merging"
        );
    }
});

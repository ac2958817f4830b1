//! Byte-level tests of the L2 switch logic.

use super::*;
use crate::core::{Config, JobSpec};
use packet_format::frame::{emit_udp, parse_udp};
use packet_format::{Flags, MsgType, Packet, Repr, NO_EXPONENT};

const SW_MAC: [u8; 6] = [0x02, 0xaa, 0, 0, 0, 0xfe];
const SW_IP: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 254);

fn mac(n: u8) -> [u8; 6] {
    [0x02, 0, 0, 0, 0, n]
}

fn ip(n: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 77, 0, n)
}

fn switch(ports: usize) -> (L2Switch, SwitchCore, TxFrames, Instant) {
    let sw = L2Switch::new(L2Config {
        mac: SW_MAC,
        ip: SW_IP,
        ports,
        aging: Duration::from_secs(300),
        cpu_port: None,
        result_groups: None,
        replication_port: false,
    });
    (
        sw,
        SwitchCore::new(Config::default()).unwrap(),
        TxFrames::default(),
        Instant::now(),
    )
}

/// A raw Ethernet frame with an opaque payload.
fn raw(src: [u8; 6], dst: [u8; 6], ethertype: u16) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(&[0x5a; 46]);
    f
}

fn arp(op: ArpOperation, sha: [u8; 6], spa: Ipv4Addr, dst: [u8; 6], tpa: Ipv4Addr) -> Vec<u8> {
    let repr = ArpRepr::EthernetIpv4 {
        operation: op,
        source_hardware_addr: EthernetAddress(sha),
        source_protocol_addr: spa,
        target_hardware_addr: EthernetAddress([0; 6]),
        target_protocol_addr: tpa,
    };
    let eth = EthernetRepr {
        src_addr: EthernetAddress(sha),
        dst_addr: EthernetAddress(dst),
        ethertype: EthernetProtocol::Arp,
    };
    let mut buf = vec![0u8; eth.buffer_len() + repr.buffer_len()];
    let mut frame = EthernetFrame::new_unchecked(&mut buf[..]);
    eth.emit(&mut frame);
    repr.emit(&mut ArpPacket::new_unchecked(frame.payload_mut()));
    buf
}

fn contribution(rank: u16, values: &[i32]) -> Vec<u8> {
    contribution_to(rank, 0, values)
}

/// A contribution to slot `slot` in its first round (seq = slot).
fn contribution_to(rank: u16, slot: u16, values: &[i32]) -> Vec<u8> {
    let repr = Repr {
        msg_type: MsgType::Contribution,
        set: false,
        flags: Flags::default(),
        job_id: 7,
        rank,
        key: 0xdead_beef,
        seq: u32::from(slot),
        slot,
        elem_count: values.len() as u16,
        exponent: NO_EXPONENT,
    };
    let mut out = Vec::new();
    repr.emit_to_vec(values, &mut out);
    out
}

fn worker(n: u8) -> Endpoint {
    Endpoint {
        mac: mac(n),
        ip: ip(n),
        port: 40000 + u16::from(n),
    }
}

fn switch_endpoint() -> Endpoint {
    Endpoint {
        mac: SW_MAC,
        ip: SW_IP,
        port: UDP_PORT,
    }
}

fn udp_frame(from: Endpoint, to: Endpoint, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    emit_udp(from, to, payload, &mut f);
    f
}

fn install(core: &mut SwitchCore, workers: &[u8]) {
    core.install_job(JobSpec {
        id: 7,
        key: 0xdead_beef,
        slot_base: 0,
        slot_count: 16,
        world: workers.len() as u16,
        members: workers
            .iter()
            .map(|&n| SocketAddrV4::new(ip(n), 40000 + u16::from(n)))
            .collect(),
    })
    .unwrap();
}

#[test]
fn learns_floods_and_never_returns_to_ingress() {
    let (mut sw, mut core, mut tx, now) = switch(4);
    let a_to_b = raw(mac(1), mac(2), 0x0800);
    // B unknown: flooded to every port but the ingress.
    assert_eq!(
        sw.handle_frame(now, 0, &a_to_b, &mut core, &mut tx),
        Decision::Forward(PortMask(0b1110))
    );
    // B answers from port 2: A is known on port 0.
    let b_to_a = raw(mac(2), mac(1), 0x0800);
    assert_eq!(
        sw.handle_frame(now, 2, &b_to_a, &mut core, &mut tx),
        Decision::Forward(PortMask::one(0))
    );
    assert_eq!(
        sw.handle_frame(now, 0, &a_to_b, &mut core, &mut tx),
        Decision::Forward(PortMask::one(2))
    );
    // C on port 0 talks to A, also on port 0: nothing leaves.
    let c_to_a = raw(mac(3), mac(1), 0x0800);
    assert_eq!(
        sw.handle_frame(now, 0, &c_to_a, &mut core, &mut tx),
        Decision::Forward(PortMask(0))
    );
    // Broadcast: every port but the ingress.
    let bcast = raw(mac(2), [0xff; 6], 0x88b5);
    assert_eq!(
        sw.handle_frame(now, 2, &bcast, &mut core, &mut tx),
        Decision::Forward(PortMask(0b1011))
    );
    // After aging, A is unknown again.
    let later = now + Duration::from_secs(301);
    assert_eq!(
        sw.handle_frame(later, 2, &b_to_a, &mut core, &mut tx),
        Decision::Forward(PortMask(0b1011))
    );
    // Multicast source MACs and runt frames are dropped.
    let bad = raw([0x03, 0, 0, 0, 0, 1], mac(1), 0x0800);
    assert_eq!(
        sw.handle_frame(now, 1, &bad, &mut core, &mut tx),
        Decision::Consumed
    );
    assert_eq!(
        sw.handle_frame(now, 1, &[0u8; 10], &mut core, &mut tx),
        Decision::Consumed
    );
    assert_eq!(sw.counters().malformed, 2);
    assert!(tx.is_empty());
}

#[test]
fn answers_arp_for_its_ip_and_floods_other_arp() {
    let (mut sw, mut core, mut tx, now) = switch(3);
    let req = arp(ArpOperation::Request, mac(1), ip(1), [0xff; 6], SW_IP);
    assert_eq!(
        sw.handle_frame(now, 1, &req, &mut core, &mut tx),
        Decision::Consumed
    );
    let frames = tx.to_frames();
    assert_eq!(frames.len(), 1);
    let (bytes, ports) = &frames[0];
    assert_eq!(*ports, PortMask::one(1));
    let eth = EthernetFrame::new_checked(bytes).unwrap();
    assert_eq!(eth.dst_addr().0, mac(1));
    assert_eq!(eth.src_addr().0, SW_MAC);
    let reply = ArpRepr::parse(&ArpPacket::new_checked(eth.payload()).unwrap()).unwrap();
    assert_eq!(
        reply,
        ArpRepr::EthernetIpv4 {
            operation: ArpOperation::Reply,
            source_hardware_addr: EthernetAddress(SW_MAC),
            source_protocol_addr: SW_IP,
            target_hardware_addr: EthernetAddress(mac(1)),
            target_protocol_addr: ip(1),
        }
    );
    tx.clear();
    // An ARP request for another host is flooded, not answered.
    let other = arp(ArpOperation::Request, mac(1), ip(1), [0xff; 6], ip(2));
    assert_eq!(
        sw.handle_frame(now, 1, &other, &mut core, &mut tx),
        Decision::Forward(PortMask(0b101))
    );
    assert!(tx.is_empty());
    assert_eq!(sw.counters().arp_replies, 1);
}

#[test]
fn answers_icmp_echo_with_valid_checksums() {
    let (mut sw, mut core, mut tx, now) = switch(2);
    let caps = ChecksumCapabilities::default();
    let echo = Icmpv4Repr::EchoRequest {
        ident: 0x1234,
        seq_no: 9,
        data: b"ping-data",
    };
    let ip_repr = Ipv4Repr {
        src_addr: ip(1),
        dst_addr: SW_IP,
        next_header: IpProtocol::Icmp,
        payload_len: echo.buffer_len(),
        hop_limit: 64,
    };
    let eth_repr = EthernetRepr {
        src_addr: EthernetAddress(mac(1)),
        dst_addr: EthernetAddress(SW_MAC),
        ethertype: EthernetProtocol::Ipv4,
    };
    let mut buf = vec![0u8; 14 + 20 + echo.buffer_len()];
    let mut f = EthernetFrame::new_unchecked(&mut buf[..]);
    eth_repr.emit(&mut f);
    let mut p = Ipv4Packet::new_unchecked(f.payload_mut());
    ip_repr.emit(&mut p, &caps);
    echo.emit(&mut Icmpv4Packet::new_unchecked(p.payload_mut()), &caps);

    assert_eq!(
        sw.handle_frame(now, 1, &buf, &mut core, &mut tx),
        Decision::Consumed
    );
    let (bytes, ports) = &tx.to_frames()[0];
    assert_eq!(*ports, PortMask::one(1));
    let eth = EthernetFrame::new_checked(bytes).unwrap();
    assert_eq!(eth.dst_addr().0, mac(1));
    let ipp = Ipv4Packet::new_checked(eth.payload()).unwrap();
    let parsed_ip = Ipv4Repr::parse(&ipp, &caps).unwrap(); // verifies the checksum
    assert_eq!((parsed_ip.src_addr, parsed_ip.dst_addr), (SW_IP, ip(1)));
    let icmp = Icmpv4Packet::new_checked(ipp.payload()).unwrap();
    assert_eq!(
        Icmpv4Repr::parse(&icmp, &caps).unwrap(),
        Icmpv4Repr::EchoReply {
            ident: 0x1234,
            seq_no: 9,
            data: b"ping-data",
        }
    );
    assert_eq!(sw.counters().icmp_replies, 1);
}

/// A 3-port switch with job 7 of workers 1 (port 0) and 2 (port 2), whose
/// MACs it learned from their ARP requests for the switch.
fn two_known_workers() -> (L2Switch, SwitchCore, TxFrames, Instant) {
    let (mut sw, mut core, mut tx, now) = switch(3);
    install(&mut core, &[1, 2]);
    for (port, n) in [(0usize, 1u8), (2, 2)] {
        let req = arp(ArpOperation::Request, mac(n), ip(n), [0xff; 6], SW_IP);
        sw.handle_frame(now, port, &req, &mut core, &mut tx);
    }
    tx.clear();
    (sw, core, tx, now)
}

#[test]
fn aggregation_results_go_to_each_workers_port() {
    let (mut sw, mut core, mut tx, now) = two_known_workers();
    let first = udp_frame(worker(1), switch_endpoint(), &contribution(0, &[1, -2, 3]));
    assert_eq!(
        sw.handle_frame(now, 0, &first, &mut core, &mut tx),
        Decision::Consumed
    );
    assert!(tx.is_empty());
    let mut second = udp_frame(
        worker(2),
        switch_endpoint(),
        &contribution(1, &[10, 20, 30]),
    );
    // A wrong UDP checksum does not keep it out: like the Tofino program,
    // the switch verifies none (no pass over the payload before adding it).
    second[packet_format::OUTER_HEADERS_LEN - 2] ^= 0x5a;
    assert!(parse_udp(&second).is_err());
    assert_eq!(
        sw.handle_frame(now, 2, &second, &mut core, &mut tx),
        Decision::Consumed
    );
    let frames = tx.to_frames();
    assert_eq!(frames.len(), 2);
    for ((bytes, ports), (port, n)) in frames.iter().zip([(0usize, 1u8), (2, 2)]) {
        assert_eq!(*ports, PortMask::one(port));
        let udp = parse_udp(bytes).unwrap(); // verifies the IPv4 checksum
                                             // Results carry no UDP checksum, as the Tofino program sends them.
        let at = packet_format::OUTER_HEADERS_LEN - 2;
        assert_eq!(bytes[at..at + 2], [0, 0]);
        assert_eq!(udp.src, switch_endpoint());
        assert_eq!(udp.dst, worker(n));
        let pkt = Packet::new_checked(udp.payload).unwrap();
        let repr = Repr::parse(&pkt).unwrap();
        assert_eq!(repr.msg_type, MsgType::Result);
        assert_eq!(repr.elem_count, 3);
        let sums: Vec<i32> = (0..3).map(|i| pkt.element(i).unwrap()).collect();
        assert_eq!(sums, vec![11, 18, 33]);
    }
    assert_eq!(sw.counters().agg_in, 2);
    assert_eq!(sw.counters().agg_out, 2);
}

#[test]
fn a_worker_that_moved_gets_its_next_result_on_its_new_port() {
    let (mut sw, mut core, mut tx, now) = two_known_workers();
    let complete = |sw: &mut L2Switch, core: &mut SwitchCore, tx: &mut TxFrames, slot| {
        tx.clear();
        for (port, n) in [(0usize, 1u8), (2, 2)] {
            let f = udp_frame(
                worker(n),
                switch_endpoint(),
                &contribution_to(u16::from(n) - 1, slot, &[1]),
            );
            sw.handle_frame(now, port, &f, core, tx);
        }
        tx.to_frames()
    };
    let ports = |frames: &[(Vec<u8>, PortMask)]| frames.iter().map(|f| f.1).collect::<Vec<_>>();
    let first = complete(&mut sw, &mut core, &mut tx, 0);
    assert_eq!(ports(&first), [PortMask::one(0), PortMask::one(2)]);
    // Worker 1 now sends from port 1 (at the same instant, so only the
    // table change can tell the switch its result headers are stale).
    let f = raw(mac(1), [0xff; 6], 0x88b5);
    sw.handle_frame(now, 1, &f, &mut core, &mut tx);
    // Its next contribution arrives on port 1 as well.
    tx.clear();
    let f = udp_frame(worker(1), switch_endpoint(), &contribution_to(0, 1, &[1]));
    sw.handle_frame(now, 1, &f, &mut core, &mut tx);
    let f = udp_frame(worker(2), switch_endpoint(), &contribution_to(1, 1, &[1]));
    sw.handle_frame(now, 2, &f, &mut core, &mut tx);
    let second = tx.to_frames();
    assert_eq!(ports(&second), [PortMask::one(1), PortMask::one(2)]);
    // The same headers as before: only the port changed.
    assert_eq!(
        second[0].0[..OUTER_HEADERS_LEN],
        first[0].0[..OUTER_HEADERS_LEN]
    );
}

#[test]
fn result_for_unknown_worker_is_flooded_with_broadcast_mac() {
    let (mut sw, mut core, mut tx, now) = switch(3);
    install(&mut core, &[1, 2]);
    let first = udp_frame(worker(1), switch_endpoint(), &contribution(0, &[5]));
    sw.handle_frame(now, 0, &first, &mut core, &mut tx);
    // Worker 1's entries age out before worker 2 completes the slot.
    let later = now + Duration::from_secs(301);
    let second = udp_frame(worker(2), switch_endpoint(), &contribution(1, &[6]));
    sw.handle_frame(later, 2, &second, &mut core, &mut tx);
    let frames = tx.to_frames();
    assert_eq!(frames.len(), 2);
    let (to_w1, ports) = &frames[0];
    assert_eq!(*ports, PortMask(0b111));
    let udp = parse_udp(to_w1).unwrap();
    assert_eq!(udp.dst.mac, [0xff; 6]);
    assert_eq!((udp.dst.ip, udp.dst.port), (ip(1), worker(1).port));
    assert_eq!(frames[1].1, PortMask::one(2));
    assert_eq!(sw.counters().agg_out_flooded, 1);
}

#[test]
fn frames_to_the_switch_it_does_not_serve_are_dropped() {
    let (mut sw, mut core, mut tx, now) = switch(2);
    let mut other_port = switch_endpoint();
    other_port.port = 9999;
    let f = udp_frame(worker(1), other_port, b"x");
    assert_eq!(
        sw.handle_frame(now, 0, &f, &mut core, &mut tx),
        Decision::Consumed
    );
    let to_mac = raw(mac(1), SW_MAC, 0x88b5);
    assert_eq!(
        sw.handle_frame(now, 0, &to_mac, &mut core, &mut tx),
        Decision::Consumed
    );
    assert_eq!(sw.counters().not_served, 2);
    assert!(tx.is_empty());
}

#[test]
fn unserved_traffic_for_the_switch_goes_to_the_cpu_port() {
    let (sw0, mut core, mut tx, now) = switch(3);
    let mut sw = L2Switch::new(L2Config {
        cpu_port: Some(2),
        ..*sw0.config()
    });
    // TCP-like traffic to the control port: to the CPU port.
    let mut control = switch_endpoint();
    control.port = packet_format::CONTROL_PORT;
    let f = udp_frame(worker(1), control, b"x");
    assert_eq!(
        sw.handle_frame(now, 0, &f, &mut core, &mut tx),
        Decision::Forward(PortMask::one(2))
    );
    // An ARP reply to the switch (the kernel's resolution of a worker) too.
    let reply = arp(ArpOperation::Reply, mac(1), ip(1), SW_MAC, SW_IP);
    assert_eq!(
        sw.handle_frame(now, 0, &reply, &mut core, &mut tx),
        Decision::Forward(PortMask::one(2))
    );
    // The CPU port's own frames to the switch MAC are not looped back.
    let from_cpu = raw(mac(5), SW_MAC, 0x88b5);
    assert_eq!(
        sw.handle_frame(now, 2, &from_cpu, &mut core, &mut tx),
        Decision::Consumed
    );
    // ARP requests for the switch IP are still answered by the dataplane.
    let req = arp(ArpOperation::Request, mac(1), ip(1), [0xff; 6], SW_IP);
    assert_eq!(
        sw.handle_frame(now, 0, &req, &mut core, &mut tx),
        Decision::Consumed
    );
    assert_eq!(tx.len(), 1);
    assert_eq!(sw.counters().to_cpu, 2);
}

#[test]
fn a_super_frame_of_contributions_is_aggregated_datagram_by_datagram() {
    let (mut sw, mut core, mut tx, now) = two_known_workers();
    // Each worker's three slots in one UDP GSO super-frame, as a worker's
    // kernel hands a GSO send to the switch's port with offloads on.
    let super_frame = |n: u8, rank: u16| {
        let datagrams: Vec<Vec<u8>> = (0..3u16)
            .map(|slot| {
                let mut c = contribution(rank, &[i32::from(slot) + 1, 100 * i32::from(n)]);
                let mut p = Packet::new_checked(&mut c[..]).unwrap();
                p.set_slot(slot);
                p.set_seq(u32::from(slot));
                c
            })
            .collect();
        let mut f = udp_frame(worker(n), switch_endpoint(), &datagrams[0]);
        for d in &datagrams[1..] {
            f.extend_from_slice(d);
        }
        // Its IPv4 and UDP lengths cover the whole run, as the kernel writes them.
        let (ip_len, udp_len) = ((f.len() - 14) as u16, (f.len() - 34) as u16);
        f[16..18].copy_from_slice(&ip_len.to_be_bytes());
        Ipv4Packet::new_unchecked(&mut f[14..]).fill_checksum();
        f[38..40].copy_from_slice(&udp_len.to_be_bytes());
        let offload = Offload {
            flags: super::super::offload::NEEDS_CSUM,
            gso_type: super::super::offload::GSO_UDP_L4,
            hdr_len: 42,
            gso_size: datagrams[0].len() as u16,
            csum_start: 34,
            csum_offset: 6,
        };
        (offload, f)
    };
    let (offload, f1) = super_frame(1, 0);
    assert_eq!(
        sw.handle_offloaded(now, 0, offload, &f1, &mut core, &mut tx),
        Decision::Consumed
    );
    assert!(tx.is_empty());
    let (offload, f2) = super_frame(2, 1);
    sw.handle_offloaded(now, 2, offload, &f2, &mut core, &mut tx);
    assert_eq!(
        (sw.counters().agg_in, sw.counters().super_frames_in),
        (6, 2)
    );
    // Three results to each worker, each a result frame a driver may merge.
    let frames: Vec<_> = tx.iter().collect();
    assert_eq!(frames.len(), 6);
    for (k, frame) in frames.into_iter().enumerate() {
        let slot = (k / 2) as u16;
        assert!(frame.is_result());
        assert_eq!(frame.ports, PortMask::one(if k % 2 == 0 { 0 } else { 2 }));
        let bytes = frame.to_vec();
        let udp = parse_udp(&bytes).unwrap();
        let pkt = Packet::new_checked(udp.payload).unwrap();
        assert_eq!(pkt.slot(), slot);
        let sums: Vec<i32> = (0..2).map(|i| pkt.element(i).unwrap()).collect();
        assert_eq!(sums, vec![2 * (i32::from(slot) + 1), 300]);
    }
}

const GROUPS: Ipv4Addr = Ipv4Addr::new(239, 77, 0, 0);

/// [`two_known_workers`] with results to job 7's group under [`GROUPS`],
/// through a replication port (port 3) or not; port 1 is the CPU port, so
/// the job's members sit on every port the replication port copies to.
fn two_known_workers_grouped(replication_port: bool) -> (L2Switch, SwitchCore, TxFrames, Instant) {
    let (sw, core, tx, now) = two_known_workers();
    let config = L2Config {
        result_groups: Some(GROUPS),
        replication_port,
        cpu_port: Some(1),
        ..*sw.config()
    };
    (sw.with_config(config), core, tx, now)
}

/// Both workers' contributions to slot 0; returns the frames queued.
fn complete_round(
    sw: &mut L2Switch,
    core: &mut SwitchCore,
    tx: &mut TxFrames,
    now: Instant,
) -> Vec<(Vec<u8>, PortMask)> {
    for (port, n) in [(0usize, 1u8), (2, 2)] {
        let f = udp_frame(
            worker(n),
            switch_endpoint(),
            &contribution(u16::from(n) - 1, &[n.into(), 5]),
        );
        assert_eq!(sw.handle_frame(now, port, &f, core, tx), Decision::Consumed);
    }
    tx.to_frames()
}

/// The one result of [`complete_round`], addressed to job 7's group.
fn assert_group_result(frames: &[(Vec<u8>, PortMask)], ports: PortMask) {
    assert_eq!(frames.len(), 1, "one frame for the whole group");
    let (bytes, mask) = &frames[0];
    assert_eq!(*mask, ports);
    let udp = parse_udp(bytes).unwrap();
    let group = Ipv4Addr::new(239, 77, 0, 7);
    assert_eq!(udp.src, switch_endpoint());
    assert_eq!(
        udp.dst,
        Endpoint {
            mac: [0x01, 0x00, 0x5e, 0x4d, 0x00, 0x07],
            ip: group,
            port: UDP_PORT,
        }
    );
    let pkt = Packet::new_checked(udp.payload).unwrap();
    assert_eq!(Repr::parse(&pkt).unwrap().msg_type, MsgType::Result);
    let sums: Vec<i32> = (0..2).map(|i| pkt.element(i).unwrap()).collect();
    assert_eq!(sums, [3, 10]);
}

#[test]
fn a_group_result_leaves_once_through_the_replication_port() {
    let (mut sw, mut core, mut tx, now) = two_known_workers_grouped(true);
    let frames = complete_round(&mut sw, &mut core, &mut tx, now);
    assert_group_result(&frames, PortMask::one(3));
    let c = sw.counters();
    assert_eq!(
        (
            c.agg_out,
            c.agg_out_grouped,
            c.agg_out_replicated,
            c.agg_out_flooded
        ),
        (1, 1, 1, 0)
    );
    // A retransmission after the round is answered by unicast to its sender.
    tx.clear();
    let again = udp_frame(worker(2), switch_endpoint(), &contribution(1, &[2, 5]));
    sw.handle_frame(now, 2, &again, &mut core, &mut tx);
    let frames = tx.to_frames();
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].1, PortMask::one(2));
    assert_eq!(parse_udp(&frames[0].0).unwrap().dst, worker(2));
    // Flooding never reaches the replication port (what is behind it copies a
    // frame to every port, so a flooded frame would come back).
    let unknown = raw(mac(1), mac(9), 0x0800);
    assert_eq!(
        sw.handle_frame(now, 0, &unknown, &mut core, &mut tx),
        Decision::Forward(PortMask(0b110))
    );
}

#[test]
fn a_group_on_part_of_the_ports_leaves_by_its_members_ports_only() {
    // Port 1 is a worker port now, with no member of job 7 behind it: the
    // replication port would copy the result there too.
    let (sw, mut core, mut tx, now) = two_known_workers_grouped(true);
    let config = L2Config {
        cpu_port: None,
        ..*sw.config()
    };
    let mut sw = sw.with_config(config);
    let frames = complete_round(&mut sw, &mut core, &mut tx, now);
    assert_group_result(&frames, PortMask(0b101));
    let c = sw.counters();
    assert_eq!((c.agg_out_grouped, c.agg_out_replicated), (1, 0));
}

#[test]
fn without_a_replication_port_a_group_result_leaves_by_each_members_port() {
    let (mut sw, mut core, mut tx, now) = two_known_workers_grouped(false);
    let frames = complete_round(&mut sw, &mut core, &mut tx, now);
    assert_group_result(&frames, PortMask(0b101));
    assert_eq!(sw.counters().agg_out_flooded, 0);
}

#[test]
fn a_group_result_is_flooded_while_a_members_port_is_unknown() {
    let (mut sw, mut core, mut tx, now) = two_known_workers_grouped(false);
    // Worker 1 contributes, and its table entries age out before worker 2's
    // contribution completes the round: worker 1's port is unknown then.
    let later = now + Duration::from_secs(301);
    let first = udp_frame(worker(1), switch_endpoint(), &contribution(0, &[1, 5]));
    sw.handle_frame(now, 0, &first, &mut core, &mut tx);
    let second = udp_frame(worker(2), switch_endpoint(), &contribution(1, &[2, 5]));
    sw.handle_frame(later, 2, &second, &mut core, &mut tx);
    assert_group_result(&tx.to_frames(), PortMask(0b111));
    assert_eq!(sw.counters().agg_out_flooded, 1);
}

#[test]
fn group_macs_follow_rfc_1112() {
    assert_eq!(
        group_mac(Ipv4Addr::new(239, 77, 1, 2)),
        [0x01, 0x00, 0x5e, 0x4d, 0x01, 0x02]
    );
    // Only the low 23 bits count.
    assert_eq!(
        group_mac(Ipv4Addr::new(239, 205, 1, 2)),
        [0x01, 0x00, 0x5e, 0x4d, 0x01, 0x02]
    );
}

#[test]
fn port_masks_add_and_remove_ports() {
    let mask = PortMask::default().with(0).with(3).with(3);
    assert_eq!(mask, PortMask(0b1001));
    assert_eq!(mask.without(0), PortMask(0b1000));
    assert_eq!(mask.without(1), mask);
    // Out of range: no port, and no shift overflow.
    assert_eq!(mask.with(MAX_PORTS), mask);
    assert_eq!(mask.without(MAX_PORTS), mask);
    assert_eq!(mask.iter().collect::<Vec<_>>(), [0, 3]);
}

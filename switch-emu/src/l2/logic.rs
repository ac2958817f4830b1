//! The sans-IO L2 switch: one frame in (port, bytes, time), a forwarding
//! decision and any frames the switch itself originates out. It learns MACs,
//! floods unknown and broadcast destinations, answers ARP and ICMP echo for
//! its own IP, and hands aggregation datagrams to the one [`SwitchCore`].

use std::net::{Ipv4Addr, SocketAddrV4};
use std::ops::Range;
use std::time::{Duration, Instant};

use packet_format::frame::{parse_udp_no_checksum, udp_headers_no_checksum, Endpoint};
use packet_format::{OUTER_HEADERS_LEN, UDP_PORT};
use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{
    ArpOperation, ArpPacket, ArpRepr, EthernetAddress, EthernetFrame, EthernetProtocol,
    EthernetRepr, Icmpv4Packet, Icmpv4Repr, IpProtocol, Ipv4Packet, Ipv4Repr,
};

use super::heads::{ResultHead, ResultHeads};
use super::offload::Offload;
use super::table::{MacTable, NeighborTable};
use crate::control::result_group;
use crate::core::{SwitchCore, Verdict};

/// Most ports one switch drives: port sets are `u64` bitmasks.
pub const MAX_PORTS: usize = 64;

/// A set of ports (bit i = port i).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PortMask(pub u64);

impl PortMask {
    /// Only `port`.
    pub fn one(port: usize) -> Self {
        if port < MAX_PORTS {
            PortMask(1 << port)
        } else {
            PortMask(0)
        }
    }
    /// The set and `port` (unchanged if `port` is out of range).
    pub fn with(self, port: usize) -> Self {
        PortMask(self.0 | PortMask::one(port).0)
    }
    /// The set without `port`.
    pub fn without(self, port: usize) -> Self {
        PortMask(self.0 & !PortMask::one(port).0)
    }
    /// Whether `port` is in the set.
    pub fn contains(self, port: usize) -> bool {
        port < MAX_PORTS && self.0 & (1 << port) != 0
    }
    /// The ports in the set, ascending.
    pub fn iter(self) -> impl Iterator<Item = usize> {
        // Bit by bit from the lowest set one: a result's mask has one bit,
        // and this runs for every result (scanning 64 bits showed in profiles).
        let mut rest = self.0;
        std::iter::from_fn(move || {
            (rest != 0).then(|| {
                let port = rest.trailing_zeros() as usize;
                rest &= rest - 1;
                port
            })
        })
    }
}

/// Identity and table settings of the switch.
#[derive(Debug, Clone, Copy)]
pub struct L2Config {
    /// The switch's own MAC (source of ARP/ICMP replies and results).
    pub mac: [u8; 6],
    /// The switch's own IPv4 address (workers send contributions to it).
    pub ip: Ipv4Addr,
    /// Number of switch ports (at most [`MAX_PORTS`], one fewer with a
    /// replication port).
    pub ports: usize,
    /// Aging time of MAC and neighbour entries.
    pub aging: Duration,
    /// The port of the switch's own kernel interface (the "CPU port", which
    /// carries the same MAC and IP and runs the TCP control plane): frames to
    /// the switch's MAC or IP that the dataplane does not serve go there.
    /// Without it they are dropped.
    pub cpu_port: Option<usize>,
    /// Base of the jobs' result groups ([`crate::control::result_group()`]):
    /// with it, a completed round's result leaves once, addressed to its
    /// job's IP multicast group, instead of once per member. `None`: a
    /// copy to each member.
    pub result_groups: Option<Ipv4Addr>,
    /// Whether port number `ports` (one past the switch ports) replicates:
    /// what is behind it copies each frame to every switch port but the
    /// CPU port, as a Tofino's packet replication engine copies to a
    /// multicast group's ports (`topo`: nftables `dup` on the port's veth
    /// peer; the copies share one buffer). A group result whose members sit
    /// on exactly those ports is sent there once; any other group's result
    /// goes out of its members' ports, so one job's results never take
    /// another job's links. It is never flooded to. Without it the switch
    /// sends every group result out of its members' ports itself.
    pub replication_port: bool,
}

/// What to do with the frame just handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Send the frame unchanged out of these ports (possibly none).
    Forward(PortMask),
    /// The switch consumed (or dropped) the frame.
    Consumed,
}

/// Frames the switch originates (ARP/ICMP replies, aggregation results),
/// packed into one buffer to avoid an allocation per frame. A result is
/// stored once however many members receive it: each member's frame is its
/// own headers followed by that one payload, so the switch never copies a
/// payload per member (the kernel copies it once per port it is sent on;
/// a group result sent to the replication port is copied once).
#[derive(Debug, Default)]
pub struct TxFrames {
    buf: Vec<u8>,
    frames: Vec<Queued>,
}

/// A frame in [`TxFrames`]: its headers (results only) and its bytes in
/// `TxFrames::buf` (a whole frame, or a result's shared payload).
#[derive(Debug)]
struct Queued {
    head: Option<[u8; OUTER_HEADERS_LEN]>,
    body: Range<usize>,
    ports: PortMask,
}

/// A frame the switch originated, as [`TxFrames::iter`] hands it out.
#[derive(Debug, Clone)]
pub struct OutFrame<'a> {
    /// For a result: the Ethernet/IPv4/UDP headers of this member's copy
    /// (a plain UDP frame a driver may merge with the next results to the
    /// same worker into one GSO super-frame). `None` for any other frame.
    pub head: Option<&'a [u8; OUTER_HEADERS_LEN]>,
    /// The result's payload (shared by every member), or the whole frame.
    pub body: &'a [u8],
    /// Where `body` lies in [`TxFrames::bytes`].
    pub body_range: Range<usize>,
    /// The ports it leaves on.
    pub ports: PortMask,
}

impl OutFrame<'_> {
    /// Whether this is a result (it has headers of its own).
    pub fn is_result(&self) -> bool {
        self.head.is_some()
    }

    /// The whole frame, headers and body, in one buffer.
    pub fn to_vec(&self) -> Vec<u8> {
        [self.head.map_or(&[][..], |h| &h[..]), self.body].concat()
    }
}

impl TxFrames {
    /// Forgets every frame (keeps the capacity).
    pub fn clear(&mut self) {
        self.buf.clear();
        self.frames.clear();
    }
    /// Number of frames queued.
    pub fn len(&self) -> usize {
        self.frames.len()
    }
    /// Whether no frame is queued.
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }
    /// The queued frames, in order.
    pub fn iter(&self) -> impl Iterator<Item = OutFrame<'_>> {
        self.frames.iter().map(|q| OutFrame {
            head: q.head.as_ref(),
            body: &self.buf[q.body.clone()],
            body_range: q.body.clone(),
            ports: q.ports,
        })
    }
    /// The buffer every [`OutFrame::body_range`] points into.
    pub fn bytes(&self) -> &[u8] {
        &self.buf
    }
    /// Each queued frame whole, with its ports (for tests and captures).
    pub fn to_frames(&self) -> Vec<(Vec<u8>, PortMask)> {
        self.iter().map(|f| (f.to_vec(), f.ports)).collect()
    }
    fn push_with(&mut self, ports: PortMask, write: impl FnOnce(&mut Vec<u8>)) {
        let body = self.push_body(write);
        self.frames.push(Queued {
            head: None,
            body,
            ports,
        });
    }
    fn push_body(&mut self, write: impl FnOnce(&mut Vec<u8>)) -> Range<usize> {
        let start = self.buf.len();
        write(&mut self.buf);
        start..self.buf.len()
    }
    /// Queues a result with `payload` (tests of the drivers' staging).
    #[cfg(test)]
    pub(crate) fn push_test_result(
        &mut self,
        ports: PortMask,
        head: [u8; OUTER_HEADERS_LEN],
        payload: &[u8],
    ) {
        let body = self.push_body(|buf| buf.extend_from_slice(payload));
        self.push_result(ports, head, body);
    }
    fn push_result(&mut self, ports: PortMask, head: [u8; OUTER_HEADERS_LEN], body: Range<usize>) {
        self.frames.push(Queued {
            head: Some(head),
            body,
            ports,
        });
    }
}

/// Per-switch frame counters (the core counts aggregation outcomes itself).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct L2Counters {
    /// Frames received on any port.
    pub frames_in: u64,
    /// Frames forwarded to one known port.
    pub unicast_forwarded: u64,
    /// Frames flooded (unknown destination, broadcast, multicast).
    pub flooded: u64,
    /// Frames whose destination sits on the ingress port (not sent back).
    pub filtered: u64,
    /// ARP requests for the switch's IP answered.
    pub arp_replies: u64,
    /// ICMP echo requests to the switch's IP answered.
    pub icmp_replies: u64,
    /// Aggregation datagrams handed to the core.
    pub agg_in: u64,
    /// UDP GSO super-frames among the frames received (their datagrams
    /// count one by one in `agg_in`).
    pub super_frames_in: u64,
    /// Result frames sent to workers (a result to a job's group counts once).
    pub agg_out: u64,
    /// Of those, results addressed to a job's multicast group.
    pub agg_out_grouped: u64,
    /// Of those, results sent once to the replication port.
    pub agg_out_replicated: u64,
    /// Results for a worker whose MAC is unknown (flooded with a broadcast MAC).
    pub agg_out_flooded: u64,
    /// Frames too short or malformed, or with a multicast source MAC.
    pub malformed: u64,
    /// Frames to the switch's MAC or IP that it does not serve, with no CPU port (dropped).
    pub not_served: u64,
    /// Frames to the switch's MAC or IP passed to the CPU port.
    pub to_cpu: u64,
}

/// The L2 switch state (tables and counters); the aggregation state lives
/// in the [`SwitchCore`] passed to [`L2Switch::handle_frame`].
#[derive(Debug)]
pub struct L2Switch {
    config: L2Config,
    macs: MacTable,
    neighbors: NeighborTable,
    counters: L2Counters,
    /// Result headers per member or group for the current instant.
    heads: ResultHeads,
}

const BROADCAST: [u8; 6] = [0xff; 6];

/// The Ethernet address of IPv4 multicast group `group` (RFC 1112: 01:00:5e
/// and the group's low 23 bits), which a host that joined it accepts.
pub fn group_mac(group: Ipv4Addr) -> [u8; 6] {
    let [_, b, c, d] = group.octets();
    [0x01, 0x00, 0x5e, b & 0x7f, c, d]
}

impl L2Switch {
    /// A switch with empty tables. `config.ports` is clamped to [`MAX_PORTS`]
    /// (one fewer with a replication port, which takes the next number).
    pub fn new(mut config: L2Config) -> Self {
        config.ports = config
            .ports
            .min(MAX_PORTS - usize::from(config.replication_port));
        L2Switch {
            macs: MacTable::new(config.aging),
            neighbors: NeighborTable::new(config.aging),
            config,
            counters: L2Counters::default(),
            heads: ResultHeads::default(),
        }
    }

    /// The same switch (tables and counters) with other settings.
    #[cfg(test)]
    pub(crate) fn with_config(self, config: L2Config) -> Self {
        let fresh = L2Switch::new(config);
        L2Switch {
            config: fresh.config,
            heads: fresh.heads,
            ..self
        }
    }

    /// The switch's identity and settings.
    pub fn config(&self) -> &L2Config {
        &self.config
    }

    /// Frame counters.
    pub fn counters(&self) -> &L2Counters {
        &self.counters
    }

    /// Drops aged table entries; call now and then (e.g. once a second).
    pub fn expire(&mut self, now: Instant) {
        self.macs.expire(now);
        self.neighbors.expire(now);
        self.heads.clear();
    }

    fn all_ports(&self) -> PortMask {
        if self.config.ports >= MAX_PORTS {
            PortMask(u64::MAX)
        } else {
            PortMask((1u64 << self.config.ports) - 1)
        }
    }

    fn all_but(&self, port: usize) -> PortMask {
        self.all_ports().without(port)
    }

    /// Handles one plain frame (no offload header) received on `in_port`
    /// at `now`: [`L2Switch::handle_offloaded`] with [`Offload::NONE`].
    pub fn handle_frame(
        &mut self,
        now: Instant,
        in_port: usize,
        frame: &[u8],
        core: &mut SwitchCore,
        tx: &mut TxFrames,
    ) -> Decision {
        self.handle_offloaded(now, in_port, Offload::NONE, frame, core, tx)
    }

    /// Handles one frame received on `in_port` at `now` with its offload
    /// header. Frames the switch originates are appended to `tx`; the
    /// returned decision says where the received frame itself goes (with
    /// its offload header unchanged). A UDP super-frame to the switch is
    /// aggregated datagram by datagram.
    pub fn handle_offloaded(
        &mut self,
        now: Instant,
        in_port: usize,
        offload: Offload,
        frame: &[u8],
        core: &mut SwitchCore,
        tx: &mut TxFrames,
    ) -> Decision {
        self.counters.frames_in += 1;
        if in_port >= self.config.ports {
            self.counters.malformed += 1;
            return Decision::Consumed;
        }
        let Ok(eth) = EthernetFrame::new_checked(frame) else {
            self.counters.malformed += 1;
            return Decision::Consumed;
        };
        let src = eth.src_addr();
        let dst = eth.dst_addr();
        if !src.is_unicast() {
            self.counters.malformed += 1;
            return Decision::Consumed;
        }
        if self.macs.learn(src.0, in_port, now) {
            self.heads.clear();
        }
        let to_me = dst.0 == self.config.mac;
        match eth.ethertype() {
            EthernetProtocol::Arp if self.handle_arp(now, in_port, eth.payload(), tx) => {
                return Decision::Consumed;
            }
            EthernetProtocol::Ipv4 => {
                if let Ok(ip) = Ipv4Packet::new_checked(eth.payload()) {
                    if ip.dst_addr() == self.config.ip
                        && (to_me || dst.is_broadcast() || dst.is_multicast())
                    {
                        if self.neighbors.learn(ip.src_addr(), src.0, now) {
                            self.heads.clear();
                        }
                        if self.handle_local_ipv4(now, in_port, offload, frame, core, tx) {
                            return Decision::Consumed;
                        }
                        if !to_me {
                            return self.cpu_decision(in_port);
                        }
                    }
                }
            }
            _ => {}
        }
        if to_me {
            return self.cpu_decision(in_port);
        }
        self.forward_decision(now, in_port, dst)
    }

    /// A frame for the switch that the dataplane does not serve: to the CPU
    /// port if there is one (and it did not come from there), else dropped.
    fn cpu_decision(&mut self, in_port: usize) -> Decision {
        match self.config.cpu_port {
            Some(cpu) if cpu != in_port && cpu < self.config.ports => {
                self.counters.to_cpu += 1;
                Decision::Forward(PortMask::one(cpu))
            }
            _ => {
                self.counters.not_served += 1;
                Decision::Consumed
            }
        }
    }

    fn forward_decision(&mut self, now: Instant, in_port: usize, dst: EthernetAddress) -> Decision {
        if !dst.is_unicast() {
            self.counters.flooded += 1;
            return Decision::Forward(self.all_but(in_port));
        }
        match self.macs.lookup(&dst.0, now) {
            Some(port) if port == in_port => {
                self.counters.filtered += 1;
                Decision::Forward(PortMask::default())
            }
            Some(port) => {
                self.counters.unicast_forwarded += 1;
                Decision::Forward(PortMask::one(port))
            }
            None => {
                self.counters.flooded += 1;
                Decision::Forward(self.all_but(in_port))
            }
        }
    }

    /// Learns from any ARP packet; answers requests for the switch's IP.
    /// Returns whether the packet was such a request (and so is consumed).
    fn handle_arp(
        &mut self,
        now: Instant,
        in_port: usize,
        payload: &[u8],
        tx: &mut TxFrames,
    ) -> bool {
        let Ok(arp) = ArpPacket::new_checked(payload) else {
            return false;
        };
        let Ok(ArpRepr::EthernetIpv4 {
            operation,
            source_hardware_addr,
            source_protocol_addr,
            target_protocol_addr,
            ..
        }) = ArpRepr::parse(&arp)
        else {
            return false;
        };
        if source_hardware_addr.is_unicast()
            && self
                .neighbors
                .learn(source_protocol_addr, source_hardware_addr.0, now)
        {
            self.heads.clear();
        }
        if target_protocol_addr != self.config.ip
            || operation != ArpOperation::Request
            || !source_hardware_addr.is_unicast()
        {
            return false;
        }
        {
            let reply = ArpRepr::EthernetIpv4 {
                operation: ArpOperation::Reply,
                source_hardware_addr: EthernetAddress(self.config.mac),
                source_protocol_addr: self.config.ip,
                target_hardware_addr: source_hardware_addr,
                target_protocol_addr: source_protocol_addr,
            };
            let eth = EthernetRepr {
                src_addr: EthernetAddress(self.config.mac),
                dst_addr: source_hardware_addr,
                ethertype: EthernetProtocol::Arp,
            };
            tx.push_with(PortMask::one(in_port), |buf| {
                let start = buf.len();
                buf.resize(start + eth.buffer_len() + reply.buffer_len(), 0);
                let mut frame = EthernetFrame::new_unchecked(&mut buf[start..]);
                eth.emit(&mut frame);
                reply.emit(&mut ArpPacket::new_unchecked(frame.payload_mut()));
            });
            self.counters.arp_replies += 1;
        }
        true
    }

    /// An IPv4 packet to the switch's IP: aggregation or ICMP echo.
    /// Returns whether the dataplane served it.
    fn handle_local_ipv4(
        &mut self,
        now: Instant,
        in_port: usize,
        offload: Offload,
        frame: &[u8],
        core: &mut SwitchCore,
        tx: &mut TxFrames,
    ) -> bool {
        // As on Tofino, the UDP checksum is not verified (no pass over the
        // payload; a super-frame's holds only the pseudo-header sum anyway).
        if let Ok(udp) = parse_udp_no_checksum(frame) {
            if udp.dst.port != UDP_PORT {
                return false;
            }
            let src = SocketAddrV4::new(udp.src.ip, udp.src.port);
            match offload.udp_segment_size() {
                Some(size) => {
                    self.counters.super_frames_in += 1;
                    for datagram in udp.payload.chunks(size) {
                        self.aggregate(now, src, datagram, core, tx);
                    }
                }
                None => self.aggregate(now, src, udp.payload, core, tx),
            }
            return true;
        }
        offload.gso_type == 0 && self.answer_echo(frame, in_port, tx).is_some()
    }

    /// One aggregation datagram from `src` through the core; its results out.
    fn aggregate(
        &mut self,
        now: Instant,
        src: SocketAddrV4,
        datagram: &[u8],
        core: &mut SwitchCore,
        tx: &mut TxFrames,
    ) {
        self.counters.agg_in += 1;
        // The core writes the result straight into the round's buffer.
        let mut verdict = Verdict::Absorbed;
        let payload = tx.push_body(|buf| {
            verdict = core.handle_packet_append(now, src, datagram, buf);
        });
        match verdict {
            Verdict::Multicast { job } => {
                let members = core.members(job).unwrap_or_default();
                match self.config.result_groups {
                    Some(base) => {
                        let group = result_group(base, job);
                        self.send_group_result(now, group, members, payload, tx);
                    }
                    None => {
                        for &member in members {
                            self.send_result(now, member, payload.clone(), tx);
                        }
                    }
                }
            }
            Verdict::Unicast { to } => self.send_result(now, to, payload, tx),
            Verdict::Absorbed | Verdict::Drop(_) => {}
        }
    }

    /// Queues the result whose payload is `payload` (in `tx`) once,
    /// addressed to `group`: to the replication port if the members sit on
    /// exactly the ports it copies to, else out of every port a member was
    /// learned on (every port if a member's is unknown). Without UDP
    /// checksum, as every result.
    fn send_group_result(
        &mut self,
        now: Instant,
        group: Ipv4Addr,
        members: &[SocketAddrV4],
        payload: Range<usize>,
        tx: &mut TxFrames,
    ) {
        self.counters.agg_out += 1;
        self.counters.agg_out_grouped += 1;
        let to = SocketAddrV4::new(group, UDP_PORT);
        let replication = PortMask::one(self.config.ports);
        let head = match self.heads.get(now, to, payload.len()) {
            Some(head) => head,
            None => {
                let dst = Endpoint {
                    mac: group_mac(group),
                    ip: group,
                    port: UDP_PORT,
                };
                let bytes = udp_headers_no_checksum(self.source(), dst, payload.len());
                let Some(ports) = self.members_ports(now, members) else {
                    self.counters.agg_out_flooded += 1;
                    return tx.push_result(self.all_ports(), bytes, payload);
                };
                let ports = if self.config.replication_port && ports == self.replicated_ports() {
                    replication
                } else {
                    ports
                };
                let head = ResultHead { ports, bytes };
                self.heads.insert(now, to, payload.len(), head);
                head
            }
        };
        if self.config.replication_port && head.ports == replication {
            self.counters.agg_out_replicated += 1;
        }
        tx.push_result(head.ports, head.bytes, payload);
    }

    /// The switch as the source of its results.
    fn source(&self) -> Endpoint {
        Endpoint {
            mac: self.config.mac,
            ip: self.config.ip,
            port: UDP_PORT,
        }
    }

    /// The ports the members were learned on; `None` if one is unknown.
    fn members_ports(&self, now: Instant, members: &[SocketAddrV4]) -> Option<PortMask> {
        members
            .iter()
            .try_fold(PortMask::default(), |ports, member| {
                let (_, port) = self.member_port(now, member)?;
                Some(ports.with(port))
            })
    }

    /// The ports the replication port copies a frame to: every switch port
    /// but the CPU port.
    fn replicated_ports(&self) -> PortMask {
        match self.config.cpu_port {
            Some(cpu) => self.all_but(cpu),
            None => self.all_ports(),
        }
    }

    /// A worker's MAC and the port it was learned on, if both tables know it.
    fn member_port(&self, now: Instant, to: &SocketAddrV4) -> Option<([u8; 6], usize)> {
        let mac = self.neighbors.lookup(to.ip(), now)?;
        self.macs.lookup(&mac, now).map(|port| (mac, port))
    }

    /// Queues the result whose payload is `payload` (in `tx`) to `to`, out
    /// of the port its MAC was learned on; floods it (broadcast MAC) if the
    /// worker's MAC is unknown. Without UDP checksum, as the Tofino program
    /// sends results.
    fn send_result(
        &mut self,
        now: Instant,
        to: SocketAddrV4,
        payload: Range<usize>,
        tx: &mut TxFrames,
    ) {
        self.counters.agg_out += 1;
        if let Some(head) = self.heads.get(now, to, payload.len()) {
            return tx.push_result(head.ports, head.bytes, payload);
        }
        let known = self.member_port(now, &to);
        let src = self.source();
        let dst = |mac| Endpoint {
            mac,
            ip: *to.ip(),
            port: to.port(),
        };
        match known {
            Some((mac, port)) => {
                let bytes = udp_headers_no_checksum(src, dst(mac), payload.len());
                self.heads.insert(
                    now,
                    to,
                    payload.len(),
                    ResultHead {
                        ports: PortMask::one(port),
                        bytes,
                    },
                );
                tx.push_result(PortMask::one(port), bytes, payload);
            }
            None => {
                self.counters.agg_out_flooded += 1;
                let bytes = udp_headers_no_checksum(src, dst(BROADCAST), payload.len());
                tx.push_result(self.all_ports(), bytes, payload);
            }
        }
    }

    /// Answers an ICMP echo request; `None` if the frame is not one.
    fn answer_echo(&mut self, frame: &[u8], in_port: usize, tx: &mut TxFrames) -> Option<()> {
        let caps = ChecksumCapabilities::default();
        let eth = EthernetFrame::new_checked(frame).ok()?;
        let ip = Ipv4Packet::new_checked(eth.payload()).ok()?;
        let ip_repr = Ipv4Repr::parse(&ip, &caps).ok()?;
        if ip_repr.next_header != IpProtocol::Icmp || ip.more_frags() || ip.frag_offset() != 0 {
            return None;
        }
        let icmp = Icmpv4Packet::new_checked(&ip.payload()[..ip_repr.payload_len]).ok()?;
        let Icmpv4Repr::EchoRequest {
            ident,
            seq_no,
            data,
        } = Icmpv4Repr::parse(&icmp, &caps).ok()?
        else {
            return None;
        };
        let reply = Icmpv4Repr::EchoReply {
            ident,
            seq_no,
            data,
        };
        let reply_ip = Ipv4Repr {
            src_addr: self.config.ip,
            dst_addr: ip_repr.src_addr,
            next_header: IpProtocol::Icmp,
            payload_len: reply.buffer_len(),
            hop_limit: 64,
        };
        let reply_eth = EthernetRepr {
            src_addr: EthernetAddress(self.config.mac),
            dst_addr: eth.src_addr(),
            ethertype: EthernetProtocol::Ipv4,
        };
        tx.push_with(PortMask::one(in_port), |buf| {
            let start = buf.len();
            let len = reply_eth.buffer_len() + reply_ip.buffer_len() + reply.buffer_len();
            buf.resize(start + len, 0);
            let mut out = EthernetFrame::new_unchecked(&mut buf[start..]);
            reply_eth.emit(&mut out);
            let mut out_ip = Ipv4Packet::new_unchecked(out.payload_mut());
            reply_ip.emit(&mut out_ip, &caps);
            reply.emit(
                &mut Icmpv4Packet::new_unchecked(out_ip.payload_mut()),
                &caps,
            );
        });
        self.counters.icmp_replies += 1;
        Some(())
    }
}

#[cfg(test)]
#[path = "logic_tests.rs"]
mod tests;

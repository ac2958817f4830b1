//! Ethernet / IPv4 / UDP framing of aggregation packets, with `smoltcp::wire`.
//!
//! The L2 switch driver and the tools that read captures use these two
//! functions; nothing here decides protocol questions.

use smoltcp::phy::{Checksum, ChecksumCapabilities};
use smoltcp::wire::{
    EthernetAddress, EthernetFrame, EthernetProtocol, EthernetRepr, IpAddress, IpProtocol,
    Ipv4Address, Ipv4Packet, Ipv4Repr, UdpPacket, UdpRepr,
};

use crate::{Error, Result, OUTER_HEADERS_LEN};

/// Link, network and transport addresses of one end of a UDP flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Endpoint {
    /// MAC address.
    pub mac: [u8; 6],
    /// IPv4 address.
    pub ip: std::net::Ipv4Addr,
    /// UDP port.
    pub port: u16,
}

/// A UDP datagram found inside an Ethernet frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpFrame<'a> {
    /// Sender.
    pub src: Endpoint,
    /// Receiver.
    pub dst: Endpoint,
    /// The UDP payload (for aggregation traffic: header and elements).
    pub payload: &'a [u8],
}

/// Parses an Ethernet II / IPv4 / UDP frame, verifying the IPv4 and UDP
/// checksums. Fragments and IP options are not aggregation traffic.
pub fn parse_udp(frame: &[u8]) -> Result<UdpFrame<'_>> {
    parse_udp_with(frame, ChecksumCapabilities::default())
}

/// [`parse_udp`] without verifying the UDP checksum (the IPv4 header
/// checksum still is): what a switch does, which adds the payload as it
/// streams through and never reads it whole first (the Tofino program
/// verifies no checksum; Ethernet's frame check sequence guards each link).
/// It saves the switch a pass over every contribution's bytes.
pub fn parse_udp_no_checksum(frame: &[u8]) -> Result<UdpFrame<'_>> {
    let mut checksums = ChecksumCapabilities::default();
    checksums.udp = Checksum::None;
    parse_udp_with(frame, checksums)
}

fn parse_udp_with(frame: &[u8], checksums: ChecksumCapabilities) -> Result<UdpFrame<'_>> {
    let eth = EthernetFrame::new_checked(frame).map_err(|_| Error::Truncated)?;
    if eth.ethertype() != EthernetProtocol::Ipv4 {
        return Err(Error::NotAggregation("ethertype"));
    }
    let ip = Ipv4Packet::new_checked(eth.payload()).map_err(|_| Error::Truncated)?;
    let ip_repr =
        Ipv4Repr::parse(&ip, &checksums).map_err(|_| Error::NotAggregation("ipv4 header"))?;
    if ip.more_frags() || ip.frag_offset() != 0 {
        return Err(Error::NotAggregation("ipv4 fragment"));
    }
    if ip_repr.next_header != IpProtocol::Udp {
        return Err(Error::NotAggregation("ip protocol"));
    }
    let ip_payload = &ip.payload()[..ip_repr.payload_len.min(ip.payload().len())];
    let udp = UdpPacket::new_checked(ip_payload).map_err(|_| Error::Truncated)?;
    let src_ip = IpAddress::Ipv4(ip_repr.src_addr);
    let dst_ip = IpAddress::Ipv4(ip_repr.dst_addr);
    let udp_repr = UdpRepr::parse(&udp, &src_ip, &dst_ip, &checksums)
        .map_err(|_| Error::NotAggregation("udp checksum"))?;
    let payload: &[u8] = udp.payload();
    Ok(UdpFrame {
        src: Endpoint {
            mac: eth.src_addr().0,
            ip: ip_repr.src_addr,
            port: udp_repr.src_port,
        },
        dst: Endpoint {
            mac: eth.dst_addr().0,
            ip: ip_repr.dst_addr,
            port: udp_repr.dst_port,
        },
        payload,
    })
}

/// Length of the frame [`emit_udp`] writes for a payload of `payload_len` bytes.
pub const fn udp_frame_len(payload_len: usize) -> usize {
    OUTER_HEADERS_LEN + payload_len
}

/// Appends a complete Ethernet / IPv4 / UDP frame carrying `payload` to `out`,
/// with a valid IPv4 header checksum and UDP checksum.
pub fn emit_udp(src: Endpoint, dst: Endpoint, payload: &[u8], out: &mut Vec<u8>) {
    emit_udp_with(src, dst, payload, out, ChecksumCapabilities::default());
}

/// [`emit_udp`] with UDP checksum 0 ("none", which IPv4 allows): what the
/// switch does to the results it writes, as the Tofino program does
/// (`result_sender.p4`), because a checksum over the rewritten payload
/// would cost a pass over every byte of every copy sent; receivers then
/// skip verifying it too. The IPv4 header checksum stays valid.
/// The headers are written on the stack and the payload appended once: no
/// pass zeroes the frame before it is written.
pub fn emit_udp_no_checksum(src: Endpoint, dst: Endpoint, payload: &[u8], out: &mut Vec<u8>) {
    let head = udp_headers_no_checksum(src, dst, payload.len());
    out.reserve(head.len() + payload.len());
    out.extend_from_slice(&head);
    out.extend_from_slice(payload);
}

/// The Ethernet, IPv4 and UDP headers [`emit_udp_no_checksum`] writes
/// before a payload of `payload_len` bytes: the switch sends one result to
/// every member, so it writes these per member and sends the one payload
/// after each of them, instead of a whole frame per member.
pub fn udp_headers_no_checksum(
    src: Endpoint,
    dst: Endpoint,
    payload_len: usize,
) -> [u8; OUTER_HEADERS_LEN] {
    const IP_START: usize = 14;
    const UDP_START: usize = IP_START + 20;
    let mut head = [0u8; OUTER_HEADERS_LEN];
    EthernetRepr {
        src_addr: EthernetAddress(src.mac),
        dst_addr: EthernetAddress(dst.mac),
        ethertype: EthernetProtocol::Ipv4,
    }
    .emit(&mut EthernetFrame::new_unchecked(&mut head[..]));
    let udp_len = 8 + payload_len;
    let mut ip = Ipv4Packet::new_unchecked(&mut head[IP_START..UDP_START]);
    Ipv4Repr {
        src_addr: src.ip,
        dst_addr: dst.ip,
        next_header: IpProtocol::Udp,
        payload_len: udp_len,
        hop_limit: 64,
    }
    .emit(&mut ip, &ChecksumCapabilities::default());
    let mut udp = UdpPacket::new_unchecked(&mut head[UDP_START..]);
    udp.set_src_port(src.port);
    udp.set_dst_port(dst.port);
    udp.set_len(udp_len as u16);
    udp.set_checksum(0);
    head
}

fn emit_udp_with(
    src: Endpoint,
    dst: Endpoint,
    payload: &[u8],
    out: &mut Vec<u8>,
    checksums: ChecksumCapabilities,
) {
    let start = out.len();
    out.resize(start + udp_frame_len(payload.len()), 0);
    let buf = &mut out[start..];
    let eth_repr = EthernetRepr {
        src_addr: EthernetAddress(src.mac),
        dst_addr: EthernetAddress(dst.mac),
        ethertype: EthernetProtocol::Ipv4,
    };
    let udp_repr = UdpRepr {
        src_port: src.port,
        dst_port: dst.port,
    };
    let ip_repr = Ipv4Repr {
        src_addr: src.ip,
        dst_addr: dst.ip,
        next_header: IpProtocol::Udp,
        payload_len: udp_repr.header_len() + payload.len(),
        hop_limit: 64,
    };
    let mut eth = EthernetFrame::new_unchecked(&mut *buf);
    eth_repr.emit(&mut eth);
    let mut ip = Ipv4Packet::new_unchecked(eth.payload_mut());
    ip_repr.emit(&mut ip, &checksums);
    let mut udp = UdpPacket::new_unchecked(ip.payload_mut());
    udp_repr.emit(
        &mut udp,
        &IpAddress::Ipv4(src.ip),
        &IpAddress::Ipv4(dst.ip),
        payload.len(),
        |p| p.copy_from_slice(payload),
        &checksums,
    );
}

/// Converts a smoltcp IPv4 address into the standard library's.
pub fn std_ipv4(addr: Ipv4Address) -> std::net::Ipv4Addr {
    addr
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn round_trip_and_checksums() {
        let src = Endpoint {
            mac: [2, 0, 0, 0, 0, 1],
            ip: Ipv4Addr::new(10, 0, 0, 1),
            port: 40000,
        };
        let dst = Endpoint {
            mac: [2, 0, 0, 0, 0, 0xfe],
            ip: Ipv4Addr::new(10, 0, 0, 254),
            port: crate::UDP_PORT,
        };
        let mut out = Vec::new();
        emit_udp(src, dst, b"hello", &mut out);
        assert_eq!(out.len(), udp_frame_len(5));
        let parsed = parse_udp(&out).unwrap();
        assert_eq!(parsed.src, src);
        assert_eq!(parsed.dst, dst);
        assert_eq!(parsed.payload, b"hello");
        // A flipped payload bit breaks the UDP checksum; the switch's parse
        // does not look at it, but still at the IPv4 header's.
        let last = out.len() - 1;
        out[last] ^= 1;
        assert!(parse_udp(&out).is_err());
        let unverified = parse_udp_no_checksum(&out).unwrap();
        assert_eq!((unverified.src, unverified.dst), (src, dst));
        assert_eq!(unverified.payload, b"helln");
        let ttl = 14 + 8; // behind the Ethernet header
        out[ttl] ^= 1;
        assert!(parse_udp_no_checksum(&out).is_err());
    }

    #[test]
    fn results_go_without_udp_checksum() {
        let ep = |last, port| Endpoint {
            mac: [2, 0, 0, 0, 0, last],
            ip: Ipv4Addr::new(10, 0, 0, last),
            port,
        };
        let (src, dst) = (ep(254, crate::UDP_PORT), ep(1, 40000));
        let mut with = Vec::new();
        emit_udp(src, dst, b"result", &mut with);
        let mut without = Vec::new();
        emit_udp_no_checksum(src, dst, b"result", &mut without);
        // Only the UDP checksum (the last two header bytes) differs, and is 0.
        let at = OUTER_HEADERS_LEN - 2;
        assert_eq!(without[at..at + 2], [0, 0]);
        assert_ne!(with[at..at + 2], [0, 0]);
        assert_eq!(without[..at], with[..at]);
        assert_eq!(without[at + 2..], with[at + 2..]);
        let parsed = parse_udp(&without).unwrap();
        assert_eq!(
            (parsed.src, parsed.dst, parsed.payload),
            (src, dst, &b"result"[..])
        );
    }

    #[test]
    fn rejects_truncated_and_foreign() {
        assert!(parse_udp(&[0u8; 10]).is_err());
        let mut arp = vec![0u8; 60];
        arp[12] = 0x08;
        arp[13] = 0x06;
        assert_eq!(
            parse_udp(&arp).unwrap_err(),
            Error::NotAggregation("ethertype")
        );
    }
}

//! Reads classic pcap files (what `switch-emu serve --pcap` writes), so
//! that tests can compare a capture with tshark's reading of it.

use packet_format::frame::parse_udp;
use std::net::SocketAddrV4;

/// One captured UDP datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Captured {
    /// Sender.
    pub src: SocketAddrV4,
    /// Receiver.
    pub dst: SocketAddrV4,
    /// The UDP payload.
    pub payload: Vec<u8>,
}

/// Ethernet frames of a little-endian, microsecond pcap file. A record cut
/// short at the end (a capture still being written) is left out.
pub fn frames(bytes: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    if bytes.len() < 24 || bytes[..4] != 0xa1b2_c3d4u32.to_le_bytes() {
        return Err("not a little-endian microsecond pcap file".into());
    }
    let link = u32::from_le_bytes(bytes[20..24].try_into().unwrap());
    if link != 1 {
        return Err(format!("link type {link}, not Ethernet"));
    }
    let mut out = Vec::new();
    let mut at = 24;
    while at + 16 <= bytes.len() {
        let incl = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap()) as usize;
        let start = at + 16;
        if start + incl > bytes.len() {
            break;
        }
        out.push(bytes[start..start + incl].to_vec());
        at = start + incl;
    }
    Ok(out)
}

/// The UDP datagrams of a pcap file, in capture order.
pub fn datagrams(bytes: &[u8]) -> Result<Vec<Captured>, String> {
    frames(bytes)?
        .iter()
        .map(|f| {
            let udp = parse_udp(f).map_err(|e| format!("{e:?}"))?;
            Ok(Captured {
                src: SocketAddrV4::new(udp.src.ip, udp.src.port),
                dst: SocketAddrV4::new(udp.dst.ip, udp.dst.port),
                payload: udp.payload.to_vec(),
            })
        })
        .collect()
}

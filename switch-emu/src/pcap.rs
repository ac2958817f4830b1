//! Packet capture of what the switch receives and sends, in the classic
//! pcap format (Ethernet link type), so that Wireshark and tshark with
//! `tools/wireshark/ina.lua` can read it.
//!
//! The L2 driver records its frames as they are; the UDP driver has no
//! Ethernet header, so it records each datagram wrapped in a synthesized
//! Ethernet/IPv4/UDP frame with the real addresses and ports.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::net::SocketAddrV4;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use packet_format::frame::{emit_udp, Endpoint};

/// pcap link type for Ethernet II frames.
const LINKTYPE_ETHERNET: u32 = 1;
/// Frames longer than this are truncated in the capture (jumbo frames fit).
const SNAPLEN: u32 = 65_535;
/// MAC used for synthesized frames: locally administered, clearly not real.
const SYNTHETIC_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x00];

/// Appends packets to a pcap file.
#[derive(Debug)]
pub struct PcapWriter {
    out: BufWriter<File>,
    scratch: Vec<u8>,
    records: u64,
}

impl PcapWriter {
    /// Creates (truncates) `path` and writes the pcap global header.
    pub fn create(path: &Path) -> io::Result<PcapWriter> {
        let mut out = BufWriter::new(File::create(path)?);
        out.write_all(&0xa1b2_c3d4u32.to_le_bytes())?; // magic, microsecond timestamps
        out.write_all(&2u16.to_le_bytes())?; // version major
        out.write_all(&4u16.to_le_bytes())?; // version minor
        out.write_all(&0i32.to_le_bytes())?; // timezone offset
        out.write_all(&0u32.to_le_bytes())?; // timestamp accuracy
        out.write_all(&SNAPLEN.to_le_bytes())?;
        out.write_all(&LINKTYPE_ETHERNET.to_le_bytes())?;
        Ok(PcapWriter {
            out,
            scratch: Vec::new(),
            records: 0,
        })
    }

    /// Records one Ethernet frame with the current wall-clock time.
    pub fn write_frame(&mut self, frame: &[u8]) -> io::Result<()> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let captured = frame.len().min(SNAPLEN as usize);
        // The pcap format stores 32-bit seconds; it wraps in 2106.
        self.out.write_all(&(now.as_secs() as u32).to_le_bytes())?;
        self.out.write_all(&now.subsec_micros().to_le_bytes())?;
        self.out.write_all(&(captured as u32).to_le_bytes())?;
        self.out.write_all(&(frame.len() as u32).to_le_bytes())?;
        self.out.write_all(&frame[..captured])?;
        self.records += 1;
        Ok(())
    }

    /// Records a UDP datagram, wrapped in a synthesized Ethernet/IPv4/UDP frame.
    pub fn write_datagram(
        &mut self,
        src: SocketAddrV4,
        dst: SocketAddrV4,
        payload: &[u8],
    ) -> io::Result<()> {
        let mut frame = std::mem::take(&mut self.scratch);
        frame.clear();
        emit_udp(endpoint(src), endpoint(dst), payload, &mut frame);
        let result = self.write_frame(&frame);
        self.scratch = frame;
        result
    }

    /// Number of packets recorded so far.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Writes buffered records to the file.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

fn endpoint(addr: SocketAddrV4) -> Endpoint {
    Endpoint {
        mac: SYNTHETIC_MAC,
        ip: *addr.ip(),
        port: addr.port(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_header_and_records() {
        let dir = std::env::temp_dir().join(format!("ina-pcap-test-{}", std::process::id()));
        let mut w = PcapWriter::create(&dir).unwrap();
        w.write_datagram(
            "127.0.0.1:5000".parse().unwrap(),
            "127.0.0.1:48864".parse().unwrap(),
            &[1, 2, 3],
        )
        .unwrap();
        w.flush().unwrap();
        assert_eq!(w.records(), 1);
        let bytes = std::fs::read(&dir).unwrap();
        std::fs::remove_file(&dir).unwrap();
        assert_eq!(&bytes[..4], &0xa1b2_c3d4u32.to_le_bytes());
        assert_eq!(bytes.len(), 24 + 16 + 42 + 3);
        let incl = u32::from_le_bytes(bytes[32..36].try_into().unwrap());
        assert_eq!(incl, 45);
        let frame = &bytes[40..];
        let parsed = packet_format::frame::parse_udp(frame).unwrap();
        assert_eq!(parsed.payload, &[1, 2, 3]);
        assert_eq!(parsed.dst.port, 48864);
    }
}

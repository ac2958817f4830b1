//! Segmentation offload on the switch's ports: the `virtio_net_hdr` that an
//! AF_PACKET socket with `PACKET_VNET_HDR` exchanges with the kernel before
//! every frame, and the UDP GSO super-frames it describes.
//!
//! With it the kernel ends of the links keep TSO/GSO and checksum offload
//! on: a worker's run of equal datagrams reaches the switch as one frame
//! (`gso_type` UDP_L4, `gso_size` bytes of UDP payload per datagram), the
//! switch sends a run of results to one worker the same way, and frames it
//! only forwards (TCP super-frames, partial checksums) keep their header,
//! so the receiving kernel finishes them. Without it every datagram crossed
//! the AF_PACKET socket as its own frame, and the offloads had to be off.

use packet_format::frame::parse_udp_no_checksum;
use packet_format::OUTER_HEADERS_LEN;
use smoltcp::wire::Ipv4Packet;

/// `VIRTIO_NET_HDR_F_NEEDS_CSUM`: the checksum at `csum_start + csum_offset`
/// holds only the pseudo-header sum; whoever segments or delivers the frame
/// completes it.
pub const NEEDS_CSUM: u8 = 1;
/// `VIRTIO_NET_HDR_GSO_UDP_L4`: UDP segmentation (each datagram keeps its
/// own UDP header).
pub const GSO_UDP_L4: u8 = 5;
/// Most datagrams the switch puts in one super-frame (the kernel accepts
/// 64 at least, `UDP_MAX_SEGMENTS`).
pub const MAX_SEGMENTS: usize = 64;
/// Most bytes of UDP payload in one super-frame: its IPv4 total length is a
/// 16-bit field.
pub const MAX_RUN_PAYLOAD: usize = u16::MAX as usize - 28;

/// Offset of the UDP header in an Ethernet/IPv4 frame without IP options.
const UDP_START: usize = 34;

/// The `virtio_net_hdr` of one frame (10 bytes, host byte order, as the
/// kernel's packet socket writes and reads it on a little-endian host).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Offload {
    /// [`NEEDS_CSUM`] or 0.
    pub flags: u8,
    /// 0 (none), [`GSO_UDP_L4`], or a TCP type (forwarded as is).
    pub gso_type: u8,
    /// Bytes of headers before the payload.
    pub hdr_len: u16,
    /// Payload bytes per segment.
    pub gso_size: u16,
    /// Where the checksummed bytes start (from the frame start).
    pub csum_start: u16,
    /// Where the checksum field sits (from `csum_start`).
    pub csum_offset: u16,
}

impl Offload {
    /// Length of the header on the socket.
    pub const LEN: usize = 10;

    /// A plain frame: no segmentation, checksums complete.
    pub const NONE: Offload = Offload {
        flags: 0,
        gso_type: 0,
        hdr_len: 0,
        gso_size: 0,
        csum_start: 0,
        csum_offset: 0,
    };

    /// Reads the header from its socket bytes.
    pub fn parse(bytes: &[u8; Self::LEN]) -> Offload {
        let u16_at = |i: usize| u16::from_ne_bytes([bytes[i], bytes[i + 1]]);
        Offload {
            flags: bytes[0],
            gso_type: bytes[1],
            hdr_len: u16_at(2),
            gso_size: u16_at(4),
            csum_start: u16_at(6),
            csum_offset: u16_at(8),
        }
    }

    /// The header's socket bytes.
    pub fn to_bytes(self) -> [u8; Self::LEN] {
        let mut out = [0u8; Self::LEN];
        out[0] = self.flags;
        out[1] = self.gso_type;
        for (i, v) in [
            (2, self.hdr_len),
            (4, self.gso_size),
            (6, self.csum_start),
            (8, self.csum_offset),
        ] {
            out[i..i + 2].copy_from_slice(&v.to_ne_bytes());
        }
        out
    }

    /// The UDP payload bytes of each datagram, if this is a UDP super-frame.
    pub fn udp_segment_size(self) -> Option<usize> {
        (self.gso_type == GSO_UDP_L4 && self.gso_size > 0).then_some(usize::from(self.gso_size))
    }
}

/// Turns the Ethernet/IPv4/UDP headers (no IP options) of one datagram,
/// `head`, into those of a UDP GSO super-frame of `frame_len` bytes: the
/// headers followed by the payloads of several datagrams, each `segment`
/// bytes but the last. Sets the IPv4 total length and header checksum and
/// the UDP length for the whole frame, puts the pseudo-header sum in the
/// UDP checksum (the kernel completes it per datagram when it segments, or
/// skips it when it hands the whole run to a GRO socket, as for its own GSO
/// sends), and returns the offload header to send it with.
pub fn finish_udp_run(
    head: &mut [u8; OUTER_HEADERS_LEN],
    frame_len: usize,
    segment: usize,
) -> Offload {
    let udp_len = set_lengths(head, frame_len);
    // Source and destination addresses, protocol, UDP length (smoltcp's
    // pseudo-header sum is not public).
    let pseudo = sum_words(&head[26..UDP_START]) + 17 + u32::from(udp_len);
    head[UDP_START + 6..UDP_START + 8].copy_from_slice(&fold(pseudo).to_be_bytes());
    Offload {
        flags: NEEDS_CSUM,
        gso_type: GSO_UDP_L4,
        hdr_len: OUTER_HEADERS_LEN as u16,
        gso_size: segment as u16,
        csum_start: UDP_START as u16,
        csum_offset: 6,
    }
}

/// Sets the IPv4 total length, header checksum and UDP length in the
/// Ethernet/IPv4/UDP headers (no IP options) at the start of `head` for a
/// frame of `frame_len` bytes; returns the UDP length.
fn set_lengths(head: &mut [u8], frame_len: usize) -> u16 {
    debug_assert!(frame_len > OUTER_HEADERS_LEN && frame_len - 14 <= usize::from(u16::MAX));
    let (ip_len, udp_len) = ((frame_len - 14) as u16, (frame_len - UDP_START) as u16);
    let mut ip = Ipv4Packet::new_unchecked(&mut head[14..UDP_START]);
    ip.set_total_len(ip_len);
    ip.fill_checksum();
    head[UDP_START + 4..UDP_START + 6].copy_from_slice(&udp_len.to_be_bytes());
    udp_len
}

/// Completes a partial checksum (`offload` with [`NEEDS_CSUM`]), as a
/// kernel does to a frame it delivers whole without trusting it; tests and
/// the fuzz target check with it that a super-frame's checksum completes.
pub fn complete_checksum(frame: &mut [u8], offload: Offload) {
    let start = usize::from(offload.csum_start);
    let at = start + usize::from(offload.csum_offset);
    let sum = !fold(sum_words(&frame[start..]));
    frame[at..at + 2].copy_from_slice(&sum.to_be_bytes());
}

/// Calls `f` with each datagram of a UDP super-frame as a frame of its own
/// (the run's headers with that datagram's lengths and IPv4 checksum, UDP
/// checksum none), written in `scratch`; with any other frame, once with the
/// frame itself. For captures, which then show datagrams as the receiving
/// kernel sees them.
pub fn for_each_datagram(
    offload: Offload,
    frame: &[u8],
    scratch: &mut Vec<u8>,
    mut f: impl FnMut(&[u8]),
) {
    // The payload as the IPv4 and UDP lengths bound it (not the frame's
    // length, which may include padding), after a 20-byte IPv4 header.
    let udp = parse_udp_no_checksum(frame).ok();
    let (Some(segment), Some(udp), Some(&0x45)) = (offload.udp_segment_size(), udp, frame.get(14))
    else {
        return f(frame);
    };
    let payload = udp.payload;
    for datagram in payload.chunks(segment) {
        scratch.clear();
        scratch.extend_from_slice(&frame[..OUTER_HEADERS_LEN]);
        scratch.extend_from_slice(datagram);
        let len = scratch.len();
        set_lengths(scratch, len);
        scratch[UDP_START + 6..UDP_START + 8].fill(0);
        f(scratch);
    }
}

/// One's complement sum of big-endian 16-bit words (an odd last byte is
/// padded with zero), not folded.
fn sum_words(bytes: &[u8]) -> u32 {
    let mut chunks = bytes.chunks_exact(2);
    let mut sum: u32 = 0;
    for c in &mut chunks {
        sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        sum += u32::from(*last) << 8;
    }
    sum
}

fn fold(mut sum: u32) -> u16 {
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

#[cfg(test)]
mod tests {
    use super::*;
    use packet_format::frame::{parse_udp, udp_headers_no_checksum, Endpoint};

    #[test]
    fn header_bytes_round_trip() {
        // As the kernel wrote it for a 5 x 1000-byte UDP GSO send (seen on a
        // veth with a Python packet socket): NEEDS_CSUM, UDP_L4, 42, 1000, 34, 6.
        let bytes = [1, 5, 42, 0, 0xe8, 0x03, 34, 0, 6, 0];
        let h = Offload::parse(&bytes);
        assert_eq!(
            h,
            Offload {
                flags: NEEDS_CSUM,
                gso_type: GSO_UDP_L4,
                hdr_len: 42,
                gso_size: 1000,
                csum_start: 34,
                csum_offset: 6
            }
        );
        assert_eq!(h.to_bytes(), bytes);
        assert_eq!(h.udp_segment_size(), Some(1000));
        assert_eq!(Offload::NONE.udp_segment_size(), None);
    }

    /// The super-frame of a run of datagrams (the first one's size is the segment).
    fn run(src: Endpoint, dst: Endpoint, payloads: &[&[u8]]) -> (Offload, Vec<u8>) {
        let mut head = udp_headers_no_checksum(src, dst, payloads[0].len());
        let len = OUTER_HEADERS_LEN + payloads.iter().map(|p| p.len()).sum::<usize>();
        let h = finish_udp_run(&mut head, len, payloads[0].len());
        (h, [&head[..], &payloads.concat()].concat())
    }

    #[test]
    fn a_super_frame_is_captured_datagram_by_datagram() {
        let ends = |n: u8| Endpoint {
            mac: [2, 0, 0, 0, 0, n],
            ip: [10, 77, 0, n].into(),
            port: 40000,
        };
        let (h, mut frame) = run(ends(1), ends(2), &[&[1; 100], &[2; 100], &[3; 40]]);
        // Bytes past the IPv4 length (padding) are no datagram's (found by
        // fuzzing l2_frames).
        frame.extend_from_slice(&[0xee; 6]);
        let mut seen = Vec::new();
        for_each_datagram(h, &frame, &mut Vec::new(), |d| seen.push(d.to_vec()));
        assert_eq!(seen.len(), 3);
        for (d, (fill, len)) in seen.iter().zip([(1u8, 100), (2, 100), (3, 40)]) {
            // A valid frame of its own (IPv4 checksum verified, UDP none).
            let udp = parse_udp(d).expect("a valid datagram");
            assert_eq!(udp.payload, vec![fill; len].as_slice());
        }
        let mut plain = Vec::new();
        for_each_datagram(Offload::NONE, &frame, &mut Vec::new(), |d| {
            plain.push(d.len())
        });
        assert_eq!(plain, [frame.len()]);
    }

    #[test]
    fn a_run_becomes_a_super_frame_whose_checksum_completes() {
        let src = Endpoint {
            mac: [2, 0, 0, 0, 0, 1],
            ip: [10, 77, 0, 254].into(),
            port: 47000,
        };
        let dst = Endpoint {
            mac: [2, 0, 0, 0, 0, 2],
            ip: [10, 77, 0, 1].into(),
            port: 40001,
        };
        let payloads: Vec<Vec<u8>> = (0..3u8)
            .map(|k| {
                (0..if k == 2 { 301 } else { 1000 })
                    .map(|i| (i as u8) ^ k)
                    .collect()
            })
            .collect();
        let parts: Vec<&[u8]> = payloads.iter().map(Vec::as_slice).collect();
        let (h, mut frame) = run(src, dst, &parts);
        assert_eq!((h.gso_type, h.gso_size, h.hdr_len), (GSO_UDP_L4, 1000, 42));
        // A wrong pseudo-header sum does not complete to a valid checksum.
        let mut broken = frame.clone();
        broken[40] ^= 0x40;
        complete_checksum(&mut broken, h);
        complete_checksum(&mut frame, h);
        // The whole run then passes the verifying parse (IPv4 header
        // checksum and UDP checksum over the pseudo header and every byte).
        let udp = parse_udp(&frame).expect("a valid frame");
        assert_eq!(udp.payload, payloads.concat().as_slice());
        assert!(parse_udp(&broken).is_err());
    }
}

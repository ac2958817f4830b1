//! What a port sends next: the frames of one round, each with its offload
//! header, and the driver's rule that merges a round's results to one
//! worker into UDP GSO super-frames (as the UDP driver's GSO sends do), so
//! the worker's kernel takes a run whole into its GRO socket.

use std::ops::Range;

use packet_format::OUTER_HEADERS_LEN;

use super::logic::{PortMask, TxFrames};
use super::offload::{finish_udp_run, Offload, MAX_RUN_PAYLOAD, MAX_SEGMENTS};

/// Frames staged for one port.
#[derive(Debug, Default)]
pub struct Staged {
    buf: Vec<u8>,
    frames: Vec<StagedFrame>,
}

/// A frame staged for a port: its bytes in `Staged::buf`, its offload
/// header and, for results, the run of datagrams it holds.
#[derive(Debug)]
struct StagedFrame {
    range: Range<usize>,
    offload: Offload,
    run: Option<Run>,
}

/// Results to one worker merged into one frame: the first datagram's
/// headers, then `count` payloads of `segment` bytes.
#[derive(Debug, Clone, Copy)]
struct Run {
    segment: usize,
    count: usize,
}

impl Staged {
    /// A frame to send as it is, after `offload`.
    pub fn push(&mut self, offload: Offload, frame: &[u8]) {
        let start = self.buf.len();
        self.buf.extend_from_slice(frame);
        self.frames.push(StagedFrame {
            range: start..self.buf.len(),
            offload,
            run: None,
        });
    }

    /// A result frame (plain Ethernet/IPv4/UDP, no IP options): joins the
    /// frame staged last if that is a run of results to the same worker
    /// whose payloads have this one's size and that has room, so a port
    /// sends a round of results as one super-frame, as the UDP driver
    /// sends them with GSO.
    pub fn push_result(&mut self, frame: &[u8]) {
        let Some(payload) = frame.get(OUTER_HEADERS_LEN..) else {
            return self.push(Offload::NONE, frame);
        };
        if let Some(last) = self.frames.last_mut() {
            let head = &self.buf[last.range.start..];
            if let Some(run) = last.run.as_mut().filter(|run| {
                run.segment == payload.len()
                    && run.count < MAX_SEGMENTS
                    && (run.count + 1) * run.segment <= MAX_RUN_PAYLOAD
                    && same_flow(head, frame)
            }) {
                self.buf.extend_from_slice(payload);
                last.range.end = self.buf.len();
                run.count += 1;
                return;
            }
        }
        self.push(Offload::NONE, frame);
        if let Some(last) = self.frames.last_mut() {
            last.run = Some(Run {
                segment: payload.len(),
                count: 1,
            });
        }
    }

    /// Gives every run of more than one datagram its super-frame headers;
    /// returns how many there are.
    pub fn finish_runs(&mut self) -> usize {
        let mut runs = 0;
        for frame in &mut self.frames {
            if let Some(run) = frame.run.filter(|run| run.count > 1) {
                frame.offload = finish_udp_run(&mut self.buf[frame.range.clone()], run.segment);
                runs += 1;
            }
        }
        runs
    }

    /// The staged frames with their offload headers, in order.
    pub fn frames(&self) -> impl Iterator<Item = (Offload, &[u8])> {
        self.frames
            .iter()
            .map(|f| (f.offload, &self.buf[f.range.clone()]))
    }

    /// Whether nothing is staged.
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// Forgets every frame (keeps the capacity).
    pub fn clear(&mut self) {
        self.buf.clear();
        self.frames.clear();
    }
}

/// Whether two result frames go between the same endpoints: the same MAC
/// addresses, IPv4 addresses and UDP ports (the switch writes every other
/// header field of its results alike).
fn same_flow(a: &[u8], b: &[u8]) -> bool {
    a.len() >= OUTER_HEADERS_LEN
        && b.len() >= OUTER_HEADERS_LEN
        && a[..12] == b[..12]
        && a[26..38] == b[26..38]
}

/// Stages the frames the switch originated: a result to one known worker
/// may join a run; anything else (and a result flooded because the
/// worker's MAC is unknown) goes alone.
pub fn stage_originated(staged: &mut [Staged], originated: &TxFrames) {
    for (frame, mask, result) in originated.iter_tagged() {
        for port in mask.iter() {
            if let Some(s) = staged.get_mut(port) {
                if result && mask == PortMask::one(port) {
                    s.push_result(frame);
                } else {
                    s.push(Offload::NONE, frame);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use packet_format::frame::{emit_udp_no_checksum, Endpoint};

    fn endpoint(n: u8, port: u16) -> Endpoint {
        Endpoint {
            mac: [2, 0, 0, 0, 0, n],
            ip: [10, 77, 0, n].into(),
            port,
        }
    }

    fn result(to: u8, payload: &[u8]) -> Vec<u8> {
        let mut f = Vec::new();
        emit_udp_no_checksum(endpoint(254, 47000), endpoint(to, 40000), payload, &mut f);
        f
    }

    #[test]
    fn results_to_one_worker_join_runs() {
        let mut s = Staged::default();
        for k in 0..3u8 {
            s.push_result(&result(1, &[k; 100]));
        }
        // Another size, another worker and a forwarded frame each start anew.
        s.push_result(&result(1, &[9; 60]));
        s.push_result(&result(2, &[8; 60]));
        s.push(Offload::NONE, &result(2, &[7; 60]));
        s.push_result(&result(2, &[6; 60]));
        let counts: Vec<usize> = s
            .frames
            .iter()
            .map(|f| f.run.map_or(0, |r| r.count))
            .collect();
        assert_eq!(counts, [3, 1, 1, 0, 1]);
        s.finish_runs();
        let first = &s.frames[0];
        assert_eq!(first.offload.udp_segment_size(), Some(100));
        let bytes = &s.buf[first.range.clone()];
        assert_eq!(bytes.len(), OUTER_HEADERS_LEN + 300);
        assert_eq!(
            &bytes[OUTER_HEADERS_LEN + 100..OUTER_HEADERS_LEN + 200],
            &[1; 100]
        );
        // A lone result stays a plain frame (UDP checksum none).
        assert!(s.frames[1..].iter().all(|f| f.offload == Offload::NONE));
    }

    #[test]
    fn runs_stop_at_the_segment_and_length_limits() {
        let mut s = Staged::default();
        for _ in 0..MAX_SEGMENTS + 1 {
            s.push_result(&result(1, &[0; 16]));
        }
        let counts: Vec<usize> = s.frames.iter().map(|f| f.run.unwrap().count).collect();
        assert_eq!(counts, [MAX_SEGMENTS, 1]);
        let mut s = Staged::default();
        for _ in 0..3 {
            s.push_result(&result(1, &vec![0; 30_000]));
        }
        let counts: Vec<usize> = s.frames.iter().map(|f| f.run.unwrap().count).collect();
        assert_eq!(counts, [2, 1]);
    }
}

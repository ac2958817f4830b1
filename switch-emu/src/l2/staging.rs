//! What a port sends next: the frames of one round, each with its offload
//! header, and the driver's rule that merges a round's results to one
//! worker into UDP GSO super-frames (as the UDP driver's GSO sends do), so
//! the worker's kernel takes a run whole into its GRO socket.
//!
//! A staged result is its headers (owned here) and a reference to its
//! payload in the round's [`TxFrames`], which every member's copy shares:
//! the port's send gathers the pieces, so no payload is copied in user
//! space on its way out (a frame that is only forwarded is copied here,
//! since the receive ring reuses its memory).

use std::ops::Range;

use packet_format::OUTER_HEADERS_LEN;

use super::logic::{PortMask, TxFrames};
use super::offload::{finish_udp_run, Offload, MAX_RUN_PAYLOAD, MAX_SEGMENTS};

/// Frames staged for one port.
#[derive(Debug, Default)]
pub struct Staged {
    /// Bytes the port owns: forwarded frames, whole originated frames, and
    /// results' headers.
    owned: Vec<u8>,
    /// Payloads of staged results, as ranges of the round's [`TxFrames::bytes`].
    shared: Vec<Range<usize>>,
    frames: Vec<StagedFrame>,
}

/// A frame staged for a port: its bytes in `Staged::owned`, then the
/// payloads `Staged::shared[shared]` refers to; its offload header and,
/// for results, the run of datagrams it holds.
#[derive(Debug)]
struct StagedFrame {
    owned: Range<usize>,
    shared: Range<usize>,
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
    /// A frame to send as it is, after `offload` (copied: it may live in
    /// memory the next receive reuses).
    pub fn push(&mut self, offload: Offload, frame: &[u8]) {
        let start = self.owned.len();
        self.owned.extend_from_slice(frame);
        self.frames.push(StagedFrame {
            owned: start..self.owned.len(),
            shared: self.shared.len()..self.shared.len(),
            offload,
            run: None,
        });
    }

    /// A result: its Ethernet/IPv4/UDP headers (no IP options, UDP
    /// checksum none) and its payload, `payload` of the round's
    /// [`TxFrames::bytes`]. It joins the frame staged last if that is a run
    /// of results to the same worker whose payloads have this one's size
    /// and that has room, so a port sends a round of results as one
    /// super-frame, as the UDP driver sends them with GSO.
    pub fn push_result(&mut self, head: &[u8; OUTER_HEADERS_LEN], payload: Range<usize>) {
        let segment = payload.len();
        if let Some(last) = self.frames.last_mut() {
            let last_head = &self.owned[last.owned.clone()];
            if let Some(run) = last.run.as_mut().filter(|run| {
                run.segment == segment
                    && run.count < MAX_SEGMENTS
                    && (run.count + 1) * run.segment <= MAX_RUN_PAYLOAD
                    && same_flow(last_head, head)
            }) {
                // Results follow each other in the round's buffer, so a
                // run's payloads are usually one range: one piece to send.
                match self.shared.last_mut() {
                    Some(prev) if prev.end == payload.start => prev.end = payload.end,
                    _ => {
                        self.shared.push(payload);
                        last.shared.end = self.shared.len();
                    }
                }
                run.count += 1;
                return;
            }
        }
        self.push_lone_result(head, payload);
        if let Some(last) = self.frames.last_mut() {
            last.run = Some(Run { segment, count: 1 });
        }
    }

    /// A result sent alone (flooded, so not a worker's run), or the first
    /// of a run.
    pub fn push_lone_result(&mut self, head: &[u8; OUTER_HEADERS_LEN], payload: Range<usize>) {
        let start = self.owned.len();
        self.owned.extend_from_slice(head);
        self.shared.push(payload);
        self.frames.push(StagedFrame {
            owned: start..self.owned.len(),
            shared: self.shared.len() - 1..self.shared.len(),
            offload: Offload::NONE,
            run: None,
        });
    }

    /// Gives every run of more than one datagram its super-frame headers;
    /// returns how many there are.
    pub fn finish_runs(&mut self) -> usize {
        let mut runs = 0;
        for frame in &mut self.frames {
            let Some(run) = frame.run.filter(|run| run.count > 1) else {
                continue;
            };
            if let Ok(head) =
                <&mut [u8; OUTER_HEADERS_LEN]>::try_from(&mut self.owned[frame.owned.clone()])
            {
                let len = OUTER_HEADERS_LEN + run.count * run.segment;
                frame.offload = finish_udp_run(head, len, run.segment);
                runs += 1;
            }
        }
        runs
    }

    /// The staged frames in order, each with its offload header and its
    /// bytes in pieces; `shared` is the round's [`TxFrames::bytes`].
    pub fn frames<'a>(
        &'a self,
        shared: &'a [u8],
    ) -> impl Iterator<Item = (Offload, impl Iterator<Item = &'a [u8]> + Clone + 'a)> + 'a {
        self.frames.iter().map(move |f| {
            let payloads = self.shared[f.shared.clone()]
                .iter()
                .map(move |r| &shared[r.clone()]);
            (
                f.offload,
                std::iter::once(&self.owned[f.owned.clone()]).chain(payloads),
            )
        })
    }

    /// Whether nothing is staged.
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// Forgets every frame (keeps the capacity).
    pub fn clear(&mut self) {
        self.owned.clear();
        self.shared.clear();
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
/// or to a job's group may join a run; anything else (and a result flooded
/// because the worker's MAC is unknown) goes alone. The staged results
/// refer to `originated`'s bytes, which must outlive the send.
pub fn stage_originated(staged: &mut [Staged], originated: &TxFrames) {
    for frame in originated.iter() {
        for port in frame.ports.iter() {
            let Some(s) = staged.get_mut(port) else {
                continue;
            };
            match frame.head {
                None => s.push(Offload::NONE, frame.body),
                Some(head) if frame.ports == PortMask::one(port) || to_group(head) => {
                    s.push_result(head, frame.body_range.clone())
                }
                Some(head) => s.push_lone_result(head, frame.body_range.clone()),
            }
        }
    }
}

/// Whether a result's headers address a multicast group (not the broadcast
/// a flooded result carries).
fn to_group(head: &[u8; OUTER_HEADERS_LEN]) -> bool {
    head[0] & 1 == 1 && head[..6] != [0xff; 6]
}

#[cfg(test)]
mod tests {
    use super::*;
    use packet_format::frame::{emit_udp_no_checksum, udp_headers_no_checksum, Endpoint};

    fn endpoint(n: u8, port: u16) -> Endpoint {
        Endpoint {
            mac: [2, 0, 0, 0, 0, n],
            ip: [10, 77, 0, n].into(),
            port,
        }
    }

    /// A result to worker `to`: its headers, and its payload appended to `shared`.
    fn result(
        shared: &mut Vec<u8>,
        to: u8,
        payload: &[u8],
    ) -> ([u8; OUTER_HEADERS_LEN], Range<usize>) {
        let head =
            udp_headers_no_checksum(endpoint(254, 47000), endpoint(to, 40000), payload.len());
        let start = shared.len();
        shared.extend_from_slice(payload);
        (head, start..shared.len())
    }

    fn whole_frames(s: &Staged, shared: &[u8]) -> Vec<(Offload, Vec<u8>)> {
        s.frames(shared)
            .map(|(h, parts)| (h, parts.flatten().copied().collect()))
            .collect()
    }

    #[test]
    fn results_to_one_worker_join_runs() {
        let mut shared = Vec::new();
        let mut s = Staged::default();
        for k in 0..3u8 {
            let (head, payload) = result(&mut shared, 1, &[k; 100]);
            s.push_result(&head, payload);
        }
        // Another size, another worker and a forwarded frame each start anew.
        for (to, fill, forwarded) in [(1, 9, false), (2, 8, false), (2, 7, true), (2, 6, false)] {
            let (head, payload) = result(&mut shared, to, &[fill; 60]);
            if forwarded {
                let mut frame = Vec::new();
                emit_udp_no_checksum(endpoint(3, 1), endpoint(to, 2), &[fill; 60], &mut frame);
                s.push(Offload::NONE, &frame);
            } else {
                s.push_result(&head, payload);
            }
        }
        let counts: Vec<usize> = s
            .frames
            .iter()
            .map(|f| f.run.map_or(0, |r| r.count))
            .collect();
        assert_eq!(counts, [3, 1, 1, 0, 1]);
        assert_eq!(s.finish_runs(), 1);
        // The run's adjacent payloads go as one piece after its headers.
        let pieces: Vec<usize> = s.frames(&shared).map(|(_, p)| p.count()).collect();
        assert_eq!(pieces, [2, 2, 2, 1, 2]);
        let frames = whole_frames(&s, &shared);
        let (offload, bytes) = &frames[0];
        assert_eq!(offload.udp_segment_size(), Some(100));
        assert_eq!(bytes.len(), OUTER_HEADERS_LEN + 300);
        assert_eq!(
            &bytes[OUTER_HEADERS_LEN + 100..OUTER_HEADERS_LEN + 200],
            &[1; 100]
        );
        // The lone results are their headers and payloads as they came
        // (UDP checksum none), and the forwarded frame is itself.
        for ((offload, bytes), fill) in frames[1..].iter().zip([9, 8, 7, 6]) {
            assert_eq!(*offload, Offload::NONE);
            assert_eq!(bytes.len(), OUTER_HEADERS_LEN + 60);
            assert_eq!(bytes[OUTER_HEADERS_LEN..], [fill; 60]);
        }
    }

    #[test]
    fn a_run_of_payloads_apart_in_the_buffer_is_sent_whole() {
        let mut shared = Vec::new();
        let mut s = Staged::default();
        for k in 0..3u8 {
            let (head, payload) = result(&mut shared, 1, &[k; 50]);
            s.push_result(&head, payload);
            // Another frame's bytes between two results' payloads.
            shared.push(0xee);
        }
        assert_eq!(s.finish_runs(), 1);
        let frames = whole_frames(&s, &shared);
        assert_eq!(frames.len(), 1);
        assert_eq!(
            frames[0].1[OUTER_HEADERS_LEN..],
            [[0u8; 50], [1; 50], [2; 50]].concat()
        );
    }

    #[test]
    fn runs_stop_at_the_segment_and_length_limits() {
        let mut shared = Vec::new();
        let mut s = Staged::default();
        for _ in 0..MAX_SEGMENTS + 1 {
            let (head, payload) = result(&mut shared, 1, &[0; 16]);
            s.push_result(&head, payload);
        }
        let counts: Vec<usize> = s.frames.iter().map(|f| f.run.unwrap().count).collect();
        assert_eq!(counts, [MAX_SEGMENTS, 1]);
        let mut s = Staged::default();
        for _ in 0..3 {
            let (head, payload) = result(&mut shared, 1, &vec![0; 30_000]);
            s.push_result(&head, payload);
        }
        let counts: Vec<usize> = s.frames.iter().map(|f| f.run.unwrap().count).collect();
        assert_eq!(counts, [2, 1]);
    }

    #[test]
    fn a_flooded_result_goes_alone_to_each_port() {
        let mut tx_frames = Vec::new();
        let (head, payload) = result(&mut tx_frames, 1, &[5; 40]);
        let mut s = Staged::default();
        s.push_lone_result(&head, payload.clone());
        s.push_lone_result(&head, payload);
        assert_eq!(s.finish_runs(), 0);
        assert_eq!(whole_frames(&s, &tx_frames).len(), 2);
    }

    #[test]
    fn group_results_join_runs_on_every_port_and_floods_go_alone() {
        let group = Endpoint {
            mac: [0x01, 0x00, 0x5e, 0x4d, 0x00, 0x07],
            ip: [239, 77, 0, 7].into(),
            port: 48864,
        };
        let flooded = Endpoint {
            mac: [0xff; 6],
            ..endpoint(1, 40000)
        };
        let mut tx = TxFrames::default();
        for to in [group, group, flooded, flooded] {
            let head = udp_headers_no_checksum(endpoint(254, 48864), to, 64);
            tx.push_test_result(PortMask(0b11), head, &[7; 64]);
        }
        let mut staged = vec![Staged::default(), Staged::default()];
        stage_originated(&mut staged, &tx);
        for s in &mut staged {
            assert_eq!(s.finish_runs(), 1);
            let frames = whole_frames(s, tx.bytes());
            // The two group results as one super-frame, each flooded one alone.
            let lens: Vec<usize> = frames.iter().map(|(_, b)| b.len()).collect();
            assert_eq!(
                lens,
                [
                    OUTER_HEADERS_LEN + 128,
                    OUTER_HEADERS_LEN + 64,
                    OUTER_HEADERS_LEN + 64
                ]
            );
            assert_eq!(frames[0].0.udp_segment_size(), Some(64));
        }
    }
}

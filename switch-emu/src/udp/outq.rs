//! Results waiting to be sent, grouped into GSO runs: datagrams of one
//! size to one destination go out as one message that the kernel segments.
//! A multicast result is stored once for all its destinations; since every
//! member receives the same results in the same order, each member's run is
//! the same contiguous range of the buffer, and nothing is copied per member.

use std::net::SocketAddrV4;

use udp_batch::Run;

/// Most segments in one GSO message (the kernel's UDP_MAX_SEGMENTS is 64 on older kernels).
pub const MAX_SEGMENTS: usize = 64;

/// Most bytes in one GSO message (below the 64 KiB IP datagram limit).
pub const MAX_GSO_BYTES: usize = 60_000;

/// Datagrams queued for one `sendmmsg` round.
#[derive(Debug, Default)]
pub struct OutQueue {
    /// The queued datagrams, each once; runs that had to be gathered from
    /// scattered datagrams are appended behind them by `plan`.
    data: Vec<u8>,
    /// (destination, offset in `data`, length), in queueing order.
    items: Vec<(SocketAddrV4, usize, usize)>,
    order: Vec<usize>,
    runs: Vec<Run>,
}

impl OutQueue {
    /// Queues one datagram.
    pub fn push(&mut self, dst: SocketAddrV4, datagram: &[u8]) {
        self.push_to_all([dst], datagram);
    }

    /// Queues one datagram for every destination in `dsts`, stored once.
    pub fn push_to_all(&mut self, dsts: impl IntoIterator<Item = SocketAddrV4>, datagram: &[u8]) {
        let offset = self.data.len();
        self.items
            .extend(dsts.into_iter().map(|dst| (dst, offset, datagram.len())));
        self.data.extend_from_slice(datagram);
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Empties the queue.
    pub fn clear(&mut self) {
        self.data.clear();
        self.items.clear();
    }

    /// The messages to send and the buffer they point into. With `gso`,
    /// same-size datagrams to one destination are merged into runs (order
    /// per destination kept); without, one message per datagram.
    pub fn plan(&mut self, gso: bool) -> (&[u8], &[Run]) {
        self.runs.clear();
        if !gso {
            self.runs
                .extend(self.items.iter().map(|&(dst, offset, len)| Run {
                    dst: Some(dst),
                    offset,
                    len,
                    segment: None,
                }));
            return (&self.data, &self.runs);
        }
        self.order.clear();
        self.order.extend(0..self.items.len());
        let items = &self.items;
        self.order
            .sort_by_key(|&i| (u32::from(*items[i].0.ip()), items[i].0.port()));
        let data = &mut self.data;
        let mut current: Option<(Run, usize)> = None; // (run, segments)
        for &i in &self.order {
            let (dst, offset, len) = items[i];
            let joins = current.as_ref().is_some_and(|(run, segs)| {
                run.dst == Some(dst)
                    && run.len / segs == len
                    && *segs < MAX_SEGMENTS
                    && run.len + len <= MAX_GSO_BYTES
            });
            if !joins {
                if let Some(done) = current.take() {
                    self.runs.push(finish(done));
                }
                current = Some((
                    Run {
                        dst: Some(dst),
                        offset,
                        len,
                        segment: None,
                    },
                    1,
                ));
                continue;
            }
            let (run, segs) = current.as_mut().expect("checked");
            if offset != run.offset + run.len {
                // Not behind the run in the buffer (a unicast queued between
                // two results): gather the run at the end of the buffer.
                if run.offset + run.len != data.len() {
                    let start = data.len();
                    data.extend_from_within(run.offset..run.offset + run.len);
                    run.offset = start;
                }
                data.extend_from_within(offset..offset + len);
            }
            run.len += len;
            *segs += 1;
        }
        if let Some(done) = current {
            self.runs.push(finish(done));
        }
        (&self.data, &self.runs)
    }
}

fn finish((mut run, segs): (Run, usize)) -> Run {
    if segs > 1 {
        run.segment = Some((run.len / segs) as u16);
    }
    run
}

/// Splits a GSO run into one message per datagram (the fallback when the
/// kernel refuses a GSO send).
pub fn split(run: Run) -> impl Iterator<Item = Run> {
    let size = run.segment.map_or(run.len, usize::from).max(1);
    (0..run.len.div_ceil(size)).map(move |k| Run {
        dst: run.dst,
        offset: run.offset + k * size,
        len: size.min(run.len - k * size),
        segment: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(port: u16) -> SocketAddrV4 {
        SocketAddrV4::new([127, 0, 0, 1].into(), port)
    }

    #[test]
    fn groups_same_size_runs_per_destination_in_order() {
        let mut q = OutQueue::default();
        for k in 0..3u8 {
            q.push(a(2), &[k; 4]);
            q.push(a(1), &[10 + k; 4]);
        }
        q.push(a(1), &[99; 2]); // other size: its own run
        let (data, runs) = q.plan(true);
        assert_eq!(runs.len(), 3);
        assert_eq!(
            (runs[0].dst, runs[0].len, runs[0].segment),
            (Some(a(1)), 12, Some(4))
        );
        assert_eq!(
            &data[runs[0].offset..runs[0].offset + 12],
            &[10, 10, 10, 10, 11, 11, 11, 11, 12, 12, 12, 12]
        );
        assert_eq!(
            (runs[1].dst, runs[1].len, runs[1].segment),
            (Some(a(1)), 2, None)
        );
        assert_eq!(
            (runs[2].dst, runs[2].len, runs[2].segment),
            (Some(a(2)), 12, Some(4))
        );
        let plain = q.plan(false).1.len();
        assert_eq!(plain, 7);
    }

    #[test]
    fn multicast_runs_share_one_copy() {
        let mut q = OutQueue::default();
        let members = [a(3), a(1), a(2)];
        for k in 0..5u8 {
            q.push_to_all(members, &[k; 8]);
        }
        let (data, runs) = q.plan(true);
        // Stored once, and every member's run is that same range.
        assert_eq!(data.len(), 5 * 8);
        assert_eq!(runs.len(), 3);
        for (run, member) in runs.iter().zip([a(1), a(2), a(3)]) {
            assert_eq!(
                (run.dst, run.offset, run.len, run.segment),
                (Some(member), 0, 40, Some(8))
            );
        }
        let plain = q.plan(false).1.to_vec();
        assert_eq!(plain.len(), 15);
        assert_eq!((plain[0].offset, plain[3].offset), (0, 8));
        // A unicast between two results: the members' runs are gathered,
        // the datagrams and their order stay the same.
        q.clear();
        q.push_to_all(members, &[1; 8]);
        q.push(a(2), &[7; 8]);
        q.push_to_all(members, &[2; 8]);
        let (data, runs) = q.plan(true);
        let bytes = |run: &Run| data[run.offset..run.offset + run.len].to_vec();
        assert_eq!(runs.len(), 3);
        assert_eq!(bytes(&runs[0]), [[1u8; 8], [2; 8]].concat());
        assert_eq!(bytes(&runs[1]), [[1u8; 8], [7; 8], [2; 8]].concat());
        assert_eq!(runs[1].segment, Some(8));
        assert_eq!(bytes(&runs[2]), [[1u8; 8], [2; 8]].concat());
    }

    #[test]
    fn caps_segments_and_splits_back() {
        let mut q = OutQueue::default();
        for _ in 0..MAX_SEGMENTS + 1 {
            q.push(a(1), &[1; 100]);
        }
        let runs = q.plan(true).1.to_vec();
        assert_eq!(runs.len(), 2);
        assert_eq!(runs[0].segment, Some(100));
        assert_eq!(runs[1].segment, None);
        let parts: Vec<Run> = split(runs[0]).collect();
        assert_eq!(parts.len(), MAX_SEGMENTS);
        assert!(parts.iter().all(|r| r.len == 100 && r.segment.is_none()));
        assert_eq!(parts[1].offset, 100);
    }
}

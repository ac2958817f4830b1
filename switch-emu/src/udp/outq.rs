//! Results waiting to be sent, grouped into GSO runs: datagrams of one
//! size to one destination go out as one message that the kernel segments.

use std::net::SocketAddrV4;

use udp_batch::Run;

/// Most segments in one GSO message (the kernel's UDP_MAX_SEGMENTS is 64 on older kernels).
pub const MAX_SEGMENTS: usize = 64;

/// Most bytes in one GSO message (below the 64 KiB IP datagram limit).
pub const MAX_GSO_BYTES: usize = 60_000;

/// Datagrams queued for one `sendmmsg` round.
#[derive(Debug, Default)]
pub struct OutQueue {
    data: Vec<u8>,
    items: Vec<(SocketAddrV4, usize, usize)>,
    order: Vec<usize>,
    flat: Vec<u8>,
    runs: Vec<Run>,
}

impl OutQueue {
    /// Queues one datagram.
    pub fn push(&mut self, dst: SocketAddrV4, datagram: &[u8]) {
        self.items.push((dst, self.data.len(), datagram.len()));
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
        self.flat.clear();
        let mut current: Option<(Run, usize)> = None; // (run, segments)
        for &i in &self.order {
            let (dst, offset, len) = items[i];
            let joins = current.as_ref().is_some_and(|(run, segs)| {
                run.dst == Some(dst)
                    && run.len / segs == len
                    && *segs < MAX_SEGMENTS
                    && run.len + len <= MAX_GSO_BYTES
            });
            if joins {
                let (run, segs) = current.as_mut().expect("checked");
                run.len += len;
                *segs += 1;
            } else {
                if let Some(done) = current.take() {
                    self.runs.push(finish(done));
                }
                current = Some((
                    Run {
                        dst: Some(dst),
                        offset: self.flat.len(),
                        len,
                        segment: None,
                    },
                    1,
                ));
            }
            self.flat
                .extend_from_slice(&self.data[offset..offset + len]);
        }
        if let Some(done) = current {
            self.runs.push(finish(done));
        }
        (&self.flat, &self.runs)
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

//! The bytes of the send queue: datagrams back to back, in space that is
//! kept from one flush to the next together with the old bytes in it, so
//! that the engine writes each packet once instead of the space being
//! zeroed first (at 64 KiB packets that zeroing was a pass over every byte
//! sent).

use packet_format::PacketSink;

/// Queued datagram bytes (see the module docs).
#[derive(Debug, Default)]
pub struct SendBytes {
    /// Grown when needed, never shrunk (its size is bounded by what one
    /// flush sends); only `..len` is queued.
    space: Vec<u8>,
    len: usize,
}

impl SendBytes {
    /// The queued bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.space[..self.len]
    }

    /// Bytes queued.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends a copy of `data`.
    pub fn extend_from_slice(&mut self, data: &[u8]) {
        self.append(data.len()).copy_from_slice(data);
    }

    /// Drops everything after the first `len` bytes.
    pub(crate) fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
    }

    /// Empties the queue, keeping its space.
    pub(crate) fn clear(&mut self) {
        self.len = 0;
    }
}

impl PacketSink for SendBytes {
    fn append(&mut self, len: usize) -> &mut [u8] {
        let start = self.len;
        let end = start + len;
        if self.space.len() < end {
            self.space.resize(end, 0);
        }
        self.len = end;
        &mut self.space[start..end]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn space_is_reused_and_only_the_queued_part_shows() {
        let mut q = SendBytes::default();
        q.extend_from_slice(&[1, 2, 3, 4]);
        q.extend_from_slice(&[5, 6]);
        assert_eq!(q.bytes(), [1, 2, 3, 4, 5, 6]);
        q.truncate(4);
        assert_eq!(q.bytes(), [1, 2, 3, 4]);
        q.clear();
        assert!(q.is_empty());
        // Reused space holds the old bytes until written over.
        assert_eq!(q.append(3), [1, 2, 3]);
        assert_eq!(q.len(), 3);
        q.append(5).copy_from_slice(&[9; 5]);
        assert_eq!(q.bytes(), [1, 2, 3, 9, 9, 9, 9, 9]);
    }
}

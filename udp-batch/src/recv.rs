//! Receiving: one `recvmmsg` fills a batch of buffers, each with its
//! sender and, with UDP GRO, the size of the datagrams coalesced into it.

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::RawFd;

use crate::addr::{from_sockaddr, sockaddr};
use crate::CONTROL_LEN;

/// Largest datagram (or GRO-coalesced run) one receive buffer holds.
pub const GRO_BUFFER: usize = 65_536;

/// Receive buffer without GRO: the largest UDP datagram (emulator-only
/// packets go up to the IPv4 limit; a shorter buffer would truncate them).
pub const PLAIN_BUFFER: usize = 65_536;

/// One received buffer: a datagram, or with GRO several datagrams of
/// `segment` bytes each (the last may be shorter).
#[derive(Debug)]
pub struct Received<'a> {
    /// Sender (`None` if not IPv4, never expected on an IPv4 socket).
    pub src: Option<SocketAddrV4>,
    /// The bytes.
    pub data: &'a [u8],
    /// GRO segment size, if the kernel coalesced datagrams.
    pub segment: Option<usize>,
}

impl Received<'_> {
    /// The datagrams in this buffer (none if it is empty).
    pub fn datagrams(&self) -> impl Iterator<Item = &[u8]> {
        let size = self.segment.unwrap_or(self.data.len()).max(1);
        self.data.chunks(size)
    }
}

/// Buffers for one `recvmmsg` call.
pub struct RecvBatch {
    buf_size: usize,
    bufs: Vec<u8>,
    names: Vec<libc::sockaddr_in>,
    controls: Vec<[u64; CONTROL_LEN / 8]>,
    /// Per filled message: bytes received and GRO segment size.
    filled: Vec<(usize, Option<usize>)>,
}

impl std::fmt::Debug for RecvBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecvBatch")
            .field("messages", &self.names.len())
            .field("buf_size", &self.buf_size)
            .finish()
    }
}

impl RecvBatch {
    /// Room for `messages` (at least one) buffers of `buf_size` bytes; a
    /// longer datagram is truncated to `buf_size`.
    pub fn new(messages: usize, buf_size: usize) -> Self {
        let messages = messages.max(1);
        RecvBatch {
            buf_size,
            bufs: vec![0; messages * buf_size],
            names: vec![sockaddr(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0)); messages],
            controls: vec![[0; CONTROL_LEN / 8]; messages],
            filled: Vec::with_capacity(messages),
        }
    }

    /// Receives up to the batch size without blocking; `Ok(0)` if nothing is queued.
    pub fn recv(&mut self, fd: RawFd) -> io::Result<usize> {
        let n = self.names.len();
        self.filled.clear();
        // The headers hold raw pointers, so they live only for this call
        // (which keeps the batch `Send`).
        let base = self.bufs.as_mut_ptr();
        let mut iovs: Vec<libc::iovec> = (0..n)
            .map(|i| libc::iovec {
                // SAFETY: i * buf_size + buf_size <= bufs.len(), so the pointer stays in bounds.
                #[allow(unsafe_code)]
                iov_base: unsafe { base.add(i * self.buf_size) }.cast(),
                iov_len: self.buf_size,
            })
            .collect();
        // SAFETY: mmsghdr is plain data (pointers and integers); all-zero is valid.
        #[allow(unsafe_code)]
        let mut msgs: Vec<libc::mmsghdr> = (0..n).map(|_| unsafe { zeroed() }).collect();
        for (i, msg) in msgs.iter_mut().enumerate() {
            let hdr = &mut msg.msg_hdr;
            hdr.msg_name = (&mut self.names[i] as *mut libc::sockaddr_in).cast();
            hdr.msg_namelen = size_of::<libc::sockaddr_in>() as libc::socklen_t;
            hdr.msg_iov = &mut iovs[i];
            hdr.msg_iovlen = 1;
            hdr.msg_control = self.controls[i].as_mut_ptr().cast();
            hdr.msg_controllen = CONTROL_LEN as _;
        }
        // SAFETY: every msghdr points into buffers that live, unmoved, through
        // the call (`names`, `iovs` -> `bufs`, `controls`); the lengths given
        // are those of the buffers.
        #[allow(unsafe_code)]
        let rc = unsafe {
            libc::recvmmsg(
                fd,
                msgs.as_mut_ptr(),
                n as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if rc < 0 {
            let err = io::Error::last_os_error();
            return if err.kind() == io::ErrorKind::WouldBlock {
                Ok(0)
            } else {
                Err(err)
            };
        }
        for msg in &msgs[..rc as usize] {
            let len = (msg.msg_len as usize).min(self.buf_size);
            self.filled.push((len, gro_segment(&msg.msg_hdr)));
        }
        Ok(self.filled.len())
    }

    /// The `i`-th buffer of the last `recv`.
    pub fn get(&self, i: usize) -> Option<Received<'_>> {
        let &(len, segment) = self.filled.get(i)?;
        let data = &self.bufs[i * self.buf_size..i * self.buf_size + len];
        Some(Received {
            src: from_sockaddr(&self.names[i]),
            data,
            segment,
        })
    }
}

/// The UDP_GRO segment size in a received message's ancillary data.
fn gro_segment(hdr: &libc::msghdr) -> Option<usize> {
    // SAFETY: `hdr` was filled by recvmmsg: msg_control points to our
    // CONTROL_LEN-byte buffer and msg_controllen says how much the kernel
    // wrote; the CMSG_* macros stay within it. The data of a UDP_GRO cmsg is
    // one int, read unaligned.
    #[allow(unsafe_code)]
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(hdr);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_UDP && (*cmsg).cmsg_type == libc::UDP_GRO {
                let size = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<libc::c_int>());
                return usize::try_from(size).ok().filter(|&s| s > 0);
            }
            cmsg = libc::CMSG_NXTHDR(hdr, cmsg);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{bind, recv_all, v4};
    use crate::{get_int_opt, send_runs, set_int_opt, Run};
    use std::os::fd::AsRawFd;

    #[test]
    fn datagrams_splits_by_segment_last_shorter() {
        let data: Vec<u8> = (0..10).collect();
        let r = Received {
            src: None,
            data: &data,
            segment: Some(4),
        };
        let parts: Vec<&[u8]> = r.datagrams().collect();
        assert_eq!(parts, [&data[0..4], &data[4..8], &data[8..10]]);
        let plain = Received { segment: None, ..r };
        assert_eq!(plain.datagrams().collect::<Vec<_>>(), [&data[..]]);
        let empty = Received {
            src: None,
            data: &[],
            segment: None,
        };
        assert_eq!(empty.datagrams().count(), 0);
    }

    #[test]
    fn nothing_queued_is_zero() {
        let s = bind();
        let mut batch = RecvBatch::new(4, PLAIN_BUFFER);
        assert_eq!(batch.recv(s.as_raw_fd()).unwrap(), 0);
        assert!(batch.get(0).is_none());
    }

    #[test]
    fn reports_each_sender_and_no_segment_without_gro() {
        let rx = bind();
        let (a, b) = (bind(), bind());
        a.send_to(b"from a", v4(&rx)).unwrap();
        b.send_to(b"from b!", v4(&rx)).unwrap();
        let mut batch = RecvBatch::new(8, PLAIN_BUFFER);
        let mut got = recv_all(&rx, &mut batch, 2);
        let mut want = vec![
            (Some(v4(&a)), b"from a".to_vec(), None),
            (Some(v4(&b)), b"from b!".to_vec(), None),
        ];
        // Ordered by sender, whichever port the kernel gave each.
        got.sort();
        want.sort();
        assert_eq!(got, want);
    }

    #[test]
    fn truncates_to_the_buffer_size() {
        let (tx, rx) = (bind(), bind());
        tx.send_to(&[5; 100], v4(&rx)).unwrap();
        let mut batch = RecvBatch::new(1, 64);
        let got = recv_all(&rx, &mut batch, 1);
        assert_eq!(got, [(Some(v4(&tx)), vec![5; 64], None)]);
    }

    /// A GSO message stays one buffer on loopback when the receiver asked
    /// for GRO; the batch reports the segment size and splits it back.
    #[test]
    fn gro_buffer_is_split_into_its_datagrams() {
        let (tx, rx) = (bind(), bind());
        if get_int_opt(tx.as_raw_fd(), libc::SOL_UDP, libc::UDP_SEGMENT).is_err() {
            eprintln!("skipped: this kernel has no UDP GSO");
            return;
        }
        set_int_opt(rx.as_raw_fd(), libc::SOL_UDP, libc::UDP_GRO, 1).unwrap();
        let data: Vec<u8> = (0..4 * 300 + 70).map(|i| (i % 251) as u8).collect();
        let run = Run {
            dst: Some(v4(&rx)),
            offset: 0,
            len: data.len(),
            segment: Some(300),
        };
        assert_eq!(send_runs(tx.as_raw_fd(), &data, &[run]).unwrap(), 1);
        let mut batch = RecvBatch::new(8, GRO_BUFFER);
        let got = recv_all(&rx, &mut batch, 5);
        assert_eq!(got.len(), 1, "one coalesced buffer");
        let (src, bytes, segment) = &got[0];
        assert_eq!((*src, *segment), (Some(v4(&tx)), Some(300)));
        let r = Received {
            src: *src,
            data: bytes,
            segment: *segment,
        };
        let sizes: Vec<usize> = r.datagrams().map(<[u8]>::len).collect();
        assert_eq!(sizes, [300, 300, 300, 300, 70]);
        assert_eq!(r.datagrams().collect::<Vec<_>>().concat(), data);
    }
}

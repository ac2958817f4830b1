//! Batched UDP system calls (Linux): `recvmmsg` with UDP GRO, `sendmmsg`
//! with UDP GSO, `poll`. Per-packet system calls are this machine's budget
//! (DESIGN.md), so every call moves as many datagrams as it can.

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::RawFd;

/// Bytes of ancillary data per message: room for one `int` cmsg, aligned.
const CONTROL_LEN: usize = 64;

/// Largest datagram (or GRO-coalesced run) one receive buffer holds.
pub const GRO_BUFFER: usize = 65_536;

/// Receive buffer without GRO: a jumbo datagram.
pub const PLAIN_BUFFER: usize = 9_216;

/// Sets an `int` socket option.
pub fn set_int_opt(fd: RawFd, level: i32, name: i32, value: i32) -> io::Result<()> {
    // SAFETY: `value` outlives the call and its size is passed.
    #[allow(unsafe_code)]
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&value as *const i32).cast(),
            size_of::<i32>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn sockaddr(addr: SocketAddrV4) -> libc::sockaddr_in {
    // SAFETY: sockaddr_in is plain data; all-zero is a valid value.
    #[allow(unsafe_code)]
    let mut sa: libc::sockaddr_in = unsafe { zeroed() };
    sa.sin_family = libc::AF_INET as libc::sa_family_t;
    sa.sin_port = addr.port().to_be();
    sa.sin_addr.s_addr = u32::from(*addr.ip()).to_be();
    sa
}

fn from_sockaddr(sa: &libc::sockaddr_in) -> Option<SocketAddrV4> {
    (i32::from(sa.sin_family) == libc::AF_INET).then(|| {
        SocketAddrV4::new(
            Ipv4Addr::from(u32::from_be(sa.sin_addr.s_addr)),
            u16::from_be(sa.sin_port),
        )
    })
}

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
    /// The datagrams in this buffer.
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
    /// Room for `messages` buffers of `buf_size` bytes.
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

/// One message to send: `len` bytes at `offset` of the data buffer to
/// `dst`; with `segment`, the kernel splits it into datagrams of that size (GSO).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    /// Destination.
    pub dst: SocketAddrV4,
    /// Start in the data buffer.
    pub offset: usize,
    /// Bytes.
    pub len: usize,
    /// GSO segment size, if the run holds several datagrams.
    pub segment: Option<u16>,
}

/// Sends `runs` (pointing into `data`) with one `sendmmsg`; returns how
/// many were sent, from the start. An error means the first run failed.
pub fn send_runs(fd: RawFd, data: &[u8], runs: &[Run]) -> io::Result<usize> {
    if runs.is_empty() {
        return Ok(0);
    }
    let mut names: Vec<libc::sockaddr_in> = runs.iter().map(|r| sockaddr(r.dst)).collect();
    let mut iovs: Vec<libc::iovec> = runs
        .iter()
        .map(|r| libc::iovec {
            iov_base: data[r.offset..r.offset + r.len].as_ptr() as *mut libc::c_void,
            iov_len: r.len,
        })
        .collect();
    let mut controls: Vec<[u64; CONTROL_LEN / 8]> = vec![[0; CONTROL_LEN / 8]; runs.len()];
    // SAFETY: mmsghdr is plain data; all-zero is valid.
    #[allow(unsafe_code)]
    let mut msgs: Vec<libc::mmsghdr> = (0..runs.len()).map(|_| unsafe { zeroed() }).collect();
    for (i, run) in runs.iter().enumerate() {
        let hdr = &mut msgs[i].msg_hdr;
        hdr.msg_name = (&mut names[i] as *mut libc::sockaddr_in).cast();
        hdr.msg_namelen = size_of::<libc::sockaddr_in>() as libc::socklen_t;
        hdr.msg_iov = &mut iovs[i];
        hdr.msg_iovlen = 1;
        if let Some(segment) = run.segment {
            hdr.msg_control = controls[i].as_mut_ptr().cast();
            // SAFETY: CMSG_SPACE is a pure size computation.
            #[allow(unsafe_code)]
            let space = unsafe { libc::CMSG_SPACE(size_of::<u16>() as u32) } as usize;
            hdr.msg_controllen = space as _;
            // SAFETY: msg_control points to CONTROL_LEN >= `space` zeroed,
            // 8-aligned bytes; CMSG_FIRSTHDR returns its start; the u16
            // segment size is written inside the cmsg's data (CMSG_LEN(2)).
            #[allow(unsafe_code)]
            unsafe {
                let cmsg = libc::CMSG_FIRSTHDR(hdr);
                (*cmsg).cmsg_level = libc::SOL_UDP;
                (*cmsg).cmsg_type = libc::UDP_SEGMENT;
                (*cmsg).cmsg_len = libc::CMSG_LEN(size_of::<u16>() as u32) as _;
                std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<u16>(), segment);
            }
        }
    }
    // SAFETY: every msghdr points into `names`, `iovs` (-> `data`) and
    // `controls`, all alive and unmoved through the call; the kernel only
    // reads the iovec data.
    #[allow(unsafe_code)]
    let rc = unsafe {
        libc::sendmmsg(
            fd,
            msgs.as_mut_ptr(),
            msgs.len() as libc::c_uint,
            libc::MSG_DONTWAIT,
        )
    };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc as usize)
    }
}

/// Waits for events on `fds` for at most `timeout_ms` (-1: forever).
/// An interrupted wait returns `Ok(0)`.
pub fn poll(fds: &mut [libc::pollfd], timeout_ms: i32) -> io::Result<usize> {
    // SAFETY: `fds` is a valid, exclusively borrowed slice of pollfd of the given length.
    #[allow(unsafe_code)]
    let rc = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
    if rc >= 0 {
        return Ok(rc as usize);
    }
    let err = io::Error::last_os_error();
    if err.kind() == io::ErrorKind::Interrupted {
        Ok(0)
    } else {
        Err(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;
    use std::os::fd::AsRawFd;
    use std::time::Duration;

    fn v4(s: &UdpSocket) -> SocketAddrV4 {
        match s.local_addr().unwrap() {
            std::net::SocketAddr::V4(a) => a,
            other => panic!("{other}"),
        }
    }

    #[test]
    fn batch_round_trip_without_offloads() {
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        let data: Vec<u8> = (0..30).collect();
        let runs: Vec<Run> = (0..3)
            .map(|i| Run {
                dst: v4(&b),
                offset: i * 10,
                len: 10,
                segment: None,
            })
            .collect();
        assert_eq!(send_runs(a.as_raw_fd(), &data, &runs).unwrap(), 3);
        let mut batch = RecvBatch::new(8, PLAIN_BUFFER);
        b.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
        let mut got = Vec::new();
        while got.len() < 3 {
            let mut fds = [libc::pollfd {
                fd: b.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            }];
            poll(&mut fds, 1000).unwrap();
            let n = batch.recv(b.as_raw_fd()).unwrap();
            for i in 0..n {
                let r = batch.get(i).unwrap();
                assert_eq!(r.src, Some(v4(&a)));
                got.extend(r.datagrams().map(<[u8]>::to_vec));
            }
        }
        assert_eq!(got, data.chunks(10).map(<[u8]>::to_vec).collect::<Vec<_>>());
    }
}

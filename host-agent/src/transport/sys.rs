//! Thin wrappers over the Linux calls the UDP transport batches with:
//! `recvmmsg` (reading the UDP_GRO segment size), `sendmmsg` (with an
//! optional UDP_SEGMENT per message), `setsockopt`, `poll`. Per-packet
//! system calls are this machine's budget, so every call moves many datagrams.

use std::io;
use std::mem::{size_of, zeroed};
use std::os::fd::RawFd;

/// Bytes of ancillary data per message: room for one `int` cmsg, 8-aligned.
const CONTROL_WORDS: usize = 8;

/// Sets an `int` socket option.
pub fn set_int_opt(fd: RawFd, level: i32, name: i32, value: i32) -> io::Result<()> {
    // SAFETY: `value` lives through the call and its exact size is passed.
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

/// Reads an `int` socket option.
pub fn get_int_opt(fd: RawFd, level: i32, name: i32) -> io::Result<i32> {
    let mut value: i32 = 0;
    let mut len = size_of::<i32>() as libc::socklen_t;
    // SAFETY: `value` and `len` are valid for writes and `len` holds the size of `value`.
    #[allow(unsafe_code)]
    let rc =
        unsafe { libc::getsockopt(fd, level, name, (&mut value as *mut i32).cast(), &mut len) };
    if rc == 0 {
        Ok(value)
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Receive buffers for one `recvmmsg` call on a connected socket.
pub struct RecvBatch {
    buf_size: usize,
    bufs: Vec<u8>,
    controls: Vec<[u64; CONTROL_WORDS]>,
    /// Per filled message: bytes received and GRO segment size.
    filled: Vec<(usize, Option<usize>)>,
}

impl std::fmt::Debug for RecvBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecvBatch")
            .field("messages", &self.controls.len())
            .field("buf_size", &self.buf_size)
            .finish()
    }
}

impl RecvBatch {
    /// Room for `messages` buffers of `buf_size` bytes each.
    pub fn new(messages: usize, buf_size: usize) -> Self {
        let messages = messages.max(1);
        RecvBatch {
            buf_size,
            bufs: vec![0; messages * buf_size],
            controls: vec![[0; CONTROL_WORDS]; messages],
            filled: Vec::with_capacity(messages),
        }
    }

    /// Receives up to the batch size without blocking; `Ok(0)` if nothing is queued.
    pub fn recv(&mut self, fd: RawFd) -> io::Result<usize> {
        let n = self.controls.len();
        self.filled.clear();
        // The headers hold raw pointers into `self`, so they are built per
        // call (which keeps the batch `Send`).
        let base = self.bufs.as_mut_ptr();
        let mut iovs: Vec<libc::iovec> = (0..n)
            .map(|i| libc::iovec {
                // SAFETY: (i + 1) * buf_size <= bufs.len(), so the pointer stays in bounds.
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
            hdr.msg_iov = &mut iovs[i];
            hdr.msg_iovlen = 1;
            hdr.msg_control = self.controls[i].as_mut_ptr().cast();
            hdr.msg_controllen = (CONTROL_WORDS * 8) as _;
        }
        // SAFETY: every msghdr points into `iovs` (-> `bufs`) and `controls`,
        // which live unmoved through the call; the lengths are theirs.
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

    /// The `i`-th buffer of the last `recv` and its GRO segment size (the
    /// buffer holds datagrams of that size, the last possibly shorter).
    pub fn get(&self, i: usize) -> Option<(&[u8], Option<usize>)> {
        let &(len, segment) = self.filled.get(i)?;
        let start = i * self.buf_size;
        Some((&self.bufs[start..start + len], segment))
    }
}

/// The UDP_GRO segment size in a received message's ancillary data.
fn gro_segment(hdr: &libc::msghdr) -> Option<usize> {
    // SAFETY: `hdr` was filled by recvmmsg: msg_control points to our buffer
    // and msg_controllen says how much the kernel wrote; the CMSG_* macros
    // stay within it. A UDP_GRO cmsg carries one int, read unaligned.
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

/// One message for `sendmmsg`: `len` bytes at `offset` of the data buffer;
/// with `segment`, the kernel cuts it into datagrams of that size (GSO).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    /// Start in the data buffer.
    pub offset: usize,
    /// Bytes.
    pub len: usize,
    /// GSO segment size, if the message holds several datagrams.
    pub segment: Option<u16>,
}

/// Sends `runs` (slices of `data`) on a connected socket with one
/// `sendmmsg`; returns how many messages went out, from the start. An
/// error means the first one failed.
pub fn send_runs(fd: RawFd, data: &[u8], runs: &[Run]) -> io::Result<usize> {
    if runs.is_empty() {
        return Ok(0);
    }
    let mut iovs: Vec<libc::iovec> = runs
        .iter()
        .map(|r| libc::iovec {
            iov_base: data[r.offset..r.offset + r.len].as_ptr() as *mut libc::c_void,
            iov_len: r.len,
        })
        .collect();
    let mut controls: Vec<[u64; CONTROL_WORDS]> = vec![[0; CONTROL_WORDS]; runs.len()];
    // SAFETY: mmsghdr is plain data; all-zero is valid.
    #[allow(unsafe_code)]
    let mut msgs: Vec<libc::mmsghdr> = (0..runs.len()).map(|_| unsafe { zeroed() }).collect();
    for (i, run) in runs.iter().enumerate() {
        let hdr = &mut msgs[i].msg_hdr;
        hdr.msg_iov = &mut iovs[i];
        hdr.msg_iovlen = 1;
        if let Some(segment) = run.segment {
            hdr.msg_control = controls[i].as_mut_ptr().cast();
            // SAFETY: CMSG_SPACE is a pure size computation.
            #[allow(unsafe_code)]
            let space = unsafe { libc::CMSG_SPACE(size_of::<u16>() as u32) } as usize;
            hdr.msg_controllen = space as _;
            // SAFETY: msg_control points to CONTROL_WORDS * 8 >= `space`
            // zeroed, 8-aligned bytes; CMSG_FIRSTHDR returns its start (non-null
            // since msg_controllen >= a cmsghdr); the u16 is written inside
            // the cmsg's data (CMSG_LEN(2)).
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
    // SAFETY: every msghdr points into `iovs` (-> `data`) and `controls`,
    // all alive and unmoved through the call; the kernel only reads them.
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

/// Waits for events on `fds` for at most `timeout` (`None`: forever), with
/// nanosecond resolution (`ppoll`), so short retransmission timers are not
/// rounded up to milliseconds. An interrupted wait returns `Ok(0)`.
pub fn poll(fds: &mut [libc::pollfd], timeout: Option<std::time::Duration>) -> io::Result<usize> {
    let ts = timeout.map(|t| libc::timespec {
        tv_sec: t.as_secs().min(i64::MAX as u64) as libc::time_t,
        tv_nsec: t.subsec_nanos() as _,
    });
    let ts_ptr = ts
        .as_ref()
        .map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: `fds` is a valid, exclusively borrowed slice of pollfd of the
    // given length; `ts_ptr` is null or points to `ts`, alive through the
    // call; a null signal mask leaves the mask unchanged.
    #[allow(unsafe_code)]
    let rc = unsafe {
        libc::ppoll(
            fds.as_mut_ptr(),
            fds.len() as libc::nfds_t,
            ts_ptr,
            std::ptr::null(),
        )
    };
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

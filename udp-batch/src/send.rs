//! Sending: one `sendmmsg` carries many messages; a message with a segment
//! size is cut into datagrams by the kernel (UDP GSO, `UDP_SEGMENT`).

use std::io;
use std::mem::{size_of, zeroed};
use std::net::SocketAddrV4;
use std::os::fd::RawFd;

use crate::addr::sockaddr;
use crate::CONTROL_LEN;

/// One message to send: `len` bytes at `offset` of the data buffer to
/// `dst`; with `segment`, the kernel splits it into datagrams of that size
/// (the last may be shorter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    /// Destination; `None` on a connected socket (its peer).
    pub dst: Option<SocketAddrV4>,
    /// Start in the data buffer.
    pub offset: usize,
    /// Bytes.
    pub len: usize,
    /// GSO segment size, if the run holds several datagrams.
    pub segment: Option<u16>,
}

/// Sends `runs` (pointing into `data`) with one `sendmmsg` without
/// blocking; returns how many were sent, from the start. An error means the
/// first run failed (`WouldBlock`: the send buffer is full).
///
/// Panics if a run lies outside `data`.
pub fn send_runs(fd: RawFd, data: &[u8], runs: &[Run]) -> io::Result<usize> {
    if runs.is_empty() {
        return Ok(0);
    }
    let mut names: Vec<Option<libc::sockaddr_in>> =
        runs.iter().map(|r| r.dst.map(sockaddr)).collect();
    let mut iovs: Vec<libc::iovec> = runs
        .iter()
        .map(|r| libc::iovec {
            iov_base: data[r.offset..r.offset + r.len].as_ptr() as *mut libc::c_void,
            iov_len: r.len,
        })
        .collect();
    let mut controls: Vec<[u64; CONTROL_LEN / 8]> = vec![[0; CONTROL_LEN / 8]; runs.len()];
    // SAFETY: mmsghdr is plain data; all-zero is valid (a null msg_name
    // sends to the connected peer).
    #[allow(unsafe_code)]
    let mut msgs: Vec<libc::mmsghdr> = (0..runs.len()).map(|_| unsafe { zeroed() }).collect();
    for (i, run) in runs.iter().enumerate() {
        let hdr = &mut msgs[i].msg_hdr;
        if let Some(name) = names[i].as_mut() {
            hdr.msg_name = (name as *mut libc::sockaddr_in).cast();
            hdr.msg_namelen = size_of::<libc::sockaddr_in>() as libc::socklen_t;
        }
        hdr.msg_iov = &mut iovs[i];
        hdr.msg_iovlen = 1;
        if let Some(segment) = run.segment {
            hdr.msg_control = controls[i].as_mut_ptr().cast();
            // SAFETY: CMSG_SPACE is a pure size computation.
            #[allow(unsafe_code)]
            let space = unsafe { libc::CMSG_SPACE(size_of::<u16>() as u32) } as usize;
            hdr.msg_controllen = space as _;
            // SAFETY: msg_control points to CONTROL_LEN >= `space` zeroed,
            // 8-aligned bytes; CMSG_FIRSTHDR returns its start (non-null since
            // msg_controllen >= a cmsghdr); the u16 segment size is written
            // inside the cmsg's data (CMSG_LEN(2)).
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
    // reads them.
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{bind, recv_all, v4};
    use crate::{get_int_opt, RecvBatch, PLAIN_BUFFER};
    use std::os::fd::AsRawFd;

    fn bytes(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 7 % 256) as u8).collect()
    }

    #[test]
    fn plain_runs_to_several_destinations() {
        let tx = bind();
        let (r1, r2) = (bind(), bind());
        let data = bytes(30);
        let runs = [
            (Some(v4(&r1)), 0, 10),
            (Some(v4(&r2)), 10, 5),
            (Some(v4(&r1)), 15, 15),
        ]
        .map(|(dst, offset, len)| Run {
            dst,
            offset,
            len,
            segment: None,
        });
        assert_eq!(send_runs(tx.as_raw_fd(), &data, &runs).unwrap(), 3);
        let mut batch = RecvBatch::new(8, PLAIN_BUFFER);
        let at_r1 = recv_all(&r1, &mut batch, 2);
        let from = Some(v4(&tx));
        assert_eq!(
            at_r1,
            [
                (from, data[..10].to_vec(), None),
                (from, data[15..].to_vec(), None)
            ]
        );
        assert_eq!(
            recv_all(&r2, &mut batch, 1),
            [(from, data[10..15].to_vec(), None)]
        );
    }

    /// Without GRO at the receiver, a GSO run arrives as separate datagrams
    /// of the segment size, the last shorter.
    #[test]
    fn gso_run_arrives_as_its_datagrams() {
        let (tx, rx) = (bind(), bind());
        if get_int_opt(tx.as_raw_fd(), libc::SOL_UDP, libc::UDP_SEGMENT).is_err() {
            eprintln!("skipped: this kernel has no UDP GSO");
            return;
        }
        let data = bytes(3 * 200 + 50 + 20);
        // The first 20 bytes are not sent: the run starts at an offset.
        let run = Run {
            dst: Some(v4(&rx)),
            offset: 20,
            len: 650,
            segment: Some(200),
        };
        assert_eq!(send_runs(tx.as_raw_fd(), &data, &[run]).unwrap(), 1);
        let mut batch = RecvBatch::new(8, PLAIN_BUFFER);
        let got = recv_all(&rx, &mut batch, 4);
        let sizes: Vec<usize> = got.iter().map(|(_, d, _)| d.len()).collect();
        assert_eq!(sizes, [200, 200, 200, 50]);
        assert!(got
            .iter()
            .all(|(src, _, seg)| *src == Some(v4(&tx)) && seg.is_none()));
        let joined: Vec<u8> = got.into_iter().flat_map(|(_, d, _)| d).collect();
        assert_eq!(joined, data[20..]);
    }

    #[test]
    fn connected_socket_needs_no_destination() {
        let (tx, rx) = (bind(), bind());
        tx.connect(v4(&rx)).unwrap();
        let data = bytes(8);
        let runs = [0, 4].map(|offset| Run {
            dst: None,
            offset,
            len: 4,
            segment: None,
        });
        assert_eq!(send_runs(tx.as_raw_fd(), &data, &runs).unwrap(), 2);
        let mut batch = RecvBatch::new(8, PLAIN_BUFFER);
        let got: Vec<Vec<u8>> = recv_all(&rx, &mut batch, 2)
            .into_iter()
            .map(|(_, d, _)| d)
            .collect();
        assert_eq!(got, [data[..4].to_vec(), data[4..].to_vec()]);
    }

    #[test]
    fn first_failure_is_an_error_and_empty_is_zero() {
        let tx = bind();
        assert_eq!(send_runs(tx.as_raw_fd(), &[], &[]).unwrap(), 0);
        // Unconnected and no destination: the kernel refuses.
        let run = Run {
            dst: None,
            offset: 0,
            len: 1,
            segment: None,
        };
        let err = send_runs(tx.as_raw_fd(), &[1], &[run]).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EDESTADDRREQ));
    }
}

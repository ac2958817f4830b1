//! Waiting for descriptors with `ppoll`: nanosecond timeouts, so short
//! retransmission timers are not rounded up to milliseconds.

use std::io;
use std::time::Duration;

/// Waits for events on `fds` for at most `timeout` (`None`: forever);
/// returns how many descriptors have events. A negative fd is ignored. An
/// interrupted wait returns `Ok(0)`.
pub fn poll(fds: &mut [libc::pollfd], timeout: Option<Duration>) -> io::Result<usize> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{bind, v4};
    use std::os::fd::AsRawFd;
    use std::time::Instant;

    fn readable(s: &std::net::UdpSocket) -> [libc::pollfd; 2] {
        [
            libc::pollfd {
                fd: s.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: -1,
                events: libc::POLLIN,
                revents: 0,
            },
        ]
    }

    #[test]
    fn times_out_after_at_least_the_timeout() {
        let s = bind();
        let mut fds = readable(&s);
        let start = Instant::now();
        assert_eq!(poll(&mut fds, Some(Duration::from_millis(30))).unwrap(), 0);
        assert!(start.elapsed() >= Duration::from_millis(30));
        assert_eq!(fds[0].revents, 0);
        assert_eq!(poll(&mut fds, Some(Duration::ZERO)).unwrap(), 0);
    }

    #[test]
    fn reports_a_readable_socket() {
        let s = bind();
        bind().send_to(b"x", v4(&s)).unwrap();
        let mut fds = readable(&s);
        // A generous limit, so that a broken poll fails instead of hanging.
        assert_eq!(poll(&mut fds, Some(Duration::from_secs(5))).unwrap(), 1);
        assert_eq!(fds[0].revents & libc::POLLIN, libc::POLLIN);
        assert_eq!(fds[1].revents, 0);
    }
}

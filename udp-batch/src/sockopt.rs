//! `int` socket options: buffer sizes and the UDP offload switches, which
//! the standard library does not expose.

use std::io;
use std::mem::size_of;
use std::os::fd::RawFd;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::bind;
    use std::os::fd::AsRawFd;

    #[test]
    fn set_then_get() {
        let s = bind();
        let fd = s.as_raw_fd();
        set_int_opt(fd, libc::SOL_SOCKET, libc::SO_RCVBUF, 64 * 1024).unwrap();
        // Linux doubles the request for its bookkeeping.
        assert_eq!(
            get_int_opt(fd, libc::SOL_SOCKET, libc::SO_RCVBUF).unwrap(),
            128 * 1024
        );
        set_int_opt(fd, libc::SOL_SOCKET, libc::SO_BROADCAST, 1).unwrap();
        assert_eq!(
            get_int_opt(fd, libc::SOL_SOCKET, libc::SO_BROADCAST).unwrap(),
            1
        );
    }

    #[test]
    fn errors_come_from_the_kernel() {
        let s = bind();
        let err = get_int_opt(s.as_raw_fd(), libc::SOL_SOCKET, -1).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENOPROTOOPT));
        let err = set_int_opt(-1, libc::SOL_SOCKET, libc::SO_RCVBUF, 1).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EBADF));
    }
}

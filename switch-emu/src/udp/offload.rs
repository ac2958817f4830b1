//! Detects at startup whether the kernel offers UDP GRO and GSO, so that the
//! driver uses them where they work and plain datagrams where they do not.

use std::net::{SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant};

use udp_batch::{RecvBatch, Run, PLAIN_BUFFER};

/// Enables UDP_GRO on `fd`; Err: the kernel refused.
pub fn enable_gro(fd: RawFd) -> std::io::Result<()> {
    udp_batch::set_int_opt(fd, libc::SOL_UDP, libc::UDP_GRO, 1)
}

/// Sends one two-segment GSO message between two loopback sockets and
/// checks that two datagrams arrive. Err: why GSO is not usable.
pub fn probe_gso() -> Result<(), String> {
    let tx = UdpSocket::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    let rx = UdpSocket::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    let SocketAddr::V4(dst) = rx.local_addr().map_err(|e| e.to_string())? else {
        return Err("loopback is not IPv4".into());
    };
    let data = [7u8; 48];
    let run = Run {
        dst: Some(dst),
        offset: 0,
        len: 48,
        segment: Some(24),
    };
    match udp_batch::send_runs(tx.as_raw_fd(), &data, &[run]) {
        Ok(1) => {}
        Ok(n) => return Err(format!("sendmmsg sent {n} of 1 messages")),
        Err(e) => return Err(format!("sendmmsg with UDP_SEGMENT failed: {e}")),
    }
    let mut batch = RecvBatch::new(4, PLAIN_BUFFER);
    let mut sizes = Vec::new();
    let deadline = Instant::now() + Duration::from_millis(500);
    while sizes.len() < 2 && Instant::now() < deadline {
        let mut fds = [libc::pollfd {
            fd: rx.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        udp_batch::poll(&mut fds, Some(Duration::from_millis(50))).map_err(|e| e.to_string())?;
        let n = batch.recv(rx.as_raw_fd()).map_err(|e| e.to_string())?;
        for i in 0..n {
            if let Some(r) = batch.get(i) {
                sizes.extend(r.datagrams().map(<[u8]>::len));
            }
        }
    }
    if sizes == [24, 24] {
        Ok(())
    } else {
        Err(format!(
            "a 2 x 24-byte GSO message arrived as datagrams of {sizes:?} bytes"
        ))
    }
}

//! Loopback sockets for the tests.

use std::net::{SocketAddr, SocketAddrV4, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use crate::{poll, RecvBatch};

/// A UDP socket bound to 127.0.0.1 on a free port.
pub fn bind() -> UdpSocket {
    UdpSocket::bind("127.0.0.1:0").unwrap()
}

/// `s`'s IPv4 address.
pub fn v4(s: &UdpSocket) -> SocketAddrV4 {
    match s.local_addr().unwrap() {
        SocketAddr::V4(a) => a,
        other => panic!("{other}"),
    }
}

/// One received buffer, owned: sender, bytes, GRO segment size.
pub type Buffer = (Option<SocketAddrV4>, Vec<u8>, Option<usize>);

/// Receives on `s` until the buffers hold `datagrams` datagrams or two
/// seconds pass.
pub fn recv_all(s: &UdpSocket, batch: &mut RecvBatch, datagrams: usize) -> Vec<Buffer> {
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut got: Vec<Buffer> = Vec::new();
    let mut count = 0;
    while count < datagrams && Instant::now() < deadline {
        let mut fds = [libc::pollfd {
            fd: s.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        poll(&mut fds, Some(Duration::from_millis(100))).unwrap();
        let n = batch.recv(s.as_raw_fd()).unwrap();
        for i in 0..n {
            let r = batch.get(i).unwrap();
            count += r.datagrams().count();
            got.push((r.src, r.data.to_vec(), r.segment));
        }
    }
    got
}

//! The socket a worker receives multicast results on, when the switch sends
//! each result once to the job's group ([`packet_format::control::JobParams::result_group`]).
//!
//! It is bound to the group's address and port with `SO_REUSEADDR`, so that
//! several workers on one host (loopback) each get every result, and joins
//! the group on the interface of the worker's data address, where the
//! switch sends the group (its data address's interface). Unlike the data
//! socket it is not connected: the source of a multicast datagram is
//! whatever address the switch's kernel chose, and the engine checks the
//! job, slot and sequence of every result anyway. The answer to a
//! retransmission still arrives on the data socket, by unicast.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};

use socket2::{Domain, Protocol, Socket, Type};
use udp_batch::{RecvBatch, GRO_BUFFER, PLAIN_BUFFER};

use super::udp::set_receive_buffer;

/// A joined result group (see the module docs).
#[derive(Debug)]
pub struct GroupReceiver {
    socket: UdpSocket,
    group: SocketAddrV4,
    pub(super) batch: RecvBatch,
}

impl GroupReceiver {
    /// Binds to `group` and joins it on the interface of `interface` (the
    /// worker's data address; unspecified: the kernel's choice), with GRO if
    /// `gro`, `recv_batch` messages per receive call and a receive buffer
    /// of `buffer` bytes.
    pub fn join(
        group: SocketAddrV4,
        interface: Ipv4Addr,
        gro: bool,
        recv_batch: usize,
        buffer: usize,
        max_datagram: usize,
    ) -> io::Result<GroupReceiver> {
        if !group.ip().is_multicast() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("result group {group} is not a multicast address"),
            ));
        }
        let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
        socket.set_reuse_address(true)?;
        socket.bind(&SocketAddr::V4(group).into())?;
        socket.join_multicast_v4(group.ip(), &interface)?;
        socket.set_nonblocking(true)?;
        let fd = socket.as_raw_fd();
        set_receive_buffer(fd, buffer)?;
        let gro = gro && udp_batch::set_int_opt(fd, libc::SOL_UDP, libc::UDP_GRO, 1).is_ok();
        let buf_size = if gro {
            GRO_BUFFER
        } else {
            max_datagram.clamp(64, PLAIN_BUFFER)
        };
        Ok(GroupReceiver {
            socket: socket.into(),
            group,
            batch: RecvBatch::new(recv_batch, buf_size),
        })
    }

    /// The group and port joined.
    pub fn group(&self) -> SocketAddrV4 {
        self.group
    }
}

impl AsRawFd for GroupReceiver {
    fn as_raw_fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }
}

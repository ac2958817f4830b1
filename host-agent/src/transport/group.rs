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
use udp_batch::RecvBatch;

use super::udp::{receive_buffer_size, set_receive_buffer};
use super::TransportOptions;

/// A joined result group (see the module docs).
#[derive(Debug)]
pub struct GroupReceiver {
    socket: UdpSocket,
    pub(super) batch: RecvBatch,
}

impl GroupReceiver {
    /// Binds to `group` and joins it on the interface of `interface` (the
    /// worker's data address; unspecified: the kernel's choice), with the
    /// data socket's buffer size, batch size and GRO setting.
    pub fn join(
        group: SocketAddrV4,
        interface: Ipv4Addr,
        options: &TransportOptions,
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
        set_receive_buffer(fd, options.socket_buffer)?;
        let gro =
            options.gro && udp_batch::set_int_opt(fd, libc::SOL_UDP, libc::UDP_GRO, 1).is_ok();
        Ok(GroupReceiver {
            socket: socket.into(),
            batch: RecvBatch::new(options.recv_batch, receive_buffer_size(gro, max_datagram)),
        })
    }
}

impl AsRawFd for GroupReceiver {
    fn as_raw_fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }
}

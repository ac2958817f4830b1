//! A UDP transport for the slot engine: one socket, connected to the
//! switch's data address once the job is set up, that sends queued
//! datagrams in batches and receives in batches.
//!
//! Sending: queued datagrams go out with `sendmmsg`; consecutive datagrams
//! of the same size (the engine's steady state) are merged into one UDP GSO
//! message (`UDP_SEGMENT`), which the kernel cuts into datagrams again: one
//! system call then carries up to [`GSO_MAX_SEGMENTS`] packets per message.
//! If the kernel refuses GSO, the transport falls back to one datagram per
//! message for good. Receiving: `recvmmsg`, with `UDP_GRO` where the kernel
//! offers it, so one buffer may hold a run of coalesced results.
//!
//! Connecting the socket makes the kernel deliver only the switch's
//! datagrams; the engine still checks job, key, slot and sequence of each.
//! When the switch multicasts results, a second socket receives the job's
//! group ([`UdpTransport::join_group`], [`super::GroupReceiver`]).

use std::io;
use std::net::{SocketAddr, SocketAddrV4, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

use udp_batch::{RecvBatch, Run, GRO_BUFFER, PLAIN_BUFFER};

use super::group::GroupReceiver;
use super::SendBytes;

/// Most datagrams merged into one GSO message (the kernel's
/// `UDP_MAX_SEGMENTS` is 64 on older kernels).
pub const GSO_MAX_SEGMENTS: usize = 64;

/// Most bytes of one GSO message (the IPv4 datagram limit less headers, rounded down).
const GSO_MAX_BYTES: usize = 65_000;

/// Messages per `sendmmsg` call.
const SEND_BATCH: usize = 64;

/// Settings of a [`UdpTransport`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransportOptions {
    /// Requested SO_RCVBUF and SO_SNDBUF in bytes. As root the limits of
    /// `net.core.rmem_max`/`wmem_max` are bypassed (SO_*BUFFORCE); otherwise
    /// the kernel caps the request.
    pub socket_buffer: usize,
    /// Messages per `recvmmsg` call.
    pub recv_batch: usize,
    /// Merge same-size datagrams into UDP GSO messages if the kernel allows.
    pub gso: bool,
    /// Ask for UDP GRO on receive if the kernel offers it.
    pub gro: bool,
}

impl Default for TransportOptions {
    /// 4 MiB buffers (a window of results from several switches' worth of
    /// packets fits many times), 32 messages per receive call, both offloads on.
    fn default() -> Self {
        TransportOptions {
            socket_buffer: 4 << 20,
            recv_batch: 32,
            gso: true,
            gro: true,
        }
    }
}

/// Counters of one transport.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TransportStats {
    /// Datagrams handed to the kernel.
    pub datagrams_sent: u64,
    /// Their bytes.
    pub bytes_sent: u64,
    /// `sendmmsg` calls that sent something.
    pub send_calls: u64,
    /// GSO messages among the messages sent.
    pub gso_messages: u64,
    /// Datagrams received (GRO runs counted per datagram).
    pub datagrams_received: u64,
    /// Their bytes.
    pub bytes_received: u64,
    /// `recvmmsg` calls that returned data.
    pub recv_calls: u64,
    /// Of the datagrams received, those that came to the result group.
    pub group_datagrams_received: u64,
    /// Sends or receives that reported the switch's port unreachable
    /// (ICMP); the datagram counts as lost and the engine retransmits.
    pub refused: u64,
    /// Flushes that stopped because the socket's send buffer was full.
    pub send_blocked: u64,
}

/// The UDP socket of one worker (see the module docs).
#[derive(Debug)]
pub struct UdpTransport {
    socket: UdpSocket,
    local: SocketAddrV4,
    peer: Option<SocketAddrV4>,
    gso: bool,
    gro: bool,
    options: TransportOptions,
    /// Queued datagrams, back to back, and their lengths.
    out: SendBytes,
    lens: Vec<usize>,
    /// Datagrams (and bytes) of the queue already sent.
    sent: usize,
    sent_bytes: usize,
    runs: Vec<Run>,
    recv: RecvBatch,
    group: Option<GroupReceiver>,
    stats: TransportStats,
    rcvbuf: usize,
    sndbuf: usize,
}

impl UdpTransport {
    /// Binds a non-blocking socket to `local` (port 0: the kernel picks one),
    /// sizes its buffers and enables GRO if asked and offered.
    pub fn bind(local: SocketAddrV4, options: TransportOptions) -> io::Result<UdpTransport> {
        let socket = UdpSocket::bind(local)?;
        socket.set_nonblocking(true)?;
        let fd = socket.as_raw_fd();
        let rcvbuf = set_receive_buffer(fd, options.socket_buffer)?;
        let sndbuf = set_buffer(
            fd,
            libc::SO_SNDBUFFORCE,
            libc::SO_SNDBUF,
            options.socket_buffer,
        )?;
        let gro =
            options.gro && udp_batch::set_int_opt(fd, libc::SOL_UDP, libc::UDP_GRO, 1).is_ok();
        // A kernel without GSO does not know the option at all.
        let gso =
            options.gso && udp_batch::get_int_opt(fd, libc::SOL_UDP, libc::UDP_SEGMENT).is_ok();
        let local = match socket.local_addr()? {
            SocketAddr::V4(a) => a,
            SocketAddr::V6(a) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("bound to IPv6 address {a}"),
                ))
            }
        };
        let buf_size = receive_buffer_size(gro, PLAIN_BUFFER);
        Ok(UdpTransport {
            recv: RecvBatch::new(options.recv_batch, buf_size),
            group: None,
            socket,
            local,
            peer: None,
            gso,
            gro,
            options,
            out: SendBytes::default(),
            lens: Vec::new(),
            sent: 0,
            sent_bytes: 0,
            runs: Vec::new(),
            stats: TransportStats::default(),
            rcvbuf,
            sndbuf,
        })
    }

    /// The address the socket is bound to (what the switch must register).
    pub fn local_addr(&self) -> SocketAddrV4 {
        self.local
    }

    /// Sends to and receives from `peer` only, with receive buffers for
    /// datagrams of up to `max_datagram` bytes.
    pub fn connect(&mut self, peer: SocketAddrV4, max_datagram: usize) -> io::Result<()> {
        self.socket.connect(peer)?;
        self.peer = Some(peer);
        if !self.gro {
            let size = receive_buffer_size(false, max_datagram);
            self.recv = RecvBatch::new(self.options.recv_batch, size);
        }
        Ok(())
    }

    /// The connected peer.
    pub fn peer(&self) -> Option<SocketAddrV4> {
        self.peer
    }

    /// Also receives the datagrams sent to the multicast `group` (the
    /// switch's results, see [`GroupReceiver`]), joined on the interface of
    /// this transport's address.
    pub fn join_group(&mut self, group: SocketAddrV4, max_datagram: usize) -> io::Result<()> {
        let interface = *self.local.ip();
        self.group = Some(GroupReceiver::join(
            group,
            interface,
            &self.options,
            max_datagram,
        )?);
        Ok(())
    }

    /// Whether sends are merged into GSO messages (false after a fallback).
    pub fn gso(&self) -> bool {
        self.gso
    }

    /// Whether the kernel coalesces received datagrams (GRO).
    pub fn gro(&self) -> bool {
        self.gro
    }

    /// The socket buffer sizes the kernel granted (receive, send), in bytes.
    pub fn buffer_sizes(&self) -> (usize, usize) {
        (self.rcvbuf, self.sndbuf)
    }

    /// Counters so far.
    pub fn stats(&self) -> &TransportStats {
        &self.stats
    }

    /// Queues one datagram for the next [`UdpTransport::flush`].
    pub fn queue(&mut self, datagram: &[u8]) {
        self.queue_with(|out| {
            out.extend_from_slice(datagram);
            true
        });
    }

    /// Queues the datagram `write` appends to the send buffer (so that a
    /// producer builds it in place instead of in a buffer of its own; space
    /// it appends may hold old bytes, see [`SendBytes`]); `write` returns
    /// false if it had nothing to queue, and anything it appended then is
    /// dropped. Returns what `write` returned.
    pub fn queue_with(&mut self, write: impl FnOnce(&mut SendBytes) -> bool) -> bool {
        let start = self.out.len();
        if write(&mut self.out) {
            self.lens.push(self.out.len() - start);
            true
        } else {
            self.out.truncate(start);
            false
        }
    }

    /// Datagrams queued and not yet sent.
    pub fn queued(&self) -> usize {
        self.lens.len() - self.sent
    }

    /// Sends the queue. `Ok(true)`: all sent; `Ok(false)`: the socket's
    /// send buffer is full, the rest stays queued (wait for writability).
    pub fn flush(&mut self) -> io::Result<bool> {
        while self.sent < self.lens.len() {
            self.build_runs();
            match udp_batch::send_runs(self.socket.as_raw_fd(), self.out.bytes(), &self.runs) {
                Ok(n) => {
                    self.stats.send_calls += 1;
                    for i in 0..n {
                        self.consume_run(i);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.stats.send_blocked += 1;
                    return Ok(false);
                }
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                    // A pending ICMP error: the first message is lost.
                    self.stats.refused += 1;
                    self.skip_run(0);
                }
                Err(e) if self.runs[0].segment.is_some() && gso_refused(&e) => {
                    // The kernel (or the route's device) cannot segment: send plainly from now on.
                    self.gso = false;
                }
                Err(e) => return Err(e),
            }
        }
        self.out.clear();
        self.lens.clear();
        self.sent = 0;
        self.sent_bytes = 0;
        Ok(true)
    }

    /// Groups the unsent datagrams into messages for one `sendmmsg`.
    fn build_runs(&mut self) {
        self.runs.clear();
        let mut i = self.sent;
        let mut offset = self.sent_bytes;
        while i < self.lens.len() && self.runs.len() < SEND_BATCH {
            let len = self.lens[i];
            let mut count = 1;
            if self.gso && len > 0 && len <= usize::from(u16::MAX) {
                while i + count < self.lens.len()
                    && self.lens[i + count] == len
                    && count < GSO_MAX_SEGMENTS
                    && (count + 1) * len <= GSO_MAX_BYTES
                {
                    count += 1;
                }
            }
            self.runs.push(Run {
                dst: None,
                offset,
                len: count * len,
                segment: (count > 1).then_some(len as u16),
            });
            i += count;
            offset += count * len;
        }
    }

    fn run_datagrams(&self, i: usize) -> usize {
        let run = self.runs[i];
        run.segment.map_or(1, |s| run.len / usize::from(s))
    }

    fn consume_run(&mut self, i: usize) {
        let run = self.runs[i];
        self.stats.datagrams_sent += self.run_datagrams(i) as u64;
        self.stats.bytes_sent += run.len as u64;
        if run.segment.is_some() {
            self.stats.gso_messages += 1;
        }
        self.skip_run(i);
    }

    fn skip_run(&mut self, i: usize) {
        self.sent += self.run_datagrams(i);
        self.sent_bytes += self.runs[i].len;
    }

    /// Receives one batch from each socket (the data socket, and the
    /// result group if joined) without blocking and hands each datagram to
    /// `f`; returns how many there were (0: nothing queued).
    pub fn recv(&mut self, mut f: impl FnMut(&[u8])) -> io::Result<usize> {
        let fd = self.socket.as_raw_fd();
        let mut count = match receive(&mut self.recv, fd, &mut self.stats, &mut f) {
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                self.stats.refused += 1;
                0
            }
            other => other?,
        };
        if let Some(group) = &mut self.group {
            let fd = group.as_raw_fd();
            let from_group = receive(&mut group.batch, fd, &mut self.stats, &mut f)?;
            self.stats.group_datagrams_received += from_group as u64;
            count += from_group;
        }
        Ok(count)
    }

    /// Blocks until the socket is readable (or writable, with
    /// `want_write`), `also` is readable, or `timeout` passes (`None`: no limit).
    pub fn wait(
        &self,
        also: Option<RawFd>,
        want_write: bool,
        timeout: Option<Duration>,
    ) -> io::Result<()> {
        let mut events = libc::POLLIN;
        if want_write {
            events |= libc::POLLOUT;
        }
        let readable = |fd: Option<RawFd>| libc::pollfd {
            fd: fd.unwrap_or(-1),
            events: libc::POLLIN,
            revents: 0,
        };
        let mut fds = [
            libc::pollfd {
                fd: self.socket.as_raw_fd(),
                events,
                revents: 0,
            },
            readable(also),
            readable(self.group.as_ref().map(AsRawFd::as_raw_fd)),
        ];
        // A negative fd is ignored by poll.
        udp_batch::poll(&mut fds, timeout)?;
        Ok(())
    }
}

impl AsRawFd for UdpTransport {
    fn as_raw_fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }
}

/// One `recvmmsg` on `fd` into `batch`; every datagram (GRO runs split)
/// goes to `f`. Returns how many there were.
fn receive(
    batch: &mut RecvBatch,
    fd: RawFd,
    stats: &mut TransportStats,
    f: &mut impl FnMut(&[u8]),
) -> io::Result<usize> {
    let messages = batch.recv(fd)?;
    if messages == 0 {
        return Ok(0);
    }
    stats.recv_calls += 1;
    let mut count = 0;
    for i in 0..messages {
        // The data socket is connected (the sender is the switch); the
        // group's datagrams are checked by the engine like any result.
        let Some(received) = batch.get(i) else {
            continue;
        };
        stats.bytes_received += received.data.len() as u64;
        for datagram in received.datagrams() {
            f(datagram);
            count += 1;
        }
        if received.data.is_empty() {
            f(received.data);
            count += 1;
        }
    }
    stats.datagrams_received += count as u64;
    Ok(count)
}

/// Bytes per receive buffer: a whole GRO run, or one datagram of at most
/// `max_datagram` bytes.
pub(super) fn receive_buffer_size(gro: bool, max_datagram: usize) -> usize {
    if gro {
        GRO_BUFFER
    } else {
        max_datagram.clamp(64, PLAIN_BUFFER)
    }
}

/// Sizes the receive buffer of `fd` (see [`TransportOptions::socket_buffer`]);
/// returns the size the kernel granted.
pub(super) fn set_receive_buffer(fd: RawFd, size: usize) -> io::Result<usize> {
    set_buffer(fd, libc::SO_RCVBUFFORCE, libc::SO_RCVBUF, size)
}

fn set_buffer(fd: RawFd, force: i32, plain: i32, size: usize) -> io::Result<usize> {
    let size = i32::try_from(size).unwrap_or(i32::MAX);
    // The FORCE variant needs CAP_NET_ADMIN; the plain one is capped by sysctl.
    if udp_batch::set_int_opt(fd, libc::SOL_SOCKET, force, size).is_err() {
        udp_batch::set_int_opt(fd, libc::SOL_SOCKET, plain, size)?;
    }
    Ok(udp_batch::get_int_opt(fd, libc::SOL_SOCKET, plain)?.max(0) as usize)
}

/// Whether a send error means the kernel or device cannot do UDP GSO.
fn gso_refused(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EIO | libc::EINVAL | libc::EOPNOTSUPP | libc::ENOPROTOOPT | libc::EMSGSIZE)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;
    use std::time::Instant;

    fn pair(options: TransportOptions) -> (UdpTransport, UdpTransport) {
        let lo = SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0);
        let mut a = UdpTransport::bind(lo, options.clone()).unwrap();
        let mut b = UdpTransport::bind(lo, options).unwrap();
        let (la, lb) = (a.local_addr(), b.local_addr());
        a.connect(lb, 2048).unwrap();
        b.connect(la, 2048).unwrap();
        (a, b)
    }

    /// Datagram `i`: mostly 280 bytes (one GSO run), some odd sizes in between.
    fn datagram(i: usize) -> Vec<u8> {
        let len = if i % 50 == 49 { 100 + i % 7 } else { 280 };
        (0..len).map(|j| (i * 31 + j) as u8).collect()
    }

    fn round_trip(options: TransportOptions) -> (UdpTransport, UdpTransport) {
        let (mut a, mut b) = pair(options);
        let sent: Vec<Vec<u8>> = (0..300).map(datagram).collect();
        for d in &sent {
            a.queue(d);
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while !a.flush().unwrap() {
            a.wait(None, true, Some(Duration::from_millis(10))).unwrap();
            assert!(Instant::now() < deadline, "send stuck");
        }
        let mut got = Vec::new();
        while got.len() < sent.len() && Instant::now() < deadline {
            b.wait(None, false, Some(Duration::from_millis(50)))
                .unwrap();
            b.recv(|d| got.push(d.to_vec())).unwrap();
        }
        assert_eq!(got, sent);
        assert_eq!(a.stats().datagrams_sent, 300);
        assert_eq!(b.stats().datagrams_received, 300);
        assert_eq!(a.queued(), 0);
        (a, b)
    }

    #[test]
    fn batched_round_trip_with_offloads_where_offered() {
        let (a, _b) = round_trip(TransportOptions::default());
        if a.gso() {
            // 300 datagrams in far fewer messages than datagrams.
            assert!(a.stats().gso_messages > 0);
            assert!(a.stats().send_calls < 10, "{:?}", a.stats());
        }
    }

    #[test]
    fn batched_round_trip_without_offloads() {
        let (a, b) = round_trip(TransportOptions {
            gso: false,
            gro: false,
            ..TransportOptions::default()
        });
        assert!(!a.gso() && !b.gro());
        assert_eq!(a.stats().gso_messages, 0);
    }

    #[test]
    fn connected_socket_ignores_other_senders() {
        let (_a, mut b) = pair(TransportOptions::default());
        let stranger = UdpSocket::bind("127.0.0.1:0").unwrap();
        stranger.send_to(b"hello", b.local_addr()).unwrap();
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(
            b.recv(|_| panic!("stranger's datagram delivered")).unwrap(),
            0
        );
    }
}

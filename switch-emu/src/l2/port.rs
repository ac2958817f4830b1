//! One switch port: an AF_PACKET socket bound to an interface.
//!
//! Receive uses either a TPACKET_V3 ring (frames land in shared memory,
//! one `poll` per block of frames) or plain `recv` per frame; send is
//! batched with `sendmmsg`. Every frame crosses the socket with its
//! offload header (`PACKET_VNET_HDR`, [`super::offload`]), so it may be a
//! GSO super-frame or carry a partial checksum. Interface discovery is `if_nametoindex` and
//! `SIOCGIFHWADDR` (pnet is not needed for two values).
//! The measured comparison of the two receive paths is in [`super::run`].

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::ptr;

use super::offload::Offload;

/// How a port receives frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RxMode {
    /// TPACKET_V3 mmap ring: the kernel fills blocks, user space reads them
    /// in place; a partly filled block is handed over after its retire timeout.
    Ring,
    /// Frames copied out by `recvmmsg`, up to 16 per system call, as soon as
    /// they arrive (the default, see [`super::run`]).
    Recv,
}

/// Port options.
#[derive(Debug, Clone, Copy)]
pub struct PortOptions {
    /// Receive path.
    pub rx: RxMode,
    /// Bypass the egress qdisc on send (faster, but also bypasses a `tc`
    /// rate limit on the switch side of the link; off in rate-limited topologies).
    pub qdisc_bypass: bool,
    /// Ring block size in bytes (power of two multiple of the page size);
    /// 0: the smallest that holds one frame of the interface's MTU
    /// ([`auto_block_size`]).
    pub block_size: u32,
    /// Ring blocks; 0: as many as make [`RING_BYTES`].
    pub block_count: u32,
    /// Block retire timeout in ms: a partly filled block is handed over after this.
    pub block_timeout_ms: u32,
}

impl Default for PortOptions {
    fn default() -> Self {
        PortOptions {
            rx: RxMode::Recv,
            qdisc_bypass: false,
            block_size: 0,
            block_count: 0,
            block_timeout_ms: 1,
        }
    }
}

/// Receive ring bytes per port when the block count is automatic.
pub const RING_BYTES: u32 = 16 << 20;

/// The ring block size for frames of up to `mtu` bytes of IP packet: the
/// smallest power of two (at least a page) that holds one maximal frame
/// with its TPACKET_V3 and offload headers. Ports take super-frames of up
/// to 64 KiB whatever the MTU, so [`Port::open`] asks for [`MAX_SUPER_FRAME`].
/// A TPACKET_V3 block reaches user space only when it is full (the next
/// frame does not fit) or its retire timeout (1 ms at least) fires, so small
/// blocks keep the latency low when a window of packets drains; a block
/// smaller than the frame truncates it (8 KiB blocks cut 9000-byte frames,
/// which the switch then dropped as malformed).
pub fn auto_block_size(mtu: u32) -> u32 {
    // Ethernet + VLAN header, tpacket3_hdr and sockaddr_ll padding, offload
    // header, block descriptor.
    let need = mtu + 18 + 96 + Offload::LEN as u32 + 64;
    need.next_power_of_two().max(4096)
}

/// Largest IP packet a port receives: a GSO super-frame's (its IPv4 total
/// length is 16 bits), which is also the emulator's largest MTU.
pub const MAX_SUPER_FRAME: u32 = u16::MAX as u32;

/// Frames one `recvmmsg` of the copy path takes at most.
const RECV_BATCH: usize = 16;

/// Largest frame the copy path receives, with its offload header: the
/// largest IP packet plus an Ethernet header with a VLAN tag.
const MAX_FRAME: usize = Offload::LEN + MAX_SUPER_FRAME as usize + 18;

/// A bound AF_PACKET socket.
#[derive(Debug)]
pub struct Port {
    name: String,
    mac: [u8; 6],
    fd: OwnedFd,
    ring: Option<Ring>,
    /// The copy path's buffers (one `recvmmsg` fills several).
    batch: Option<udp_batch::RecvBatch>,
    /// Frames dropped on send (socket buffer or qdisc full).
    pub tx_dropped: u64,
}

#[derive(Debug)]
struct Ring {
    base: *mut u8,
    len: usize,
    block_size: usize,
    block_count: usize,
    next: usize,
}

// SAFETY-free marker: the ring pointer is only used by the owning thread.
const TP_STATUS_KERNEL: u32 = 0;
const TP_STATUS_USER: u32 = 1;

fn last_error() -> io::Error {
    io::Error::last_os_error()
}

fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(last_error())
    } else {
        Ok(ret)
    }
}

#[allow(unsafe_code)]
fn set_opt<T>(fd: RawFd, level: libc::c_int, name: libc::c_int, value: &T) -> io::Result<()> {
    // SAFETY: `value` is a live reference to a plain C struct/integer whose size we pass.
    let ret = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (value as *const T).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    check(ret).map(|_| ())
}

/// Reads an interface's MAC address (SIOCGIFHWADDR on `fd`, so it works in
/// the socket's namespace, unlike sysfs after `setns`).
#[allow(unsafe_code)]
fn interface_mac(fd: RawFd, name: &str) -> io::Result<[u8; 6]> {
    // SAFETY: ifreq is plain data; zeroed is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    if name.len() >= req.ifr_name.len() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "interface name too long",
        ));
    }
    for (dst, src) in req.ifr_name.iter_mut().zip(name.bytes()) {
        *dst = src as libc::c_char;
    }
    // SAFETY: `req` is a valid ifreq with a NUL-terminated name; the kernel fills ifru_hwaddr.
    check(unsafe { libc::ioctl(fd, libc::SIOCGIFHWADDR, &mut req) })?;
    // SAFETY: after SIOCGIFHWADDR succeeded, ifru_hwaddr is the active union member.
    let data = unsafe { req.ifr_ifru.ifru_hwaddr.sa_data };
    let mut mac = [0u8; 6];
    for (dst, src) in mac.iter_mut().zip(data) {
        *dst = src as u8;
    }
    Ok(mac)
}

/// Reads an interface's MTU (SIOCGIFMTU on `fd`, in the socket's namespace).
#[allow(unsafe_code)]
fn interface_mtu(fd: RawFd, name: &str) -> io::Result<u32> {
    // SAFETY: ifreq is plain data; zeroed is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    if name.len() >= req.ifr_name.len() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "interface name too long",
        ));
    }
    for (dst, src) in req.ifr_name.iter_mut().zip(name.bytes()) {
        *dst = src as libc::c_char;
    }
    // SAFETY: `req` is a valid ifreq with a NUL-terminated name; the kernel fills ifru_mtu.
    check(unsafe { libc::ioctl(fd, libc::SIOCGIFMTU, &mut req) })?;
    // SAFETY: after SIOCGIFMTU succeeded, ifru_mtu is the active union member.
    let mtu = unsafe { req.ifr_ifru.ifru_mtu };
    Ok(mtu.max(0) as u32)
}

/// The interface index of `name`.
#[allow(unsafe_code)]
pub fn interface_index(name: &str) -> io::Result<i32> {
    let cname = std::ffi::CString::new(name)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "interface name"))?;
    // SAFETY: `cname` is a valid NUL-terminated string for the duration of the call.
    let index = unsafe { libc::if_nametoindex(cname.as_ptr()) };
    if index == 0 {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("no interface {name}: {}", last_error()),
        ));
    }
    Ok(index as i32)
}

impl Port {
    /// Opens `name` as a switch port: a non-blocking AF_PACKET socket that
    /// receives every frame arriving on it (not the ones it sends).
    pub fn open(name: &str, opts: PortOptions) -> io::Result<Port> {
        Port::open_as(name, opts, true)
    }

    /// Opens `name` for sending only (a replication port): the socket is
    /// bound to no protocol, so the kernel queues nothing for it to read.
    pub fn open_sender(name: &str, opts: PortOptions) -> io::Result<Port> {
        Port::open_as(name, opts, false)
    }

    #[allow(unsafe_code)]
    fn open_as(name: &str, opts: PortOptions, receive: bool) -> io::Result<Port> {
        let ifindex = interface_index(name)?;
        // Protocol 0 receives nothing; a sent frame's protocol is then read
        // from its Ethernet header.
        let proto = if receive {
            (libc::ETH_P_ALL as u16).to_be()
        } else {
            0
        };
        // SAFETY: plain socket(2) call; the result is checked before use.
        let raw = check(unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                libc::c_int::from(proto),
            )
        })?;
        // SAFETY: `raw` is a freshly created descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let one: libc::c_int = 1;
        set_opt(
            fd.as_raw_fd(),
            libc::SOL_PACKET,
            libc::PACKET_IGNORE_OUTGOING,
            &one,
        )?;
        // Before the ring: the kernel refuses the option once a ring exists.
        set_opt(
            fd.as_raw_fd(),
            libc::SOL_PACKET,
            libc::PACKET_VNET_HDR,
            &one,
        )
        .map_err(|e| io::Error::new(e.kind(), format!("PACKET_VNET_HDR: {e}")))?;
        if opts.qdisc_bypass {
            set_opt(
                fd.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_QDISC_BYPASS,
                &one,
            )?;
        }
        let buf_bytes: libc::c_int = 4 << 20;
        set_opt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_SNDBUF,
            &buf_bytes,
        )?;
        set_opt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            &buf_bytes,
        )?;
        let mac = interface_mac(fd.as_raw_fd(), name)?;
        let mut opts = opts;
        if opts.block_size == 0 {
            let mtu = interface_mtu(fd.as_raw_fd(), name)?;
            opts.block_size = auto_block_size(mtu.max(MAX_SUPER_FRAME));
        }
        if opts.block_count == 0 {
            opts.block_count = (RING_BYTES / opts.block_size).max(8);
        }
        let ring = match opts.rx {
            RxMode::Ring if receive => Some(Ring::setup(fd.as_raw_fd(), &opts)?),
            _ => None,
        };
        // SAFETY: sockaddr_ll is plain data; zeroed is a valid value.
        let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        addr.sll_family = libc::AF_PACKET as u16;
        addr.sll_protocol = proto;
        addr.sll_ifindex = ifindex;
        // SAFETY: `addr` is a valid sockaddr_ll and we pass its exact size.
        check(unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&addr as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        })?;
        Ok(Port {
            name: name.to_owned(),
            mac,
            fd,
            ring,
            batch: (receive && opts.rx == RxMode::Recv)
                .then(|| udp_batch::RecvBatch::new(RECV_BATCH, MAX_FRAME)),
            tx_dropped: 0,
        })
    }

    /// Interface name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Interface MAC address.
    pub fn mac(&self) -> [u8; 6] {
        self.mac
    }

    /// The descriptor to poll for readability.
    pub fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Hands every frame that is ready (up to about `budget`) to `f`, with
    /// its offload header. Returns the number of frames; 0 when nothing was
    /// waiting.
    #[allow(unsafe_code)]
    pub fn recv_batch(
        &mut self,
        budget: usize,
        mut f: impl FnMut(Offload, &[u8]),
    ) -> io::Result<usize> {
        if let Some(ring) = self.ring.as_mut() {
            return Ok(ring.drain(budget, &mut f));
        }
        let Some(batch) = self.batch.as_mut() else {
            return Ok(0);
        };
        let mut n = 0;
        while n < budget {
            let got = batch.recv(self.fd.as_raw_fd())?;
            for i in 0..got {
                let Some(message) = batch.get(i) else { break };
                if let Some((head, frame)) = message.data.split_first_chunk::<{ Offload::LEN }>() {
                    f(Offload::parse(head), frame);
                }
            }
            n += got;
            if got < RECV_BATCH {
                break;
            }
        }
        Ok(n)
    }

    /// Sends `frames`, each its offload header and then its bytes in
    /// pieces (gathered by the kernel, so a payload shared by several
    /// frames is never copied in user space), with as few `sendmmsg` calls
    /// as possible. Frames the kernel refuses (full buffers) are counted in
    /// `tx_dropped`, not retried: the aggregation protocol and TCP recover
    /// from loss.
    #[allow(unsafe_code)]
    pub fn send_batch<'a, P>(
        &mut self,
        frames: impl IntoIterator<Item = (Offload, P)>,
    ) -> io::Result<usize>
    where
        P: IntoIterator<Item = &'a [u8]>,
    {
        const CHUNK: usize = 64;
        let mut frames = frames.into_iter();
        let mut heads: Vec<[u8; Offload::LEN]> = Vec::with_capacity(CHUNK);
        let mut pieces: Vec<&'a [u8]> = Vec::new();
        let mut counts: Vec<usize> = Vec::with_capacity(CHUNK);
        let mut iovs: Vec<libc::iovec> = Vec::new();
        let mut msgs: Vec<libc::mmsghdr> = Vec::with_capacity(CHUNK);
        let mut sent = 0;
        loop {
            heads.clear();
            pieces.clear();
            counts.clear();
            for (offload, parts) in frames.by_ref().take(CHUNK) {
                heads.push(offload.to_bytes());
                let before = pieces.len();
                pieces.extend(parts);
                counts.push(pieces.len() - before);
            }
            if heads.is_empty() {
                return Ok(sent);
            }
            let iovec = |bytes: &[u8]| libc::iovec {
                iov_base: bytes.as_ptr() as *mut libc::c_void,
                iov_len: bytes.len(),
            };
            iovs.clear();
            let mut next = 0;
            for (head, &count) in heads.iter().zip(&counts) {
                iovs.push(iovec(head));
                iovs.extend(pieces[next..next + count].iter().map(|p| iovec(p)));
                next += count;
            }
            // Every iovec is in place: the messages may now point into `iovs`.
            msgs.clear();
            let mut first = 0;
            for &count in &counts {
                // SAFETY: mmsghdr is plain data; zeroed is valid (no name, no control).
                let mut m: libc::mmsghdr = unsafe { std::mem::zeroed() };
                m.msg_hdr.msg_iov = iovs[first..].as_mut_ptr();
                m.msg_hdr.msg_iovlen = count + 1;
                msgs.push(m);
                first += count + 1;
            }
            let mut done = 0;
            while done < msgs.len() {
                // SAFETY: every mmsghdr points at its iovecs in `iovs`, which
                // point at an offload header in `heads` and at frame pieces
                // borrowed for this call; none of them changes until the
                // next chunk.
                let ret = unsafe {
                    libc::sendmmsg(
                        self.fd.as_raw_fd(),
                        msgs[done..].as_mut_ptr(),
                        (msgs.len() - done) as libc::c_uint,
                        libc::MSG_DONTWAIT,
                    )
                };
                if ret < 0 {
                    let err = last_error();
                    match err.raw_os_error() {
                        Some(libc::EAGAIN) | Some(libc::ENOBUFS) => {
                            // The failed frame is dropped; try the rest.
                            self.tx_dropped += 1;
                            done += 1;
                        }
                        _ => return Err(err),
                    }
                } else {
                    done += ret as usize;
                    sent += ret as usize;
                }
            }
        }
    }
}

impl Ring {
    #[allow(unsafe_code)]
    fn setup(fd: RawFd, opts: &PortOptions) -> io::Result<Ring> {
        let version = libc::tpacket_versions::TPACKET_V3 as libc::c_int;
        set_opt(fd, libc::SOL_PACKET, libc::PACKET_VERSION, &version)?;
        let frame_size: u32 = 2048;
        let req = libc::tpacket_req3 {
            tp_block_size: opts.block_size,
            tp_block_nr: opts.block_count,
            tp_frame_size: frame_size,
            tp_frame_nr: opts.block_size / frame_size * opts.block_count,
            tp_retire_blk_tov: opts.block_timeout_ms,
            tp_sizeof_priv: 0,
            tp_feature_req_word: 0,
        };
        set_opt(fd, libc::SOL_PACKET, libc::PACKET_RX_RING, &req)?;
        let len = opts.block_size as usize * opts.block_count as usize;
        // SAFETY: maps the ring the kernel just allocated for this socket; the
        // mapping is released in Drop and never outlives the socket's use.
        let base = unsafe {
            libc::mmap(
                ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_LOCKED,
                fd,
                0,
            )
        };
        let base = if base == libc::MAP_FAILED {
            // MAP_LOCKED needs RLIMIT_MEMLOCK; retry without it.
            // SAFETY: as above.
            let retry = unsafe {
                libc::mmap(
                    ptr::null_mut(),
                    len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_SHARED,
                    fd,
                    0,
                )
            };
            if retry == libc::MAP_FAILED {
                return Err(last_error());
            }
            retry
        } else {
            base
        };
        Ok(Ring {
            base: base.cast(),
            len,
            block_size: opts.block_size as usize,
            block_count: opts.block_count as usize,
            next: 0,
        })
    }

    /// Reads every block the kernel has handed over (stopping once `budget`
    /// frames were seen) and returns each block to the kernel.
    #[allow(unsafe_code)]
    fn drain(&mut self, budget: usize, f: &mut impl FnMut(Offload, &[u8])) -> usize {
        let mut frames = 0;
        while frames < budget {
            // SAFETY: `next < block_count`, so the block lies inside the mapping.
            let block = unsafe { self.base.add(self.next * self.block_size) };
            let desc = block.cast::<libc::tpacket_block_desc>();
            // SAFETY: the block descriptor is at the block start; block_status
            // is written by the kernel, so it is read volatile, then an acquire
            // fence orders the packet reads after it.
            let status = unsafe { ptr::read_volatile(ptr::addr_of!((*desc).hdr.bh1.block_status)) };
            if status & TP_STATUS_USER == 0 {
                break;
            }
            std::sync::atomic::fence(std::sync::atomic::Ordering::Acquire);
            // SAFETY: the block is owned by user space until block_status is reset.
            let (num, first) = unsafe {
                (
                    (*desc).hdr.bh1.num_pkts as usize,
                    (*desc).hdr.bh1.offset_to_first_pkt as usize,
                )
            };
            let mut offset = first;
            for _ in 0..num {
                if offset + std::mem::size_of::<libc::tpacket3_hdr>() > self.block_size {
                    break;
                }
                // SAFETY: the kernel wrote a tpacket3_hdr at `offset` inside this block.
                let hdr = unsafe { &*block.add(offset).cast::<libc::tpacket3_hdr>() };
                let start = offset + usize::from(hdr.tp_mac);
                let len = hdr.tp_snaplen as usize;
                // The kernel writes the offload header just before the frame.
                if start >= offset + Offload::LEN && start + len <= self.block_size {
                    // SAFETY: the header and frame bytes lie inside the block,
                    // which user space owns.
                    let (head, data) = unsafe {
                        (
                            &*block.add(start - Offload::LEN).cast::<[u8; Offload::LEN]>(),
                            std::slice::from_raw_parts(block.add(start), len),
                        )
                    };
                    f(Offload::parse(head), data);
                }
                frames += 1;
                if hdr.tp_next_offset == 0 {
                    break;
                }
                offset += hdr.tp_next_offset as usize;
            }
            std::sync::atomic::fence(std::sync::atomic::Ordering::Release);
            // SAFETY: hands the block back to the kernel; no reference into it survives.
            unsafe {
                ptr::write_volatile(
                    ptr::addr_of_mut!((*desc).hdr.bh1.block_status),
                    TP_STATUS_KERNEL,
                )
            };
            self.next = (self.next + 1) % self.block_count;
        }
        frames
    }
}

impl Drop for Ring {
    #[allow(unsafe_code)]
    fn drop(&mut self) {
        // SAFETY: `base`/`len` are the mapping created in `setup`, unmapped once.
        unsafe {
            libc::munmap(self.base.cast(), self.len);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_size_fits_one_frame() {
        assert_eq!(auto_block_size(1500), 4096);
        assert_eq!(auto_block_size(9000), 16384);
        assert_eq!(auto_block_size(MAX_SUPER_FRAME), 128 << 10);
        for mtu in [576, 1500, 4000, 9000, 16000, MAX_SUPER_FRAME] {
            let b = auto_block_size(mtu);
            assert!(b.is_power_of_two() && b >= 4096 && b >= mtu + 188);
        }
    }
}

//! IPv4 socket addresses to and from the kernel's `sockaddr_in`.

use std::net::{Ipv4Addr, SocketAddrV4};

/// The kernel's form of `addr` (port and address in network byte order).
pub(crate) fn sockaddr(addr: SocketAddrV4) -> libc::sockaddr_in {
    libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: addr.port().to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(*addr.ip()).to_be(),
        },
        sin_zero: [0; 8],
    }
}

/// The address in `sa`, `None` if it is not IPv4.
pub(crate) fn from_sockaddr(sa: &libc::sockaddr_in) -> Option<SocketAddrV4> {
    (i32::from(sa.sin_family) == libc::AF_INET).then(|| {
        SocketAddrV4::new(
            Ipv4Addr::from(u32::from_be(sa.sin_addr.s_addr)),
            u16::from_be(sa.sin_port),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_in_network_byte_order() {
        let a = SocketAddrV4::new(Ipv4Addr::new(10, 1, 2, 3), 48864);
        let sa = sockaddr(a);
        assert_eq!(sa.sin_port, 48864u16.to_be());
        assert_eq!(sa.sin_addr.s_addr.to_ne_bytes(), [10, 1, 2, 3]);
        assert_eq!(from_sockaddr(&sa), Some(a));
    }

    #[test]
    fn other_families_are_none() {
        let mut sa = sockaddr(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 1));
        sa.sin_family = libc::AF_INET6 as libc::sa_family_t;
        assert_eq!(from_sockaddr(&sa), None);
    }
}

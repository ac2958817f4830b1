//! The L2-mode options of `switch-emu serve` (flattened into its arguments
//! by `main.rs`): L2 mode when at least one `--port` is given.

use std::net::Ipv4Addr;
use std::time::Duration;

use clap::{Args, ValueEnum};

use super::port::{PortOptions, RxMode};
use super::run::{DriverOptions, L2Driver};
use super::table::DEFAULT_AGING;

/// Receive path of the ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RxArg {
    /// TPACKET_V3 ring: forwards more frames at saturation, but a partly
    /// filled block waits for its 1 ms retire timer, so a lone frame (a small
    /// allreduce, a ping) is held up to 1 ms.
    Ring,
    /// recvmmsg copies, up to 16 frames per system call (default: a frame
    /// reaches the switch at once; allreduce throughput measured equal to
    /// the ring's).
    Recv,
}

/// Switch ports and identity in L2 mode.
#[derive(Debug, Clone, Args)]
pub struct L2Args {
    /// An interface to open as a switch port (repeat; order = port numbers).
    /// Frames cross it with their offload headers, so the hosts on the links
    /// may keep TSO/GSO and checksum offload on.
    #[arg(long = "port")]
    pub ports: Vec<String>,
    /// The port facing the switch's own kernel interface (control plane).
    #[arg(long, requires = "ports")]
    pub cpu_port: Option<String>,
    /// The switch's IP (aggregation and ARP/ICMP).
    #[arg(long, default_value = "10.77.0.254", requires = "ports")]
    pub ip: Ipv4Addr,
    /// The switch's MAC (aa:bb:..); default: the first port's.
    #[arg(long, value_parser = parse_mac, requires = "ports")]
    pub mac: Option<[u8; 6]>,
    /// Receive path.
    #[arg(long, value_enum, default_value_t = RxArg::Recv, requires = "ports")]
    pub rx: RxArg,
    /// Send past the egress qdisc (faster; also skips a tc rate limit on the switch side).
    #[arg(long, requires = "ports")]
    pub qdisc_bypass: bool,
    /// An interface behind which each frame sent is copied to every switch
    /// port but the CPU port (a packet replication engine, e.g. a veth whose
    /// peer has an nftables netdev ingress chain of `dup to` rules, as
    /// `topo` builds): with `--result-groups`, the result of a job whose
    /// members sit on all those ports leaves once, there, instead of once
    /// out of every member's port (other jobs' results still go out of
    /// their members' ports). Never opened for receiving nor flooded to.
    #[arg(long, value_name = "IFACE", requires_all = ["ports", "result_groups"])]
    pub replication_port: Option<String>,
    /// MAC and neighbour aging in seconds.
    #[arg(long, default_value_t = DEFAULT_AGING.as_secs(), requires = "ports")]
    pub aging_secs: u64,
}

/// Parses `aa:bb:cc:dd:ee:ff`.
pub fn parse_mac(text: &str) -> Result<[u8; 6], String> {
    let parts: Vec<&str> = text.split(':').collect();
    if parts.len() != 6 {
        return Err(format!("bad MAC {text:?}"));
    }
    let mut mac = [0u8; 6];
    for (byte, part) in mac.iter_mut().zip(parts) {
        *byte = u8::from_str_radix(part, 16).map_err(|_| format!("bad MAC {text:?}"))?;
    }
    Ok(mac)
}

impl L2Args {
    /// Whether L2 mode was asked for.
    pub fn enabled(&self) -> bool {
        !self.ports.is_empty()
    }

    /// Opens the ports; results go to the jobs' groups under `result_groups`, if given.
    pub fn open(&self, result_groups: Option<Ipv4Addr>) -> std::io::Result<L2Driver> {
        L2Driver::open(&DriverOptions {
            ports: self.ports.clone(),
            cpu_port: self.cpu_port.clone(),
            ip: self.ip,
            mac: self.mac,
            port_options: PortOptions {
                rx: match self.rx {
                    RxArg::Ring => RxMode::Ring,
                    RxArg::Recv => RxMode::Recv,
                },
                qdisc_bypass: self.qdisc_bypass,
                ..PortOptions::default()
            },
            aging: Duration::from_secs(self.aging_secs),
            result_groups,
            replication_port: self.replication_port.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs_parse() {
        assert_eq!(
            parse_mac("02:77:0a:00:00:fe"),
            Ok([2, 0x77, 10, 0, 0, 0xfe])
        );
        assert!(parse_mac("02:77:0a:00:00").is_err());
        assert!(parse_mac("zz:77:0a:00:00:fe").is_err());
    }
}

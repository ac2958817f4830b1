//! `switch-emu controller`: the job control plane (joins, leases, expiry
//! on disconnect) for a P4 switch, programming a running BMv2
//! `simple_switch` through `simple_switch_CLI`.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;
use switch_emu::control::ControlConfig;
use switch_emu::p4config::bmv2_target::{Bmv2Target, SimpleSwitchCli};
use switch_emu::p4config::{self, MacAddr, SwitchAddr, Target};
use switch_emu::udp::control_server::ControlServer;

use super::parse_duration;

/// Flags of `controller`.
#[derive(Debug, Args)]
pub struct ControllerArgs {
    /// Dataplane to program. Only `bmv2` runs live; for Tofino use
    /// `p4-config --target tofino` (see p4/README.md).
    #[arg(long, default_value = "bmv2", value_parser = parse_target)]
    target: Target,
    /// Thrift port of the running simple_switch.
    #[arg(long, default_value_t = 9090)]
    thrift_port: u16,
    /// The simple_switch_CLI program (a path, or a name on PATH).
    #[arg(long, default_value = "simple_switch_CLI")]
    cli: PathBuf,
    /// Host file: JSON array of {"ip", "mac", "port"} per worker host.
    #[arg(long)]
    hosts: PathBuf,
    /// The switch's data-plane IP (the P4 program answers ARP for it and
    /// sends results from it; workers send aggregation packets to it).
    #[arg(long)]
    switch_ip: Ipv4Addr,
    /// The switch's data-plane MAC.
    #[arg(long)]
    switch_mac: MacAddr,
    /// TCP address of the control plane (JSON lines), usually on a
    /// management network apart from the switch ports.
    #[arg(long, default_value = "127.0.0.1:48865")]
    control: SocketAddrV4,
    /// Slots of the P4 program's pool that jobs may lease.
    #[arg(long, default_value_t = packet_format::TOFINO_SLOTS)]
    slots: u16,
    /// Largest slot range (window) one job may lease.
    #[arg(long, default_value_t = 1024)]
    job_quota: u16,
    /// Time a job may take until every rank has joined (3, 2.5s, 500ms).
    #[arg(long, default_value = "30", value_parser = parse_duration)]
    join_timeout: Duration,
}

fn parse_target(text: &str) -> Result<Target, String> {
    text.parse()
        .map_err(|e: p4config::P4ConfigError| e.to_string())
}

/// Serves the control plane until SIGINT/SIGTERM.
pub fn run(args: ControllerArgs) -> anyhow::Result<()> {
    if args.target != Target::Bmv2 {
        bail!(
            "--target tofino has no live driver yet: generate the bfrt_python script with \
             `switch-emu p4-config --target tofino JOBFILE` (p4/README.md, \"What remains\")"
        );
    }
    let text = std::fs::read_to_string(&args.hosts)
        .with_context(|| format!("reading {}", args.hosts.display()))?;
    let hosts = p4config::hosts_from_json(&text)
        .with_context(|| format!("host file {}", args.hosts.display()))?;
    let switch = SwitchAddr {
        ip: args.switch_ip,
        mac: args.switch_mac,
    };
    let runner = SimpleSwitchCli::with_program(&args.cli, args.thrift_port);
    let target = Bmv2Target::connect(runner, switch, hosts)
        .context("writing the switch-wide entries to simple_switch")?;
    let config = ControlConfig {
        slots: args.slots,
        max_workers: packet_format::TOFINO_MAX_WORKERS,
        max_elements_per_packet: packet_format::TOFINO_ELEMENTS_PER_PACKET,
        job_quota: args.job_quota,
        join_timeout: args.join_timeout,
        switch_data_addr: SocketAddrV4::new(args.switch_ip, packet_format::UDP_PORT),
        ..ControlConfig::default()
    };
    let mut server =
        ControlServer::bind(args.control, config, target).context("starting the controller")?;
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&stop))
            .context("installing signal handlers")?;
    }
    eprintln!(
        "switch-emu controller: control on {}, BMv2 on thrift port {}; Ctrl-C stops",
        server.local_addr()?,
        args.thrift_port
    );
    server.run(&stop).context("serving")?;
    Ok(())
}

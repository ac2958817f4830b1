//! `switch-emu serve`.

use std::net::{SocketAddr, SocketAddrV4};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use switch_emu::core::Config;
use switch_emu::taps::Taps;
use switch_emu::udp::{Server, ServerConfig};

use super::parse_duration;

/// Flags of `serve`. Defaults match the Tofino program's limits.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// UDP address for aggregation packets.
    #[arg(long, default_value = "127.0.0.1:48864")]
    bind: SocketAddrV4,
    /// TCP address of the control plane (joins, leave, status; JSON lines).
    #[arg(long, default_value = "127.0.0.1:48865")]
    control: SocketAddrV4,
    /// Slots in the pool (each kept twice, one per set); jobs lease ranges of it.
    #[arg(long, default_value_t = packet_format::TOFINO_SLOTS)]
    slots: u16,
    /// Largest world size of a job (the contribution bitmap width; at most 64).
    #[arg(long, default_value_t = packet_format::TOFINO_MAX_WORKERS)]
    max_workers: u16,
    /// Largest elements (int32) per packet a job may use.
    #[arg(long, default_value_t = packet_format::TOFINO_ELEMENTS_PER_PACKET)]
    elements: u16,
    /// A job with a slot waiting this long for a rank not heard from for as
    /// long is expired (its workers get an error, its lease is reclaimed).
    /// Seconds, or with a unit: 3, 2.5s, 500ms.
    #[arg(long, default_value = "3", value_parser = parse_duration)]
    worker_timeout: Duration,
    /// Time a job may take until every rank has joined.
    #[arg(long, default_value = "30", value_parser = parse_duration)]
    join_timeout: Duration,
    /// Largest slot range (window) one job may lease.
    #[arg(long, default_value_t = 1024)]
    job_quota: u16,
    /// Drop each received datagram with this probability (loss injection, 0..=1).
    #[arg(long, default_value_t = 0.0)]
    drop: f64,
    /// Seed of the loss injection.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Datagrams per recvmmsg call.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u16).range(1..=1024))]
    batch: u16,
    /// Do not use UDP GRO on receive even if the kernel offers it.
    #[arg(long)]
    no_gro: bool,
    /// Do not use UDP GSO on send even if the kernel offers it.
    #[arg(long)]
    no_gso: bool,
    /// Serve Prometheus metrics at http://ADDR/metrics (e.g. 127.0.0.1:9464).
    #[arg(long, value_name = "ADDR")]
    metrics: Option<SocketAddr>,
    /// Write every datagram received and sent to FILE (pcap, Ethernet
    /// frames synthesized around the datagrams; read it with
    /// tools/wireshark/ina.lua). Flushed on exit and on SIGUSR1.
    #[arg(long, value_name = "FILE")]
    pcap: Option<PathBuf>,
}

/// Serves until SIGINT/SIGTERM, then prints the counters.
pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    let config = ServerConfig {
        bind: args.bind,
        control: args.control,
        core: Config {
            max_workers: args.max_workers,
            slots: args.slots,
            max_elements_per_packet: args.elements,
        },
        job_quota: args.job_quota,
        worker_timeout: args.worker_timeout,
        join_timeout: args.join_timeout,
        drop: args.drop,
        seed: args.seed,
        batch: usize::from(args.batch),
        gro: !args.no_gro,
        gso: !args.no_gso,
        log: true,
    };
    let mut taps = Taps::default();
    if let Some(path) = &args.pcap {
        taps = taps
            .with_pcap(path)
            .with_context(|| format!("creating the capture file {}", path.display()))?;
    }
    if let Some(addr) = args.metrics {
        taps = taps
            .with_metrics(addr)
            .with_context(|| format!("serving metrics on {addr}"))?;
    }
    if let Some(tap) = &taps.metrics {
        eprintln!("switch-emu: metrics at http://{}/metrics", tap.local_addr());
    }
    let server = Server::bind(config)
        .context("starting the switch")?
        .with_taps(taps);
    server
        .controls()
        .register_signals()
        .context("installing signal handlers")?;
    eprintln!("switch-emu: serving; SIGUSR1 prints counters, Ctrl-C stops");
    let report = server.run().context("serving")?;
    println!("{}", report.render());
    Ok(())
}

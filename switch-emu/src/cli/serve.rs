//! `switch-emu serve`: over UDP sockets, or with `--port` as an L2 switch
//! on interfaces (aggregation at `--ip`, control plane at `--control`).

use std::net::{SocketAddr, SocketAddrV4};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use switch_emu::core::Config;
use switch_emu::l2::cli::L2Args;
use switch_emu::l2::serve::{serve, L2ServeConfig};
use switch_emu::taps::Taps;
use switch_emu::udp::{Server, ServerConfig};

use super::parse_duration;

/// Flags of `serve`. Defaults match the Tofino program's limits. The UDP
/// socket flags conflict with `--port` (L2 mode has no UDP socket).
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// UDP address for aggregation packets.
    #[arg(long, default_value = "127.0.0.1:48864", conflicts_with = "ports")]
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
    #[arg(long, default_value_t = 0.0, conflicts_with = "ports")]
    drop: f64,
    /// Seed of the loss injection.
    #[arg(long, default_value_t = 1, conflicts_with = "ports")]
    seed: u64,
    /// Datagrams per recvmmsg call.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u16).range(1..=1024), conflicts_with = "ports")]
    batch: u16,
    /// Do not use UDP GRO on receive even if the kernel offers it.
    #[arg(long, conflicts_with = "ports")]
    no_gro: bool,
    /// Do not use UDP GSO on send even if the kernel offers it.
    #[arg(long, conflicts_with = "ports")]
    no_gso: bool,
    /// Multicast each result once to its job's IP multicast group instead of
    /// sending it to every worker: job ID gets the group BASE + ID (BASE is
    /// a.b.0.0, e.g. 239.72.0.0) at the data port, which the workers join
    /// when they join the job. The network (or, on one host, the kernel)
    /// copies each result to the members. Needs multicast between the
    /// switch and the workers (loopback, or one L2 segment: the groups are
    /// sent with TTL 1); a retransmitted contribution is still answered by
    /// unicast. In L2 mode the switch sends a group result out of each
    /// member's port, or once to `--replication-port`.
    #[arg(long, value_name = "BASE")]
    result_groups: Option<std::net::Ipv4Addr>,
    /// Serve Prometheus metrics at http://ADDR/metrics (e.g. 127.0.0.1:9464).
    #[arg(long, value_name = "ADDR")]
    metrics: Option<SocketAddr>,
    /// Write every packet received and sent to FILE (pcap; in UDP mode
    /// Ethernet frames are synthesized around the datagrams, in L2 mode the
    /// frames are recorded as they are; read it with tools/wireshark/ina.lua).
    /// Flushed on exit (and in UDP mode on SIGUSR1).
    #[arg(long, value_name = "FILE")]
    pcap: Option<PathBuf>,
    /// L2 mode: switch ports and identity.
    #[command(flatten)]
    l2: L2Args,
}

/// Serves until SIGINT/SIGTERM, then prints the counters.
pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    if args.l2.enabled() {
        return run_l2(args);
    }
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
        result_groups: args.result_groups,
    };
    let taps = open_taps(&args)?;
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

/// Opens the capture file and the metrics endpoint the flags ask for.
fn open_taps(args: &ServeArgs) -> anyhow::Result<Taps> {
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
    Ok(taps)
}

/// L2 mode: the ports, the core and the control plane on this thread.
fn run_l2(args: ServeArgs) -> anyhow::Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM, SIGUSR1};
    let config = L2ServeConfig {
        control: args.control,
        core: Config {
            max_workers: args.max_workers,
            slots: args.slots,
            max_elements_per_packet: args.elements,
        },
        job_quota: args.job_quota,
        worker_timeout: args.worker_timeout,
        join_timeout: args.join_timeout,
    };
    let mut driver = args
        .l2
        .open(args.result_groups)
        .context("opening the switch ports")?;
    let mut taps = open_taps(&args)?;
    driver.set_capture(Taps {
        pcap: taps.pcap.take(),
        ..Taps::default()
    });
    let (stop, dump) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicBool::new(false)),
    );
    for signal in [SIGINT, SIGTERM] {
        signal_hook::flag::register(signal, stop.clone()).context("installing signal handlers")?;
    }
    signal_hook::flag::register(SIGUSR1, dump.clone()).context("installing signal handlers")?;
    let mac = driver.config().mac.map(|b| format!("{b:02x}")).join(":");
    let results = match (args.result_groups, &args.l2.replication_port) {
        (None, _) => "results to each member".to_owned(),
        (Some(base), None) => {
            format!("results to {base} + job id out of each member's port")
        }
        (Some(base), Some(pre)) => format!("results to {base} + job id once, through {pre}"),
    };
    eprintln!(
        "switch-emu: L2 switch on {} (CPU port {}), IP {} MAC {mac}, control {}, {} slots, max {} workers, max {} elements/packet, {results}; SIGUSR1 prints counters, Ctrl-C stops",
        args.l2.ports.join(","),
        args.l2.cpu_port.as_deref().unwrap_or("none"),
        driver.config().ip,
        args.control,
        config.core.slots,
        config.core.max_workers,
        config.core.max_elements_per_packet,
    );
    let report = serve(&mut driver, &config, &stop, &dump, taps).context("serving")?;
    println!("{}", report.render());
    Ok(())
}

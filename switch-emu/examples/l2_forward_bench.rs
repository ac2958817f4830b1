//! Reproduces the receive-path measurement in `switch_emu::l2::run` docs:
//! builds a 2-worker topology, runs the L2 driver (ring or recv) in the
//! switch namespace in this process, blasts raw frames from worker 0 to
//! worker 1 with AF_PACKET/sendmmsg, and counts what worker 1 received.
//! Usage (root): `cargo run --release --example l2_forward_bench -- ring|recv [frames] [frame_len]`
use std::time::{Duration, Instant};

use switch_emu::core::{Config, SwitchCore};
use switch_emu::l2::offload::Offload;
use switch_emu::l2::port::{Port, PortOptions, RxMode};
use switch_emu::l2::run::{serve_loop, DriverOptions, L2Driver};
use switch_emu::topo;

#[allow(unsafe_code)]
fn enter_netns(name: &str) {
    let f = std::fs::File::open(format!("/run/netns/{name}")).unwrap();
    use std::os::fd::AsRawFd;
    // SAFETY: setns on a valid namespace fd for this thread only.
    assert_eq!(unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) }, 0);
}

fn rx_packets(ns: &str, dev: &str) -> u64 {
    let out = std::process::Command::new("ip")
        .args([
            "netns",
            "exec",
            ns,
            "cat",
            &format!("/sys/class/net/{dev}/statistics/rx_packets"),
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mode = if args.get(1).map(String::as_str) == Some("recv") {
        RxMode::Recv
    } else {
        RxMode::Ring
    };
    let frames: usize = args
        .get(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let len: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(322);
    let name = format!("l2fb{}", std::process::id());
    struct Down(String);
    impl Drop for Down {
        fn drop(&mut self) {
            let _ = topo::down(&self.0);
        }
    }
    let _guard = Down(name.clone());
    let t = topo::up(&topo::TopoSpec {
        name: name.clone(),
        workers: 2,
        rate: None,
        mtu: None,
        loss: None,
        fabric: topo::Fabric::SwitchEmu,
    })
    .unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (sw_ns, ports, ip) = (t.switch_netns.clone(), t.switch_ports(), t.switch_ip);
    let stop2 = stop.clone();
    let sw = std::thread::spawn(move || {
        enter_netns(&sw_ns);
        let mut d = L2Driver::open(&DriverOptions {
            ports,
            cpu_port: Some("pctl".into()),
            ip,
            mac: None,
            port_options: PortOptions {
                rx: mode,
                block_size: std::env::var("BS")
                    .ok()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(1 << 13),
                block_count: std::env::var("BC")
                    .ok()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(512),
                ..PortOptions::default()
            },
            aging: Duration::from_secs(300),
            result_groups: None,
            replication_port: None,
        })
        .unwrap();
        let mut core = SwitchCore::new(Config::default()).unwrap();
        serve_loop(&mut d, &mut core, &stop2).unwrap();
        (d.counters().clone(), d.switch_counters().clone())
    });
    std::thread::sleep(Duration::from_millis(300));
    // Teach the switch worker 1's MAC, then blast from worker 0.
    let (w0, w1) = (t.workers[0].netns.clone(), t.workers[1].netns.clone());
    let _ = std::process::Command::new("ip")
        .args([
            "netns",
            "exec",
            &w0,
            "ping",
            "-c2",
            "-W1",
            "-q",
            &t.workers[1].ip.to_string(),
        ])
        .status();
    let mac1 = String::from_utf8(
        std::process::Command::new("ip")
            .args(["netns", "exec", &w1, "cat", "/sys/class/net/eth0/address"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let mac1: Vec<u8> = mac1
        .trim()
        .split(':')
        .map(|p| u8::from_str_radix(p, 16).unwrap())
        .collect();
    let before = rx_packets(&w1, "eth0");
    let sender = std::thread::spawn(move || {
        enter_netns(&w0);
        let mut p = Port::open(
            "eth0",
            PortOptions {
                rx: RxMode::Recv,
                qdisc_bypass: true,
                ..PortOptions::default()
            },
        )
        .unwrap();
        let mut f = vec![0u8; len];
        f[..6].copy_from_slice(&mac1);
        f[6..12].copy_from_slice(&p.mac());
        f[12] = 0x88;
        f[13] = 0xb5;
        let start = Instant::now();
        let mut sent = 0;
        while sent < frames {
            sent += p
                .send_batch((0..64).map(|_| (Offload::NONE, [&f[..]])))
                .unwrap();
        }
        (sent, start.elapsed())
    });
    let (sent, took) = sender.join().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (dc, sc) = sw.join().unwrap();
    let got = rx_packets(&t.workers[1].netns, "eth0") - before;
    println!(
        "mode {:?} frame {} B: sent {} in {:.3}s ({:.0} f/s offered), forwarded to w1 {} ({:.1}%), switch rx {} tx {} txdrop {} unicast {} flooded {}",
        mode, len, sent, took.as_secs_f64(), sent as f64 / took.as_secs_f64(), got, 100.0 * got as f64 / sent as f64,
        dc.rx_frames, dc.tx_frames, dc.tx_dropped, sc.unicast_forwarded, sc.flooded
    );
}

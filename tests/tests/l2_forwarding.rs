//! The L2 switch on veth ports between worker namespaces: ARP, ping to a
//! peer and to the switch, and a TCP connection carrying data, all through
//! the user-space switch. Needs root (CI runs as root); set INA_SKIP_NETNS=1
//! to skip explicitly elsewhere.

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use switch_emu::core::{Config, SwitchCore};
use switch_emu::l2::port::PortOptions;
use switch_emu::l2::run::{serve_loop, DriverOptions, L2Driver};
use switch_emu::topo::{self, TopoSpec};

fn root_or_skip() -> bool {
    if std::env::var("INA_SKIP_NETNS").as_deref() == Ok("1") {
        eprintln!("INA_SKIP_NETNS=1: skipping namespace test");
        return false;
    }
    let uid = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(str::to_owned))
        })
        .unwrap_or_default();
    assert_eq!(
        uid, "0",
        "this test needs root (network namespaces); set INA_SKIP_NETNS=1 to skip it"
    );
    true
}

/// Deletes the topology on drop (also on panic) and checks nothing survives.
struct TopoGuard(String);

impl Drop for TopoGuard {
    fn drop(&mut self) {
        let _ = topo::down(&self.0);
        let left = topo::leftovers(&self.0).unwrap_or_default();
        if !std::thread::panicking() {
            assert!(left.is_empty(), "namespaces survived: {left:?}");
        }
    }
}

#[allow(unsafe_code)]
fn enter_netns(name: &str) {
    use std::os::fd::AsRawFd;
    let f = std::fs::File::open(format!("/run/netns/{name}")).expect("netns file");
    // SAFETY: setns on a valid namespace descriptor; affects this thread only.
    assert_eq!(unsafe { libc_setns(f.as_raw_fd()) }, 0, "setns");
}

#[allow(unsafe_code)]
unsafe fn libc_setns(fd: i32) -> i32 {
    extern "C" {
        fn setns(fd: i32, nstype: i32) -> i32;
    }
    const CLONE_NEWNET: i32 = 0x4000_0000;
    // SAFETY: plain system call wrapper; the caller passes a valid descriptor.
    unsafe { setns(fd, CLONE_NEWNET) }
}

fn in_ns(ns: &str, args: &[&str]) -> std::process::Output {
    Command::new("ip")
        .args(["netns", "exec", ns])
        .args(args)
        .output()
        .expect("ip netns exec")
}

#[test]
fn ping_and_tcp_cross_the_l2_switch() {
    if !root_or_skip() {
        return;
    }
    let name = format!("l2fw{}", std::process::id());
    let _guard = TopoGuard(name.clone());
    let t = topo::up(&TopoSpec {
        name: name.clone(),
        workers: 3,
        rate: Some("1gbit".into()),
        mtu: None,
        loss: None,
    })
    .expect("topo up");
    let stop = Arc::new(AtomicBool::new(false));
    let (sw_ns, ports, ip, mac) = (
        t.switch_netns.clone(),
        t.switch_ports(),
        t.switch_ip,
        t.switch_mac.clone(),
    );
    let stop_sw = stop.clone();
    let switch = std::thread::spawn(move || {
        enter_netns(&sw_ns);
        let mac: Vec<u8> = mac
            .split(':')
            .map(|p| u8::from_str_radix(p, 16).unwrap())
            .collect();
        let mut driver = L2Driver::open(&DriverOptions {
            ports,
            cpu_port: Some("pctl".into()),
            ip,
            mac: Some(mac.try_into().unwrap()),
            port_options: PortOptions::default(),
            aging: Duration::from_secs(300),
        })
        .expect("open ports");
        let mut core = SwitchCore::new(Config::default()).unwrap();
        serve_loop(
            &mut driver,
            &mut core,
            |c| c,
            &[],
            &stop_sw,
            |_, _| Ok(None),
        )
        .unwrap();
        driver.switch_counters().clone()
    });
    let (w0, w2) = (&t.workers[0], &t.workers[2]);
    // Ping a peer (crosses the switch) and the switch (answered by it).
    let out = in_ns(
        &w0.netns,
        &["ping", "-c3", "-i0.2", "-W2", &w2.ip.to_string()],
    );
    assert!(
        out.status.success(),
        "ping peer: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let out = in_ns(
        &w0.netns,
        &["ping", "-c5", "-i0.2", "-W2", &t.switch_ip.to_string()],
    );
    assert!(
        out.status.success(),
        "ping switch: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    // TCP: w2 serves, w0 sends 1 MiB, w2 reports the byte count and a checksum.
    let server = format!(
        "import socket,hashlib\ns=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1);s.bind(('{}',5001));s.listen(1)\nc,_=s.accept();h=hashlib.sha256();n=0\nwhile True:\n  b=c.recv(65536)\n  if not b: break\n  n+=len(b);h.update(b)\nprint(n,h.hexdigest())",
        w2.ip
    );
    let srv = Command::new("ip")
        .args([
            "netns",
            "exec",
            &w2.netns,
            "/usr/bin/python3",
            "-c",
            &server,
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let client = format!(
        "import socket,time,hashlib\nd=bytes(range(256))*4096\nfor i in range(50):\n  try:\n    c=socket.create_connection(('{}',5001),timeout=5);break\n  except OSError: time.sleep(0.1)\nc.sendall(d);c.close();print(len(d),hashlib.sha256(d).hexdigest())",
        w2.ip
    );
    let cl = in_ns(&w0.netns, &["/usr/bin/python3", "-c", &client]);
    assert!(
        cl.status.success(),
        "tcp client: {}",
        String::from_utf8_lossy(&cl.stderr)
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    let srv_out = srv.wait_with_output().unwrap();
    assert!(Instant::now() < deadline);
    let sent = String::from_utf8_lossy(&cl.stdout).trim().to_owned();
    let got = String::from_utf8_lossy(&srv_out.stdout).trim().to_owned();
    assert_eq!(got, sent, "TCP data differs");
    assert!(sent.starts_with("1048576 "));
    stop.store(true, Ordering::Relaxed);
    let counters = switch.join().unwrap();
    eprintln!("{counters:?}");
    assert!(counters.unicast_forwarded > 700, "{counters:?}");
    assert!(
        counters.arp_replies >= 1 && counters.icmp_replies >= 2,
        "{counters:?}"
    );
}

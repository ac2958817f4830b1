//! The L2 switch on veth ports between worker namespaces: ARP, ping to a
//! peer and to the switch, and a TCP connection carrying data, all through
//! the user-space switch. Needs root (CI runs as root); set INA_SKIP_NETNS=1
//! to skip explicitly elsewhere.

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ina_tests::netns::{enter_netns, in_ns, root_or_skip, unique_name, TopoGuard};
use switch_emu::core::{Config, SwitchCore};
use switch_emu::l2::port::PortOptions;
use switch_emu::l2::run::{serve_loop, DriverOptions, L2Driver};
use switch_emu::topo::TopoSpec;

#[test]
fn ping_and_tcp_cross_the_l2_switch() {
    if !root_or_skip() {
        return;
    }
    let (_guard, t) = TopoGuard::up(TopoSpec {
        name: unique_name("l2fw"),
        workers: 3,
        rate: Some("1gbit".into()),
        mtu: None,
        loss: None,
        fabric: switch_emu::topo::Fabric::SwitchEmu,
    });
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
            result_groups: None,
            replication_port: None,
        })
        .expect("open ports");
        let mut core = SwitchCore::new(Config::default()).unwrap();
        serve_loop(&mut driver, &mut core, &stop_sw).unwrap();
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
    // 1 MiB of TCP crossed in frames of at most 64 KiB: with offloads on,
    // TSO super-frames cross whole (their partial checksums finished by the
    // receiving kernel, or the data above would differ).
    assert!(counters.unicast_forwarded >= 16, "{counters:?}");
    assert!(
        counters.arp_replies >= 1 && counters.icmp_replies >= 2,
        "{counters:?}"
    );
}

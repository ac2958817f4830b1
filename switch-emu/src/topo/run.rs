//! `topo run`: the switch in the switch namespace, one command per worker
//! namespace, with `{rank}`, `{world}`, `{ip}`, `{switch}` (switch IP),
//! `{control}` (switch IP:control port) and `{netns}` substituted.

use std::io::Read;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use packet_format::{CONTROL_PORT, UDP_PORT};

use super::{kill_netns_processes, sh, Fabric, TopoError, Topology};

/// The command line of `switch-emu serve` for a topology (program first).
pub fn serve_command(topo: &Topology, program: &str, extra: &[String]) -> Vec<String> {
    let mut cmd = vec![
        "ip".to_owned(),
        "netns".into(),
        "exec".into(),
        topo.switch_netns.clone(),
        program.to_owned(),
        "serve".into(),
    ];
    if topo.spec.fabric == Fabric::KernelBridge {
        // The kernel forwards; switch-emu aggregates on the switch's address.
        cmd.extend([
            "--bind".into(),
            SocketAddrV4::new(topo.switch_ip, UDP_PORT).to_string(),
            "--control".into(),
            SocketAddrV4::new(topo.switch_ip, CONTROL_PORT).to_string(),
        ]);
        cmd.extend(extra.iter().cloned());
        return cmd;
    }
    for port in topo.switch_ports() {
        cmd.push("--port".into());
        cmd.push(port);
    }
    cmd.extend([
        "--cpu-port".into(),
        topo.cpu_port.clone(),
        "--ip".into(),
        topo.switch_ip.to_string(),
        "--mac".into(),
        topo.switch_mac.clone(),
        "--control".into(),
        SocketAddrV4::new(topo.switch_ip, CONTROL_PORT).to_string(),
    ]);
    cmd.extend(extra.iter().cloned());
    cmd
}

/// Base of the multicast groups results go to on a topology (organization-
/// local scope, RFC 2365; job `id` gets `239.77.x.y`).
pub const RESULT_GROUPS: Ipv4Addr = Ipv4Addr::new(239, 77, 0, 0);

/// The `serve` arguments that multicast results on `topo`: the switch then
/// sends each result once, and the kernel copies it to the ports as a
/// Tofino's replication engine does (on the kernel bridge the bridge, on the
/// L2 fabric the replication port's `dup` rules). None when
/// `unicast_results` asks for one result per member, nor on an L2 topology
/// built before it had a replication port.
pub fn multicast_args(topo: &Topology, unicast_results: bool) -> Vec<String> {
    let groups = || vec!["--result-groups".into(), RESULT_GROUPS.to_string()];
    match (topo.spec.fabric, &topo.replication_port) {
        _ if unicast_results => Vec::new(),
        (Fabric::KernelBridge, _) => groups(),
        (Fabric::SwitchEmu, Some(pre)) => {
            let mut args = groups();
            args.extend(["--replication-port".into(), pre.clone()]);
            args
        }
        (Fabric::SwitchEmu, None) => Vec::new(),
    }
}

/// A switch process in a topology, killed (by pid) on drop.
#[derive(Debug)]
pub struct SwitchProcess {
    child: Child,
}

impl SwitchProcess {
    /// Starts `switch-emu serve` (binary `program`) inside the switch
    /// namespace and waits until it answers ARP/ICMP from worker 0 and its
    /// control port accepts connections.
    pub fn start(topo: &Topology, program: &str, extra: &[String]) -> Result<Self, TopoError> {
        let cmd = serve_command(topo, program, extra);
        let child = Command::new(&cmd[0])
            .args(&cmd[1..])
            .stdin(Stdio::null())
            .spawn()?;
        let mut sw = SwitchProcess { child };
        sw.wait_ready(topo, Duration::from_secs(20))?;
        Ok(sw)
    }

    /// Like [`SwitchProcess::start`], with the switch's stdout and stderr
    /// appended to the file `log`.
    pub fn start_logged(
        topo: &Topology,
        program: &str,
        extra: &[String],
        log: &std::path::Path,
    ) -> Result<Self, TopoError> {
        let cmd = serve_command(topo, program, extra);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)?;
        let child = Command::new(&cmd[0])
            .args(&cmd[1..])
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file)
            .spawn()?;
        let mut sw = SwitchProcess { child };
        sw.wait_ready(topo, Duration::from_secs(20))?;
        Ok(sw)
    }

    fn wait_ready(&mut self, topo: &Topology, limit: Duration) -> Result<(), TopoError> {
        let start = Instant::now();
        let ip = topo.switch_ip.to_string();
        let probe_ns = topo.workers.first().map(|w| w.netns.clone());
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Err(TopoError::Command {
                    cmd: "switch-emu serve".into(),
                    stderr: format!("exited early with {status}"),
                });
            }
            let ping_ok = match &probe_ns {
                Some(ns) => {
                    sh(&["ip", "netns", "exec", ns, "ping", "-c1", "-W1", "-q", &ip]).is_ok()
                }
                None => true,
            };
            let tcp = format!(": </dev/tcp/{ip}/{CONTROL_PORT}");
            let ctl_ok = sh(&[
                "ip",
                "netns",
                "exec",
                &topo.switch_netns,
                "bash",
                "-c",
                &tcp,
            ])
            .is_ok();
            if ping_ok && ctl_ok {
                return Ok(());
            }
            if start.elapsed() > limit {
                return Err(TopoError::Command {
                    cmd: "switch-emu serve".into(),
                    stderr: "switch not ready (no ICMP echo reply or control port)".into(),
                });
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The switch's process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Stops the switch (SIGTERM, then SIGKILL after a second) and reaps it.
    pub fn stop(&mut self) {
        let pid = self.child.id().to_string();
        let _ = sh(&["kill", "-TERM", &pid]);
        let deadline = Instant::now() + Duration::from_secs(1);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for SwitchProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.stop();
        }
    }
}

/// Replaces the placeholders in one argument for worker `rank`.
pub fn substitute(arg: &str, topo: &Topology, rank: usize) -> String {
    let w = &topo.workers[rank];
    arg.replace("{rank}", &rank.to_string())
        .replace("{world}", &topo.workers.len().to_string())
        .replace("{ip}", &w.ip.to_string())
        .replace("{switch}", &topo.switch_ip.to_string())
        .replace(
            "{control}",
            &SocketAddrV4::new(topo.switch_ip, CONTROL_PORT).to_string(),
        )
        .replace("{netns}", &w.netns)
}

/// Runs `cmd` (with substitutions) in every worker namespace at once and
/// waits for all; returns each worker's output, by rank. With `limit`,
/// workers still running after it are killed and the run fails
/// ([`TopoError::Timeout`], with the end of each one's stderr), so that a
/// stuck job cannot hold the command forever.
pub fn run_workers(
    topo: &Topology,
    cmd: &[String],
    limit: Option<Duration>,
) -> Result<Vec<Output>, TopoError> {
    if cmd.is_empty() {
        return Err(TopoError::BadSpec("no command given".into()));
    }
    let started = Instant::now();
    let mut children = Vec::new();
    for w in &topo.workers {
        let args: Vec<String> = cmd.iter().map(|a| substitute(a, topo, w.rank)).collect();
        let child = Command::new("ip")
            .args(["netns", "exec", &w.netns])
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        children.push(child);
    }
    // Readers drain the pipes meanwhile, so that a chatty worker never blocks.
    let pipes: Vec<_> = children
        .iter_mut()
        .map(|c| (drain(c.stdout.take()), drain(c.stderr.take())))
        .collect();
    let mut statuses: Vec<Option<ExitStatus>> = vec![None; children.len()];
    let mut killed = Vec::new();
    loop {
        for (status, child) in statuses.iter_mut().zip(&mut children) {
            if status.is_none() {
                *status = child.try_wait()?;
            }
        }
        if statuses.iter().all(Option::is_some) {
            break;
        }
        if limit.is_some_and(|l| started.elapsed() > l) {
            for (rank, (status, child)) in statuses.iter_mut().zip(&mut children).enumerate() {
                if status.is_none() {
                    // Everything in the worker's namespace is the worker's:
                    // what it started would otherwise keep its pipes open.
                    let _ = child.kill();
                    kill_netns_processes(&topo.workers[rank].netns);
                    *status = Some(child.wait()?);
                    killed.push(rank);
                }
            }
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let outputs: Vec<Output> = pipes
        .into_iter()
        .zip(statuses)
        .map(|((stdout, stderr), status)| Output {
            status: status.expect("every worker has ended"),
            stdout: stdout.join().unwrap_or_default(),
            stderr: stderr.join().unwrap_or_default(),
        })
        .collect();
    if killed.is_empty() {
        return Ok(outputs);
    }
    let stuck = killed
        .into_iter()
        .map(|rank| {
            let text = String::from_utf8_lossy(&outputs[rank].stderr);
            let lines: Vec<&str> = text.lines().collect();
            let tail = &lines[lines.len().saturating_sub(3)..];
            format!("rank {rank}: {}", tail.join(" / "))
        })
        .collect();
    Err(TopoError::Timeout {
        limit: limit.unwrap_or_default(),
        stuck,
    })
}

/// Reads a pipe to its end on a thread of its own.
fn drain<R: Read + Send + 'static>(pipe: Option<R>) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut bytes);
        }
        bytes
    })
}

#[cfg(test)]
mod tests {
    use super::super::{TopoSpec, WorkerNode};
    use super::*;
    use std::net::Ipv4Addr;

    fn topo() -> Topology {
        Topology {
            spec: TopoSpec {
                name: "t".into(),
                workers: 1,
                rate: None,
                mtu: None,
                loss: None,
                fabric: Fabric::SwitchEmu,
            },
            switch_netns: "t-sw".into(),
            switch_ip: Ipv4Addr::new(10, 77, 3, 254),
            switch_mac: "02:77:03:00:00:fe".into(),
            prefix_len: 24,
            cpu_iface: "ctl".into(),
            cpu_port: "pctl".into(),
            replication_port: Some("pre".into()),
            workers: vec![WorkerNode {
                rank: 0,
                netns: "t-w0".into(),
                iface: "eth0".into(),
                ip: Ipv4Addr::new(10, 77, 3, 1),
                switch_port: "p0".into(),
            }],
            namespaces: vec!["t-sw".into(), "t-w0".into()],
        }
    }

    #[test]
    fn kernel_bridge_serves_udp_on_the_switch_address() {
        let mut t = topo();
        t.spec.fabric = Fabric::KernelBridge;
        let cmd = serve_command(&t, "switch-emu", &["--elements".into(), "256".into()]);
        assert_eq!(
            cmd[3..].join(" "),
            "t-sw switch-emu serve --bind 10.77.3.254:48864 --control 10.77.3.254:48865 --elements 256"
        );
    }

    #[test]
    fn results_go_to_groups_unless_unicast_is_asked_for() {
        let mut t = topo();
        let line = |t: &Topology, unicast| multicast_args(t, unicast).join(" ");
        assert_eq!(
            line(&t, false),
            "--result-groups 239.77.0.0 --replication-port pre"
        );
        assert_eq!(line(&t, true), "");
        // An L2 topology built before replication ports: a copy per member.
        t.replication_port = None;
        assert_eq!(line(&t, false), "");
        t.spec.fabric = Fabric::KernelBridge;
        assert_eq!(line(&t, false), "--result-groups 239.77.0.0");
        assert_eq!(line(&t, true), "");
    }

    #[test]
    fn substitutes_placeholders() {
        let t = topo();
        assert_eq!(
            substitute(
                "--rank {rank} --world {world} --bind {ip}:0 --switch {switch} {control} {netns}",
                &t,
                0
            ),
            "--rank 0 --world 1 --bind 10.77.3.1:0 --switch 10.77.3.254 10.77.3.254:48865 t-w0"
        );
    }

    #[test]
    fn serve_command_lists_every_port() {
        let cmd = serve_command(&topo(), "switch-emu", &[]);
        let line = cmd.join(" ");
        assert!(line.starts_with(
            "ip netns exec t-sw switch-emu serve --port p0 --port pctl --cpu-port pctl"
        ));
        assert!(
            line.contains("--ip 10.77.3.254 --mac 02:77:03:00:00:fe --control 10.77.3.254:48865")
        );
    }
}

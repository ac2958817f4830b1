//! Emulated clusters on one machine: a network namespace per worker and one
//! for the switch, joined by veth links, built by shelling out to `ip`, `tc`
//! and `nft` (root only).
//!
//! Layout of topology `NAME` with `N` workers, subnet `10.77.X.0/24` (`X`
//! derived from the name, so captures of different topologies differ):
//! - namespace `NAME-sw`: switch ports `p0..pN-1` (veth ends of the worker
//!   links) and `ctl`/`pctl`, a veth pair whose `ctl` end is the switch's own
//!   kernel interface (address `10.77.X.254`, the switch MAC; it runs the TCP
//!   control plane) and whose `pctl` end is the switch's CPU port;
//! - namespace `NAME-wK`: interface `eth0`, address `10.77.X.(K+1)`.
//!
//! With [`Fabric::SwitchEmu`] the switch namespace also holds `pre`, the
//! switch's replication port, a veth whose peer is `prex`: an nftables
//! netdev ingress chain on `prex` copies every frame sent to `pre` to each
//! worker port (`dup to`, a clone sharing the frame's buffer) and drops the
//! original, so a result multicast to a job's group leaves the switch
//! process once, as a Tofino's replication engine copies it to the ports.
//! (An ingress chain, not an egress one on `pre`: netdev egress hooks need
//! Linux 5.16, ingress ones are in every kernel with nftables.)
//!
//! Offloads (TSO/GSO, checksum) stay on at every kernel-stack end (`eth0`,
//! `ctl`): the switch's ports exchange each frame's offload header with the
//! kernel ([`crate::l2::offload`]), so super-frames and partial checksums
//! cross the switch intact. With [`Fabric::KernelBridge`] the switch
//! namespace's kernel bridges `p0..pN-1` and `pctl` instead, and switch-emu
//! serves UDP on `10.77.X.254`.
//!
//! Every link gets an optional `tc` tbf rate limit on both ends (both
//! directions) and an optional random loss (`nft` netdev ingress rule
//! `numgen random mod 100 < P drop` on both ends). All of it lives inside the
//! namespaces, so deleting the namespaces deletes everything; the state file
//! `/run/ina-topo/NAME.json` records what was created.

use std::fs;
use std::io;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};

pub mod bench;
pub mod cli;
pub mod run;

/// Directory of the state files.
pub const STATE_DIR: &str = "/run/ina-topo";

/// Errors of topology management.
#[derive(Debug, thiserror::Error)]
pub enum TopoError {
    /// The name would not make valid namespace names.
    #[error("invalid topology name {0:?}: use 1-24 characters of [A-Za-z0-9_-]")]
    BadName(String),
    /// Invalid parameters.
    #[error("invalid topology parameters: {0}")]
    BadSpec(String),
    /// A topology of this name exists already.
    #[error("topology {0} exists already (run `switch-emu topo down --name {0}`)")]
    Exists(String),
    /// A command failed.
    #[error("`{cmd}` failed: {stderr}")]
    Command {
        /// The command line.
        cmd: String,
        /// Its standard error.
        stderr: String,
    },
    /// File or process I/O failed.
    #[error(transparent)]
    Io(#[from] io::Error),
    /// The state file is unreadable.
    #[error("state file: {0}")]
    State(#[from] serde_json::Error),
    /// Workers were still running at the time limit and were killed.
    #[error("workers still running after {limit:?} were killed; last words: {}", stuck.join("; "))]
    Timeout {
        /// The limit.
        limit: std::time::Duration,
        /// Per killed worker, its rank and the end of its stderr.
        stuck: Vec<String>,
    },
}

/// What joins the links in the switch namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Fabric {
    /// switch-emu is the L2 switch: it opens every port (AF_PACKET rings),
    /// forwards frames and aggregates (`serve --port ...`). Offloads stay
    /// on: its ports exchange each frame's offload header with the kernel,
    /// so the agents' GSO runs reach it as super-frames and its results to
    /// one worker leave as one.
    #[default]
    SwitchEmu,
    /// The switch namespace's kernel bridges the ports (`br0`, with the CPU
    /// port); switch-emu runs its UDP driver on the switch's address (`ctl`)
    /// and only aggregates. UDP GSO super-packets cross the veths and the
    /// bridge whole and arrive coalesced (GRO), and the bridge copies a
    /// multicast result to the ports; the forwarding is the kernel's.
    KernelBridge,
}

/// What `up` should build.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopoSpec {
    /// Name prefix of everything created.
    pub name: String,
    /// Number of worker namespaces.
    pub workers: usize,
    /// Rate limit of each link direction, in `tc` syntax (e.g. `1gbit`).
    pub rate: Option<String>,
    /// MTU of every link.
    pub mtu: Option<u32>,
    /// Random loss in percent (0-100) on each link direction.
    pub loss: Option<u32>,
    /// What joins the links (state files written before it existed: the L2 switch).
    #[serde(default)]
    pub fabric: Fabric,
}

/// One worker of a topology.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerNode {
    /// Rank (index).
    pub rank: usize,
    /// Namespace name.
    pub netns: String,
    /// Interface in the worker namespace.
    pub iface: String,
    /// Address of the interface.
    pub ip: Ipv4Addr,
    /// The switch port (in the switch namespace) this worker hangs off.
    pub switch_port: String,
}

/// Everything a topology consists of (the state file's content).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Topology {
    /// How it was built.
    pub spec: TopoSpec,
    /// The switch's namespace.
    pub switch_netns: String,
    /// The switch's IP (aggregation and control plane).
    pub switch_ip: Ipv4Addr,
    /// The switch's MAC (also the MAC of `ctl`).
    pub switch_mac: String,
    /// Prefix length of the subnet.
    pub prefix_len: u8,
    /// The switch's kernel interface (holds `switch_ip`).
    pub cpu_iface: String,
    /// The switch port facing `cpu_iface`.
    pub cpu_port: String,
    /// The replication port ([`Fabric::SwitchEmu`]; state files written
    /// before it existed have none).
    #[serde(default)]
    pub replication_port: Option<String>,
    /// The workers.
    pub workers: Vec<WorkerNode>,
    /// Every namespace created (deleting them deletes every link, qdisc and nft table).
    pub namespaces: Vec<String>,
}

impl Topology {
    /// The switch ports `switch-emu serve` must open (workers' ports, then the CPU port).
    pub fn switch_ports(&self) -> Vec<String> {
        let mut ports: Vec<String> = self.workers.iter().map(|w| w.switch_port.clone()).collect();
        ports.push(self.cpu_port.clone());
        ports
    }
}

fn check_name(name: &str) -> Result<(), TopoError> {
    let ok = !name.is_empty()
        && name.len() <= 24
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(TopoError::BadName(name.to_owned()))
    }
}

/// The third octet of the topology's subnet (1..=250), from an FNV-1a hash of the name.
pub fn subnet_octet(name: &str) -> u8 {
    let mut h: u32 = 0x811c_9dc5;
    for b in name.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    (h % 250) as u8 + 1
}

/// Path of the state file of `name`.
pub fn state_path(name: &str) -> PathBuf {
    PathBuf::from(STATE_DIR).join(format!("{name}.json"))
}

/// Runs a command, failing with its stderr.
pub(crate) fn sh(args: &[&str]) -> Result<String, TopoError> {
    sh_input(args, None)
}

fn sh_input(args: &[&str], input: Option<&str>) -> Result<String, TopoError> {
    use std::io::Write;
    let mut child = Command::new(args[0])
        .args(&args[1..])
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| TopoError::Command {
            cmd: args.join(" "),
            stderr: e.to_string(),
        })?;
    if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin.write_all(text.as_bytes())?;
    }
    let out = child.wait_with_output()?;
    if !out.status.success() {
        return Err(TopoError::Command {
            cmd: args.join(" "),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Names of the existing network namespaces.
pub fn list_netns() -> Result<Vec<String>, TopoError> {
    let out = sh(&["ip", "netns", "list"])?;
    Ok(out
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect())
}

/// Builds the topology; on failure, removes whatever was created.
pub fn up(spec: &TopoSpec) -> Result<Topology, TopoError> {
    check_name(&spec.name)?;
    if spec.workers == 0 || spec.workers > 63 {
        return Err(TopoError::BadSpec("workers must be 1..=63".into()));
    }
    if spec.loss.is_some_and(|p| p > 100) {
        return Err(TopoError::BadSpec("loss must be 0..=100 percent".into()));
    }
    if state_path(&spec.name).exists() || !leftovers(&spec.name)?.is_empty() {
        return Err(TopoError::Exists(spec.name.clone()));
    }
    let x = subnet_octet(&spec.name);
    let name = &spec.name;
    let topo = Topology {
        spec: spec.clone(),
        switch_netns: format!("{name}-sw"),
        switch_ip: Ipv4Addr::new(10, 77, x, 254),
        switch_mac: format!("02:77:{x:02x}:00:00:fe"),
        prefix_len: 24,
        cpu_iface: "ctl".into(),
        cpu_port: "pctl".into(),
        replication_port: (spec.fabric == Fabric::SwitchEmu).then(|| REPLICATION_PORT.to_owned()),
        workers: (0..spec.workers)
            .map(|k| WorkerNode {
                rank: k,
                netns: format!("{name}-w{k}"),
                iface: "eth0".into(),
                ip: Ipv4Addr::new(10, 77, x, k as u8 + 1),
                switch_port: format!("p{k}"),
            })
            .collect(),
        namespaces: std::iter::once(format!("{name}-sw"))
            .chain((0..spec.workers).map(|k| format!("{name}-w{k}")))
            .collect(),
    };
    // The state file comes first, so that `down` finds everything even if
    // this process dies half way.
    fs::create_dir_all(STATE_DIR)?;
    fs::write(state_path(name), serde_json::to_vec_pretty(&topo)?)?;
    match build(&topo) {
        Ok(()) => Ok(topo),
        Err(e) => {
            let _ = down(name);
            Err(e)
        }
    }
}

fn build(topo: &Topology) -> Result<(), TopoError> {
    let sw = topo.switch_netns.as_str();
    let spec = &topo.spec;
    for ns in &topo.namespaces {
        sh(&["ip", "netns", "add", ns])?;
        sh(&["ip", "-n", ns, "link", "set", "lo", "up"])?;
    }
    let mtu = spec.mtu.map(|m| m.to_string());
    for w in &topo.workers {
        sh(&[
            "ip",
            "-n",
            sw,
            "link",
            "add",
            &w.switch_port,
            "type",
            "veth",
            "peer",
            "name",
            &w.iface,
            "netns",
            &w.netns,
        ])?;
        let addr = format!("{}/{}", w.ip, topo.prefix_len);
        sh(&["ip", "-n", &w.netns, "addr", "add", &addr, "dev", &w.iface])?;
        link_setup(sw, &w.switch_port, mtu.as_deref(), spec)?;
        link_setup(&w.netns, &w.iface, mtu.as_deref(), spec)?;
    }
    let (cpu, cpu_port) = (topo.cpu_iface.as_str(), topo.cpu_port.as_str());
    sh(&[
        "ip",
        "-n",
        sw,
        "link",
        "add",
        cpu,
        "address",
        &topo.switch_mac,
        "type",
        "veth",
        "peer",
        "name",
        cpu_port,
    ])?;
    let addr = format!("{}/{}", topo.switch_ip, topo.prefix_len);
    sh(&["ip", "-n", sw, "addr", "add", &addr, "dev", cpu])?;
    for dev in [cpu, cpu_port] {
        if let Some(m) = &mtu {
            sh(&["ip", "-n", sw, "link", "set", dev, "mtu", m])?;
        }
        sh(&["ip", "-n", sw, "link", "set", dev, "up"])?;
    }
    if let Some(pre) = &topo.replication_port {
        replication_setup(topo, pre, mtu.as_deref())?;
    }
    if spec.fabric == Fabric::KernelBridge {
        sh(&["ip", "-n", sw, "link", "add", BRIDGE, "type", "bridge"])?;
        for port in topo.switch_ports() {
            sh(&["ip", "-n", sw, "link", "set", &port, "master", BRIDGE])?;
        }
        sh(&["ip", "-n", sw, "link", "set", BRIDGE, "up"])?;
    }
    Ok(())
}

/// The bridge of [`Fabric::KernelBridge`] in the switch namespace.
pub const BRIDGE: &str = "br0";

/// The replication port of [`Fabric::SwitchEmu`] in the switch namespace.
pub const REPLICATION_PORT: &str = "pre";

/// The replication port `pre` and its peer, and the nftables chain on the
/// peer's ingress that copies each frame to every worker port and drops
/// the original (the copies then pass each port's own qdisc, its rate limit).
fn replication_setup(topo: &Topology, pre: &str, mtu: Option<&str>) -> Result<(), TopoError> {
    let sw = topo.switch_netns.as_str();
    let peer = format!("{pre}x");
    sh(&[
        "ip", "-n", sw, "link", "add", pre, "type", "veth", "peer", "name", &peer,
    ])?;
    for dev in [pre, peer.as_str()] {
        if let Some(m) = mtu {
            sh(&["ip", "-n", sw, "link", "set", dev, "mtu", m])?;
        }
        sh(&["ip", "-n", sw, "link", "set", dev, "up"])?;
    }
    sh_input(
        &["ip", "netns", "exec", sw, "nft", "-f", "-"],
        Some(&replication_rules(
            &peer,
            topo.workers.iter().map(|w| w.switch_port.as_str()),
        )),
    )?;
    Ok(())
}

/// The nftables table of [`replication_setup`], on `peer`'s ingress.
fn replication_rules<'a>(peer: &str, ports: impl Iterator<Item = &'a str>) -> String {
    let mut rules = format!(
        "table netdev ina_replicate {{\n  chain ingress {{\n    type filter hook ingress device \"{peer}\" priority 0; policy drop;\n"
    );
    for port in ports {
        rules.push_str(&format!("    dup to \"{port}\"\n"));
    }
    rules.push_str("  }\n}\n");
    rules
}

/// MTU, rate limit and loss on one end of a link, then up.
fn link_setup(ns: &str, dev: &str, mtu: Option<&str>, spec: &TopoSpec) -> Result<(), TopoError> {
    if let Some(m) = mtu {
        sh(&["ip", "-n", ns, "link", "set", dev, "mtu", m])?;
    }
    if let Some(rate) = &spec.rate {
        // burst >= one timer tick of traffic at 1 Gbit/s; latency bounds the queue.
        sh(&[
            "tc", "-n", ns, "qdisc", "add", "dev", dev, "root", "tbf", "rate", rate, "burst",
            "256kb", "latency", "50ms",
        ])?;
    }
    if let Some(p) = spec.loss.filter(|p| *p > 0) {
        let table = format!(
            "table netdev ina_loss_{dev} {{\n  chain ingress {{\n    type filter hook ingress device \"{dev}\" priority 0; policy accept;\n    numgen random mod 100 < {p} counter drop\n  }}\n}}\n"
        );
        sh_input(&["ip", "netns", "exec", ns, "nft", "-f", "-"], Some(&table))?;
    }
    sh(&["ip", "-n", ns, "link", "set", dev, "up"])?;
    Ok(())
}

/// Namespaces that look like parts of topology `name` (`NAME-sw`, `NAME-wK`).
pub fn leftovers(name: &str) -> Result<Vec<String>, TopoError> {
    let sw = format!("{name}-sw");
    let wprefix = format!("{name}-w");
    Ok(list_netns()?
        .into_iter()
        .filter(|ns| {
            *ns == sw
                || ns
                    .strip_prefix(&wprefix)
                    .is_some_and(|k| !k.is_empty() && k.bytes().all(|b| b.is_ascii_digit()))
        })
        .collect())
}

/// Loads the state file of `name`.
pub fn load(name: &str) -> Result<Topology, TopoError> {
    check_name(name)?;
    let bytes = fs::read(state_path(name))?;
    Ok(serde_json::from_slice(&bytes)?)
}

/// Deletes topology `name`: every namespace in its state file and any
/// namespace named like its parts (so it also cleans up after a crash that
/// lost the state file), after killing the processes running inside them.
/// Deleting a namespace deletes its veths, qdiscs and nft tables.
/// Returns the namespaces deleted.
pub fn down(name: &str) -> Result<Vec<String>, TopoError> {
    check_name(name)?;
    let mut targets = load(name).map(|t| t.namespaces).unwrap_or_default();
    for ns in leftovers(name)? {
        if !targets.contains(&ns) {
            targets.push(ns);
        }
    }
    let existing = list_netns()?;
    let mut deleted = Vec::new();
    let mut first_error = None;
    for ns in targets.iter().filter(|ns| existing.contains(ns)) {
        kill_netns_processes(ns);
        match sh(&["ip", "netns", "del", ns]) {
            Ok(_) => deleted.push(ns.clone()),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    match fs::remove_file(state_path(name)) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => {
            first_error.get_or_insert(e.into());
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(deleted),
    }
}

/// Kills (by pid) the processes inside a namespace of ours, so that the
/// namespace and its links really go away when it is deleted.
pub(crate) fn kill_netns_processes(ns: &str) {
    let Ok(out) = sh(&["ip", "netns", "pids", ns]) else {
        return;
    };
    for pid in out.split_whitespace() {
        let _ = sh(&["kill", "-KILL", pid]);
    }
}

/// A human-readable summary: the state file and which namespaces exist.
pub fn status(name: &str) -> Result<String, TopoError> {
    let existing = leftovers(name)?;
    let mut text = String::new();
    match load(name) {
        Ok(t) => {
            text.push_str(&format!(
                "topology {name}: {} workers, switch {} ({}) in {}\n",
                t.workers.len(),
                t.switch_ip,
                t.switch_mac,
                t.switch_netns
            ));
            if let Some(pre) = &t.replication_port {
                text.push_str(&format!(
                    "  replication port {pre}: each frame sent there is copied to every worker port\n"
                ));
            }
            for w in &t.workers {
                let state = if existing.contains(&w.netns) {
                    "up"
                } else {
                    "missing"
                };
                text.push_str(&format!(
                    "  rank {} {} {} via {} [{state}]\n",
                    w.rank, w.netns, w.ip, w.switch_port
                ));
            }
        }
        Err(_) => text.push_str(&format!("topology {name}: no state file\n")),
    }
    if !existing.is_empty() {
        text.push_str(&format!("  namespaces present: {}\n", existing.join(" ")));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert!(check_name("ina-test_1").is_ok());
        assert!(check_name("").is_err());
        assert!(check_name("a b").is_err());
        assert!(check_name("../etc").is_err());
        assert!(check_name(&"x".repeat(25)).is_err());
    }

    #[test]
    fn replication_rules_copy_to_every_port_and_drop_the_original() {
        assert_eq!(
            replication_rules("prex", ["p0", "p1"].into_iter()),
            "table netdev ina_replicate {\n  chain ingress {\n    type filter hook ingress device \"prex\" priority 0; policy drop;\n    dup to \"p0\"\n    dup to \"p1\"\n  }\n}\n"
        );
    }

    #[test]
    fn subnet_octet_is_stable_and_in_range() {
        let x = subnet_octet("demo");
        assert_eq!(x, subnet_octet("demo"));
        for n in 0..1000 {
            let x = subnet_octet(&format!("t{n}"));
            assert!((1..=250).contains(&x));
        }
    }
}

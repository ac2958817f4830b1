//! The Mininet example (`tools/mininet/allreduce_example.py`, Debian's
//! mininet under /usr/bin/python3, no controller): 4 hosts on an
//! `InaSwitch` run `host-agent bench`, which checks its result; the example
//! must report the allreduce verified on every host and leave nothing
//! behind. Needs root (see `ina_tests::netns`).

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ina_tests::netns::{binary, root_or_skip};

const HOSTS: usize = 4;

/// PIDs of processes whose command line contains `needle`.
fn pids_with(needle: &str) -> Vec<u32> {
    let mut pids = Vec::new();
    let me = std::process::id();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if pid == me {
            continue;
        }
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
            let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if text.contains(needle) {
                pids.push(pid);
            }
        }
    }
    pids
}

/// Root-namespace links whose name starts with `prefix`.
fn links_with(prefix: &str) -> Vec<String> {
    let out = Command::new("ip")
        .args(["-o", "link", "show"])
        .output()
        .expect("ip link");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|name| name.split('@').next().unwrap_or(name).to_owned())
        .filter(|name| name.starts_with(prefix))
        .collect()
}

/// Kills what a failed run of the example may leave (its switch process,
/// found by the unique port names on its command line) and deletes its
/// links; on a passing run it checks that nothing was left.
struct MininetGuard {
    prefix: String,
}

impl Drop for MininetGuard {
    fn drop(&mut self) {
        let needle = format!("{}s1-eth1", self.prefix);
        let procs = pids_with(&needle);
        let links = links_with(&self.prefix);
        for pid in &procs {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
        for link in &links {
            let _ = Command::new("ip").args(["link", "del", link]).status();
        }
        if !std::thread::panicking() {
            assert!(procs.is_empty(), "switch processes survived: {procs:?}");
            assert!(links.is_empty(), "links survived: {links:?}");
        }
    }
}

#[test]
fn mininet_example_verifies_allreduce_on_4_hosts() {
    if !root_or_skip() {
        return;
    }
    let prefix = format!("m{}", std::process::id());
    let _guard = MininetGuard {
        prefix: prefix.clone(),
    };
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf();
    let switch = binary("switch-emu", "switch-emu");
    let agent = binary("host-agent", "host-agent");
    let mut child = Command::new("/usr/bin/python3")
        .arg(root.join("tools/mininet/allreduce_example.py"))
        .args(["--hosts", &HOSTS.to_string(), "--prefix", &prefix])
        .args(["--size", "4MiB", "--dtype", "f32", "--timeout", "60"])
        .arg("--switch-emu")
        .arg(&switch)
        .arg("--host-agent")
        .arg(&agent)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("/usr/bin/python3 (Debian's, with the mininet package)");
    let deadline = Instant::now() + Duration::from_secs(120);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = child.wait_with_output().expect("example output");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("{stdout}\n{stderr}");
    assert!(out.status.success(), "example failed: {}", out.status);
    assert!(
        stdout.contains(&format!("verified on all {HOSTS} hosts")),
        "no verification line"
    );
    for k in 1..=HOSTS {
        assert!(
            stdout.contains(&format!("{prefix}h{k} (10.0.0.{k}):")),
            "no report from host {k}"
        );
    }
}

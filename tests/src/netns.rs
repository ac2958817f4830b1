//! Support for tests on emulated clusters (network namespaces, root only):
//! the root check, a cleanup guard, entering a namespace on one thread, and
//! finding the workspace's binaries.
//!
//! Namespace tests need root; CI runs as root. Elsewhere they fail with a
//! clear message unless `INA_SKIP_NETNS=1` says to skip them.

use std::path::PathBuf;
use std::process::Command;

use switch_emu::topo::{self, TopoSpec, Topology};

/// True if the test should run; false (after saying so) if
/// `INA_SKIP_NETNS=1`; panics if not root.
pub fn root_or_skip() -> bool {
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

/// A unique topology name for one test in this process: `prefix` + pid.
pub fn unique_name(prefix: &str) -> String {
    format!("{prefix}{}", std::process::id())
}

/// Deletes the topology on drop (also on panic) and checks nothing survives.
#[derive(Debug)]
pub struct TopoGuard(pub String);

impl TopoGuard {
    /// Builds the topology of `spec` under a guard.
    pub fn up(spec: TopoSpec) -> (TopoGuard, Topology) {
        let guard = TopoGuard(spec.name.clone());
        let t = topo::up(&spec).unwrap_or_else(|e| panic!("topo up {}: {e}", spec.name));
        (guard, t)
    }
}

impl Drop for TopoGuard {
    fn drop(&mut self) {
        let _ = topo::down(&self.0);
        let left = topo::leftovers(&self.0).unwrap_or_default();
        if !std::thread::panicking() {
            assert!(left.is_empty(), "namespaces survived: {left:?}");
        }
    }
}

/// Moves the calling thread into network namespace `name` (sockets it
/// opens afterwards live there; other threads are unaffected).
#[allow(unsafe_code)]
pub fn enter_netns(name: &str) {
    use std::os::fd::AsRawFd;
    let f = std::fs::File::open(format!("/run/netns/{name}"))
        .unwrap_or_else(|e| panic!("netns {name}: {e}"));
    // SAFETY: setns on a valid namespace descriptor; it affects this thread only.
    let ret = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(ret, 0, "setns {name}: {}", std::io::Error::last_os_error());
}

/// Runs `args` inside namespace `ns` and returns its output.
pub fn in_ns(ns: &str, args: &[&str]) -> std::process::Output {
    Command::new("ip")
        .args(["netns", "exec", ns])
        .args(args)
        .output()
        .expect("ip netns exec")
}

/// Path of a workspace binary (`switch-emu`, `host-agent`) of the same
/// profile as this test. `cargo test --workspace` builds them (their
/// packages have integration tests); if one is missing, it is built here.
/// `INA_BIN_DIR` overrides the directory.
pub fn binary(package: &str, name: &str) -> PathBuf {
    let dir = match std::env::var_os("INA_BIN_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => {
            // target/<profile>/deps/<test> -> target/<profile>
            let exe = std::env::current_exe().expect("current_exe");
            let deps = exe.parent().expect("deps dir");
            deps.parent().expect("profile dir").to_path_buf()
        }
    };
    let path = dir.join(name);
    if !path.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "-p", package, "--bin", name]);
        if dir.file_name().is_some_and(|p| p == "release") {
            cmd.arg("--release");
        }
        let status = cmd.status().expect("running cargo build");
        assert!(
            status.success(),
            "cargo build -p {package} --bin {name} failed"
        );
    }
    assert!(path.exists(), "{} missing", path.display());
    path
}

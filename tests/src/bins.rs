//! The workspace's binaries (`switch-emu`, `host-agent`) as child processes
//! of a test: where they are, starting them, and killing every child when a
//! test fails.
//!
//! The binaries live next to the test executable's directory
//! (`target/<profile>/`). `cargo test --workspace` builds them before any
//! test runs, because `switch-emu` and `host-agent` both have integration
//! tests of their own (cargo builds a package's binaries when its
//! integration tests are built). When a test of this crate runs alone
//! (`cargo test -p ina-tests`) and a binary is missing or older than the
//! libraries, it is built once with
//! `cargo build --profile <same> --bins -p switch-emu -p host-agent`
//! (cargo does not hold its build lock while tests run, so this works from
//! inside `cargo test`).

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, SocketAddrV4};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// `target/<profile>/`, from the running test executable (`.../deps/name-hash`).
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let deps = exe.parent().expect("executable directory");
    if deps.file_name().is_some_and(|n| n == "deps") {
        deps.parent().expect("profile directory").to_path_buf()
    } else {
        deps.to_path_buf()
    }
}

fn build_bins(dir: &std::path::Path) {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let profile = match dir.file_name().and_then(|n| n.to_str()) {
            Some("debug") | None => "dev".to_string(),
            Some(other) => other.to_string(),
        };
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        eprintln!("building the workspace binaries (profile {profile})");
        let status = Command::new(cargo)
            .args(["build", "--profile", &profile, "--bins"])
            .args(["-p", "switch-emu", "-p", "host-agent"])
            .current_dir(workspace_dir())
            .status()
            .expect("running cargo build");
        assert!(status.success(), "cargo build of the binaries failed");
    });
}

/// The workspace root (where `tools/` and `Cargo.lock` are).
pub fn workspace_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// Newest modification time of `deps/lib<crate>-*.rlib` (the library the
/// binary is linked from, rebuilt whenever a test of this crate needs it).
fn newest_lib(dir: &std::path::Path, krate: &str) -> Option<std::time::SystemTime> {
    let prefix = format!("lib{krate}-");
    std::fs::read_dir(dir.join("deps"))
        .ok()?
        .filter_map(Result::ok)
        .filter(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name.starts_with(&prefix) && name.ends_with(".rlib")
        })
        .filter_map(|e| e.metadata().ok()?.modified().ok())
        .max()
}

/// Path of a workspace binary. Built (once per test process) if missing or
/// older than its crate's library: `cargo test -p ina-tests` rebuilds the
/// libraries but not the binaries.
pub fn bin(name: &str) -> PathBuf {
    let dir = profile_dir();
    let path = dir.join(name);
    let stale = || {
        let Ok(built) = path.metadata().and_then(|m| m.modified()) else {
            return true;
        };
        ["switch_emu", "host_agent", "packet_format"]
            .iter()
            .filter_map(|k| newest_lib(&dir, k))
            .any(|lib| lib > built)
    };
    if stale() {
        build_bins(&dir);
    }
    assert!(path.exists(), "{} was not built", path.display());
    path
}

/// A child process that is continued and killed when dropped (a failing
/// test must leave nothing running, stopped or not).
#[derive(Debug)]
pub struct Proc {
    /// What it is, for messages.
    pub name: String,
    child: Option<Child>,
    /// Lines of its stderr so far (collected by a thread).
    pub stderr: Arc<Mutex<Vec<String>>>,
}

impl Proc {
    /// Starts `cmd` with stdout captured and stderr collected line by line.
    pub fn spawn(name: impl Into<String>, cmd: &mut Command) -> Proc {
        let name = name.into();
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name}: {e}"));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let lines = Arc::clone(&stderr);
        let pipe = child.stderr.take().expect("piped stderr");
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                lines.lock().unwrap().push(line);
            }
        });
        Proc {
            name,
            child: Some(child),
            stderr,
        }
    }

    /// Process id.
    pub fn pid(&self) -> i32 {
        self.child.as_ref().map_or(0, |c| c.id() as i32)
    }

    /// Sends a signal.
    pub fn signal(&self, sig: i32) {
        if self.pid() > 0 {
            // SAFETY: kill(2) with our own child's pid has no memory effects.
            #[allow(unsafe_code)]
            unsafe {
                libc::kill(self.pid(), sig);
            }
        }
    }

    /// Waits for the first stderr line containing `needle`.
    pub fn wait_stderr(&self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(line) = self
                .stderr
                .lock()
                .unwrap()
                .iter()
                .find(|l| l.contains(needle))
            {
                return line.clone();
            }
            assert!(
                Instant::now() < deadline,
                "{} did not print '{needle}' within {timeout:?}; stderr: {:?}",
                self.name,
                self.stderr.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits for the process to exit (up to `timeout`); returns (success, stdout).
    pub fn wait(mut self, timeout: Duration) -> (bool, String) {
        let mut child = self.child.take().expect("running child");
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = child.try_wait().expect("waiting for child") {
                let mut out = String::new();
                if let Some(mut stdout) = child.stdout.take() {
                    let _ = std::io::Read::read_to_string(&mut stdout, &mut out);
                }
                return (status.success(), out);
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "{} did not exit within {timeout:?}; stderr: {:?}",
                    self.name,
                    self.stderr.lock().unwrap()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Stderr so far, one string.
    pub fn stderr_text(&self) -> String {
        self.stderr.lock().unwrap().join("\n")
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            self.signal(libc::SIGCONT);
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A `switch-emu serve` process on ephemeral loopback ports.
#[derive(Debug)]
pub struct SwitchProc {
    /// The process.
    pub proc: Proc,
    /// Its data address.
    pub data: SocketAddrV4,
    /// Its control address.
    pub control: SocketAddrV4,
    /// Its metrics address, if `--metrics` was given.
    pub metrics: Option<SocketAddr>,
}

fn word_after<'a>(line: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = &line[line.find(prefix)? + prefix.len()..];
    rest.split(|c: char| c.is_whitespace() || c == '/' || c == ',')
        .next()
}

impl SwitchProc {
    /// Starts `switch-emu serve --bind 127.0.0.1:0 --control 127.0.0.1:0 <extra>`
    /// and reads its addresses from its log.
    pub fn start(extra: &[&str]) -> SwitchProc {
        let mut cmd = Command::new(bin("switch-emu"));
        cmd.args(["serve", "--bind", "127.0.0.1:0", "--control", "127.0.0.1:0"])
            .args(extra);
        let proc = Proc::spawn("switch-emu serve", &mut cmd);
        let line = proc.wait_stderr("switch-emu: data ", Duration::from_secs(20));
        let data = word_after(&line, "data ").and_then(|w| w.parse().ok());
        let control = word_after(&line, "control ").and_then(|w| w.parse().ok());
        let (Some(data), Some(control)) = (data, control) else {
            panic!("cannot read the switch's addresses from {line:?}");
        };
        let metrics = extra.contains(&"--metrics").then(|| {
            let line = proc.wait_stderr("metrics at http://", Duration::from_secs(5));
            word_after(&line, "http://")
                .and_then(|w| w.parse().ok())
                .unwrap_or_else(|| panic!("no metrics address in {line:?}"))
        });
        proc.wait_stderr("serving", Duration::from_secs(5));
        SwitchProc {
            proc,
            data,
            control,
            metrics,
        }
    }

    /// Stops it with SIGTERM and waits; returns (success, stdout: the final counters).
    pub fn stop(self) -> (bool, String) {
        self.proc.signal(libc::SIGTERM);
        self.proc.wait(Duration::from_secs(20))
    }
}

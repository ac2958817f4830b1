//! Running the real binaries (`switch-emu`, `host-agent`) from tests: find
//! (and if needed build) them, start them on free loopback ports, and make
//! sure every child dies with the test, pass or fail.

use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, SocketAddrV4};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

/// The directory of the running test's profile (`target/<profile>`): the
/// test executable lives in its `deps/`.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    exe.parent()
        .and_then(|deps| deps.parent())
        .expect("test executable inside target/<profile>/deps")
        .to_path_buf()
}

/// Path of a workspace binary of the same profile as the test, built once
/// per test process with `cargo build --bins` (a no-op when up to date), so
/// that `cargo test` alone suffices.
pub fn binary(name: &str) -> PathBuf {
    static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    let dir = profile_dir();
    let built = BUILT.get_or_init(|| {
        let profile = dir
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("debug")
            .to_string();
        let target_dir = dir.parent().expect("target dir").to_path_buf();
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "--bins", "-p", "switch-emu", "-p", "host-agent"])
            .arg("--target-dir")
            .arg(&target_dir)
            .current_dir(env!("CARGO_MANIFEST_DIR"));
        match profile.as_str() {
            "debug" => {}
            "release" => {
                cmd.arg("--release");
            }
            other => {
                cmd.args(["--profile", other]);
            }
        }
        let status = cmd.status().map_err(|e| format!("running cargo: {e}"))?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("cargo build of the binaries failed: {status}"))
        }
    });
    if let Err(e) = built {
        panic!("{e}");
    }
    let path = dir.join(name);
    assert!(path.exists(), "{} was not built", path.display());
    path
}

/// The workspace root (where `tools/` is).
pub fn workspace_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// Collected output of a child's pipe, filled by a reader thread.
#[derive(Debug, Clone, Default)]
pub struct Output(Arc<Collected>);

#[derive(Debug, Default)]
struct Collected {
    text: Mutex<String>,
    /// The pipe reached its end (the child and anything it passed the pipe
    /// to have closed it).
    closed: AtomicBool,
}

impl Output {
    fn drain(pipe: impl Read + Send + 'static) -> Output {
        let out = Output::default();
        let sink = out.0.clone();
        thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                let mut s = sink.text.lock().unwrap_or_else(|e| e.into_inner());
                s.push_str(&line);
                s.push('\n');
            }
            sink.closed.store(true, Ordering::Release);
        });
        out
    }

    /// Everything read so far.
    pub fn text(&self) -> String {
        self.0
            .text
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Waits up to `timeout` until the pipe is read to its end; true if it was.
    pub fn wait_closed(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while !self.0.closed.load(Ordering::Acquire) {
            if Instant::now() >= deadline {
                return false;
            }
            thread::sleep(Duration::from_millis(5));
        }
        true
    }

    /// Waits until the output holds `needle` (true) or `timeout` passes.
    pub fn wait_for(&self, needle: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.text().contains(needle) {
                return true;
            }
            thread::sleep(Duration::from_millis(10));
        }
        false
    }
}

/// A started child with its output collected. Killed (SIGKILL) and reaped
/// on drop unless it has exited.
#[derive(Debug)]
pub struct Proc {
    /// What it is, for messages.
    pub name: String,
    child: Child,
    /// Its standard output.
    pub stdout: Output,
    /// Its standard error.
    pub stderr: Output,
}

impl Proc {
    /// Starts `cmd` with piped output.
    pub fn spawn(name: impl Into<String>, mut cmd: Command) -> Proc {
        let name = name.into();
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name}: {e}"));
        let stdout = Output::drain(child.stdout.take().expect("piped"));
        let stderr = Output::drain(child.stderr.take().expect("piped"));
        Proc {
            name,
            child,
            stdout,
            stderr,
        }
    }

    /// The process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal by name (`KILL`, `STOP`, `CONT`) with `kill(1)`.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.id().to_string())
            .status()
            .expect("running kill");
        assert!(status.success(), "kill -{name} {} failed", self.id());
    }

    /// Waits up to `timeout` for the process to exit; once it has, also
    /// (up to a second) for the reader threads to take the rest of its
    /// output, so that what it printed last is in [`Output::text`].
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                self.stdout.wait_closed(Duration::from_secs(1));
                self.stderr.wait_closed(Duration::from_secs(1));
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Both outputs, for failure messages.
    pub fn transcript(&self) -> String {
        format!(
            "--- {} stdout ---\n{}--- {} stderr ---\n{}",
            self.name,
            self.stdout.text(),
            self.name,
            self.stderr.text()
        )
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// A `switch-emu serve` on ephemeral loopback ports.
#[derive(Debug)]
pub struct Switch {
    /// The process.
    pub proc: Proc,
    /// Its data (UDP) address.
    pub data: SocketAddrV4,
    /// Its control (TCP) address.
    pub control: SocketAddrV4,
}

impl Switch {
    /// Starts `switch-emu serve` with `extra` flags and reads the ports it
    /// bound from its startup line.
    pub fn start(extra: &[&str]) -> Switch {
        let mut cmd = Command::new(binary("switch-emu"));
        cmd.args(["serve", "--bind", "127.0.0.1:0", "--control", "127.0.0.1:0"])
            .args(extra);
        let proc = Proc::spawn("switch-emu serve", cmd);
        assert!(
            proc.stderr
                .wait_for("switch-emu: data ", Duration::from_secs(20)),
            "the switch did not start\n{}",
            proc.transcript()
        );
        let text = proc.stderr.text();
        let line = text
            .lines()
            .find(|l| l.starts_with("switch-emu: data "))
            .expect("startup line");
        let field = |after: &str| -> SocketAddrV4 {
            let rest = &line[line.find(after).expect("field in startup line") + after.len()..];
            let addr = rest.split([' ', ',']).next().unwrap_or_default();
            addr.parse()
                .unwrap_or_else(|e| panic!("address '{addr}' in '{line}': {e}"))
        };
        let (data, control) = (field("data "), field("control "));
        Switch {
            proc,
            data,
            control,
        }
    }

    /// The metrics endpoint, if started with `--metrics` (from its log line).
    pub fn metrics(&self) -> Option<SocketAddr> {
        let text = self.proc.stderr.text();
        let line = text.lines().find(|l| l.contains("metrics at http://"))?;
        let rest = &line[line.find("http://")? + "http://".len()..];
        rest.split('/').next()?.parse().ok()
    }

    /// Stops it with SIGTERM; true if it exited successfully (after
    /// flushing its capture and printing its counters).
    pub fn stop(mut self) -> bool {
        self.proc.signal("TERM");
        let status = self.proc.wait_timeout(Duration::from_secs(20));
        status.is_some_and(|s| s.success())
    }

    /// `switch-emu status --json` of this switch, as text.
    pub fn status_json(&self) -> String {
        let out = Command::new(binary("switch-emu"))
            .args(["status", "--json", "--control"])
            .arg(self.control.to_string())
            .output()
            .expect("running switch-emu status");
        assert!(
            out.status.success(),
            "switch-emu status failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// Starts `host-agent bench` for `rank` of `world` against `switch`, with `extra` flags.
pub fn bench(switch: &Switch, job: &str, rank: u16, world: u16, extra: &[&str]) -> Proc {
    let mut cmd = Command::new(binary("host-agent"));
    cmd.args(["bench", "--control"])
        .arg(switch.control.to_string())
        .args([
            "--job",
            job,
            "--rank",
            &rank.to_string(),
            "--world",
            &world.to_string(),
        ])
        .args(extra);
    Proc::spawn(format!("host-agent rank {rank}"), cmd)
}

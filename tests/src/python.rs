//! Support for the Python package's tests: find the test interpreter, build
//! and install the current `ina_agent` wheel once per test process, and run
//! a script in its own process group (its worker processes die with it).
//!
//! The interpreter is `$INA_PYTHON`, else `.venv/bin/python` at the
//! workspace root, which `python/setup-venv.sh` creates (`.ci/run` runs it).
//! Without one the tests fail with that advice unless `INA_SKIP_PYTHON=1`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::procs::workspace_dir;

/// True if the test should run; false (after saying so) if `INA_SKIP_PYTHON=1`.
pub fn python_or_skip() -> bool {
    if std::env::var("INA_SKIP_PYTHON").as_deref() == Ok("1") {
        eprintln!("INA_SKIP_PYTHON=1: skipping Python test");
        return false;
    }
    true
}

/// The interpreter of the Python tests (see the module docs).
pub fn interpreter() -> PathBuf {
    let path = std::env::var_os("INA_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_dir().join(".venv/bin/python"));
    assert!(
        path.exists(),
        "no Python for the tests at {}: run python/setup-venv.sh (or set INA_PYTHON; \
         INA_SKIP_PYTHON=1 skips these tests)",
        path.display()
    );
    path
}

/// Fails unless the interpreter can import `modules`.
pub fn require_modules(modules: &[&str]) {
    let out = Command::new(interpreter())
        .arg("-c")
        .arg(format!("import {}", modules.join(", ")))
        .output()
        .expect("running the test interpreter");
    assert!(
        out.status.success(),
        "the test interpreter lacks {modules:?}: run python/setup-venv.sh\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A directory holding the freshly built `ina_agent` package, for
/// `PYTHONPATH`; built (maturin, release) and unpacked once per process.
pub fn package_dir() -> PathBuf {
    static DIR: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    DIR.get_or_init(build_and_unpack)
        .clone()
        .unwrap_or_else(|e| panic!("{e}"))
}

fn build_and_unpack() -> Result<PathBuf, String> {
    let root = workspace_dir();
    remove_stale_scratch();
    let scratch = root
        .join("target/python-tests")
        .join(std::process::id().to_string());
    let wheels = scratch.join("wheels");
    let site = scratch.join("site");
    run_checked(
        Command::new(interpreter())
            .args(["-m", "maturin", "build", "--release", "--quiet"])
            .arg("--manifest-path")
            .arg(root.join("python/Cargo.toml"))
            .arg("--out")
            .arg(&wheels)
            // A test run by cargo inherits its variables; maturin must not
            // take them for its own cargo call.
            .env_remove("CARGO_TARGET_DIR")
            .env_remove("CARGO")
            .current_dir(&root),
        "maturin build of the ina_agent wheel",
    )?;
    let wheel = std::fs::read_dir(&wheels)
        .map_err(|e| format!("reading {}: {e}", wheels.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "whl"))
        .ok_or_else(|| format!("no wheel in {}", wheels.display()))?;
    run_checked(
        Command::new(interpreter())
            .args(["-m", "pip", "install", "--quiet", "--no-deps", "--no-index"])
            .arg("--target")
            .arg(&site)
            .arg(&wheel),
        "pip install of the wheel",
    )?;
    Ok(site)
}

fn run_checked(cmd: &mut Command, what: &str) -> Result<(), String> {
    let out = cmd
        .output()
        .map_err(|e| format!("{what}: cannot start: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{what} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// What a script printed, and whether it exited successfully.
#[derive(Debug)]
pub struct ScriptRun {
    /// Exit status was 0.
    pub success: bool,
    /// Its standard output.
    pub stdout: String,
    /// Its standard error.
    pub stderr: String,
}

/// Runs `script` (relative to the workspace root) with `args` under the
/// test interpreter and the freshly built package; kills its whole process
/// group if it runs longer than `timeout`.
pub fn run_script(script: &str, args: &[&str], timeout: Duration) -> ScriptRun {
    use std::os::unix::process::CommandExt;

    let root = workspace_dir();
    let dir = scratch_output_dir();
    let (out_path, err_path) = (dir.join("stdout"), dir.join("stderr"));
    let file = |p: &Path| std::fs::File::create(p).expect("output file");
    let mut child = Command::new(interpreter())
        .arg(root.join(script))
        .args(args)
        .env("PYTHONPATH", package_dir())
        .env("PYTHONUNBUFFERED", "1")
        .current_dir(&dir)
        .stdin(Stdio::null())
        .stdout(file(&out_path))
        .stderr(file(&err_path))
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| panic!("starting {script}: {e}"));
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for the script") {
            break Some(status);
        }
        if Instant::now() >= deadline {
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    // The whole group: the script's worker processes too.
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{}", child.id())])
        .stderr(Stdio::null())
        .status();
    let _ = child.wait();
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
    let run = ScriptRun {
        success: status.is_some_and(|s| s.success()),
        stdout: read(&out_path),
        stderr: read(&err_path),
    };
    let _ = std::fs::remove_dir_all(&dir);
    if status.is_none() {
        panic!(
            "{script} did not finish within {timeout:?}\n--- stdout ---\n{}--- stderr ---\n{}",
            run.stdout, run.stderr
        );
    }
    run
}

/// A fresh directory for one script's output and working files.
fn scratch_output_dir() -> PathBuf {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = workspace_dir()
        .join("target/python-tests")
        .join(format!("{}-run{n}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch directory");
    dir
}

/// Removes the scratch directories of test processes that have ended.
fn remove_stale_scratch() {
    let Ok(entries) = std::fs::read_dir(workspace_dir().join("target/python-tests")) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let pid = name.split('-').next().unwrap_or_default();
        if !Path::new("/proc").join(pid).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

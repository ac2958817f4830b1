//! The Python package (`python/`) against a real `switch-emu` on loopback:
//! the NumPy API with 4 worker processes, the DDP communication hook, and
//! the example training job next to Gloo. Needs the interpreter that
//! `python/setup-venv.sh` prepares (see `ina_tests::python`).

use std::sync::Mutex;
use std::time::Duration;

use ina_tests::procs::Switch;
use ina_tests::python::{python_or_skip, require_modules, run_script, ScriptRun};

/// The scripts start 4 to 8 processes each: one at a time on 2 cores.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Runs `script` against a switch of its own, one script at a time; fails
/// unless it exits successfully and prints `success`.
fn script_against_switch(
    script: &str,
    modules: &[&str],
    extra: &[&str],
    timeout: Duration,
    success: &str,
) -> ScriptRun {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    require_modules(modules);
    let switch = Switch::start(&[]);
    let control = switch.control.to_string();
    let mut args = vec!["--control", control.as_str()];
    args.extend_from_slice(extra);
    let run = run_script(script, &args, timeout);
    assert!(
        run.success && run.stdout.contains(success),
        "{script} failed (or printed no {success:?})\n--- stdout ---\n{}--- stderr ---\n{}--- switch ---\n{}",
        run.stdout,
        run.stderr,
        switch.proc.transcript()
    );
    assert!(switch.stop(), "the switch did not stop cleanly");
    run
}

#[test]
fn numpy_api_on_four_workers() {
    if !python_or_skip() {
        return;
    }
    script_against_switch(
        "python/tests/numpy_allreduce.py",
        &["numpy", "maturin"],
        &["--workers", "4"],
        Duration::from_secs(300),
        "numpy api: ok",
    );
}

#[test]
fn ddp_hook_falls_back_and_reports_errors() {
    if !python_or_skip() {
        return;
    }
    script_against_switch(
        "python/tests/ddp_hook.py",
        &["numpy", "maturin", "torch"],
        &["--workers", "4"],
        Duration::from_secs(600),
        "ddp hook: ok",
    );
}

#[test]
fn example_training_matches_gloo() {
    if !python_or_skip() {
        return;
    }
    let run = script_against_switch(
        "python/examples/train_digits.py",
        &["numpy", "maturin", "torch", "sklearn"],
        &["--workers", "4", "--epochs", "6"],
        Duration::from_secs(900),
        "SUMMARY ",
    );
    // The script checks the same itself; read its summary to be sure.
    let summary = run
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("SUMMARY "))
        .unwrap_or_else(|| panic!("no SUMMARY line:\n{}", run.stdout));
    let summary: serde_json::Value = serde_json::from_str(summary).expect("SUMMARY is JSON");
    let loss = |b: &str| summary[b]["final_loss"].as_f64().expect("final_loss");
    for backend in ["gloo", "ina"] {
        assert_eq!(
            summary[backend]["identical_parameters"],
            serde_json::Value::Bool(true),
            "{backend}: ranks ended with different parameters\n{}",
            run.stdout
        );
    }
    let (gloo, ina) = (loss("gloo"), loss("ina"));
    assert!(
        (ina - gloo).abs() <= 0.02 * gloo,
        "final loss ina {ina} vs gloo {gloo}: more than 2% apart\n{}",
        run.stdout
    );
    let epochs = run.stdout.matches("[ina] epoch").count();
    assert_eq!(epochs, 6, "loss not printed per epoch:\n{}", run.stdout);
    let accuracy = summary["ina"]["accuracy"].as_f64().expect("accuracy");
    assert!(accuracy > 0.8, "ina accuracy {accuracy}:\n{}", run.stdout);
}

//! `topo run`/`topo bench` start one command per worker namespace; a worker
//! that never ends must not hold them forever: past the time limit the
//! workers still running are killed and the run fails with the end of
//! their stderr, while workers that end in time are returned as they ran.
//! Needs root (see `ina_tests::netns`).

use std::time::{Duration, Instant};

use ina_tests::netns::{root_or_skip, unique_name, TopoGuard};
use switch_emu::topo::run::run_workers;
use switch_emu::topo::{Fabric, TopoError, TopoSpec};

fn args(script: &str) -> Vec<String> {
    ["sh", "-c", script].map(String::from).to_vec()
}

#[test]
fn workers_past_the_limit_are_killed_and_named() {
    if !root_or_skip() {
        return;
    }
    let (_guard, t) = TopoGuard::up(TopoSpec {
        name: unique_name("trto"),
        workers: 2,
        rate: None,
        mtu: None,
        loss: None,
        fabric: Fabric::KernelBridge,
    });
    // In time: every worker's output, by rank.
    let outputs = run_workers(
        &t,
        &args("echo rank {rank} of {world}"),
        Some(Duration::from_secs(20)),
    )
    .expect("workers that end in time");
    let lines: Vec<String> = outputs
        .iter()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .collect();
    assert_eq!(lines, ["rank 0 of 2", "rank 1 of 2"]);
    // Rank 1 hangs: killed at the limit, its last words in the error.
    let started = Instant::now();
    let script = "echo waiting for rank {rank} >&2; if [ {rank} = 1 ]; then sleep 60; fi";
    let err = run_workers(&t, &args(script), Some(Duration::from_secs(1))).unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    match err {
        TopoError::Timeout { limit, stuck } => {
            assert_eq!(limit, Duration::from_secs(1));
            assert_eq!(stuck, ["rank 1: waiting for rank 1"]);
        }
        other => panic!("expected a timeout, got {other}"),
    }
}

//! A worker dies (SIGKILL) or freezes (SIGSTOP) in the middle of a run of
//! allreduces between real processes: every other worker must return an
//! error within 5 s instead of hanging, and the switch must report the job
//! ended (expired on the disconnect, or on silence) with its lease free.

use std::time::{Duration, Instant};

use ina_tests::procs::{bench, Proc, Switch};
use serde_json::Value;

const WORLD: u16 = 3;
const VICTIM: u16 = 1;

/// Starts WORLD ranks running many allreduces and waits until all have joined
/// and are exchanging packets.
fn start_job(switch: &Switch, job: &str) -> Vec<Proc> {
    let ranks: Vec<Proc> = (0..WORLD)
        .map(|rank| {
            bench(
                switch,
                job,
                rank,
                WORLD,
                &[
                    "--dtype", "i32", "--sizes", "1MiB", "--iters", "100000", "--warmup", "0",
                    "--window", "64",
                ],
            )
        })
        .collect();
    for p in &ranks {
        assert!(
            p.stdout
                .wait_for("# host-agent bench:", Duration::from_secs(60)),
            "rank did not join\n{}\n{}",
            p.transcript(),
            switch.proc.transcript()
        );
    }
    // Let several allreduces run so that the failure hits one mid-flight.
    std::thread::sleep(Duration::from_millis(700));
    let doc: Value = serde_json::from_str(&switch.status_json()).unwrap();
    let running = doc["jobs"].as_array().cloned().unwrap_or_default();
    assert!(
        running.len() == 1 && running[0]["name"] == job,
        "job not running: {doc:#}"
    );
    ranks
}

/// Every rank but the victim exits with an error within 5 s of `since`.
fn survivors_fail_fast(ranks: &mut [Proc], since: Instant, expected_error: &str) {
    for (rank, p) in ranks.iter_mut().enumerate() {
        if rank as u16 == VICTIM {
            continue;
        }
        let left = Duration::from_secs(5).saturating_sub(since.elapsed());
        let status = p.wait_timeout(left);
        assert!(
            status.is_some_and(|s| !s.success()),
            "rank {rank} did not fail within 5 s: {status:?}\n{}",
            p.transcript()
        );
        let err = p.stderr.text();
        assert!(err.contains(expected_error), "rank {rank}: {err}");
    }
}

/// The switch's view: no running job, the job ended with `outcome` naming the
/// victim, and every slot free again.
fn switch_reports(switch: &Switch, job: &str, outcome: &str) {
    let doc: Value = serde_json::from_str(&switch.status_json()).unwrap();
    assert_eq!(doc["jobs"].as_array().map(Vec::len), Some(0), "{doc:#}");
    let ended = doc["ended"]
        .as_array()
        .and_then(|e| e.iter().find(|j| j["name"] == job))
        .unwrap_or_else(|| panic!("job {job} not among the ended jobs: {doc:#}"));
    assert_eq!(ended["outcome"], outcome, "{ended:#}");
    assert_eq!(ended["ranks"], serde_json::json!([VICTIM]), "{ended:#}");
    assert_eq!(
        doc["lease"]["free"].as_u64(),
        doc["lease"]["slots"].as_u64(),
        "lease not reclaimed: {doc:#}"
    );
}

#[test]
fn killed_worker_fails_the_job_on_every_other_worker() {
    let switch = Switch::start(&[]);
    let mut ranks = start_job(&switch, "kill9");
    ranks[usize::from(VICTIM)].signal("KILL");
    let killed = Instant::now();
    survivors_fail_fast(&mut ranks, killed, "job failed");
    switch_reports(&switch, "kill9", "expired");
}

#[test]
fn frozen_worker_expires_the_job() {
    // A stopped process keeps its control connection open: only silence
    // on the data plane can reveal it.
    let switch = Switch::start(&["--worker-timeout", "1"]);
    let mut ranks = start_job(&switch, "frozen");
    ranks[usize::from(VICTIM)].signal("STOP");
    let stopped = Instant::now();
    survivors_fail_fast(&mut ranks, stopped, "expired");
    switch_reports(&switch, "frozen", "expired");
    // The guard's SIGKILL ends the stopped process too.
}

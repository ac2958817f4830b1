//! Diagnosis with real processes: `switch-emu serve` and three
//! `host-agent bench` ranks; rank 1 is stopped (SIGSTOP) mid-job, and
//! `switch-emu status` must name rank 1 as the one the waiting slots miss.
//! Then it continues (SIGCONT) and the job completes with checked results.
//! Every child is killed if the test fails (SIGKILL ends a stopped process too).

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use ina_tests::procs::{bench, binary, Switch};
use switch_emu::control::status::{JobView, StatusReport};
use switch_emu::udp::client;

const WORLD: u16 = 3;
const STOPPED: u16 = 1;

fn status(control: SocketAddr) -> StatusReport {
    client::status(control, Duration::from_secs(5)).unwrap()
}

fn poll<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn job(report: &StatusReport) -> Option<&JobView> {
    report.jobs.iter().find(|j| j.name == "paused")
}

#[test]
fn status_names_the_stopped_rank() {
    // A long worker timeout: the stopped rank must be reported, not expired.
    let switch = Switch::start(&["--worker-timeout", "120"]);
    let control = SocketAddr::V4(switch.control);
    let mut ranks: Vec<_> = (0..WORLD)
        .map(|rank| {
            let flags = [
                "--dtype",
                "i32",
                "--sizes",
                "64KiB",
                "--iters",
                "1000",
                "--warmup",
                "1",
                "--window",
                "16",
                "--stall-timeout",
                "120s",
                "--join-timeout",
                "30s",
            ];
            bench(&switch, "paused", rank, WORLD, &flags)
        })
        .collect();

    // Mid-job: some rounds have completed.
    poll("the job to make progress", Duration::from_secs(60), || {
        let report = status(control);
        let done = job(&report)?.counters.as_ref()?.totals["completed_slots"];
        (done > 0).then_some(())
    });
    ranks[usize::from(STOPPED)].signal("STOP");

    // The other ranks run into their windows; every waiting slot then
    // misses exactly the stopped rank.
    let waiting = poll(
        "slots waiting for the stopped rank",
        Duration::from_secs(20),
        || {
            let report = status(control);
            let j = job(&report)?;
            let slots = &j.incomplete_slots;
            let settled = !slots.is_empty()
                && slots
                    .iter()
                    .all(|s| s.missing == [STOPPED] && s.contributed == [0, 2]);
            settled.then(|| j.clone())
        },
    );
    let silent = &waiting.members[usize::from(STOPPED)];
    assert!(!silent.left);

    // The command-line tool says the same in its table.
    let out = Command::new(binary("switch-emu"))
        .args(["status", "--control", &control.to_string()])
        .output()
        .unwrap();
    assert!(out.status.success(), "switch-emu status failed");
    let table = String::from_utf8(out.stdout).unwrap();
    let header = table
        .lines()
        .position(|l| l.contains("missing") && l.contains("contributed"))
        .unwrap_or_else(|| panic!("no slot table in:\n{table}"));
    let rows: Vec<Vec<&str>> = table
        .lines()
        .skip(header + 1)
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .take_while(|w| w.len() == 6 && w[0].parse::<u16>().is_ok())
        .collect();
    assert!(!rows.is_empty(), "no waiting slot listed in:\n{table}");
    for row in &rows {
        // slot set seq age missing contributed
        assert_eq!(row[4], STOPPED.to_string(), "missing column in:\n{table}");
        assert_eq!(row[5], "0,2", "contributed column in:\n{table}");
    }
    assert!(
        table.contains(&silent.address),
        "member addresses in:\n{table}"
    );

    ranks[usize::from(STOPPED)].signal("CONT");
    for rank in &mut ranks {
        let status = rank.wait_timeout(Duration::from_secs(180));
        assert!(
            status.is_some_and(|s| s.success()),
            "{} did not finish cleanly ({status:?})\n{}",
            rank.name,
            rank.transcript()
        );
    }
    assert!(switch.stop(), "switch-emu serve failed");
}

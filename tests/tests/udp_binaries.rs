//! The real binaries on loopback: `switch-emu serve --drop 0.05` and one
//! `host-agent bench` process per rank. Results are checked by every rank
//! (int32 exactly, float32 within the documented bound); the bench exits
//! non-zero on a wrong result.

use std::time::Duration;

use ina_tests::procs::{bench, Proc, Switch};

fn run(dtype: &str, job: &str) {
    let world = 3;
    let switch = Switch::start(&["--drop", "0.05", "--seed", "11"]);
    let mut ranks: Vec<Proc> = (0..world)
        .map(|rank| {
            bench(
                &switch,
                job,
                rank,
                world,
                &[
                    "--dtype",
                    dtype,
                    "--sizes",
                    "4KiB,256KiB",
                    "--iters",
                    "3",
                    "--warmup",
                    "1",
                    "--window",
                    "64",
                ],
            )
        })
        .collect();
    let mut retransmissions = 0u64;
    for p in &mut ranks {
        let status = p.wait_timeout(Duration::from_secs(120));
        assert!(
            status.is_some_and(|s| s.success()),
            "{status:?}\n{}\n{}",
            p.transcript(),
            switch.proc.transcript()
        );
        let out = p.stdout.text();
        let lines: Vec<&str> = out.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(lines.len(), 2, "one line per size\n{out}");
        for l in &lines {
            let cols: Vec<&str> = l.split_whitespace().collect();
            assert_eq!(cols.len(), 10, "{l}");
            assert_eq!(cols[2], if dtype == "i32" { "int32" } else { "float32" });
            assert_eq!(cols[9], "OK", "{l}");
            retransmissions += cols[8].parse::<u64>().unwrap();
        }
    }
    // 5% of the datagrams reaching the switch are dropped: the results above
    // were only right because lost packets were retransmitted.
    assert!(
        retransmissions > 0,
        "no retransmissions despite injected loss"
    );
    let status = switch.status_json();
    assert!(status.contains("\"injected_loss\""), "{status}");
}

#[test]
fn int32_exact_with_loss() {
    run("i32", "bin-i32");
}

#[test]
fn float32_within_bound_with_loss() {
    run("f32", "bin-f32");
}

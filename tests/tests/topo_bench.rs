//! `switch-emu topo bench` end to end, small: for each element type it
//! builds a shaped and an unshaped topology of two workers, runs the switch
//! and `host-agent bench` in them, checks every rank's result and that the
//! ranks ran the element type asked for, and removes the topologies.
//! Needs root (see `ina_tests::netns`).

use std::time::Duration;

use host_agent::bench::Dtype;
use ina_tests::netns::root_or_skip;
use ina_tests::procs::binary;
use switch_emu::topo::bench::{run_all, BenchSpec};
use switch_emu::topo::Fabric;

fn spec(dtype: Dtype, prefix: &str) -> BenchSpec {
    BenchSpec {
        workers: vec![2],
        rate: Some("1gbit".into()),
        unshaped: true,
        size: 1 << 20,
        dtype,
        elements: 256,
        window: 64,
        mtu: None,
        iters: 2,
        runs: 1,
        retransmit_timeout: Some("100ms".into()),
        host_agent: binary("host-agent"),
        switch_emu: binary("switch-emu"),
        name_prefix: prefix.into(),
        serve_args: vec![],
        fabric: Fabric::SwitchEmu,
        unicast_results: false,
        out_of_place: false,
        timeout: Duration::from_secs(120),
    }
}

#[test]
fn each_element_type_runs_shaped_and_unshaped() {
    if !root_or_skip() {
        return;
    }
    for (dtype, prefix) in [(Dtype::I32, "tbi"), (Dtype::F32, "tbf")] {
        let results = run_all(&spec(dtype, prefix)).unwrap_or_else(|e| panic!("{dtype}: {e}"));
        assert_eq!(results.len(), 2, "{dtype}: one shaped and one unshaped run");
        assert_eq!(results[0].rate_bytes, Some(125e6));
        assert_eq!(results[1].rate_bytes, None);
        for r in &results {
            assert_eq!(r.workers, 2);
            assert!(r.time > Duration::ZERO, "{dtype}: {r:?}");
        }
        // Nothing of the topologies is left.
        let left = std::process::Command::new("ip")
            .args(["netns", "list"])
            .output()
            .expect("ip netns list");
        let left = String::from_utf8_lossy(&left.stdout);
        assert!(
            !left.lines().any(|l| l.starts_with(prefix)),
            "{dtype}: namespaces left: {left}"
        );
    }
}

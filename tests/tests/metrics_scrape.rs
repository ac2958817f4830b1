//! `switch-emu serve --metrics`: a job and some bad traffic go through the
//! real binary; once traffic has stopped, a scrape of the endpoint (parsed
//! with the exposition parser) says what the switch's own status says.

use std::collections::BTreeMap;
use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use ina_tests::jobs::{self, JobShape};
use ina_tests::procs::Switch;
use switch_emu::metrics::exposition::{parse, SampleKey};
use switch_emu::metrics::scrape;
use switch_emu::udp::client;

fn key(name: &str, labels: &[(&str, &str)]) -> SampleKey {
    (
        name.to_string(),
        labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
    )
}

#[test]
fn scrape_matches_the_switch_status() {
    let switch = Switch::start(&["--metrics", "127.0.0.1:0", "--slots", "256"]);
    let control = SocketAddr::V4(switch.control);
    let metrics = switch.metrics().expect("metrics address in the log");

    let shape = JobShape {
        name: "scraped",
        world: 3,
        window: 8,
        elements: 64,
    };
    let agents = jobs::join_all(control, shape).unwrap();
    let params = *agents[0].params();
    let threads: Vec<_> = agents
        .into_iter()
        .enumerate()
        .map(|(rank, mut agent)| {
            std::thread::spawn(move || {
                for iter in 0..4 {
                    let mut data = jobs::input_i32(3, rank as u16, iter, 5000);
                    agent.allreduce_i32(&mut data).unwrap();
                    jobs::check_i32(3, 3, iter, &data).unwrap();
                }
                agent
            })
        })
        .collect();
    let agents: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    // Traffic the core drops: truncated datagrams and an unknown job.
    let stranger = UdpSocket::bind("127.0.0.1:0").unwrap();
    for _ in 0..20 {
        stranger.send_to(&[1, 2, 3], switch.data).unwrap();
        let mut unknown = vec![0u8; 24];
        unknown[0] = packet_format::VERSION;
        unknown[1] = 1; // contribution
        unknown[4..6].copy_from_slice(&999u16.to_be_bytes());
        stranger.send_to(&unknown, switch.data).unwrap();
    }
    std::thread::sleep(Duration::from_millis(300));

    let first = parse(&scrape(metrics, Duration::from_secs(5)).unwrap()).unwrap();
    let status = client::status(control, Duration::from_secs(5)).unwrap();
    let second = parse(&scrape(metrics, Duration::from_secs(5)).unwrap()).unwrap();
    assert_eq!(first, second, "counters moved although traffic had stopped");
    let m = |name: &str, labels: &[(&str, &str)]| -> u64 {
        *first
            .get(&key(name, labels))
            .unwrap_or_else(|| panic!("no sample {name}{labels:?}")) as u64
    };

    let global = status.counters.as_ref().unwrap();
    assert_eq!(
        m("ina_packets_received_total", &[]),
        global.totals["packets"]
    );
    assert_eq!(m("ina_bytes_received_total", &[]), global.totals["bytes"]);
    assert_eq!(
        m("ina_contributions_absorbed_total", &[]),
        global.totals["absorbed"]
    );
    assert_eq!(
        m("ina_results_sent_total", &[("kind", "multicast")]),
        global.totals["multicast_results"]
    );
    assert_eq!(
        m("ina_results_sent_total", &[("kind", "unicast")]),
        global.totals["unicast_results"]
    );
    for (reason, &n) in &global.drops {
        assert_eq!(
            m("ina_drops_total", &[("reason", reason)]),
            n,
            "drops {reason}"
        );
    }
    assert_eq!(global.drops["truncated"], 20);
    assert_eq!(global.drops["unknown_job"], 20);
    assert!(global.totals["packets"] > 3 * 4 * 5000 / 64);

    let job = &status.jobs[0];
    let id = job.id.to_string();
    let labels = [("job", id.as_str()), ("job_name", "scraped")];
    let jc = job.counters.as_ref().unwrap();
    for (metric, counter) in [
        ("ina_job_packets_total", "packets"),
        ("ina_job_bytes_total", "bytes"),
        ("ina_job_contributions_total", "contributions"),
        ("ina_job_retransmissions_total", "retransmissions"),
        ("ina_job_completed_slots_total", "completed_slots"),
    ] {
        assert_eq!(m(metric, &labels), jc.totals[counter], "{metric}");
    }
    for (reason, &n) in jc.drops.iter().filter(|(_, &n)| n > 0) {
        let mut l = labels.to_vec();
        l.push(("reason", reason));
        assert_eq!(m("ina_job_drops_total", &l), n, "job drops {reason}");
    }
    assert_eq!(jc.totals["completed_slots"], 4 * 5000u64.div_ceil(64));
    assert_eq!(m("ina_job_slots_leased", &labels), u64::from(params.window));
    assert_eq!(
        m("ina_job_slots_in_flight", &labels),
        job.incomplete_slots.len() as u64
    );
    assert_eq!(m("ina_active_jobs", &[]), 1);
    assert_eq!(m("ina_pool_slots", &[]), 256);
    assert_eq!(
        m("ina_leased_slots", &[]),
        256 - u64::from(status.lease.free)
    );
    assert_eq!(m("ina_leased_slots", &[]), u64::from(params.window));

    for agent in agents {
        agent.leave().unwrap();
    }
    // The job's lease is back once every rank has left.
    let after = parse(&scrape(metrics, Duration::from_secs(5)).unwrap()).unwrap();
    assert_eq!(after[&key("ina_active_jobs", &[])], 0.0);
    assert_eq!(after[&key("ina_leased_slots", &[])], 0.0);
    assert!(switch.stop(), "switch-emu serve failed");
}

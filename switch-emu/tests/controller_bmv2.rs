//! The job control plane (the real [`Controller`]) driving a BMv2 target
//! through a whole job life, against the recording CLI runner: the exact
//! `simple_switch_CLI` sessions for join (install), expiry on disconnect
//! (removal), a second job on the reclaimed lease, and release by leave.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Instant;

use packet_format::control::{JobParams, JoinRequest, Reply, Request};
use switch_emu::control::{ConnId, ControlConfig, Controller, Outbox};
use switch_emu::p4config::bmv2_target::{Bmv2Target, RecordingRunner};
use switch_emu::p4config::{HostEntry, HostTable, MacAddr, SwitchAddr};

const SWITCH_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 254);

fn mac(last: u8) -> MacAddr {
    MacAddr([2, 0, 0, 0, 0, last])
}

fn worker(rank: u16) -> SocketAddrV4 {
    SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, rank as u8 + 1), 40001 + rank)
}

fn hosts() -> HostTable {
    (0..2u16)
        .map(|r| {
            let n = r as u8 + 1;
            (
                *worker(r).ip(),
                HostEntry {
                    mac: mac(n),
                    port: u16::from(n),
                },
            )
        })
        .collect()
}

fn join(job: &str, rank: u16) -> Request {
    Request::Join(JoinRequest {
        job: job.into(),
        rank,
        world: 2,
        data_addr: worker(rank),
        window: 2,
        elements_per_packet: 64,
    })
}

fn joined(outbox: &Outbox, conn: ConnId) -> JobParams {
    match outbox.iter().find(|(c, _)| *c == conn) {
        Some((_, Reply::Joined(p))) => *p,
        other => panic!("connection {conn}: expected joined, got {other:?}"),
    }
}

fn lines(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// Register resets of slots 0 and 1 (both sets), as the twin names them.
fn resets() -> Vec<String> {
    let mut out = Vec::new();
    for slot in 0..2u32 {
        for set in 0..2u32 {
            let index = set * 8192 + slot;
            for reg in [
                "bitmap",
                "round_seq",
                "round_tag",
                "worker_count",
                "max_exponent",
            ] {
                out.push(format!("register_write IngressImpl.{reg} {index} 0"));
            }
        }
    }
    out
}

/// The install session of a 2-rank job on slots 0..2.
fn install(job: u16, key: u32, nodes: [u32; 2]) -> Vec<String> {
    let mgid = job + 1;
    let mut out = resets();
    out.extend(lines(&format!(
        "table_add EgressImpl.result_sender.result_addr EgressImpl.result_sender.set_worker_addr {job} 0 => 02:00:00:00:00:01 10.0.0.1 40001
         table_add EgressImpl.result_sender.result_addr EgressImpl.result_sender.set_worker_addr {job} 1 => 02:00:00:00:00:02 10.0.0.2 40002
         mc_mgrp_create {mgid}
         mc_node_associate {mgid} {n0}
         mc_node_associate {mgid} {n1}
         table_add IngressImpl.admission.leases IngressImpl.admission.in_lease {job} 0->1 => 1
         table_add IngressImpl.admission.workers IngressImpl.admission.admit {job} 0 10.0.0.1 40001 => 0x1 0xfffffffd 2 {mgid} {key:#x}
         table_add IngressImpl.admission.workers IngressImpl.admission.admit {job} 1 10.0.0.2 40002 => 0x2 0xfffffffe 2 {mgid} {key:#x}",
        n0 = nodes[0],
        n1 = nodes[1],
    )));
    out
}

#[test]
fn a_job_lifecycle_sends_the_exact_cli_sessions() {
    let switch = SwitchAddr {
        ip: SWITCH_IP,
        mac: mac(0xfe),
    };
    let mut dp = Bmv2Target::connect(RecordingRunner::new(), switch, hosts()).expect("connect");
    let mut ctl = Controller::new(ControlConfig {
        switch_data_addr: SocketAddrV4::new(SWITCH_IP, packet_format::UDP_PORT),
        key_seed: Some(7),
        ..ControlConfig::default()
    })
    .expect("controller");
    let now = Instant::now();

    // Job "a": both ranks join; the second join installs the job.
    assert!(ctl.handle_request(now, 1, join("a", 0), &mut dp).is_empty());
    let out = ctl.handle_request(now, 2, join("a", 1), &mut dp);
    let a = joined(&out, 1);
    assert_eq!(joined(&out, 2), a);
    assert_eq!((a.slot_base, a.window, a.world), (0, 2, 2));
    assert_eq!(a.switch_data_addr, SocketAddrV4::new(SWITCH_IP, 48864));

    // Rank 1 disconnects without leaving: the job fails, rank 0 is told,
    // and the job's entries are removed with the handles BMv2 gave.
    let out = ctl.handle_disconnect(now, 2, &mut dp);
    assert!(
        matches!(&out[..], [(1, Reply::JobFailed { ranks, .. })] if ranks == &vec![1]),
        "{out:?}"
    );

    // Job "b" on the reclaimed lease; released when both ranks leave.
    assert!(ctl.handle_request(now, 3, join("b", 0), &mut dp).is_empty());
    let out = ctl.handle_request(now, 4, join("b", 1), &mut dp);
    let b = joined(&out, 3);
    assert_eq!(b.slot_base, 0, "the lease of the failed job was reclaimed");
    assert_ne!(b.job_id, a.job_id);
    let out = ctl.handle_request(now, 3, Request::Leave, &mut dp);
    assert_eq!(out, vec![(3, Reply::Left)]);
    let sessions_before_last_leave = dp.runner().sessions.len();
    let out = ctl.handle_request(now, 4, Request::Leave, &mut dp);
    assert_eq!(out, vec![(4, Reply::Left)]);
    assert_eq!(dp.runner().sessions.len(), sessions_before_last_leave + 1);
    assert_eq!(ctl.running_jobs(), 0);
    assert_eq!(dp.installed().count(), 0);

    let (ja, jb) = (a.job_id, b.job_id);
    let expected: Vec<Vec<String>> = vec![
        lines(
            "table_set_default EgressImpl.result_sender.switch_identity EgressImpl.result_sender.set_switch_identity 02:00:00:00:00:fe 10.0.0.254
             table_add IngressImpl.arp_icmp.arp_reply IngressImpl.arp_icmp.reply_arp 10.0.0.254 => 02:00:00:00:00:fe
             table_add IngressImpl.icmp_echo.echo_reply IngressImpl.icmp_echo.reply_echo 10.0.0.254 =>
             table_add IngressImpl.forwarding.l2_forward IngressImpl.forwarding.forward 02:00:00:00:00:01 => 1
             table_add IngressImpl.forwarding.l2_forward IngressImpl.forwarding.forward 02:00:00:00:00:02 => 2",
        ),
        // Entry handles 0..=3 went to the switch-wide entries.
        lines("mc_node_create 0 1\nmc_node_create 1 2"),
        install(ja, a.key, [0, 1]),
        lines(&format!(
            "table_delete IngressImpl.admission.workers 7
             table_delete IngressImpl.admission.workers 8
             table_delete IngressImpl.admission.leases 6
             table_delete EgressImpl.result_sender.result_addr 4
             table_delete EgressImpl.result_sender.result_addr 5
             mc_node_dissociate {m} 0
             mc_node_dissociate {m} 1
             mc_mgrp_destroy {m}
             mc_node_destroy 0
             mc_node_destroy 1",
            m = ja + 1
        )),
        lines("mc_node_create 0 1\nmc_node_create 1 2"),
        install(jb, b.key, [2, 3]),
        lines(&format!(
            "table_delete IngressImpl.admission.workers 12
             table_delete IngressImpl.admission.workers 13
             table_delete IngressImpl.admission.leases 11
             table_delete EgressImpl.result_sender.result_addr 9
             table_delete EgressImpl.result_sender.result_addr 10
             mc_node_dissociate {m} 2
             mc_node_dissociate {m} 3
             mc_mgrp_destroy {m}
             mc_node_destroy 2
             mc_node_destroy 3",
            m = jb + 1
        )),
    ];
    assert_eq!(dp.runner().sessions, expected);
}

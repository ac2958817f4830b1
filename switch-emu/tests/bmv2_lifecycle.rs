//! A job's life on the BMv2 target, against the recording runner: the exact
//! `simple_switch_CLI` sessions for connect, install and remove.

use std::net::Ipv4Addr;

use switch_emu::dataplane::{Dataplane, DataplaneError};
use switch_emu::p4config::bmv2_target::{Bmv2Target, CliRunner, RecordingRunner};
use switch_emu::p4config::{HostEntry, HostTable, JobEntry, MacAddr, RankEntry, SwitchAddr};

fn mac(last: u8) -> MacAddr {
    MacAddr([2, 0, 0, 0, 0, last])
}

fn switch() -> SwitchAddr {
    SwitchAddr {
        ip: Ipv4Addr::new(10, 0, 0, 254),
        mac: mac(0xfe),
    }
}

fn rank(n: u8) -> RankEntry {
    RankEntry {
        ip: Ipv4Addr::new(10, 0, 0, n),
        mac: mac(n),
        udp_port: 40000 + u16::from(n),
        switch_port: u16::from(n),
    }
}

fn hosts() -> HostTable {
    (1..=2)
        .map(|n| {
            let r = rank(n);
            (
                r.ip,
                HostEntry {
                    mac: r.mac,
                    port: r.switch_port,
                },
            )
        })
        .collect()
}

fn job(id: u16, slot_base: u16) -> JobEntry {
    JobEntry {
        id,
        key: 0xabcd,
        slot_base,
        slot_count: 1,
        ranks: vec![rank(1), rank(2)],
    }
}

fn lines(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

#[test]
fn install_and_remove_send_the_exact_commands() {
    let mut target =
        Bmv2Target::connect(RecordingRunner::new(), switch(), hosts()).expect("connect");
    target.install_job(&job(7, 5).spec()).expect("install");
    target.remove_job(7).expect("remove");
    assert_eq!(target.installed().count(), 0);

    let sessions = &target.runner().sessions;
    assert_eq!(
        sessions.len(),
        4,
        "connect, node creation, job entries, removal"
    );
    assert_eq!(
        sessions[0],
        lines(
            "table_set_default EgressImpl.result_sender.switch_identity EgressImpl.result_sender.set_switch_identity 02:00:00:00:00:fe 10.0.0.254
             table_add IngressImpl.arp_icmp.arp_reply IngressImpl.arp_icmp.reply_arp 10.0.0.254 => 02:00:00:00:00:fe
             table_add IngressImpl.icmp_echo.echo_reply IngressImpl.icmp_echo.reply_echo 10.0.0.254 =>
             table_add IngressImpl.forwarding.l2_forward IngressImpl.forwarding.forward 02:00:00:00:00:01 => 1
             table_add IngressImpl.forwarding.l2_forward IngressImpl.forwarding.forward 02:00:00:00:00:02 => 2"
        )
    );
    assert_eq!(sessions[1], lines("mc_node_create 0 1\nmc_node_create 1 2"));
    // Slot 5 of set 0 is pool index 5, of set 1 8192 + 5. Entry handles
    // 0..=3 went to the switch entries, so the job's start at 4.
    assert_eq!(
        sessions[2],
        lines(
            "register_write IngressImpl.bitmap 5 0
             register_write IngressImpl.round_seq 5 0
             register_write IngressImpl.round_tag 5 0
             register_write IngressImpl.worker_count 5 0
             register_write IngressImpl.max_exponent 5 0
             register_write IngressImpl.bitmap 8197 0
             register_write IngressImpl.round_seq 8197 0
             register_write IngressImpl.round_tag 8197 0
             register_write IngressImpl.worker_count 8197 0
             register_write IngressImpl.max_exponent 8197 0
             table_add EgressImpl.result_sender.result_addr EgressImpl.result_sender.set_worker_addr 7 0 => 02:00:00:00:00:01 10.0.0.1 40001
             table_add EgressImpl.result_sender.result_addr EgressImpl.result_sender.set_worker_addr 7 1 => 02:00:00:00:00:02 10.0.0.2 40002
             mc_mgrp_create 8
             mc_node_associate 8 0
             mc_node_associate 8 1
             table_add IngressImpl.admission.leases IngressImpl.admission.in_lease 7 5->5 => 1
             table_add IngressImpl.admission.workers IngressImpl.admission.admit 7 0 10.0.0.1 40001 => 0x1 0xfffffffd 2 8 0xabcd
             table_add IngressImpl.admission.workers IngressImpl.admission.admit 7 1 10.0.0.2 40002 => 0x2 0xfffffffe 2 8 0xabcd"
        )
    );
    assert_eq!(
        sessions[3],
        lines(
            "table_delete IngressImpl.admission.workers 7
             table_delete IngressImpl.admission.workers 8
             table_delete IngressImpl.admission.leases 6
             table_delete EgressImpl.result_sender.result_addr 4
             table_delete EgressImpl.result_sender.result_addr 5
             mc_node_dissociate 8 0
             mc_node_dissociate 8 1
             mc_mgrp_destroy 8
             mc_node_destroy 0
             mc_node_destroy 1"
        )
    );
}

#[test]
fn handles_come_from_the_switch_not_from_counting() {
    // Two jobs: the second job's removal must use the handles BMv2 gave it.
    let mut target =
        Bmv2Target::connect(RecordingRunner::new(), switch(), hosts()).expect("connect");
    target.install_job(&job(1, 0).spec()).expect("install 1");
    target.install_job(&job(2, 1).spec()).expect("install 2");
    target.remove_job(1).expect("remove 1");
    target.remove_job(2).expect("remove 2");
    let last = target.runner().sessions.last().expect("sessions").clone();
    assert_eq!(last[0], "table_delete IngressImpl.admission.workers 12");
    assert_eq!(last[2], "table_delete IngressImpl.admission.leases 11");
    assert_eq!(
        last[3],
        "table_delete EgressImpl.result_sender.result_addr 9"
    );
    assert!(last.contains(&"mc_node_destroy 2".to_string()));
    assert!(last.contains(&"mc_node_destroy 3".to_string()));
}

#[test]
fn bad_requests_are_rejected_without_commands() {
    let mut target =
        Bmv2Target::connect(RecordingRunner::new(), switch(), hosts()).expect("connect");
    target.install_job(&job(1, 0).spec()).expect("install");
    let sessions = target.runner().sessions.len();

    let again = target.install_job(&job(1, 4).spec());
    assert!(
        matches!(again, Err(DataplaneError::Rejected(_))),
        "{again:?}"
    );
    let overlap = target.install_job(&job(2, 0).spec());
    assert!(
        matches!(overlap, Err(DataplaneError::Rejected(_))),
        "{overlap:?}"
    );
    let mut stranger = job(3, 9);
    stranger.ranks[1].ip = Ipv4Addr::new(10, 0, 0, 99);
    let unknown = target.install_job(&stranger.spec());
    assert!(
        matches!(unknown, Err(DataplaneError::Rejected(_))),
        "{unknown:?}"
    );
    let mut outside = job(4, 8191);
    outside.slot_count = 2;
    assert!(matches!(
        target.install_job(&outside.spec()),
        Err(DataplaneError::Rejected(_))
    ));
    assert!(matches!(
        target.remove_job(42),
        Err(DataplaneError::Rejected(_))
    ));
    assert_eq!(
        target.runner().sessions.len(),
        sessions,
        "no command for a rejected request"
    );
}

/// A CLI that reports an error on every table addition.
#[derive(Debug, Default)]
struct FailingCli;

impl CliRunner for FailingCli {
    fn run(&mut self, commands: &[String]) -> Result<String, DataplaneError> {
        Ok(commands
            .iter()
            .map(|c| {
                if c.starts_with("table_add") {
                    "Error: Invalid table operation (DUPLICATE_ENTRY)\n"
                } else {
                    "SUCCESS\n"
                }
            })
            .collect())
    }
}

#[test]
fn cli_errors_fail_the_operation() {
    let err = Bmv2Target::connect(FailingCli, switch(), hosts()).expect_err("must fail");
    assert!(matches!(err, DataplaneError::Target(_)), "{err:?}");
}

#[test]
fn the_real_runner_pipes_commands_into_the_program() {
    use std::os::unix::fs::PermissionsExt;
    use switch_emu::p4config::bmv2_target::SimpleSwitchCli;

    let dir = std::env::temp_dir().join(format!("ina-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let echo = dir.join("fake_cli");
    std::fs::write(&echo, "#!/bin/sh\necho \"args: $*\"\ncat\n").expect("script");
    std::fs::set_permissions(&echo, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let failing = dir.join("failing_cli");
    std::fs::write(
        &failing,
        "#!/bin/sh\ncat >/dev/null\necho boom >&2\nexit 3\n",
    )
    .expect("script");
    std::fs::set_permissions(&failing, std::fs::Permissions::from_mode(0o755)).expect("chmod");

    let out = SimpleSwitchCli::with_program(&echo, 9191)
        .run(&["mc_mgrp_create 1".into(), "mc_node_associate 1 0".into()])
        .expect("run");
    let failed = SimpleSwitchCli::with_program(&failing, 9191).run(&["x".into()]);
    let missing = SimpleSwitchCli::with_program(dir.join("absent"), 9191).run(&["x".into()]);
    std::fs::remove_dir_all(&dir).expect("cleanup");

    assert_eq!(
        out,
        "args: --thrift-port 9191\nmc_mgrp_create 1\nmc_node_associate 1 0\n"
    );
    assert!(
        matches!(failed, Err(DataplaneError::Target(ref m)) if m.contains("boom")),
        "{failed:?}"
    );
    assert!(
        matches!(missing, Err(DataplaneError::Target(_))),
        "{missing:?}"
    );
}

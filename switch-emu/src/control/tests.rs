//! Controller tests against a recording fake dataplane.

use std::collections::BTreeMap;
use std::net::SocketAddrV4;
use std::time::{Duration, Instant};

use packet_format::control::{ControlErrorKind, JobParams, JoinRequest, Reply, Request};

use super::*;
use crate::core::SlotView;
use crate::dataplane::{CounterSet, JobActivity};

#[derive(Debug, Default)]
struct FakeDp {
    installed: BTreeMap<u16, JobSpec>,
    log: Vec<String>,
    activity: BTreeMap<u16, JobActivity>,
    refuse: bool,
}

impl Dataplane for FakeDp {
    fn install_job(&mut self, spec: &JobSpec) -> Result<(), DataplaneError> {
        if self.refuse {
            return Err(DataplaneError::Rejected("refused by test".into()));
        }
        self.log.push(format!("install {}", spec.id));
        self.installed.insert(spec.id, spec.clone());
        Ok(())
    }
    fn remove_job(&mut self, job: u16) -> Result<(), DataplaneError> {
        self.log.push(format!("remove {job}"));
        self.installed
            .remove(&job)
            .map(drop)
            .ok_or_else(|| DataplaneError::Target("not installed".into()))
    }
    fn activity(&self, job: u16) -> Option<JobActivity> {
        self.activity.get(&job).cloned()
    }
}

fn config() -> ControlConfig {
    ControlConfig {
        slots: 100,
        max_workers: 8,
        max_elements_per_packet: 64,
        job_quota: 60,
        join_timeout: Duration::from_secs(10),
        worker_timeout: Duration::from_secs(3),
        key_seed: Some(7),
        ..ControlConfig::default()
    }
}

fn addr(port: u16) -> SocketAddrV4 {
    SocketAddrV4::new([127, 0, 0, 1].into(), port)
}

fn join(job: &str, rank: u16, world: u16, window: u16) -> Request {
    Request::Join(JoinRequest {
        job: job.into(),
        rank,
        world,
        data_addr: addr(5000 + rank + 100 * job.len() as u16),
        window,
        elements_per_packet: 64,
    })
}

fn error_kind(outbox: &Outbox) -> ControlErrorKind {
    match outbox.as_slice() {
        [(_, Reply::Error(e))] => e.kind,
        other => panic!("expected one error, got {other:?}"),
    }
}

fn joined(outbox: &Outbox) -> Vec<(ConnId, JobParams)> {
    outbox
        .iter()
        .map(|(c, r)| match r {
            Reply::Joined(p) => (*c, *p),
            other => panic!("expected joined, got {other:?}"),
        })
        .collect()
}

struct Fixture {
    c: Controller,
    dp: FakeDp,
    t0: Instant,
}

impl Fixture {
    fn new() -> Self {
        Fixture {
            c: Controller::new(config()).unwrap(),
            dp: FakeDp::default(),
            t0: Instant::now(),
        }
    }
    fn req(&mut self, at_ms: u64, conn: ConnId, r: Request) -> Outbox {
        let now = self.t0 + Duration::from_millis(at_ms);
        self.c.handle_request(now, conn, r, &mut self.dp)
    }
    /// Joins ranks 0..world of `job` on connections base..base+world.
    fn start(&mut self, job: &str, world: u16, window: u16, base: ConnId) -> JobParams {
        for rank in 0..world - 1 {
            let out = self.req(0, base + ConnId::from(rank), join(job, rank, world, window));
            assert!(out.is_empty(), "waits for the others: {out:?}");
        }
        let out = self.req(
            0,
            base + ConnId::from(world - 1),
            join(job, world - 1, world, window),
        );
        let params = joined(&out);
        assert_eq!(params.len(), usize::from(world));
        let conns: Vec<ConnId> = params.iter().map(|(c, _)| *c).collect();
        assert_eq!(
            conns,
            (base..base + ConnId::from(world)).collect::<Vec<_>>()
        );
        assert!(
            params.iter().all(|(_, p)| *p == params[0].1),
            "same params for every rank"
        );
        params[0].1
    }
    fn status(&mut self, at_ms: u64) -> StatusReport {
        self.c
            .status(self.t0 + Duration::from_millis(at_ms), &self.dp)
    }
}

#[test]
fn join_flow_installs_and_replies_to_every_rank() {
    let mut f = Fixture::new();
    let p = f.start("a", 3, 40, 10);
    assert_eq!((p.world, p.window, p.elements_per_packet), (3, 40, 64));
    let spec = &f.dp.installed[&p.job_id];
    assert_eq!(spec.key, p.key);
    assert_eq!((spec.slot_base, spec.slot_count), (p.slot_base, 40));
    assert_eq!(spec.members, vec![addr(5100), addr(5101), addr(5102)]);
    let s = f.status(5);
    assert_eq!(s.jobs.len(), 1);
    assert_eq!(s.jobs[0].name, "a");
    assert_eq!(s.lease.free, 60);
    assert!(
        !serde_json::to_string(&s)
            .unwrap()
            .contains(&p.key.to_string()),
        "key stays secret"
    );
    // A second job gets another id, key and a disjoint lease.
    let q = f.start("bb", 2, 60, 20);
    assert_ne!(q.job_id, p.job_id);
    assert_ne!(q.key, p.key);
    assert!(q.slot_base >= 40 || q.slot_base + 60 <= p.slot_base);
}

#[test]
fn each_conflict_kind() {
    use ControlErrorKind::*;
    let mut f = Fixture::new();
    assert!(f.req(0, 1, join("a", 0, 2, 10)).is_empty());
    assert_eq!(
        error_kind(&f.req(0, 1, join("z", 0, 2, 10))),
        BadRequest,
        "second join on a connection"
    );
    assert_eq!(error_kind(&f.req(0, 2, join("a", 0, 2, 10))), AddressInUse);
    let mut other_addr = join("a", 0, 2, 10);
    if let Request::Join(j) = &mut other_addr {
        j.data_addr = addr(9999);
    }
    assert_eq!(error_kind(&f.req(0, 2, other_addr)), RankTaken);
    assert_eq!(
        error_kind(&f.req(0, 2, join("a", 1, 3, 10))),
        ParametersDiffer
    );
    assert_eq!(
        error_kind(&f.req(0, 2, join("a", 1, 2, 11))),
        ParametersDiffer
    );
    assert_eq!(
        error_kind(&f.req(0, 2, join("c", 2, 2, 10))),
        RankOutOfRange
    );
    assert_eq!(
        error_kind(&f.req(0, 2, join("c", 0, 9, 10))),
        LimitExceeded,
        "world"
    );
    assert_eq!(
        error_kind(&f.req(0, 2, join("c", 0, 2, 61))),
        LimitExceeded,
        "quota"
    );
    assert_eq!(
        error_kind(&f.req(0, 2, join("c", 0, 2, 0))),
        LimitExceeded,
        "window 0"
    );
    let mut big = join("c", 0, 2, 10);
    if let Request::Join(j) = &mut big {
        j.elements_per_packet = 65;
    }
    assert_eq!(error_kind(&f.req(0, 2, big)), LimitExceeded, "elements");
    assert_eq!(error_kind(&f.req(0, 2, join("", 0, 2, 10))), BadRequest);
    // The pending job is intact: rank 1 completes it.
    assert_eq!(joined(&f.req(0, 2, join("a", 1, 2, 10))).len(), 2);
    // A running job's name cannot be joined again.
    assert_eq!(error_kind(&f.req(0, 3, join("a", 0, 2, 10))), RankTaken);
    // Pool: 90 free; a 60-slot job fits, then a 40-slot join is refused at once.
    f.start("dd", 1, 60, 30);
    assert_eq!(
        error_kind(&f.req(0, 40, join("eee", 0, 2, 40))),
        PoolExhausted
    );
    assert_eq!(f.dp.installed.len(), 2);
    assert_eq!(f.c.status(f.t0, &f.dp).control["join_errors"], 13);
}

#[test]
fn pool_exhausted_when_the_last_rank_joins_fails_every_rank() {
    let mut f = Fixture::new();
    assert!(f.req(0, 1, join("a", 0, 2, 60)).is_empty());
    f.start("bb", 1, 50, 5); // takes 50 of 100: "a" (60) no longer fits
    let out = f.req(0, 2, join("a", 1, 2, 60));
    assert_eq!(out.len(), 2);
    for (_, r) in &out {
        assert!(
            matches!(r, Reply::Error(e) if e.kind == ControlErrorKind::PoolExhausted),
            "{r:?}"
        );
    }
    assert_eq!(f.status(0).lease.free, 50);
    assert_eq!(f.status(0).ended[0].outcome, "failed");
    // Both connections are free to join again.
    assert!(f.req(0, 1, join("x", 0, 2, 10)).is_empty());
}

#[test]
fn pending_join_times_out() {
    let mut f = Fixture::new();
    assert!(f.req(0, 1, join("a", 0, 3, 10)).is_empty());
    assert!(f.req(2000, 2, join("a", 2, 3, 10)).is_empty());
    assert_eq!(f.c.poll_timeout(), Some(f.t0 + Duration::from_secs(10)));
    assert!(f
        .c
        .handle_timeout(f.t0 + Duration::from_millis(9999), &mut f.dp)
        .is_empty());
    let out =
        f.c.handle_timeout(f.t0 + Duration::from_secs(10), &mut f.dp);
    assert_eq!(out.iter().map(|(c, _)| *c).collect::<Vec<_>>(), [1, 2]);
    match &out[0].1 {
        Reply::Error(e) => {
            assert_eq!(e.kind, ControlErrorKind::JobFailed);
            assert!(e.message.contains("missing ranks [1]"), "{}", e.message);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(f.c.poll_timeout(), None);
    assert!(f.dp.log.is_empty());
    // The address and rank are free again.
    assert!(f.req(11_000, 3, join("a", 0, 3, 10)).is_empty());
}

#[test]
fn disconnect_fails_the_job_and_frees_the_lease() {
    let mut f = Fixture::new();
    let p = f.start("a", 3, 60, 10);
    let now = f.t0 + Duration::from_secs(1);
    let out = f.c.handle_disconnect(now, 11, &mut f.dp);
    assert_eq!(out.iter().map(|(c, _)| *c).collect::<Vec<_>>(), [10, 12]);
    for (_, r) in &out {
        match r {
            Reply::JobFailed { reason, ranks } => {
                assert_eq!(ranks, &[1]);
                assert!(reason.contains("rank 1"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(
        f.dp.log,
        [
            format!("install {}", p.job_id),
            format!("remove {}", p.job_id)
        ]
    );
    let s = f.status(1000);
    assert!(s.jobs.is_empty());
    assert_eq!(s.lease.free, 100);
    assert_eq!(s.ended[0].outcome, "expired");
    assert_eq!(s.control["jobs_expired"], 1);
    // Later disconnects of the other members change nothing.
    assert!(f.c.handle_disconnect(now, 10, &mut f.dp).is_empty());
    assert_eq!(f.dp.log.len(), 2);
}

#[test]
fn leave_before_start_withdraws_and_after_start_completes() {
    let mut f = Fixture::new();
    assert!(f.req(0, 1, join("a", 0, 2, 10)).is_empty());
    assert_eq!(f.req(0, 1, Request::Leave), [(1, Reply::Left)]);
    assert!(f.status(0).pending.is_empty());
    let p = f.start("a", 2, 10, 1);
    assert_eq!(f.req(0, 1, Request::Leave), [(1, Reply::Left)]);
    assert_eq!(
        f.dp.installed.len(),
        1,
        "still installed while rank 1 is in"
    );
    assert!(f.status(0).jobs[0].members[0].left);
    // The leaver's disconnect fails nothing.
    assert!(f.c.handle_disconnect(f.t0, 1, &mut f.dp).is_empty());
    assert_eq!(f.req(0, 2, Request::Leave), [(2, Reply::Left)]);
    assert_eq!(f.dp.log.last().unwrap(), &format!("remove {}", p.job_id));
    let s = f.status(0);
    assert_eq!(
        (s.ended[0].outcome.as_str(), s.lease.free),
        ("completed", 100)
    );
}

fn activity(
    world: usize,
    heard: &[Option<Instant>],
    missing: Vec<u16>,
    since: Instant,
) -> JobActivity {
    assert_eq!(heard.len(), world);
    JobActivity {
        last_heard: heard.to_vec(),
        incomplete: vec![SlotView {
            slot: 3,
            set: false,
            seq: 3,
            contributed: 1,
            missing,
            since,
        }],
        counters: CounterSet::default(),
    }
}

#[test]
fn silence_expiry() {
    let mut f = Fixture::new();
    let t0 = f.t0;
    let s = |x: u64| t0 + Duration::from_millis(x);
    let p = f.start("a", 2, 10, 1);
    assert_eq!(f.c.poll_timeout(), Some(s(3000)));
    // No incomplete slot: nothing expires however long it is quiet.
    f.dp.activity.insert(
        p.job_id,
        JobActivity {
            last_heard: vec![None, None],
            incomplete: vec![],
            counters: CounterSet::default(),
        },
    );
    assert!(f.c.handle_timeout(s(3000), &mut f.dp).is_empty());
    assert_eq!(f.c.poll_timeout(), Some(s(6000)));
    // Rank 0 contributed to slot 3 at 5 s, rank 1 last heard at 4 s.
    f.dp.activity.insert(
        p.job_id,
        activity(2, &[Some(s(5000)), Some(s(4000))], vec![1], s(5000)),
    );
    assert!(f.c.handle_timeout(s(6000), &mut f.dp).is_empty());
    assert_eq!(
        f.c.poll_timeout(),
        Some(s(8000)),
        "the slot has waited 3 s at 8 s"
    );
    let st = f.status(7000);
    assert_eq!(st.jobs[0].incomplete_slots[0].missing, [1]);
    assert_eq!(st.jobs[0].incomplete_slots[0].contributed, [0]);
    assert_eq!(st.jobs[0].members[1].last_heard_ago_s, Some(3.0));
    // Rank 1 is heard at 7 s (say, on another slot): the deadline moves.
    f.dp.activity.insert(
        p.job_id,
        activity(2, &[Some(s(5000)), Some(s(7000))], vec![1], s(5000)),
    );
    assert!(f.c.handle_timeout(s(8000), &mut f.dp).is_empty());
    assert_eq!(f.c.poll_timeout(), Some(s(10_000)));
    let out = f.c.handle_timeout(s(10_000), &mut f.dp);
    assert_eq!(out.len(), 2);
    match &out[0].1 {
        Reply::JobFailed { reason, ranks } => {
            assert_eq!(ranks, &[1]);
            assert!(
                reason.contains("expired") && reason.contains("rank 1"),
                "{reason}"
            );
        }
        other => panic!("{other:?}"),
    }
    let st = f.status(10_000);
    assert!(st.jobs.is_empty());
    assert_eq!(st.ended[0].outcome, "expired");
    assert_eq!(st.control["jobs_expired"], 1);
    assert_eq!(st.lease.free, 100);
}

#[test]
fn lease_reuse_after_a_job_ends() {
    let mut f = Fixture::new();
    let a = f.start("a", 2, 60, 1);
    assert_eq!(
        error_kind(&f.req(0, 9, join("bb", 0, 1, 60))),
        ControlErrorKind::PoolExhausted
    );
    f.c.handle_disconnect(f.t0, 1, &mut f.dp);
    let b = f.start("bb", 1, 60, 9);
    assert_eq!(b.slot_base, a.slot_base, "the freed range is leased again");
    assert_ne!(b.job_id, a.job_id);
}

#[test]
fn dataplane_refusal_is_an_error_to_every_rank() {
    let mut f = Fixture::new();
    f.dp.refuse = true;
    assert!(f.req(0, 1, join("a", 0, 2, 10)).is_empty());
    let out = f.req(0, 2, join("a", 1, 2, 10));
    assert_eq!(out.len(), 2);
    assert!(out
        .iter()
        .all(|(_, r)| matches!(r, Reply::Error(e) if e.kind == ControlErrorKind::LimitExceeded)));
    assert_eq!(f.status(0).lease.free, 100);
}

#[test]
fn status_renders() {
    let mut f = Fixture::new();
    f.start("a", 2, 10, 1);
    assert!(f.req(0, 5, join("pend", 0, 4, 10)).is_empty());
    let out = f.req(0, 7, Request::Status);
    let Reply::Status(value) = &out[0].1 else {
        panic!("{out:?}")
    };
    let report: StatusReport = serde_json::from_value(value.clone()).unwrap();
    let text = report.render();
    assert!(
        text.contains("jobs (1)") && text.contains("pend world=4 joined=0 missing=1,2,3"),
        "{text}"
    );
    assert!(
        text.contains(
            "slots leased: 10 (0..10), in flight: 0, retransmissions: -, results to each member"
        ),
        "{text}"
    );
}

#[test]
fn result_groups_are_announced_at_join_and_shown_in_status() {
    let mut f = Fixture::new();
    f.c = Controller::new(ControlConfig {
        result_groups: Some([239, 72, 0, 0].into()),
        switch_data_addr: SocketAddrV4::new([10, 0, 0, 254].into(), 48864),
        ..config()
    })
    .unwrap();
    let a = f.start("a", 2, 10, 1);
    let b = f.start("bb", 2, 10, 3);
    assert_ne!(a.job_id, b.job_id);
    for p in [a, b] {
        let group = SocketAddrV4::new(result_group([239, 72, 0, 0].into(), p.job_id), 48864);
        assert_eq!(p.result_group, Some(group));
        let status = f.status(0);
        let view = status.jobs.iter().find(|j| j.id == p.job_id).unwrap();
        assert_eq!(view.result_group, Some(group.to_string()));
        assert!(status.render().contains(&format!("results to {group}")));
    }
    let bad = ControlConfig {
        result_groups: Some([239, 72, 0, 9].into()),
        ..config()
    };
    assert_eq!(
        Controller::new(bad).err(),
        Some(ControlConfigError::ResultGroups([239, 72, 0, 9].into()))
    );
}

//! `switch-emu serve` in L2 mode: the ports, the core and the control plane
//! on one thread. The control plane is the same [`Controller`] as in UDP
//! mode, on a TCP listener bound to the switch IP of the kernel interface
//! behind the CPU port, served through [`ControlIo`] like the UDP driver's.

use std::net::{SocketAddrV4, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::run::{serve_loop, Companion, L2Driver};
use crate::control::status::StatusReport;
use crate::control::{ControlConfig, Controller};
use crate::control_io::ControlIo;
use crate::core::{Config, SwitchCore};
use crate::emulated::EmulatedDataplane;
use crate::taps::Taps;
use crate::udp::ServerError;

/// Settings of the aggregation side of an L2 switch.
#[derive(Debug, Clone)]
pub struct L2ServeConfig {
    /// Control listener address (the switch IP on its kernel interface).
    pub control: SocketAddrV4,
    /// Limits of the core.
    pub core: Config,
    /// Largest lease (window) one job may hold.
    pub job_quota: u16,
    /// Silence after which a job with waiting slots expires.
    pub worker_timeout: Duration,
    /// Time a job may take to gather all its joins.
    pub join_timeout: Duration,
}

/// The core and the control plane beside the ports (a [`Companion`]).
#[derive(Debug)]
pub struct L2Control<'a> {
    dp: EmulatedDataplane,
    control: ControlIo,
    dump: &'a AtomicBool,
    /// The metrics endpoint, if any (the capture lives in the driver).
    metrics: Taps,
}

impl<'a> L2Control<'a> {
    /// Binds the control listener and builds the core and the control plane;
    /// workers are told to send to `data` (the switch IP, port 48864) and,
    /// if the driver sends results to groups under `result_groups`, to join
    /// their job's. Setting `dump` prints the status table at the next wake-up.
    pub fn bind(
        config: &L2ServeConfig,
        data: SocketAddrV4,
        result_groups: Option<std::net::Ipv4Addr>,
        dump: &'a AtomicBool,
    ) -> Result<Self, ServerError> {
        let core = SwitchCore::new(config.core)?;
        let controller = Controller::new(ControlConfig {
            slots: config.core.slots,
            max_workers: config.core.max_workers,
            max_elements_per_packet: config.core.max_elements_per_packet,
            job_quota: config.job_quota,
            join_timeout: config.join_timeout,
            worker_timeout: config.worker_timeout,
            switch_data_addr: data,
            key_seed: None,
            history: 32,
            result_groups,
        })?;
        let listener = TcpListener::bind(config.control).map_err(|source| ServerError::Bind {
            what: "control listener",
            addr: config.control,
            source,
        })?;
        Ok(L2Control {
            dp: EmulatedDataplane::new(core),
            control: ControlIo::new(listener, controller)?,
            dump,
            metrics: Taps::default(),
        })
    }

    /// Serves metrics through `taps` (its capture, if any, is ignored here).
    pub fn with_metrics(mut self, taps: Taps) -> Self {
        self.metrics = taps;
        self
    }

    /// The status document with the ports' counters.
    pub fn status(&self, driver: &L2Driver) -> StatusReport {
        self.control
            .status(Instant::now(), &self.dp, driver.counter_map())
    }
}

impl Companion for L2Control<'_> {
    fn core(&mut self) -> &mut SwitchCore {
        self.dp.core_mut()
    }

    fn pollfds(&mut self, fds: &mut Vec<libc::pollfd>) {
        // The metrics wake-up (if any) first, then the control plane's.
        if let Some(fd) = self.metrics.metrics_fd() {
            fds.push(crate::control_io::pollfd(fd, libc::POLLIN));
        }
        self.control.pollfds(fds);
    }

    fn on_wake(
        &mut self,
        now: Instant,
        ready: &[libc::pollfd],
        driver: &L2Driver,
    ) -> std::io::Result<Option<Instant>> {
        let metrics_fds = usize::from(self.metrics.metrics_fd().is_some());
        let scrape_woke = metrics_fds == 1 && ready.first().is_some_and(|p| p.revents != 0);
        self.control.serve(
            ready.get(metrics_fds..).unwrap_or_default(),
            &mut self.dp,
            &|| driver.counter_map(),
        );
        self.metrics
            .refresh_metrics(now, scrape_woke, self.dp.core(), self.control.controller());
        if self.dump.swap(false, Ordering::Relaxed) {
            println!("{}", self.status(driver).render());
        }
        Ok(
            match (self.control.poll_timeout(), self.metrics.metrics_deadline()) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            },
        )
    }
}

/// Serves `driver`'s ports with aggregation and the control plane until
/// `stop` is set; returns the final status (counters).
pub fn serve(
    driver: &mut L2Driver,
    config: &L2ServeConfig,
    stop: &AtomicBool,
    dump: &AtomicBool,
    metrics: Taps,
) -> Result<StatusReport, ServerError> {
    let data = SocketAddrV4::new(driver.config().ip, packet_format::UDP_PORT);
    let groups = driver.config().result_groups;
    let mut control = L2Control::bind(config, data, groups, dump)?.with_metrics(metrics);
    let served = serve_loop(driver, &mut control, stop);
    if let Some(e) = driver.finish_capture() {
        eprintln!("switch-emu: {e}");
    }
    served?;
    Ok(control.status(driver))
}

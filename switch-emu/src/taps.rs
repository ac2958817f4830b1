//! Optional observers a driver feeds besides the core: a packet capture
//! (`--pcap`) and the metrics endpoint (`--metrics`). Kept apart from the
//! drivers so that the UDP and L2 drivers share them; with both off the
//! cost on the packet path is one branch per datagram.

use std::io;
use std::net::{SocketAddr, SocketAddrV4};
use std::os::fd::RawFd;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::control::Controller;
use crate::core::SwitchCore;
use crate::metrics::{exposition, families, MetricsServer, Snapshot};
use crate::pcap::PcapWriter;

/// Shortest time between two renderings of the metrics text, except when a
/// scrape asks for one.
pub const METRICS_INTERVAL: Duration = Duration::from_millis(100);

/// What a driver records besides feeding the core. `Taps::default()` is off.
#[derive(Debug, Default)]
pub struct Taps {
    /// Capture of every datagram received and sent.
    pub pcap: Option<PcapWriter>,
    /// The metrics endpoint.
    pub metrics: Option<MetricsTap>,
    /// Why the capture stopped early, if it did (write error).
    pub pcap_error: Option<String>,
}

impl Taps {
    /// Opens a capture file (truncating it).
    pub fn with_pcap(mut self, path: &Path) -> io::Result<Taps> {
        self.pcap = Some(PcapWriter::create(path)?);
        Ok(self)
    }

    /// Starts the metrics endpoint on `addr` (port 0 picks one).
    pub fn with_metrics(mut self, addr: SocketAddr) -> io::Result<Taps> {
        self.metrics = Some(MetricsTap::spawn(addr)?);
        Ok(self)
    }

    /// Records a UDP datagram (the UDP driver synthesizes its frame). A
    /// write error stops the capture, keeping the reason for the report.
    #[inline]
    pub fn record_datagram(&mut self, src: SocketAddrV4, dst: SocketAddrV4, bytes: &[u8]) {
        if let Some(pcap) = &mut self.pcap {
            if let Err(e) = pcap.write_datagram(src, dst, bytes) {
                self.stop_pcap(e);
            }
        }
    }

    /// Records an Ethernet frame as it is (the L2 driver).
    #[inline]
    pub fn record_frame(&mut self, frame: &[u8]) {
        if let Some(pcap) = &mut self.pcap {
            if let Err(e) = pcap.write_frame(frame) {
                self.stop_pcap(e);
            }
        }
    }

    #[cold]
    fn stop_pcap(&mut self, e: io::Error) {
        let records = self.pcap.as_ref().map_or(0, PcapWriter::records);
        self.pcap_error = Some(format!("capture stopped after {records} packets: {e}"));
        if let Some(mut pcap) = self.pcap.take() {
            let _ = pcap.flush();
        }
    }

    /// Packets captured so far.
    pub fn pcap_records(&self) -> u64 {
        self.pcap.as_ref().map_or(0, PcapWriter::records)
    }

    /// Writes buffered capture records to the file.
    pub fn flush(&mut self) -> io::Result<()> {
        match &mut self.pcap {
            Some(pcap) => pcap.flush(),
            None => Ok(()),
        }
    }

    /// The metrics wake-up socket, for the driver's `poll` set.
    pub fn metrics_fd(&self) -> Option<RawFd> {
        self.metrics.as_ref().map(MetricsTap::wake_fd)
    }

    /// When the driver must wake to refresh the metrics (after activity).
    pub fn metrics_deadline(&self) -> Option<Instant> {
        self.metrics.as_ref().and_then(MetricsTap::deadline)
    }

    /// Call once per event-loop turn: marks activity, and renders the
    /// metrics if a scrape asked (`scrape_woke`: the wake-up fd was
    /// readable) or the interval has passed since the last rendering.
    pub fn refresh_metrics(
        &mut self,
        now: Instant,
        scrape_woke: bool,
        core: &SwitchCore,
        controller: &Controller,
    ) {
        if let Some(tap) = &mut self.metrics {
            tap.turn(now, scrape_woke, core, controller);
        }
    }
}

/// The metrics endpoint and its rendering schedule.
#[derive(Debug)]
pub struct MetricsTap {
    snapshot: Snapshot,
    server: MetricsServer,
    rendered_at: Option<Instant>,
    dirty: bool,
}

impl MetricsTap {
    /// Binds the endpoint and starts its thread.
    pub fn spawn(addr: SocketAddr) -> io::Result<MetricsTap> {
        let snapshot = Snapshot::new()?;
        let server = MetricsServer::spawn(addr, snapshot.clone())?;
        Ok(MetricsTap {
            snapshot,
            server,
            rendered_at: None,
            dirty: true,
        })
    }

    /// Where the endpoint listens.
    pub fn local_addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    fn wake_fd(&self) -> RawFd {
        self.snapshot.wake_fd()
    }

    fn deadline(&self) -> Option<Instant> {
        if !self.dirty {
            return None;
        }
        Some(
            self.rendered_at
                .map_or_else(Instant::now, |t| t + METRICS_INTERVAL),
        )
    }

    fn turn(&mut self, now: Instant, scrape_woke: bool, core: &SwitchCore, ctl: &Controller) {
        let asked = scrape_woke && self.snapshot.take_request();
        self.dirty = true;
        let due = match self.rendered_at {
            None => true,
            Some(t) => now.saturating_duration_since(t) >= METRICS_INTERVAL,
        };
        if asked || due {
            let fams = families(core, ctl.lease_figures(), &|id| {
                ctl.job_name(id).map(str::to_string)
            });
            self.snapshot.publish(exposition::render(&fams));
            self.rendered_at = Some(now);
            self.dirty = false;
        }
    }
}

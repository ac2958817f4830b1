//! Prometheus metrics: what the switch exposes, the exposition format, and
//! the HTTP endpoint.

pub mod exposition;
mod families;
pub mod server;

pub use exposition::{Family, Kind};
pub use families::{families, LeaseFigures};
pub use server::{scrape, MetricsServer, Snapshot};

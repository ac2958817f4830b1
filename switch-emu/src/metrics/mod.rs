//! Prometheus metrics: the exposition format and the HTTP endpoint.

pub mod exposition;
pub mod server;

pub use exposition::{Family, Kind};
pub use server::{MetricsServer, Snapshot};

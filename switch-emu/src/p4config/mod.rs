//! Control-plane configuration of the P4 programs in `p4/`: the Tofino
//! program (`p4/ina.p4`, through a `bfrt_python` script) and its BMv2 twin
//! (`p4/bmv2/ina_v1model.p4`, through `simple_switch_CLI` commands).
//!
//! A job description file ([`JobFile`], JSON) names the switch's data-plane
//! addresses and every job with its lease and ranks; [`generate`] turns it
//! into the text a target reads. [`bmv2_target::Bmv2Target`] installs and
//! removes single jobs in a running `simple_switch` for the job control plane.
//!
//! The table, action and register names written here are the ones declared
//! in the P4 sources ([`names`]); `switch-emu/tests/p4config_golden.rs`
//! checks each against the P4 text.

pub mod bmv2;
pub mod bmv2_target;
mod job;
pub mod names;
pub mod tofino;

pub use job::{
    hosts_from_json, HostEntry, HostFileEntry, HostTable, JobEntry, JobFile, MacAddr, RankEntry,
    SwitchAddr,
};

/// Which program the configuration is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// BMv2 `simple_switch` running `p4/bmv2/ina_v1model.p4`: a `simple_switch_CLI` command file.
    Bmv2,
    /// Tofino running `p4/ina.p4`: a `bfrt_python` script.
    Tofino,
}

impl std::str::FromStr for Target {
    type Err = P4ConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "bmv2" => Ok(Target::Bmv2),
            "tofino" => Ok(Target::Tofino),
            other => Err(P4ConfigError::Invalid(format!(
                "unknown target {other:?} (expected bmv2 or tofino)"
            ))),
        }
    }
}

/// Why a job file cannot be turned into a configuration.
#[derive(Debug, thiserror::Error)]
pub enum P4ConfigError {
    /// The file is not valid JSON of the [`JobFile`] shape.
    #[error("job file: {0}")]
    Parse(#[from] serde_json::Error),
    /// The jobs do not fit the P4 program (sizes, overlaps, addresses).
    #[error("job file: {0}")]
    Invalid(String),
}

/// The configuration text for `target`: a `simple_switch_CLI` command file
/// for a freshly started BMv2, or a `bfrt_python` script for a Tofino.
pub fn generate(file: &JobFile, target: Target) -> Result<String, P4ConfigError> {
    file.validate(target)?;
    Ok(match target {
        Target::Bmv2 => bmv2::command_file(file)?,
        Target::Tofino => tofino::script(file)?,
    })
}

/// Parses a job file and generates the configuration for `target`
/// (what `switch-emu p4-config --target T FILE` prints).
pub fn generate_from_json(json: &str, target: Target) -> Result<String, P4ConfigError> {
    let file: JobFile = serde_json::from_str(json)?;
    generate(&file, target)
}

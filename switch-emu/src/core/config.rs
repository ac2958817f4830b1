//! Size limits of the switch core. The defaults are the Tofino program's, so
//! that a job that runs on the emulator also fits the hardware.

use packet_format::{
    max_elements_for_mtu, TOFINO_ELEMENTS_PER_PACKET, TOFINO_MAX_WORKERS, TOFINO_SLOTS,
};

/// Size limits of a [`super::SwitchCore`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Config {
    /// Largest world size of a job: the bitmap width (32 on Tofino, at most 64 here).
    pub max_workers: u16,
    /// Slots in the pool (each held twice, one per set).
    pub slots: u16,
    /// Largest element count a contribution may carry (64 on Tofino in one pass).
    pub max_elements_per_packet: u16,
}

impl Default for Config {
    /// The Tofino program's limits.
    fn default() -> Self {
        Config {
            max_workers: TOFINO_MAX_WORKERS,
            slots: TOFINO_SLOTS,
            max_elements_per_packet: TOFINO_ELEMENTS_PER_PACKET,
        }
    }
}

impl Config {
    /// Largest IP datagram the emulator accepts: the IPv4 limit, which is
    /// also the largest MTU a veth takes. It bounds the elements per packet
    /// (16370); packets above 2237 elements (9000-byte jumbo frames) only
    /// exist on emulated links.
    pub const MAX_MTU: usize = 65_535;

    /// Widest contribution bitmap the emulator keeps (one `u64` per slot and set).
    pub const MAX_WORKERS: u16 = 64;

    /// Largest `max_elements_per_packet`: what fits one [`Config::MAX_MTU`]-byte datagram.
    pub const fn max_elements_limit() -> u16 {
        max_elements_for_mtu(Self::MAX_MTU) as u16
    }

    /// Checks every limit against what the emulator can represent.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.max_workers == 0 || self.max_workers > Self::MAX_WORKERS {
            return Err(ConfigError::Workers(self.max_workers));
        }
        if self.slots == 0 {
            return Err(ConfigError::NoSlots);
        }
        if self.max_elements_per_packet == 0
            || self.max_elements_per_packet > Self::max_elements_limit()
        {
            return Err(ConfigError::Elements(self.max_elements_per_packet));
        }
        Ok(())
    }
}

/// Why a [`Config`] cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// `max_workers` is 0 or wider than the `u64` bitmap.
    #[error("max_workers must be 1..={max}, got {0}", max = Config::MAX_WORKERS)]
    Workers(u16),
    /// The slot pool is empty.
    #[error("the slot pool must hold at least one slot")]
    NoSlots,
    /// `max_elements_per_packet` is 0 or does not fit the largest IPv4 datagram.
    #[error("max_elements_per_packet must be 1..={limit}, got {0}", limit = Config::max_elements_limit())]
    Elements(u16),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_tofino() {
        let c = Config::default();
        assert_eq!(
            (c.max_workers, c.slots, c.max_elements_per_packet),
            (32, 8192, 64)
        );
        assert_eq!(c.validate(), Ok(()));
    }

    #[test]
    fn emulator_limits() {
        let ok = Config {
            max_workers: 64,
            max_elements_per_packet: 16370,
            ..Config::default()
        };
        assert_eq!(ok.validate(), Ok(()));
        assert_eq!(Config::max_elements_limit(), 16370);
        let c = Config {
            max_workers: 65,
            ..Config::default()
        };
        assert_eq!(c.validate(), Err(ConfigError::Workers(65)));
        let c = Config {
            max_workers: 0,
            ..Config::default()
        };
        assert_eq!(c.validate(), Err(ConfigError::Workers(0)));
        let c = Config {
            slots: 0,
            ..Config::default()
        };
        assert_eq!(c.validate(), Err(ConfigError::NoSlots));
        let c = Config {
            max_elements_per_packet: 16371,
            ..Config::default()
        };
        assert_eq!(c.validate(), Err(ConfigError::Elements(16371)));
        let c = Config {
            max_elements_per_packet: 0,
            ..Config::default()
        };
        assert_eq!(c.validate(), Err(ConfigError::Elements(0)));
    }
}

//! The multicast group each job's results go to when the switch multicasts
//! them: one group per job, so that a worker's kernel accepts only its own
//! job's results and a worker of another job on the same segment gets none
//! (with IGMP snooping on the way; without, they are dropped at its socket
//! layer). The job id fills the group's last 16 bits, so every id has its
//! own group and no table is needed.

use std::net::Ipv4Addr;

use super::ControlConfigError;

/// The group of job `id` under `base` (checked by [`check_base`]).
pub fn result_group(base: Ipv4Addr, id: u16) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(base) | u32::from(id))
}

/// A base must be a multicast address `a.b.0.0` (all 65536 job groups are
/// then multicast) outside `224.0.0.0/16`, whose first block is reserved for
/// link-local protocols (IGMP, OSPF, mDNS).
pub fn check_base(base: Ipv4Addr) -> Result<(), ControlConfigError> {
    let [a, b, c, d] = base.octets();
    if !base.is_multicast() || (c, d) != (0, 0) || (a, b) == (224, 0) {
        return Err(ControlConfigError::ResultGroups(base));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_job_has_its_own_group_under_a_valid_base() {
        let base = Ipv4Addr::new(239, 72, 0, 0);
        check_base(base).unwrap();
        assert_eq!(result_group(base, 0), Ipv4Addr::new(239, 72, 0, 0));
        assert_eq!(result_group(base, 258), Ipv4Addr::new(239, 72, 1, 2));
        assert_eq!(
            result_group(base, u16::MAX),
            Ipv4Addr::new(239, 72, 255, 255)
        );
        for bad in [
            Ipv4Addr::new(10, 0, 0, 0),
            Ipv4Addr::new(239, 72, 0, 1),
            Ipv4Addr::new(239, 72, 1, 0),
            Ipv4Addr::new(224, 0, 0, 0),
            Ipv4Addr::new(240, 0, 0, 0),
        ] {
            assert_eq!(check_base(bad), Err(ControlConfigError::ResultGroups(bad)));
        }
    }
}

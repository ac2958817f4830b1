//! The slot pool as a set of free ranges. Jobs lease one contiguous range
//! each, so that admission on the switch is a range check (two comparisons
//! in a Tofino match table) rather than a per-slot owner lookup.

use std::collections::BTreeMap;

/// A contiguous range of slots owned by one job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Lease {
    /// First slot.
    pub base: u16,
    /// Number of slots.
    pub count: u16,
}

impl Lease {
    fn end(self) -> u32 {
        u32::from(self.base) + u32::from(self.count)
    }
}

/// Free-range allocator over slots `0..slots`, best fit, coalescing on release.
#[derive(Debug, Clone)]
pub struct LeasePool {
    slots: u16,
    /// Free ranges: base -> count, never adjacent, never overlapping.
    free: BTreeMap<u32, u32>,
}

impl LeasePool {
    /// A pool with every slot free.
    pub fn new(slots: u16) -> Self {
        let mut free = BTreeMap::new();
        if slots > 0 {
            free.insert(0, u32::from(slots));
        }
        LeasePool { slots, free }
    }

    /// Slots in the pool.
    pub fn slots(&self) -> u16 {
        self.slots
    }

    /// Leases `count` contiguous slots: the smallest free range that fits
    /// (lowest base on ties), so that large ranges stay available.
    pub fn allocate(&mut self, count: u16) -> Option<Lease> {
        if count == 0 {
            return None;
        }
        let want = u32::from(count);
        let (&base, &len) = self
            .free
            .iter()
            .filter(|(_, &len)| len >= want)
            .min_by_key(|(&base, &len)| (len, base))?;
        self.free.remove(&base);
        if len > want {
            self.free.insert(base + want, len - want);
        }
        Some(Lease {
            base: base as u16,
            count,
        })
    }

    /// Returns a lease to the pool. Returns false (and changes nothing) if
    /// the range is not entirely leased: a bug in the caller, never expected.
    pub fn release(&mut self, lease: Lease) -> bool {
        let (start, end) = (u32::from(lease.base), lease.end());
        if lease.count == 0 || end > u32::from(self.slots) {
            return false;
        }
        let before = self.free.range(..end).next_back().map(|(&b, &l)| (b, l));
        if let Some((b, l)) = before {
            if b + l > start {
                return false;
            }
        }
        let (mut new_base, mut new_len) = (start, end - start);
        if let Some((b, l)) = before {
            if b + l == start {
                self.free.remove(&b);
                new_base = b;
                new_len += l;
            }
        }
        if let Some(l) = self.free.remove(&end) {
            new_len += l;
        }
        self.free.insert(new_base, new_len);
        true
    }

    /// Free slots in total.
    pub fn free_slots(&self) -> u32 {
        self.free.values().sum()
    }

    /// The largest lease that can be granted now.
    pub fn largest_free(&self) -> u16 {
        self.free.values().copied().max().unwrap_or(0) as u16
    }

    /// Free ranges as (base, count), ascending.
    pub fn free_ranges(&self) -> impl Iterator<Item = Lease> + '_ {
        self.free.iter().map(|(&base, &count)| Lease {
            base: base as u16,
            count: count as u16,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocates_best_fit_and_coalesces() {
        let mut pool = LeasePool::new(100);
        let a = pool.allocate(30).unwrap();
        let b = pool.allocate(30).unwrap();
        let c = pool.allocate(30).unwrap();
        assert_eq!((a.base, b.base, c.base), (0, 30, 60));
        assert_eq!(pool.free_slots(), 10);
        assert_eq!(pool.allocate(11), None);
        assert!(pool.release(b));
        // 30 free at 30, 10 free at 90: a 10-slot lease takes the tight hole.
        assert_eq!(pool.allocate(10).unwrap().base, 90);
        assert!(pool.release(a));
        assert_eq!(pool.largest_free(), 60, "0..30 and 30..60 coalesced");
        assert!(pool.release(c));
        assert!(pool.release(Lease {
            base: 90,
            count: 10
        }));
        assert_eq!(
            pool.free_ranges().collect::<Vec<_>>(),
            [Lease {
                base: 0,
                count: 100
            }]
        );
    }

    #[test]
    fn refuses_double_free_and_out_of_range() {
        let mut pool = LeasePool::new(16);
        let a = pool.allocate(8).unwrap();
        assert!(!pool.release(Lease { base: 8, count: 4 }), "already free");
        assert!(
            !pool.release(Lease {
                base: 10,
                count: 10
            }),
            "past the pool"
        );
        assert!(pool.release(a));
        assert!(!pool.release(a), "double free");
        assert_eq!(pool.free_slots(), 16);
        assert_eq!(pool.allocate(0), None);
    }

    #[test]
    fn full_u16_pool() {
        let mut pool = LeasePool::new(u16::MAX);
        let a = pool.allocate(u16::MAX).unwrap();
        assert_eq!(pool.free_slots(), 0);
        assert!(pool.release(a));
        assert_eq!(pool.largest_free(), u16::MAX);
    }
}

//! The RTP port pool: which even ports of the configured range are free.
//!
//! Sans-IO, owned by the engine. RTP takes an even port `p` and RTCP the odd port `p + 1`
//! (RFC 3550 §11), so only even ports whose `p + 1` is still inside the range are handed out.
//!
//! Reuse is FIFO: a released port goes to the back of the free queue. A port is thus reused as
//! late as possible, and stray packets of the call that just ended (a phone still sending for a
//! few hundred ms after BYE) do not land in the next call's relay.

use std::collections::VecDeque;

use crate::config::PortRange;

/// A pool of even RTP ports.
#[derive(Debug, Clone)]
pub struct PortPool {
    /// The first (lowest) even port of the pool; slot `i` is port `first + 2 * i`.
    first: u16,
    /// Free ports, oldest-released first.
    free: VecDeque<u16>,
    /// One flag per slot: handed out and not yet released.
    allocated: Vec<bool>,
    in_use: usize,
}

impl PortPool {
    /// A pool of every even port `p` of `range` with `p + 1 <= hi` (port 0 excluded).
    pub fn new(range: PortRange) -> PortPool {
        let lo = u32::from(range.lo.max(1));
        let first = lo + lo % 2;
        let hi = u32::from(range.hi);
        let ports: VecDeque<u16> = (first..hi).step_by(2).filter_map(|p| u16::try_from(p).ok()).collect();
        let first = ports.front().copied().unwrap_or(0);
        PortPool { first, allocated: vec![false; ports.len()], free: ports, in_use: 0 }
    }

    /// The least recently released free port, or `None` when all are in use.
    pub fn allocate(&mut self) -> Option<u16> {
        let port = self.free.pop_front()?;
        if let Some(flag) = self.slot(port).and_then(|i| self.allocated.get_mut(i)) {
            *flag = true;
        }
        self.in_use += 1;
        Some(port)
    }

    /// Returns `port` to the back of the queue. A port that is not currently allocated (never
    /// handed out, outside the range, odd, or already released) is ignored.
    pub fn release(&mut self, port: u16) {
        let Some(flag) = self.slot(port).and_then(|i| self.allocated.get_mut(i)) else {
            return;
        };
        if !*flag {
            return;
        }
        *flag = false;
        self.in_use -= 1;
        self.free.push_back(port);
    }

    /// Ports currently handed out.
    pub fn in_use(&self) -> usize {
        self.in_use
    }

    /// How many ports the pool holds in total.
    pub fn capacity(&self) -> usize {
        self.allocated.len()
    }

    fn slot(&self, port: u16) -> Option<usize> {
        let offset = port.checked_sub(self.first)?;
        (offset % 2 == 0).then_some(usize::from(offset / 2))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(lo: u16, hi: u16) -> PortPool {
        PortPool::new(PortRange { lo, hi })
    }

    #[test]
    fn pool_holds_even_ports_whose_rtcp_port_fits() {
        let mut p = pool(10000, 10007);
        assert_eq!(p.capacity(), 4);
        let ports: Vec<u16> = std::iter::from_fn(|| p.allocate()).collect();
        assert_eq!(ports, [10000, 10002, 10004, 10006]);
    }

    #[test]
    fn odd_bounds_round_inward() {
        let mut p = pool(10001, 10006);
        let ports: Vec<u16> = std::iter::from_fn(|| p.allocate()).collect();
        assert_eq!(ports, [10002, 10004]);
    }

    #[test]
    fn top_of_the_port_space_does_not_overflow() {
        let mut p = pool(65530, 65535);
        let ports: Vec<u16> = std::iter::from_fn(|| p.allocate()).collect();
        assert_eq!(ports, [65530, 65532, 65534]);
    }

    #[test]
    fn empty_and_inverted_ranges_give_an_empty_pool() {
        assert_eq!(pool(10000, 10000).capacity(), 0);
        assert_eq!(pool(20000, 10000).allocate(), None);
        let mut zero = pool(0, 3);
        assert_eq!(zero.allocate(), Some(2));
        assert_eq!(zero.allocate(), None);
    }

    #[test]
    fn pool_never_hands_out_a_port_twice() {
        let mut p = pool(10000, 10999);
        let mut seen = std::collections::HashSet::new();
        while let Some(port) = p.allocate() {
            assert!(seen.insert(port), "{port} handed out twice");
        }
        assert_eq!(seen.len(), p.capacity());
        assert_eq!(p.in_use(), p.capacity());
    }

    #[test]
    fn released_ports_are_reused_last() {
        let mut p = pool(10000, 10007);
        let a = p.allocate().unwrap();
        let b = p.allocate().unwrap();
        p.release(a);
        assert_eq!(p.allocate(), Some(10004));
        assert_eq!(p.allocate(), Some(10006));
        assert_eq!(p.allocate(), Some(a));
        assert_eq!(p.allocate(), None);
        p.release(b);
        assert_eq!(p.allocate(), Some(b));
    }

    #[test]
    fn double_release_and_foreign_ports_are_ignored() {
        let mut p = pool(10000, 10007);
        let a = p.allocate().unwrap();
        p.release(a);
        p.release(a);
        p.release(10002); // never handed out
        p.release(10001); // odd
        p.release(9998); // below the range
        p.release(60000); // above the range
        assert_eq!(p.in_use(), 0);
        let all: Vec<u16> = std::iter::from_fn(|| p.allocate()).collect();
        assert_eq!(all, [10002, 10004, 10006, 10000]);
    }
}

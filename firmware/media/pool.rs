//! RTP port pool (interim minimal version on main; the media branch replaces it).
use crate::config::PortRange;
use std::collections::{HashSet, VecDeque};

/// Free even ports, FIFO.
#[derive(Debug)]
pub struct PortPool {
    free: VecDeque<u16>,
    used: HashSet<u16>,
    capacity: usize,
}

impl PortPool {
    /// Pool over a range.
    pub fn new(range: PortRange) -> PortPool {
        let lo = range.lo + (range.lo % 2);
        let free: VecDeque<u16> = (lo..range.hi).step_by(2).filter(|p| p + 1 <= range.hi).collect();
        let capacity = free.len();
        PortPool { free, used: HashSet::new(), capacity }
    }
    /// Takes a port.
    pub fn allocate(&mut self) -> Option<u16> {
        let p = self.free.pop_front()?;
        self.used.insert(p);
        Some(p)
    }
    /// Returns a port.
    pub fn release(&mut self, port: u16) {
        if self.used.remove(&port) {
            self.free.push_back(port);
        }
    }
    /// Ports in use.
    pub fn in_use(&self) -> usize {
        self.used.len()
    }
    /// Total ports.
    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

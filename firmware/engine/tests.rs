//! Engine tests with a virtual clock.

//! Whole-system test support: the deterministic simulator.

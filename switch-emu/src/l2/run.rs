//! Event loop (next commit).

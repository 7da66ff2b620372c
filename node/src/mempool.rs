//! Pending transactions: bounded, deduplicated, checked once, rechecked after each commit.

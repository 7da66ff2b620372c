//! The consensus write-ahead log: length- and CRC-framed records, torn-tail recovery, repair.

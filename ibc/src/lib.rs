//! Basalt IBC: light client, handshakes, packets, ICS-20 transfer, relayer.
#![forbid(unsafe_code)]

//! An honest node's files on the simulated disk, written and read back by the node's own code.
//!
//! - The WAL: bytes framed by `durability::wal::frame` and read back at boot as the node opens its log
//!   (`durability::wal::read_log`: the same scan and torn-tail rules as `Wal::open`). A crash that strikes
//!   during an append leaves a torn record — a prefix of it, sometimes followed by zero fill — which the
//!   reader must cut off, never mistake for corruption.
//! - The signer state (`priv_validator_state.json`): encoded by `privval::encode_state` on every new
//!   signature (the node replaces the file atomically) and decoded by `privval::decode_state` at boot.

use std::path::Path;

use rand_core::RngCore;

use basalt_node::durability::privval::{decode_state, LastSignState};
use basalt_node::durability::wal::{frame, read_log, RECORD_HEADER_BYTES};
use basalt_node::runtime::walrec::WalRecord;

use super::{Crashed, NodeId, Sim};

/// The name the log's errors carry.
const WAL_PATH: &str = "sim/data/cs.wal/wal";

impl Sim {
    /// Appends `record` to the node's log (a crash point). A crash here leaves part of the record on disk.
    pub(super) fn wal_append(&mut self, id: NodeId, record: WalRecord) -> Result<(), Crashed> {
        let framed = match frame(Path::new(WAL_PATH), &record.to_bytes()) {
            Ok(framed) => framed,
            Err(e) => {
                self.record.unreadable.push((id, e.to_string()));
                return Err(Crashed);
            }
        };
        if let Err(crashed) = self.step(id) {
            // Nothing, part of the header, part of the payload, or all but the last byte reached the disk.
            let len = framed.len() as u64;
            let cut = match self.traffic_rng.next_u32() % 4 {
                0 => 0,
                1 => self.traffic_rng.next_u64() % RECORD_HEADER_BYTES,
                2 => self.traffic_rng.next_u64() % len,
                _ => len - 1,
            } as usize;
            let disk = &mut self.nodes[id].persisted.wal_bytes;
            disk.extend_from_slice(&framed[..cut]);
            if self.traffic_rng.next_u32().is_multiple_of(2) {
                // The file system extended the file before the data reached it.
                disk.resize(disk.len() + framed.len() - cut, 0);
            }
            return Err(crashed);
        }
        let persisted = &mut self.nodes[id].persisted;
        persisted.wal_bytes.extend_from_slice(&framed);
        persisted.wal.push(record);
        Ok(())
    }

    /// At boot: the log read as the node opens it (a torn tail cut off), its records decoded.
    pub(super) fn wal_reopen(&mut self, id: NodeId) {
        let persisted = &mut self.nodes[id].persisted;
        let contents = match read_log(Path::new(WAL_PATH), &persisted.wal_bytes) {
            Ok(contents) => contents,
            Err(e) => {
                // A crash tears only the last record: anything else is a bug in the log's code.
                self.record.unreadable.push((id, e.to_string()));
                persisted.wal.clear();
                return;
            }
        };
        if contents.truncated_tail.is_some() {
            self.record.torn_tails += 1;
            let good = usize::try_from(contents.good_len).unwrap_or(usize::MAX);
            persisted.wal_bytes.truncate(good);
        }
        let mut records = Vec::with_capacity(contents.records.len());
        for bytes in &contents.records {
            match WalRecord::from_bytes(bytes) {
                Ok(record) => records.push(record),
                Err(e) => {
                    self.record.unreadable.push((id, e.to_string()));
                    break;
                }
            }
        }
        persisted.wal = records;
    }

    /// At boot: the signer state the node loads from its file.
    pub(super) fn signer_reopen(&mut self, id: NodeId) {
        let node = &mut self.nodes[id];
        node.last_signed = match decode_state(&node.persisted.sign_state_file) {
            Ok(state) => state,
            Err(reason) => {
                self.record
                    .unreadable
                    .push((id, format!("signer state: {reason}")));
                LastSignState::default()
            }
        };
    }

    /// Replaces the log with the node's retained records (the node's atomic `Wal::rewrite`, done when it
    /// joins consensus and drops the records of heights block sync moved past).
    pub(super) fn wal_rewrite(&mut self, id: NodeId) {
        let persisted = &mut self.nodes[id].persisted;
        let mut bytes = Vec::new();
        for record in &persisted.wal {
            match frame(Path::new(WAL_PATH), &record.to_bytes()) {
                Ok(framed) => bytes.extend_from_slice(&framed),
                Err(e) => self.record.unreadable.push((id, e.to_string())),
            }
        }
        persisted.wal_bytes = bytes;
    }
}

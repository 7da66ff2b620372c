//! Event queries matched against what the node commits: the parsed query ([`TxQuery`], from
//! `basalt_jsonrpc::query`, where the grammar and the keys Basalt serves are described) is applied to
//! committed transactions and blocks by [`QueryMatch`].

use basalt_consensus::types::Hash;
use basalt_state::app::Event;

pub use basalt_jsonrpc::query::{
    Condition, EventKind, Op, Operand, QueryError, TxQuery, MAX_CONDITIONS, MAX_QUERY_BYTES,
};

use super::backend::IndexedTx;

/// Matching a parsed query against the node's committed data.
pub trait QueryMatch {
    /// The query's conditions.
    fn conditions(&self) -> &[Condition];

    /// The transaction hash a `tx.hash` condition names, if any.
    fn hash(&self) -> Option<Hash> {
        self.conditions()
            .iter()
            .find(|c| c.key == "tx.hash")
            .and_then(|c| match &c.operand {
                Operand::Str(s) => Hash::from_hex(s).ok(),
                _ => None,
            })
    }

    /// Whether a committed transaction matches every condition (a `tm.event` condition must be `'Tx'`).
    fn matches(&self, tx: &IndexedTx) -> bool {
        self.conditions().iter().all(|c| match c.key.as_str() {
            "tm.event" => c.operand == Operand::Str("Tx".into()),
            "tx.height" => compare_int(i128::from(tx.height), c.op, &c.operand),
            "tx.hash" => match &c.operand {
                Operand::Str(s) => s.eq_ignore_ascii_case(&tx.tx.hash().to_hex_upper()),
                _ => false,
            },
            key => events_match(&tx.result.events, key, c.op, &c.operand),
        })
    }

    /// Whether a committed block matches as a `NewBlock` event (`block_search`, subscriptions).
    fn matches_block(&self, height: u64, events: &[Event]) -> bool {
        self.matches_block_event(EventKind::NewBlock, height, events)
    }

    /// Whether the `kind` event of a committed block matches: `tm.event` must name `kind`, `block.height`
    /// conditions compare the height, and event attribute conditions are checked against the block-level
    /// events — except for `NewBlockHeader`, which carries none (as in CometBFT v0.38). Other kinds never
    /// match a block.
    fn matches_block_event(&self, kind: EventKind, height: u64, events: &[Event]) -> bool {
        if !matches!(
            kind,
            EventKind::NewBlock | EventKind::NewBlockHeader | EventKind::NewBlockEvents
        ) {
            return false;
        }
        self.conditions().iter().all(|c| match c.key.as_str() {
            "tm.event" => c.operand == Operand::Str(kind.name().into()),
            "block.height" => compare_int(i128::from(height), c.op, &c.operand),
            "tx.height" | "tx.hash" => false,
            _ if kind == EventKind::NewBlockHeader => false,
            key => events_match(events, key, c.op, &c.operand),
        })
    }
}

/// Whether an event that carries nothing but its type (CometBFT's consensus events and `NewEvidence`:
/// their event map is `tm.event` alone) matches: every condition must be `tm.event` naming `kind`.
pub fn matches_plain_event(query: &TxQuery, kind: EventKind) -> bool {
    query
        .conditions()
        .iter()
        .all(|c| c.key == "tm.event" && c.operand == Operand::Str(kind.name().into()))
}

impl QueryMatch for TxQuery {
    fn conditions(&self) -> &[Condition] {
        TxQuery::conditions(self)
    }
}

fn compare_int(actual: i128, op: Op, operand: &Operand) -> bool {
    let Operand::Int(v) = operand else {
        return op == Op::Exists;
    };
    match op {
        Op::Eq => actual == *v,
        Op::Lt => actual < *v,
        Op::Le => actual <= *v,
        Op::Gt => actual > *v,
        Op::Ge => actual >= *v,
        Op::Contains => false,
        Op::Exists => true,
    }
}

/// Whether some event `type` of `events` has attribute `attr` (from `key` = `type.attr`) matching.
fn events_match(events: &[Event], key: &str, op: Op, operand: &Operand) -> bool {
    let Some((kind, attr)) = key.split_once('.') else {
        return false;
    };
    events
        .iter()
        .filter(|e| e.kind == kind)
        .flat_map(|e| e.attributes.iter())
        .filter(|a| a.key == attr)
        .any(|a| match (op, operand) {
            (Op::Exists, _) => true,
            (Op::Eq, Operand::Str(s)) => a.value == *s,
            (Op::Contains, Operand::Str(s)) => a.value.contains(s.as_str()),
            (_, Operand::Int(_)) => a
                .value
                .parse::<i128>()
                .is_ok_and(|v| compare_int(v, op, operand)),
            _ => false,
        })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use basalt_consensus::types::Tx;
    use basalt_state::app::TxResult;

    fn tx(height: u64, sender: &str) -> IndexedTx {
        IndexedTx {
            height,
            index: 0,
            tx: Tx::new(vec![height as u8 + 1]).unwrap(),
            result: TxResult {
                code: 0,
                log: String::new(),
                gas_wanted: 1,
                gas_used: 1,
                events: vec![Event::new(
                    "transfer",
                    &[("sender", sender.into()), ("amount", "42".into())],
                )],
            },
        }
    }

    #[test]
    fn parses_conjunctions() {
        let q = TxQuery::parse("tx.height>=5 AND tx.height<=9 AND transfer.sender='AB'").unwrap();
        assert_eq!(q.conditions().len(), 3);
        assert_eq!(q.height_range(), (5, 9));
        assert!(q.matches(&tx(5, "AB")));
        assert!(q.matches(&tx(9, "AB")));
        assert!(!q.matches(&tx(10, "AB")));
        assert!(!q.matches(&tx(6, "CD")));
        let q = TxQuery::parse("tx.height = 5").unwrap();
        assert_eq!(q.height_range(), (5, 5));
        let q = TxQuery::parse("tx.height > 5 and tx.height < 7").unwrap();
        assert_eq!(q.height_range(), (6, 6));
    }

    #[test]
    fn event_kind_and_hash() {
        let q = TxQuery::parse("tm.event='NewBlock'").unwrap();
        assert_eq!(q.event_kind(), Some(EventKind::NewBlock));
        assert!(q.matches_block(3, &[]));
        let h = Tx::new(vec![6]).unwrap().hash();
        let q = TxQuery::parse(&format!("tm.event = 'Tx' AND tx.hash = '{h}'")).unwrap();
        assert_eq!(q.event_kind(), Some(EventKind::Tx));
        assert_eq!(q.hash(), Some(h));
        assert!(q.matches(&tx(5, "X")));
        assert!(!q.matches(&tx(4, "X")));
    }

    #[test]
    fn consensus_events_match_their_type_only() {
        let vote = TxQuery::parse("tm.event='Vote'").unwrap();
        assert_eq!(vote.event_kind(), Some(EventKind::Vote));
        assert!(EventKind::Vote.is_consensus());
        assert!(matches_plain_event(&vote, EventKind::Vote));
        assert!(!matches_plain_event(&vote, EventKind::Polka));
        // Their event map holds tm.event alone, as CometBFT's: any other condition cannot match.
        let narrowed = TxQuery::parse("tm.event='Vote' AND block.height=3").unwrap();
        assert!(!matches_plain_event(&narrowed, EventKind::Vote));
        // Nor do they match a block or a transaction.
        assert!(!vote.matches_block_event(EventKind::Vote, 3, &[]));
        assert!(!vote.matches(&tx(3, "A")));
        for kind in EventKind::ALL {
            assert_eq!(EventKind::from_name(kind.name()), Some(kind));
        }
    }

    #[test]
    fn numeric_attributes_contains_exists() {
        assert!(TxQuery::parse("transfer.amount > 41")
            .unwrap()
            .matches(&tx(1, "A")));
        assert!(!TxQuery::parse("transfer.amount > 42")
            .unwrap()
            .matches(&tx(1, "A")));
        assert!(TxQuery::parse("transfer.sender CONTAINS 'BC'")
            .unwrap()
            .matches(&tx(1, "ABCD")));
        assert!(TxQuery::parse("transfer.sender EXISTS")
            .unwrap()
            .matches(&tx(1, "A")));
        assert!(!TxQuery::parse("transfer.recipient EXISTS")
            .unwrap()
            .matches(&tx(1, "A")));
    }

    #[test]
    fn refuses_what_is_not_served() {
        let cases = [
            ("", "empty"),
            ("   ", "empty"),
            ("tx.height=5 OR tx.height=6", "OR"),
            ("(tx.height=5)", "parentheses"),
            ("tx.height=1.5", "non-integer"),
            ("block.time >= TIME 2013-05-03T14:45:00Z", "TIME"),
            ("tm.event='Bond'", "tm.event"),
            ("tm.event CONTAINS 'Vote'", "tm.event"),
            ("tx.hash='zz'", "tx.hash"),
            ("tx.height='x'", "integer"),
            ("sender='x'", "expected tm.event"),
            ("tx.height=", "expected a 'string'"),
            ("tx.height 5", "expected ="),
            ("a.b='unterminated", "unterminated"),
            ("a.b='x' a.c='y'", "expected AND"),
        ];
        for (text, needle) in cases {
            let err = TxQuery::parse(text).unwrap_err().to_string();
            assert!(err.contains(needle), "{text:?}: {err}");
        }
        let long = format!("a.b='{}'", "x".repeat(MAX_QUERY_BYTES));
        assert!(matches!(
            TxQuery::parse(&long),
            Err(QueryError::TooLong { .. })
        ));
        let many = vec!["a.b=1"; MAX_CONDITIONS + 1].join(" AND ");
        assert!(matches!(
            TxQuery::parse(&many),
            Err(QueryError::TooManyConditions { .. })
        ));
    }

    #[test]
    fn negative_numbers_and_empty_range() {
        let q = TxQuery::parse("tx.height > -1").unwrap();
        assert_eq!(q.conditions()[0].operand, Operand::Int(-1));
        let q = TxQuery::parse("tx.height > 9 AND tx.height < 3").unwrap();
        let (min, max) = q.height_range();
        assert!(min > max);
    }
}

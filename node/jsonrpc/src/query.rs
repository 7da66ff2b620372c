//! CometBFT event queries (`tx_search`'s `query`, websocket `subscribe`): the grammar and keys Basalt
//! serves, parsed and checked. Matching against committed blocks and transactions is the node's
//! (`basalt_node::rpc::query`).
//!
//! Grammar: `condition (AND condition)*`, where a condition is `key op operand` or `key EXISTS`, `op` is
//! one of `=`, `<`, `<=`, `>`, `>=`, `CONTAINS`, and an operand is a single-quoted string or an integer.
//! Keys:
//! - `tm.event` — one of CometBFT v0.38's event types (only `=`; see [`EventKind`]);
//! - `tx.height` — an integer, any comparison;
//! - `tx.hash` — 64 hex characters (only `=`);
//! - `<event type>.<attribute>` — e.g. `transfer.sender='<HEX>'`: some event of that type has the
//!   attribute with a matching value (integers compare numerically when both sides are integers).
//!
//! `OR`, parentheses, floats, `TIME`/`DATE` operands are refused with a message naming what is not
//! supported.

use std::fmt;

/// Longest query accepted, in bytes (CometBFT's limit for subscriptions).
pub const MAX_QUERY_BYTES: usize = 512;
/// Most conditions in one query.
pub const MAX_CONDITIONS: usize = 16;

/// Why a query string is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// Empty query.
    #[error("query is empty")]
    Empty,
    /// Longer than [`MAX_QUERY_BYTES`].
    #[error("query of {len} bytes exceeds the limit of {max} bytes")]
    TooLong {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// More than [`MAX_CONDITIONS`] conditions.
    #[error("query has more than {max} conditions")]
    TooManyConditions {
        /// The limit.
        max: usize,
    },
    /// Not valid syntax at a position.
    #[error("query syntax error at byte {position}: {reason}")]
    Syntax {
        /// Byte offset.
        position: usize,
        /// What was expected.
        reason: String,
    },
    /// Valid CometBFT syntax that Basalt does not serve.
    #[error("unsupported query: {what}")]
    Unsupported {
        /// What is not supported.
        what: String,
    },
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `=`
    Eq,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `CONTAINS` (substring)
    Contains,
    /// `EXISTS` (no operand)
    Exists,
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Op::Eq => "=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Contains => "CONTAINS",
            Op::Exists => "EXISTS",
        })
    }
}

/// The right-hand side of a condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operand {
    /// A quoted string.
    Str(String),
    /// An integer.
    Int(i128),
    /// None (`EXISTS`).
    None,
}

/// One `key op operand` condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    /// The composite key, e.g. `transfer.sender`.
    pub key: String,
    /// The operator.
    pub op: Op,
    /// The operand.
    pub operand: Operand,
}

/// Which node event a `tm.event` condition selects: CometBFT v0.38's event types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// `tm.event='NewBlock'`: the block with its results.
    NewBlock,
    /// `tm.event='NewBlockHeader'`: the block's header only (CosmJS's `subscribeNewBlockHeader`).
    NewBlockHeader,
    /// `tm.event='NewBlockEvents'`: the block's height, finalize-block events and transaction count.
    NewBlockEvents,
    /// `tm.event='Tx'`: one committed transaction with its result.
    Tx,
    /// `tm.event='NewEvidence'`: evidence committed in a block.
    NewEvidence,
    /// `tm.event='ValidatorSetUpdates'`: the validator set changed (never, while Basalt's set is fixed
    /// at genesis).
    ValidatorSetUpdates,
    /// `tm.event='NewRound'`: a consensus round started.
    NewRound,
    /// `tm.event='NewRoundStep'`: the consensus step changed.
    NewRoundStep,
    /// `tm.event='CompleteProposal'`: a whole proposal arrived.
    CompleteProposal,
    /// `tm.event='Vote'`: a vote was accepted.
    Vote,
    /// `tm.event='Polka'`: +2/3 prevoted for one block or nil.
    Polka,
    /// `tm.event='Lock'`: the node locked on a block.
    Lock,
    /// `tm.event='Relock'`: the node moved its lock to a later round.
    Relock,
    /// `tm.event='Unlock'`: the node released its lock (never: Basalt's algorithm keeps locks).
    Unlock,
    /// `tm.event='ValidBlock'`: the valid block changed.
    ValidBlock,
    /// `tm.event='TimeoutPropose'`: the propose timeout fired.
    TimeoutPropose,
    /// `tm.event='TimeoutWait'`: a prevote or precommit wait timeout fired.
    TimeoutWait,
}

impl EventKind {
    /// Every kind served.
    pub const ALL: [EventKind; 17] = [
        EventKind::NewBlock,
        EventKind::NewBlockHeader,
        EventKind::NewBlockEvents,
        EventKind::Tx,
        EventKind::NewEvidence,
        EventKind::ValidatorSetUpdates,
        EventKind::NewRound,
        EventKind::NewRoundStep,
        EventKind::CompleteProposal,
        EventKind::Vote,
        EventKind::Polka,
        EventKind::Lock,
        EventKind::Relock,
        EventKind::Unlock,
        EventKind::ValidBlock,
        EventKind::TimeoutPropose,
        EventKind::TimeoutWait,
    ];

    /// Whether it is one of the consensus state machine's events (published as they happen, not with a
    /// committed block).
    pub fn is_consensus(self) -> bool {
        !matches!(
            self,
            EventKind::NewBlock
                | EventKind::NewBlockHeader
                | EventKind::NewBlockEvents
                | EventKind::Tx
                | EventKind::NewEvidence
                | EventKind::ValidatorSetUpdates
        )
    }

    /// Its CometBFT name (the `tm.event` value).
    pub fn name(self) -> &'static str {
        match self {
            EventKind::NewBlock => "NewBlock",
            EventKind::NewBlockHeader => "NewBlockHeader",
            EventKind::NewBlockEvents => "NewBlockEvents",
            EventKind::Tx => "Tx",
            EventKind::NewEvidence => "NewEvidence",
            EventKind::ValidatorSetUpdates => "ValidatorSetUpdates",
            EventKind::NewRound => "NewRound",
            EventKind::NewRoundStep => "NewRoundStep",
            EventKind::CompleteProposal => "CompleteProposal",
            EventKind::Vote => "Vote",
            EventKind::Polka => "Polka",
            EventKind::Lock => "Lock",
            EventKind::Relock => "Relock",
            EventKind::Unlock => "Unlock",
            EventKind::ValidBlock => "ValidBlock",
            EventKind::TimeoutPropose => "TimeoutPropose",
            EventKind::TimeoutWait => "TimeoutWait",
        }
    }

    /// The kind named `name`, if served.
    pub fn from_name(name: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// The served names, quoted and comma-separated (for error messages).
    pub fn names() -> String {
        EventKind::ALL
            .iter()
            .map(|k| format!("'{}'", k.name()))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// A parsed query: conditions that must all hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxQuery {
    text: String,
    conditions: Vec<Condition>,
}

impl TxQuery {
    /// Parses and checks a query string.
    pub fn parse(text: &str) -> Result<TxQuery, QueryError> {
        if text.len() > MAX_QUERY_BYTES {
            return Err(QueryError::TooLong {
                len: text.len(),
                max: MAX_QUERY_BYTES,
            });
        }
        let conditions = Parser { s: text, pos: 0 }.parse()?;
        for c in &conditions {
            check_supported(c)?;
        }
        Ok(TxQuery {
            text: text.to_owned(),
            conditions,
        })
    }

    /// The query as given.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The conditions, in the order written.
    pub fn conditions(&self) -> &[Condition] {
        &self.conditions
    }

    /// The event kind selected by `tm.event`, if the query has that condition.
    pub fn event_kind(&self) -> Option<EventKind> {
        self.conditions
            .iter()
            .find(|c| c.key == "tm.event")
            .and_then(|c| match &c.operand {
                Operand::Str(s) => EventKind::from_name(s),
                _ => None,
            })
    }

    /// The inclusive height range the `tx.height` conditions allow (`(1, u64::MAX)` if none); an empty
    /// range has `min > max`. Lets an index scan only the heights that can match.
    pub fn height_range(&self) -> (u64, u64) {
        let (mut min, mut max) = (1u64, u64::MAX);
        for c in self.conditions.iter().filter(|c| c.key == "tx.height") {
            let Operand::Int(v) = c.operand else { continue };
            let v = v.clamp(0, u64::MAX as i128) as u64;
            match c.op {
                Op::Eq => {
                    min = min.max(v);
                    max = max.min(v);
                }
                Op::Lt => max = max.min(v.saturating_sub(1)),
                Op::Le => max = max.min(v),
                Op::Gt => min = min.max(v.saturating_add(1)),
                Op::Ge => min = min.max(v),
                Op::Contains | Op::Exists => {}
            }
        }
        (min, max)
    }
}

impl fmt::Display for TxQuery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

fn check_supported(c: &Condition) -> Result<(), QueryError> {
    let unsupported = |what: String| Err(QueryError::Unsupported { what });
    match c.key.as_str() {
        "tm.event" => match (&c.op, &c.operand) {
            (Op::Eq, Operand::Str(s)) if EventKind::from_name(s).is_some() => Ok(()),
            _ => unsupported(format!(
                "tm.event supports only = one of {}, got {} {}",
                EventKind::names(),
                c.op,
                operand_text(&c.operand)
            )),
        },
        "tx.height" | "block.height" => match (&c.op, &c.operand) {
            (Op::Exists, _) | (_, Operand::Int(_)) if c.op != Op::Contains => Ok(()),
            _ => unsupported(format!("{} needs an integer comparison", c.key)),
        },
        "tx.hash" => match (&c.op, &c.operand) {
            (Op::Eq, Operand::Str(s)) if is_hash_hex(s) => Ok(()),
            _ => unsupported("tx.hash supports only = '<64 hex characters>'".into()),
        },
        key => {
            let valid = key
                .split_once('.')
                .is_some_and(|(kind, attr)| !kind.is_empty() && !attr.is_empty());
            if valid {
                Ok(())
            } else {
                unsupported(format!(
                    "key {key:?}: expected tm.event, tx.height, tx.hash or <event type>.<attribute>"
                ))
            }
        }
    }
}

fn operand_text(o: &Operand) -> String {
    match o {
        Operand::Str(s) => format!("'{s}'"),
        Operand::Int(i) => i.to_string(),
        Operand::None => String::new(),
    }
}

struct Parser<'a> {
    s: &'a str,
    pos: usize,
}

impl Parser<'_> {
    fn parse(mut self) -> Result<Vec<Condition>, QueryError> {
        self.skip_ws();
        if self.pos == self.s.len() {
            return Err(QueryError::Empty);
        }
        let mut out = Vec::new();
        loop {
            if out.len() == MAX_CONDITIONS {
                return Err(QueryError::TooManyConditions {
                    max: MAX_CONDITIONS,
                });
            }
            out.push(self.condition()?);
            self.skip_ws();
            if self.pos == self.s.len() {
                return Ok(out);
            }
            let word = self.word();
            match word.to_ascii_uppercase().as_str() {
                "AND" => {}
                "OR" => {
                    return Err(QueryError::Unsupported {
                        what: "OR (only AND is supported)".into(),
                    })
                }
                _ => return Err(self.error("expected AND")),
            }
        }
    }

    fn rest(&self) -> &str {
        &self.s[self.pos..]
    }

    fn skip_ws(&mut self) {
        let trimmed = self.rest().trim_start();
        self.pos = self.s.len() - trimmed.len();
    }

    fn error(&self, reason: &str) -> QueryError {
        QueryError::Syntax {
            position: self.pos,
            reason: reason.to_owned(),
        }
    }

    /// A run of key characters (letters, digits, `.`, `_`, `-`, `/`).
    fn word(&mut self) -> &str {
        self.skip_ws();
        let start = self.pos;
        let len = self
            .rest()
            .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/')))
            .unwrap_or(self.rest().len());
        self.pos += len;
        &self.s[start..self.pos]
    }

    fn condition(&mut self) -> Result<Condition, QueryError> {
        if self.rest().trim_start().starts_with('(') {
            return Err(QueryError::Unsupported {
                what: "parentheses".into(),
            });
        }
        let key = self.word().to_owned();
        if key.is_empty() {
            return Err(self.error("expected a key such as tx.height"));
        }
        self.skip_ws();
        let op = self.op()?;
        if op == Op::Exists {
            return Ok(Condition {
                key,
                op,
                operand: Operand::None,
            });
        }
        self.skip_ws();
        let operand = self.operand()?;
        Ok(Condition { key, op, operand })
    }

    fn op(&mut self) -> Result<Op, QueryError> {
        for (text, op) in [
            ("<=", Op::Le),
            (">=", Op::Ge),
            ("=", Op::Eq),
            ("<", Op::Lt),
            (">", Op::Gt),
        ] {
            if self.rest().starts_with(text) {
                self.pos += text.len();
                return Ok(op);
            }
        }
        let save = self.pos;
        let word = self.word().to_ascii_uppercase();
        match word.as_str() {
            "CONTAINS" => Ok(Op::Contains),
            "EXISTS" => Ok(Op::Exists),
            _ => {
                self.pos = save;
                Err(self.error("expected =, <, <=, >, >=, CONTAINS or EXISTS"))
            }
        }
    }

    fn operand(&mut self) -> Result<Operand, QueryError> {
        if let Some(body) = self.rest().strip_prefix('\'') {
            let Some(end) = body.find('\'') else {
                return Err(self.error("unterminated string"));
            };
            let value = body[..end].to_owned();
            self.pos += end + 2;
            return Ok(Operand::Str(value));
        }
        let word = self.word().to_owned();
        if word.eq_ignore_ascii_case("TIME") || word.eq_ignore_ascii_case("DATE") {
            return Err(QueryError::Unsupported {
                what: "TIME and DATE operands".into(),
            });
        }
        if word.is_empty() {
            return Err(self.error("expected a 'string' or an integer"));
        }
        if word.contains('.') {
            return Err(QueryError::Unsupported {
                what: format!("non-integer number {word}"),
            });
        }
        // Key characters include '-', so a negative integer arrives whole.
        let value: i128 = word
            .parse()
            .map_err(|_| self.error("expected a 'string' or an integer"))?;
        Ok(Operand::Int(value))
    }
}

/// 64 hex characters: a 32-byte hash as CometBFT writes it.
fn is_hash_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

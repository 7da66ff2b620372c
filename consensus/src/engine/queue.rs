//! The order in which a node acts on its engine's outputs.
//!
//! Acting on an output can feed the engine again — an own signed vote is fed back, a decision starts the
//! next height, a built block is proposed — and the engine answers with more outputs. Acting on those at
//! once (depth first) runs them ahead of outputs the engine produced earlier: a node could decide, start
//! the next height and sign there, and only then reach the earlier height's remaining sign requests, which
//! its signer must refuse as regressions (simulation seed 1004608: an honest signer asked for height 5
//! after it had signed height 6). [`OutputQueue`] keeps the engine's own order instead: outputs are acted
//! on first in, first out, and those produced while acting are queued behind the rest. The engine produces
//! outputs in the order of its steps, so sign requests reach the signer in height/round/step order.

use std::collections::VecDeque;

use super::EngineOutput;

/// Engine outputs waiting to be acted on, in the order the engine produced them.
///
/// The node's driver and the simulation use it the same way:
///
/// ```ignore
/// fn process(&mut self, outputs: Vec<EngineOutput>) -> Result<(), E> {
///     if !self.queue.push(outputs) {
///         return Ok(()); // an outer call is draining the queue and will reach these
///     }
///     while let Some(output) = self.queue.pop() {
///         if let Err(e) = self.act(output) {
///             self.queue.clear();
///             return Err(e);
///         }
///     }
///     Ok(())
/// }
/// ```
#[derive(Debug, Default)]
pub struct OutputQueue {
    pending: VecDeque<EngineOutput>,
    draining: bool,
}

impl OutputQueue {
    /// An empty queue.
    pub fn new() -> OutputQueue {
        OutputQueue::default()
    }

    /// Queues `outputs` behind those already waiting. Returns `true` when no one is draining the queue:
    /// the caller must then drain it with [`OutputQueue::pop`] until it returns `None` (or
    /// [`OutputQueue::clear`] it on error). `false` means an outer caller is draining and will act on
    /// these in turn.
    pub fn push(&mut self, outputs: Vec<EngineOutput>) -> bool {
        self.pending.extend(outputs);
        if self.draining {
            false
        } else {
            self.draining = true;
            true
        }
    }

    /// The next output to act on; `None` once the queue is empty, which also ends the drain.
    pub fn pop(&mut self) -> Option<EngineOutput> {
        let next = self.pending.pop_front();
        if next.is_none() {
            self.draining = false;
        }
        next
    }

    /// Drops everything waiting and ends the drain (after an error, or when the node restarts).
    pub fn clear(&mut self) {
        self.pending.clear();
        self.draining = false;
    }

    /// How many outputs wait.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// Whether none wait.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::primitives::{Height, Round};

    fn build(height: u64) -> EngineOutput {
        EngineOutput::BuildBlock {
            height: Height(height),
            round: Round(0),
        }
    }

    fn height_of(output: &EngineOutput) -> u64 {
        match output {
            EngineOutput::BuildBlock { height, .. } => height.0,
            _ => unreachable!("the test queues only BuildBlock"),
        }
    }

    /// Acting on an output that yields more outputs queues them behind the earlier ones: the order acted
    /// on is the order produced, not depth first.
    #[test]
    fn outputs_produced_while_acting_wait_behind_earlier_ones() {
        let mut queue = OutputQueue::new();
        let mut acted = Vec::new();
        assert!(queue.push(vec![build(1), build(2)]));
        while let Some(output) = queue.pop() {
            let height = height_of(&output);
            acted.push(height);
            if height == 1 {
                // Nested: an inner caller must not drain.
                assert!(!queue.push(vec![build(10), build(11)]));
            }
        }
        assert_eq!(acted, vec![1, 2, 10, 11]);
        assert!(queue.is_empty());
        // The drain ended: the next push is outermost again.
        assert!(queue.push(vec![build(3)]));
        assert_eq!(queue.len(), 1);
    }

    #[test]
    fn clear_ends_the_drain() {
        let mut queue = OutputQueue::new();
        assert!(queue.push(vec![build(1), build(2)]));
        assert!(!queue.push(vec![build(3)]));
        queue.clear();
        assert!(queue.is_empty());
        assert!(queue.push(vec![]));
        assert_eq!(queue.pop().map(|o| height_of(&o)), None);
        assert!(queue.push(vec![build(4)]));
    }
}

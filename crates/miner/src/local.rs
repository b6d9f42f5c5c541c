//! A minimal in-process driver with virtual time: subnets are a closure returning each call's
//! outcome and latency. Used by tests and usable by a simulator that models subnets as pure
//! functions; a live node drives [`Miner`] with real IO instead.

use crate::execution::{SubCall, SubCallOutcome};
use crate::miner::{Miner, Session};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

/// Drive `session` from `start_ms` until it is finished, answering every sub-call with
/// `subnet(call) = (outcome, latency_ms)`. Calls run concurrently in virtual time; results and
/// timeouts are processed in time order (results first on ties, then by call id). Returns the
/// virtual time at which the session finished.
pub fn drive(
    miner: &mut Miner,
    session: &mut Session,
    start_ms: u64,
    mut subnet: impl FnMut(&SubCall) -> (SubCallOutcome, u64),
) -> u64 {
    let mut now = start_ms;
    let mut queue: BinaryHeap<Reverse<(u64, u64)>> = BinaryHeap::new();
    let mut outcomes: BTreeMap<u64, SubCallOutcome> = BTreeMap::new();
    loop {
        while let Some(call) = miner.poll_subcall(session, now) {
            let (outcome, latency) = subnet(&call);
            queue.push(Reverse((now.saturating_add(latency), call.call_id)));
            outcomes.insert(call.call_id, outcome);
        }
        if session.is_finished() {
            return now;
        }
        let next_result = queue.peek().map(|Reverse((t, _))| *t);
        let next_timeout = session.poll_timeout();
        let result_first = match (next_result, next_timeout) {
            (None, None) => return now,
            (Some(r), Some(t)) => r <= t,
            (Some(_), None) => true,
            (None, Some(_)) => false,
        };
        if result_first {
            if let Some(Reverse((at, id))) = queue.pop() {
                now = now.max(at);
                if let Some(o) = outcomes.remove(&id) {
                    miner.on_subcall_result(session, id, o, now);
                }
            }
        } else if let Some(t) = next_timeout {
            now = now.max(t);
            miner.handle_timeout(session, now);
        }
    }
}

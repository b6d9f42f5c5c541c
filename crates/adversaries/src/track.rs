//! [`CallTracker`]: which challenge a sub-call belongs to.
//!
//! A [`Miner`](orchestra_miner::Miner) may answer several challenges at once, and the
//! `on_subcall`/`on_subcall_outcome` hooks do not say which challenge a call serves. A strategy
//! whose decision is per challenge (fabricate this one, share that one) recovers it from the
//! call's `request_id`, which the execution derives as `blake3::keyed(lock0, step_id ‖ call_id)`:
//! the tracker remembers the locks of recent challenges and recomputes. This mirrors a private
//! detail of `orchestra_miner::execution`; the tests fail loudly if it ever changes.

use orchestra_miner::{CallRef, SubCall};
use orchestra_protocol::hash::Hash32;
use orchestra_protocol::messages::Challenge;
use orchestra_protocol::proof::lock0;
use std::collections::{BTreeMap, VecDeque};

/// How many challenges a tracker remembers: far more than a miner answers concurrently.
pub const TRACKED_CHALLENGES: usize = 64;

/// Per-challenge state `T`, found again from sub-calls.
#[derive(Debug, Clone)]
pub struct CallTracker<T> {
    entries: VecDeque<(u64, Hash32, T)>,
    by_request: BTreeMap<String, u64>,
    next_id: u64,
}

impl<T> Default for CallTracker<T> {
    fn default() -> Self {
        CallTracker {
            entries: VecDeque::new(),
            by_request: BTreeMap::new(),
            next_id: 0,
        }
    }
}

fn request_id(call: &SubCall) -> Option<&str> {
    call.request.get("request_id").and_then(|v| v.as_str())
}

impl<T> CallTracker<T> {
    /// Remember `state` for `challenge` answered by `miner` (ss58).
    pub fn register(&mut self, challenge: &Challenge, miner: &str, state: T) {
        let lock = lock0(
            &challenge.challenge_id,
            &challenge.salt,
            &challenge.validator,
            miner,
        );
        let id = self.next_id;
        self.next_id += 1;
        self.entries.push_back((id, lock, state));
        if self.entries.len() > TRACKED_CHALLENGES {
            self.entries.pop_front();
            if let Some((oldest, _, _)) = self.entries.front() {
                let oldest = *oldest;
                self.by_request.retain(|_, v| *v >= oldest);
            }
        }
    }

    /// The state of the challenge `call` serves, if it is a tracked one.
    pub fn find(&mut self, call: &SubCall) -> Option<&mut T> {
        let rid = request_id(call)?;
        let id = match self.by_request.get(rid) {
            Some(&id) => id,
            None => {
                let id = self.entries.iter().rev().find_map(|(id, lock, _)| {
                    let mut h = blake3::Hasher::new_keyed(&lock.0);
                    h.update(call.step_id.as_bytes());
                    h.update(&call.call_id.to_le_bytes());
                    (Hash32::from(h.finalize()).to_hex() == rid).then_some(*id)
                })?;
                self.by_request.insert(rid.to_string(), id);
                id
            }
        };
        self.entries
            .iter_mut()
            .find(|(i, _, _)| *i == id)
            .map(|(_, _, s)| s)
    }

    /// The state of the challenge a call seen by [`find`](Self::find) serves (outcome hooks
    /// carry no call id, only the request).
    pub fn find_ref(&mut self, call: &CallRef<'_>) -> Option<&mut T> {
        let rid = call.request.get("request_id").and_then(|v| v.as_str())?;
        let id = *self.by_request.get(rid)?;
        self.entries
            .iter_mut()
            .find(|(i, _, _)| *i == id)
            .map(|(_, _, s)| s)
    }
}

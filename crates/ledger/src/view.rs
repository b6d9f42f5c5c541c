//! [`LedgerView`]: the read-only snapshot of the Subnet Ledger a core routes, detects and audits
//! against.
//!
//! A concrete snapshot rather than a trait so that the miner's `Strategy` trait stays
//! dyn-compatible and so that compiled output-schema validators can be cached next to the entries
//! they belong to: the simulator drives thousands of challenges per second, and compiling a JSON
//! Schema per sub-response would dominate the hot path. A driver builds one view per Ledger version
//! (e.g. from `orchestra_ledger::LedgerState::entries`) and shares it (`Arc`) between challenges; a
//! stale router simply keeps an old one.

use orchestra_protocol::ledger::{Endpoint, Entry, Status};
use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

/// A compiled JSON Schema validator, shared between every user of the view.
pub type CompiledSchema = Arc<jsonschema::Validator>;

/// Compile `schema` as JSON Schema 2020-12 (the draft every Orchestra schema uses); `None` if it
/// does not compile.
pub fn compile_schema(schema: &serde_json::Value) -> Option<CompiledSchema> {
    jsonschema::draft202012::new(schema).ok().map(Arc::new)
}

/// One subnet endpoint's place in the view: `(netuid, index into entry.endpoints)`.
pub type EndpointRef = (u16, usize);

/// A snapshot of Ledger entries with a capability index and lazily compiled output schemas.
#[derive(Debug, Default)]
pub struct LedgerView {
    entries: BTreeMap<u16, Entry>,
    by_capability: BTreeMap<String, Vec<EndpointRef>>,
    output_schemas: BTreeMap<EndpointRef, OnceLock<Option<CompiledSchema>>>,
    input_shapes: BTreeMap<EndpointRef, Arc<serde_json::Value>>,
}

impl Clone for LedgerView {
    fn clone(&self) -> Self {
        // Compiled validators are shared through their `Arc`s, so a clone stays cheap to query.
        let output_schemas = self
            .output_schemas
            .iter()
            .map(|(k, cell)| {
                let new = OnceLock::new();
                if let Some(v) = cell.get() {
                    let _ = new.set(v.clone());
                }
                (*k, new)
            })
            .collect();
        LedgerView {
            entries: self.entries.clone(),
            by_capability: self.by_capability.clone(),
            output_schemas,
            input_shapes: self.input_shapes.clone(),
        }
    }
}

impl LedgerView {
    /// A view over `entries` (a later entry with the same netuid replaces an earlier one).
    pub fn new(entries: impl IntoIterator<Item = Entry>) -> Self {
        let entries: BTreeMap<u16, Entry> = entries.into_iter().map(|e| (e.netuid, e)).collect();
        let mut by_capability: BTreeMap<String, Vec<EndpointRef>> = BTreeMap::new();
        let mut output_schemas = BTreeMap::new();
        let mut input_shapes = BTreeMap::new();
        for (&netuid, entry) in &entries {
            for (i, ep) in entry.endpoints.iter().enumerate() {
                if ep
                    .input_schema
                    .get("properties")
                    .and_then(serde_json::Value::as_object)
                    .is_some_and(|p| !p.is_empty())
                {
                    input_shapes.insert((netuid, i), Arc::new(ep.input_schema.clone()));
                }
                by_capability
                    .entry(ep.capability.clone())
                    .or_default()
                    .push((netuid, i));
                output_schemas.insert((netuid, i), OnceLock::new());
            }
        }
        LedgerView {
            entries,
            by_capability,
            output_schemas,
            input_shapes,
        }
    }

    /// [`LedgerView::new`], taking over from `previous` the compiled output schemas of endpoints
    /// whose output schema is unchanged: a Ledger change usually touches one entry, and compiling
    /// schemas again is the expensive part of a rebuilt view.
    pub fn new_reusing(entries: impl IntoIterator<Item = Entry>, previous: &LedgerView) -> Self {
        let view = LedgerView::new(entries);
        for (&(netuid, i), cell) in &view.output_schemas {
            let (Some(ep), Some(old_ep)) = (
                view.entries.get(&netuid).and_then(|e| e.endpoints.get(i)),
                previous
                    .entries
                    .get(&netuid)
                    .and_then(|e| e.endpoints.get(i)),
            ) else {
                continue;
            };
            if ep.output_schema == old_ep.output_schema
                && let Some(compiled) = previous
                    .output_schemas
                    .get(&(netuid, i))
                    .and_then(OnceLock::get)
            {
                let _ = cell.set(compiled.clone());
            }
        }
        view
    }

    /// The entry of `netuid`.
    pub fn entry(&self, netuid: u16) -> Option<&Entry> {
        self.entries.get(&netuid)
    }

    /// Every entry, by ascending netuid.
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.entries.values()
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the view holds no entry.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The endpoint named `name` of `netuid`, with its index in the entry.
    pub fn endpoint(&self, netuid: u16, name: &str) -> Option<(usize, &Endpoint)> {
        self.entries
            .get(&netuid)?
            .endpoints
            .iter()
            .enumerate()
            .find(|(_, ep)| ep.name == name)
    }

    /// Endpoints serving `capability`, by ascending netuid then endpoint index (whatever their
    /// status: filtering is the router's job).
    pub fn endpoints_for(&self, capability: &str) -> &[EndpointRef] {
        self.by_capability
            .get(capability)
            .map_or(&[], Vec::as_slice)
    }

    /// The compiled output schema of endpoint `index` of `netuid`, compiled on first use; `None`
    /// if there is no such endpoint or its schema does not compile.
    pub fn output_schema(&self, netuid: u16, index: usize) -> Option<&CompiledSchema> {
        let cell = self.output_schemas.get(&(netuid, index))?;
        cell.get_or_init(|| {
            let ep = self.entries.get(&netuid)?.endpoints.get(index)?;
            compile_schema(&ep.output_schema)
        })
        .as_ref()
    }

    /// The input schema of endpoint `index` of `netuid`, if it declares properties: what a
    /// request to it is shaped to (see `orchestra_miner::assemble::shape_request`). Shared, so routes can
    /// carry it without copying the schema.
    pub fn input_shape(&self, netuid: u16, index: usize) -> Option<&Arc<serde_json::Value>> {
        self.input_shapes.get(&(netuid, index))
    }

    /// Whether the entry was last verified more than `ttl_blocks` before `current_block` (an
    /// absent entry is not stale: it is absent).
    pub fn is_stale(&self, netuid: u16, current_block: u64, ttl_blocks: u64) -> bool {
        self.entries
            .get(&netuid)
            .is_some_and(|e| current_block.saturating_sub(e.last_verified_block) > ttl_blocks)
    }

    /// Whether the entry is deprecated.
    pub fn is_deprecated(&self, netuid: u16) -> bool {
        self.entries
            .get(&netuid)
            .is_some_and(|e| e.status == Status::Deprecated)
    }
}

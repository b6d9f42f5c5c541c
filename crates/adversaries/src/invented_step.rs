//! `invented_step`: executes the honest plan but invents the sub-responses of its
//! non-deterministic, unreceipted steps.
//!
//! It is the [`fabricator`](crate::fabricator) narrowed to where audits are weakest. A
//! re-execution of a non-deterministic endpoint cannot compare hashes; it only checks the
//! Ledger's output schema and the `stable_fields` the committed response carries
//! (docs/mechanism.md §3 check 5). An invented reply is built from the output schema and the
//! request ([`invent_reply`](crate::forge::invent_reply)), so it satisfies the schema, and it
//! carries the call's `request_id` (added when the schema leaves it out), as real subnets echo
//! it, so no two inventions hash alike and the replay set has nothing to catch. It is committed
//! into the proof like any other reply and claims the route's Ledger price, so the proof
//! verifies and the routing term looks honest while the call costs nothing.
//!
//! Which steps are eligible: never a deterministic one (an audit would compare exactly); with
//! `avoid_receipted`, none on an endpoint this miner has seen sign a receipt (an invented step
//! there would be the only unsigned one); and with `stable = "learn"`, on an endpoint with
//! `stable_fields` only once every stable value is predictable — it echoed the request (the
//! invention fills it from its own request) or the last two real replies agreed on it (the
//! invention copies it). Everything it knows comes from its own real calls: a challenge with
//! nothing eligible is executed honestly, which teaches it. With `stable = "ignore"` it invents
//! there anyway, and an audit catches whatever stable value it gets wrong.
//!
//! The miner's proposal detector sees an invented reply like a real one (instant, made up), so
//! proposals about a subnet it has invented on are dropped: they would be rejected and struck.
//!
//! With probability `rate` a challenge gets up to `steps` inventions, chosen among the eligible
//! steps by `pick`; a challenge with no eligible step is executed honestly.
//!
//! With `content = "borrow"` an invention is the endpoint's last real reply instead, re-addressed
//! to this call: real content, only not this request's — the best a miner can do against a
//! content check without calling.
//!
//! Defence (docs/mechanism.md §3, §8): subnet receipts; the content check
//! (`audit_agreement_min`), which compares a re-execution's content with the committed reply;
//! `stable_fields` whose values a miner cannot predict without calling. `fidelity` does not help
//! (an invented reply is committed, so its values are traceable).

use crate::forge::{Inventions, stream};
use crate::params::{Knob, KnobKind, ParamError, Params, check_range};
use orchestra_miner::assemble::find_key;
use orchestra_miner::{
    Answer, CallAction, CallRef, LedgerView, Route, Strategy, StrategyCtx, SubCall, SubCallOutcome,
    honest_answer,
};
use orchestra_protocol::messages::{Challenge, Response};
use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// Ceiling of `steps`: more steps than any plan has.
pub const MAX_STEPS: u32 = 16;

/// Endpoints remembered; the Ledger lists far fewer.
const MAX_ENDPOINTS: usize = 4_096;

/// Invented calls remembered until their outcome, so they never teach anything.
const IN_FLIGHT: usize = 1_024;

/// Which eligible steps are invented first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pick {
    /// The most expensive first (by the primary route's Ledger price): the most saved per
    /// invention.
    #[default]
    Costliest,
    /// In plan order.
    First,
    /// In reverse plan order (synthesis, typically: nothing downstream sees invented inputs).
    Last,
}

/// `invented_step` parameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InventedStepParams {
    /// Probability a challenge gets inventions, `[0, 1]`, default 1.
    pub rate: f64,
    /// Most steps invented per challenge, `[1, 16]`, default 1.
    pub steps: u32,
    /// `costliest` (default), `first` or `last` eligible step first.
    pub pick: Pick,
    /// Skip endpoints seen signing a receipt (default true).
    pub avoid_receipted: bool,
    /// `learn` (default): invent on an endpoint with `stable_fields` only once real replies
    /// showed their values to be predictable, and carry them; `ignore`: invent regardless (an
    /// audit then catches whatever stable value the invention gets wrong).
    pub stable: Stable,
    /// `schema` (default): build an invention from the output schema and the request;
    /// `borrow`: reuse the endpoint's last real reply to another request (what passes a content
    /// check best without calling: real content, only not this request's).
    pub content: Content,
}

/// What an invented reply is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Content {
    /// Filled from the output schema and the request.
    #[default]
    Schema,
    /// The endpoint's last real reply, re-addressed to this call (its `request_id`).
    Borrow,
}

/// How `invented_step` treats the `stable_fields` an audit compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stable {
    /// Learn them from real replies and copy them into inventions.
    #[default]
    Learn,
    /// Invent them like everything else.
    Ignore,
}

impl Default for InventedStepParams {
    fn default() -> Self {
        InventedStepParams {
            rate: 1.0,
            steps: 1,
            pick: Pick::Costliest,
            avoid_receipted: true,
            stable: Stable::Learn,
            content: Content::Schema,
        }
    }
}

impl Params for InventedStepParams {
    const KNOBS: &'static [Knob] = &[
        Knob {
            name: "rate",
            min: 0.0,
            max: 1.0,
            default: 1.0,
            kind: KnobKind::Float,
            doc: "probability a challenge gets inventions",
        },
        Knob {
            name: "steps",
            min: 1.0,
            max: MAX_STEPS as f64,
            default: 1.0,
            kind: KnobKind::Int,
            doc: "most non-deterministic steps invented per challenge",
        },
        Knob {
            name: "pick",
            min: 0.0,
            max: 2.0,
            default: 0.0,
            kind: KnobKind::Choice(&["costliest", "first", "last"]),
            doc: "which eligible steps are invented first",
        },
        Knob {
            name: "avoid_receipted",
            min: 0.0,
            max: 1.0,
            default: 1.0,
            kind: KnobKind::Bool,
            doc: "skip endpoints seen signing receipts",
        },
        Knob {
            name: "stable",
            min: 0.0,
            max: 1.0,
            default: 0.0,
            kind: KnobKind::Choice(&["learn", "ignore"]),
            doc: "learn stable fields from real replies, or invent them too",
        },
        Knob {
            name: "content",
            min: 0.0,
            max: 1.0,
            default: 0.0,
            kind: KnobKind::Choice(&["schema", "borrow"]),
            doc: "fill inventions from the output schema, or reuse the endpoint's last real reply",
        },
    ];

    fn validate(&self) -> Result<(), ParamError> {
        check_range("rate", self.rate, 0.0, 1.0)?;
        check_range("steps", f64::from(self.steps), 1.0, f64::from(MAX_STEPS))
    }
}

/// What the last real replies of an endpoint showed at one stable pointer.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    /// The value there (`None`: absent).
    value: Option<Value>,
    /// It echoed a value of the request under the same key: an invention fills it from its own
    /// request.
    echoed: bool,
    /// The reply before showed the same value: it looks constant, so copying it is safe.
    repeated: bool,
}

impl Seen {
    /// Whether an invention can get this field right.
    fn known(&self) -> bool {
        self.echoed || self.repeated
    }
}

/// What this miner has learnt about one endpoint from its real calls.
#[derive(Debug, Clone, Default)]
struct Notes {
    /// A real reply carried a receipt.
    receipted: bool,
    /// The Ledger's `stable_fields` for it, as last seen in the view.
    stable_fields: Vec<String>,
    /// Per stable pointer, what the real replies showed.
    stable_seen: BTreeMap<String, Seen>,
    /// The last real reply (kept only with `content = "borrow"`).
    last_reply: Option<Value>,
}

impl Notes {
    /// Whether an invention here may be made: no receipt seen (if that matters) and, when
    /// learning, every stable field either echoed from the request or seen constant.
    fn eligible(&self, params: &InventedStepParams) -> bool {
        !(params.avoid_receipted && self.receipted)
            && (params.content == Content::Schema || self.last_reply.is_some())
            && (params.stable == Stable::Ignore
                || self
                    .stable_fields
                    .iter()
                    .all(|p| self.stable_seen.get(p).is_some_and(Seen::known)))
    }
}

/// The invented_step strategy (see the module docs).
#[derive(Debug, Clone)]
pub struct InventedStep {
    params: InventedStepParams,
    inventions: Inventions,
    /// (netuid, endpoint) → what real calls showed.
    notes: BTreeMap<(u16, String), Notes>,
    /// `request_id`s of invented calls awaiting their outcome.
    mine: VecDeque<String>,
    /// Subnets it has invented replies of: the miner's proposal detector saw those instant,
    /// made-up replies as observations, so its proposals about them are not to be trusted.
    tainted: BTreeSet<u16>,
    rng: ChaCha8Rng,
}

impl InventedStep {
    /// An invented_step strategy with `params`; `seed` keys its own RNG stream.
    pub fn new(params: InventedStepParams, seed: u64) -> Self {
        InventedStep {
            params,
            inventions: Inventions::default(),
            notes: BTreeMap::new(),
            mine: VecDeque::new(),
            tainted: BTreeSet::new(),
            rng: stream(seed, "invented_step"),
        }
    }

    /// Sub-responses invented so far.
    pub fn invented(&self) -> u64 {
        self.inventions.invented()
    }

    /// Note the Ledger's stable fields of every route in `routes` (what later replies are read
    /// for).
    fn note_routes<'a>(&mut self, view: &LedgerView, routes: impl Iterator<Item = &'a Route>) {
        for r in routes {
            let Some(ep) = view
                .entry(r.netuid)
                .and_then(|e| e.endpoints.get(r.endpoint_index))
            else {
                continue;
            };
            let key = (r.netuid, r.endpoint.clone());
            if let Some(n) = self.notes.get_mut(&key) {
                if n.stable_fields != ep.stable_fields {
                    n.stable_fields.clone_from(&ep.stable_fields);
                }
            } else if self.notes.len() < MAX_ENDPOINTS {
                self.notes.insert(
                    key,
                    Notes {
                        stable_fields: ep.stable_fields.clone(),
                        ..Notes::default()
                    },
                );
            }
        }
    }
}

/// Whether a reply on `route` may be invented: the endpoint is non-deterministic (an audit cannot
/// compare exactly) and its notes allow it. Every route of a plan is noted before this is asked,
/// so only an endpoint past [`MAX_ENDPOINTS`] goes without notes (and is judged on the first
/// condition alone).
fn eligible(
    route: &Route,
    notes: &BTreeMap<(u16, String), Notes>,
    params: &InventedStepParams,
) -> bool {
    !route.deterministic
        && notes
            .get(&(route.netuid, route.endpoint.clone()))
            .is_none_or(|n| n.eligible(params))
}

/// Make an invented `response` unique to its call, as a real reply is: one filled only from the
/// output schema and the request's inputs repeats across challenges with equal inputs (often
/// just placeholders), and the replay set (§3 check 4) catches the repeat. Subnets echo the
/// call's `request_id` (docs/mechanism.md §2); where the output schema leaves it out, it is added
/// at the top level unless the schema forbids extra properties.
fn echo_request_id(call: &SubCall, output_schema: &Value, response: &mut Value) {
    let closed = output_schema.get("additionalProperties") == Some(&Value::Bool(false));
    if let (Some(rid), Some(obj)) = (call.request.get("request_id"), response.as_object_mut())
        && !closed
        && !obj.contains_key("request_id")
    {
        obj.insert("request_id".into(), rid.clone());
    }
}

/// The last segment of JSON pointer `p`, unescaped: the key a stable value sits under.
fn last_key(p: &str) -> String {
    p.rsplit('/')
        .next()
        .unwrap_or_default()
        .replace("~1", "/")
        .replace("~0", "~")
}

impl Strategy for InventedStep {
    fn name(&self) -> &str {
        "invented_step"
    }

    fn answer(
        &mut self,
        ctx: &StrategyCtx<'_>,
        challenge: &Challenge,
        _rng: &mut dyn rand::Rng,
    ) -> Answer {
        let Ok(routed) = ctx.honest_plan(challenge) else {
            return honest_answer(ctx, challenge);
        };
        self.note_routes(ctx.view, routed.routes.iter().flatten());
        // Always drawn once per planned challenge, from the strategy's own stream.
        if !self.rng.random_bool(self.params.rate) {
            return Answer::Execute(routed);
        }
        let (notes, params) = (&self.notes, &self.params);
        let mut candidates: Vec<(usize, u64)> = routed
            .routes
            .iter()
            .enumerate()
            .filter_map(|(i, rs)| {
                rs.first()
                    .filter(|r| eligible(r, notes, params))
                    .map(|r| (i, r.cost_rao))
            })
            .collect();
        match params.pick {
            // Stable sort: equal prices stay in plan order.
            Pick::Costliest => candidates.sort_by_key(|&(_, cost)| std::cmp::Reverse(cost)),
            Pick::First => {}
            Pick::Last => candidates.reverse(),
        }
        let chosen: Vec<usize> = candidates
            .into_iter()
            .take(params.steps as usize)
            .map(|(i, _)| i)
            .collect();
        if !chosen.is_empty() {
            // Only eligible routes are invented: a deterministic (or receipted, or unlearnt)
            // fallback of a chosen step is really called.
            self.inventions
                .register(ctx, challenge, &routed, chosen, |r| {
                    eligible(r, notes, params)
                });
        }
        Answer::Execute(routed)
    }

    fn on_subcall(&mut self, call: &SubCall) -> CallAction {
        let learn = self.params.stable == Stable::Learn;
        let borrow = self.params.content == Content::Borrow;
        let notes = &self.notes;
        let action = self
            .inventions
            .on_subcall_patched(call, |call, ep, response| {
                let noted = notes.get(&(call.netuid, call.endpoint.clone()));
                if borrow && let Some(real) = noted.and_then(|n| n.last_reply.as_ref()) {
                    // Re-addressed, or the replay set would catch the copy.
                    *response = real.clone();
                    if let (Some(rid), Some(obj)) =
                        (call.request.get("request_id"), response.as_object_mut())
                        && obj.contains_key("request_id")
                    {
                        obj.insert("request_id".into(), rid.clone());
                    }
                }
                echo_request_id(call, &ep.output_schema, response);
                if !learn {
                    return;
                }
                let Some(n) = noted else {
                    return;
                };
                for (p, seen) in &n.stable_seen {
                    // A repeated value is copied; an echoed one was filled from this request
                    // (a borrowed reply echoes another request, so it is filled here).
                    let value = match (&seen.value, seen.echoed, seen.repeated) {
                        (Some(v), false, true) => Some(v.clone()),
                        (Some(_), true, _) if borrow => {
                            find_key(&[&call.request], &last_key(p), |_| true).cloned()
                        }
                        _ => None,
                    };
                    if let (Some(v), Some(slot)) = (value, response.pointer_mut(p)) {
                        *slot = v;
                    }
                }
            });
        if matches!(action, CallAction::Substitute(_)) {
            self.tainted.insert(call.netuid);
        }
        if matches!(action, CallAction::Substitute(_))
            && let Some(rid) = call.request.get("request_id").and_then(Value::as_str)
        {
            self.mine.push_back(rid.to_string());
            while self.mine.len() > IN_FLIGHT {
                self.mine.pop_front();
            }
        }
        action
    }

    fn finalize(
        &mut self,
        _ctx: &StrategyCtx<'_>,
        _challenge: &Challenge,
        mut response: Response,
    ) -> Option<Response> {
        // The detector took invented replies (instant, made up) for the subnet's behaviour; a
        // proposal built on them would be rejected and strike the miner. Proposals are outside
        // the proof, so dropping them leaves it intact.
        response
            .ledger_proposals
            .retain(|p| !self.tainted.contains(&p.netuid));
        Some(response)
    }

    fn on_subcall_outcome(&mut self, call: CallRef<'_>, outcome: &SubCallOutcome) {
        // An invention teaches nothing about the subnet.
        if let Some(rid) = call.request.get("request_id").and_then(Value::as_str)
            && let Some(i) = self.mine.iter().position(|m| m == rid)
        {
            self.mine.remove(i);
            return;
        }
        let Ok(reply) = outcome else {
            return;
        };
        let Some(n) = self
            .notes
            .get_mut(&(call.netuid, call.endpoint.to_string()))
        else {
            return;
        };
        n.receipted |= reply.receipt.is_some();
        let response: &Value = &reply.response;
        if self.params.content == Content::Borrow {
            n.last_reply = Some(response.clone());
        }
        let mut seen = BTreeMap::new();
        for p in &n.stable_fields {
            let value = response.pointer(p).cloned();
            let echoed = value
                .as_ref()
                .is_some_and(|v| find_key(&[call.request], &last_key(p), |x| x == v).is_some());
            let repeated = n.stable_seen.get(p).is_some_and(|s| s.value == value);
            seen.insert(
                p.clone(),
                Seen {
                    value,
                    echoed,
                    repeated,
                },
            );
        }
        n.stable_seen = seen;
    }
}

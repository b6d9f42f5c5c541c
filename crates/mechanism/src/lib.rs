//! Orchestra's scoring mechanism (docs/mechanism.md §3–§7), as a pure library: no clock, no IO, no
//! global RNG (randomness arrives as `&mut impl rand::Rng`), deterministic iteration (`BTreeMap`).
//!
//! - [`params`]: [`MechanismParams`], every weight and constant, with defaults, serde overrides and
//!   validation; how term weights relate to the orchestration share `s`.
//! - [`orchestration`]: the per-challenge terms of §4 (hash, schema, completeness, routing,
//!   latency, fidelity).
//! - [`ledger`]: the per-tempo Ledger terms of §6 and the `W`-tempo [`LedgerWindow`].
//! - [`agreement`](mod@agreement): the content check of an audit (§3 check 5).
//! - [`ema`]: per-miner, per-term EMAs with fabrication strikes (§3, §7).
//! - [`combine`](mod@combine): the `blended`, `normalized` and `mechanisms` combination modes (§7).
//! - [`weights`]: u16 quantisation and max-weight clipping, bit-exact with the Bittensor SDK.
//! - [`schema`]: leaf-field analysis of target JSON Schemas.
//! - [`templates`]: objective templates (`mocks/objectives/*.toml`) and capability tags.
//!
//! Pipeline in a validator: per challenge, compute [`OrchestrationTerms`] and
//! [`EmaBook::observe_orchestration`] (or [`EmaBook::fabrication_strike`] on a failed audit); per
//! tempo, push the tempo into a [`LedgerWindow`], observe each miner's [`LedgerTerms`], then
//! [`combine`](combine::combine) the [`EmaBook::scores`] and
//! [`quantize`](CombinedWeights::quantize) them.

pub mod agreement;
pub mod combine;
pub mod ema;
pub mod ledger;
pub mod orchestration;
pub mod params;
pub mod schema;
pub mod templates;
pub mod weights;

pub use combine::{CombinedWeights, MechanismWeights, combine, emission_split_u16};
pub use ema::{EmaBook, MinerEma};
pub use ledger::{LedgerTerms, LedgerWindow, ProposalKind, ProposalRecord, Verdict};
pub use orchestration::OrchestrationTerms;
pub use params::{CombinationMode, ConfirmationScope, LatencyMode, MechanismParams, ParamsError};
pub use templates::{Capability, ObjectiveTemplate, TemplateError, instantiate};
pub use weights::{WeightLimits, WeightsError, clip_to_max_weight, normalize, weights_for_chain};

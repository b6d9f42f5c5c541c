//! [`ChallengeGenerator`]: seeded synthetic challenges from objective templates.
//!
//! One round samples `k` miners without replacement and draws one objective (template and
//! parameters) for the round; every sampled miner gets it under its own `challenge_id` and `salt`.
//! Sharing the objective inside a round makes miners comparable and is what a copycat would
//! exploit; the per-miner lock (`lock0` binds challenge, salt, validator and miner) is what stops
//! it. Everything random comes from the caller's RNG, so a seed fixes the whole schedule.

use orchestra_mechanism::templates::{ObjectiveTemplate, instantiate};
use orchestra_protocol::hash::Hash32;
use orchestra_protocol::messages::{Challenge, Objective};
use rand::{Rng, RngExt};
use serde::{Deserialize, Serialize};

/// Challenge schedule knobs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChallengeConfig {
    /// Miners challenged per round (default 16).
    pub sample_size: usize,
    /// Time allowed per challenge, ms (default 30 000).
    pub deadline_ms: u64,
    /// Spending cap per challenge, rao (default none).
    pub budget_rao: Option<u64>,
    /// Give every miner of a round the same objective (default true).
    pub same_objective_per_round: bool,
}

impl Default for ChallengeConfig {
    fn default() -> Self {
        ChallengeConfig {
            sample_size: 16,
            deadline_ms: 30_000,
            budget_rao: None,
            same_objective_per_round: true,
        }
    }
}

/// Why a generator could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChallengeError {
    /// No objective template was given.
    #[error("no objective templates")]
    NoTemplates,
}

/// Issues seeded synthetic challenges.
#[derive(Debug, Clone)]
pub struct ChallengeGenerator {
    validator: String,
    templates: Vec<ObjectiveTemplate>,
    config: ChallengeConfig,
}

fn random_hash(rng: &mut (impl Rng + ?Sized)) -> Hash32 {
    let mut b = [0u8; 32];
    rng.fill_bytes(&mut b);
    Hash32(b)
}

impl ChallengeGenerator {
    /// A generator for validator `validator` (ss58) over `templates` (kept sorted by kind, so the
    /// draw does not depend on the order files were read in).
    pub fn new(
        validator: impl Into<String>,
        mut templates: Vec<ObjectiveTemplate>,
        config: ChallengeConfig,
    ) -> Result<Self, ChallengeError> {
        if templates.is_empty() {
            return Err(ChallengeError::NoTemplates);
        }
        templates.sort_by(|a, b| a.kind.cmp(&b.kind));
        Ok(ChallengeGenerator {
            validator: validator.into(),
            templates,
            config,
        })
    }

    /// The templates, by kind.
    pub fn templates(&self) -> &[ObjectiveTemplate] {
        &self.templates
    }

    /// The template of objective kind `kind`.
    pub fn template(&self, kind: &str) -> Option<&ObjectiveTemplate> {
        self.templates.iter().find(|t| t.kind == kind)
    }

    /// The configuration.
    pub fn config(&self) -> &ChallengeConfig {
        &self.config
    }

    /// Up to `sample_size` of `miners`, without replacement, in draw order.
    pub fn sample_miners(&self, miners: &[u16], rng: &mut impl Rng) -> Vec<u16> {
        let mut pool: Vec<u16> = miners.to_vec();
        pool.sort_unstable();
        pool.dedup();
        let k = self.config.sample_size.min(pool.len());
        // Partial Fisher–Yates: the first k slots end up a uniform sample.
        for i in 0..k {
            let j = rng.random_range(i..pool.len());
            pool.swap(i, j);
        }
        pool.truncate(k);
        pool
    }

    /// A random objective from a random template.
    pub fn objective(&self, rng: &mut impl Rng) -> (&ObjectiveTemplate, Objective) {
        let t = &self.templates[rng.random_range(0..self.templates.len())];
        let (text, params) = instantiate(t, rng);
        (
            t,
            Objective {
                kind: t.kind.clone(),
                text,
                params,
            },
        )
    }

    /// A challenge for `objective` (with `template`'s schema) issued at `block`/`now_ms`.
    pub fn challenge(
        &self,
        template: &ObjectiveTemplate,
        objective: Objective,
        block: u64,
        now_ms: u64,
        rng: &mut impl Rng,
    ) -> Challenge {
        Challenge {
            challenge_id: random_hash(rng),
            validator: self.validator.clone(),
            issued_block: block,
            issued_at_ms: now_ms,
            salt: random_hash(rng),
            objective,
            target_schema: template.target_schema.clone(),
            deadline_ms: self.config.deadline_ms,
            budget_rao: self.config.budget_rao,
            // The validator core sets it from its mechanism parameters when it sends.
            replay_binding: false,
        }
    }

    /// A challenge for an organic objective with the user's own `target_schema` (scored without
    /// a reference plan unless `objective.kind` names a template).
    pub fn organic(
        &self,
        objective: Objective,
        target_schema: serde_json::Value,
        block: u64,
        now_ms: u64,
        rng: &mut impl Rng,
    ) -> Challenge {
        Challenge {
            challenge_id: random_hash(rng),
            validator: self.validator.clone(),
            issued_block: block,
            issued_at_ms: now_ms,
            salt: random_hash(rng),
            objective,
            target_schema,
            deadline_ms: self.config.deadline_ms,
            budget_rao: self.config.budget_rao,
            // The validator core sets it from its mechanism parameters when it sends.
            replay_binding: false,
        }
    }

    /// One round: sample miners from `miners` and give each a challenge.
    pub fn round(
        &self,
        miners: &[u16],
        block: u64,
        now_ms: u64,
        rng: &mut impl Rng,
    ) -> Vec<(u16, Challenge)> {
        let sampled = self.sample_miners(miners, rng);
        let shared = self
            .config
            .same_objective_per_round
            .then(|| self.objective(rng));
        sampled
            .into_iter()
            .map(|uid| {
                let (t, o) = match &shared {
                    Some((t, o)) => (*t, o.clone()),
                    None => self.objective(rng),
                };
                (uid, self.challenge(t, o, block, now_ms, rng))
            })
            .collect()
    }
}

//! Objective templates (`mocks/objectives/*.toml`): what validators turn into synthetic
//! challenges, and the reference plan and cost the routing term compares against.
//!
//! A template file holds:
//! - `kind`: the objective kind (`market_research`, …);
//! - `text`: the objective text with `{name}` placeholders, each defined in `params`;
//! - `params`: the parameter space, one entry per placeholder: a list of choices
//!   (`topic = ["EV batteries", …]`) or an integer range (`max_items = { min = 3, max = 10 }`);
//! - `target_schema`: the JSON Schema (2020-12) miners must fill, as a JSON string or a TOML table;
//! - `reference_cost_rao`: the cost of the reference plan in rao;
//! - `[[reference_plan]]`: the reference decomposition, steps `{id, capability, depends_on}` in
//!   execution order (every dependency names an earlier step).
//!
//! The templates shipped in `mocks/objectives/` are embedded when this crate is built
//! ([`SHIPPED`], parsed by [`shipped`]): the one list the nodes, the simulator and the tests
//! use, so adding a template is adding its file. Otherwise the core never touches files: a shell
//! reads a file and calls [`ObjectiveTemplate::from_toml_str`].
//!
//! # Capability tags
//!
//! | tag | meaning |
//! |---|---|
//! | `web_search` | search-engine results |
//! | `social_scrape` | posts from social networks |
//! | `web_scrape` | fetching and extracting web pages |
//! | `llm_synthesis` | LLM summarising / structuring gathered material |
//! | `llm_inference` | plain LLM completion |
//! | `embedding` | text embeddings |
//! | `image_generation` | image synthesis |
//! | `data_query` | structured data sources (financial, on-chain, statistics) |
//! | `sentiment` | sentiment classification |
//! | `translation` | machine translation |

use std::collections::{BTreeMap, BTreeSet};

use rand::{Rng, RngExt};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use thiserror::Error;

pub use crate::schema::{leaf_fields, required_leaf_fields};

/// A capability a subnet serves; the tags of the Ledger and of reference plans.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Capability {
    /// Search-engine results.
    WebSearch,
    /// Posts from social networks.
    SocialScrape,
    /// Fetching and extracting web pages.
    WebScrape,
    /// LLM summarising / structuring gathered material.
    LlmSynthesis,
    /// Plain LLM completion.
    LlmInference,
    /// Text embeddings.
    Embedding,
    /// Image synthesis.
    ImageGeneration,
    /// Structured data sources.
    DataQuery,
    /// Sentiment classification.
    Sentiment,
    /// Machine translation.
    Translation,
}

impl Capability {
    /// Every capability tag, in declaration order.
    pub const ALL: [Capability; 10] = [
        Self::WebSearch,
        Self::SocialScrape,
        Self::WebScrape,
        Self::LlmSynthesis,
        Self::LlmInference,
        Self::Embedding,
        Self::ImageGeneration,
        Self::DataQuery,
        Self::Sentiment,
        Self::Translation,
    ];

    /// The snake_case tag used on the wire and in files.
    pub fn tag(self) -> &'static str {
        match self {
            Self::WebSearch => "web_search",
            Self::SocialScrape => "social_scrape",
            Self::WebScrape => "web_scrape",
            Self::LlmSynthesis => "llm_synthesis",
            Self::LlmInference => "llm_inference",
            Self::Embedding => "embedding",
            Self::ImageGeneration => "image_generation",
            Self::DataQuery => "data_query",
            Self::Sentiment => "sentiment",
            Self::Translation => "translation",
        }
    }
}

/// The values one template parameter can take.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ParamSpace {
    /// Pick one of these strings uniformly.
    Choices(Vec<String>),
    /// Pick an integer uniformly in `min..=max`.
    IntRange {
        /// Smallest value.
        min: i64,
        /// Largest value.
        max: i64,
    },
}

/// One step of a reference decomposition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReferenceStep {
    /// Step id, unique within the plan.
    pub id: String,
    /// The capability the step needs.
    pub capability: Capability,
    /// Ids of earlier steps this one consumes.
    #[serde(default)]
    pub depends_on: Vec<String>,
}

/// A typed objective template (see the module docs for the file format).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectiveTemplate {
    /// Objective kind, e.g. `market_research`.
    pub kind: String,
    /// Objective text with `{name}` placeholders.
    pub text: String,
    /// Parameter space, one entry per placeholder.
    pub params: BTreeMap<String, ParamSpace>,
    /// The target JSON Schema (2020-12) miners must fill.
    #[serde(deserialize_with = "schema_from_string_or_table")]
    pub target_schema: Value,
    /// Cost of the reference plan in rao.
    pub reference_cost_rao: u64,
    /// The reference decomposition, in execution order.
    pub reference_plan: Vec<ReferenceStep>,
}

fn schema_from_string_or_table<'de, D: Deserializer<'de>>(d: D) -> Result<Value, D::Error> {
    match Value::deserialize(d)? {
        Value::String(s) => serde_json::from_str(&s).map_err(serde::de::Error::custom),
        other => Ok(other),
    }
}

/// Why a template is unusable.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum TemplateError {
    /// The TOML does not parse into a template.
    #[error("objective template does not parse: {0}")]
    Parse(String),
    /// The template parses but breaks a rule; the message says which field and why.
    #[error("objective template `{kind}`: {field}: {reason}")]
    Invalid {
        /// The template's kind (may be empty).
        kind: String,
        /// The offending field.
        field: String,
        /// What is wrong.
        reason: String,
    },
    /// A template file is bad; names the file.
    #[error("{file}: {error}")]
    InFile {
        /// The file (name or path).
        file: String,
        /// What is wrong with it.
        error: Box<TemplateError>,
    },
}

/// The files of `mocks/objectives/` as `(file name, text)`, in file-name order, embedded when
/// this crate is built.
pub static SHIPPED: &[(&str, &str)] = include!(concat!(env!("OUT_DIR"), "/shipped_objectives.rs"));

/// The shipped templates ([`SHIPPED`]), parsed and validated, in file-name order.
pub fn shipped() -> Result<Vec<ObjectiveTemplate>, TemplateError> {
    SHIPPED
        .iter()
        .map(|(file, text)| ObjectiveTemplate::from_file_text(file, text))
        .collect()
}

/// The `{name}` placeholders of `text`, in order of appearance.
pub fn placeholders(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) => {
                out.push(&after[..close]);
                rest = &after[close + 1..];
            }
            None => break,
        }
    }
    out
}

impl ObjectiveTemplate {
    /// Parses and validates a template from TOML.
    pub fn from_toml_str(text: &str) -> Result<Self, TemplateError> {
        let t: Self = toml::from_str(text).map_err(|e| TemplateError::Parse(e.to_string()))?;
        t.validate()?;
        Ok(t)
    }

    /// [`ObjectiveTemplate::from_toml_str`] for the text of file `file`, whose name the error
    /// carries.
    pub fn from_file_text(file: &str, text: &str) -> Result<Self, TemplateError> {
        ObjectiveTemplate::from_toml_str(text).map_err(|e| TemplateError::InFile {
            file: file.to_string(),
            error: Box::new(e),
        })
    }

    fn invalid(&self, field: impl Into<String>, reason: impl Into<String>) -> TemplateError {
        TemplateError::Invalid {
            kind: self.kind.clone(),
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// Checks every rule: non-empty kind and text; every placeholder defined and every parameter
    /// used; non-empty choice lists and `min ≤ max` ranges; a target schema that is an object
    /// schema, compiles as 2020-12 and has at least one required leaf field; a non-empty reference
    /// plan with unique ids whose dependencies name earlier steps; a positive reference cost.
    pub fn validate(&self) -> Result<(), TemplateError> {
        if self.kind.trim().is_empty() {
            return Err(self.invalid("kind", "must not be empty"));
        }
        if self.text.trim().is_empty() {
            return Err(self.invalid("text", "must not be empty"));
        }
        let used: BTreeSet<&str> = placeholders(&self.text).into_iter().collect();
        for name in &used {
            if !self.params.contains_key(*name) {
                return Err(self.invalid(
                    "text",
                    format!("placeholder {{{name}}} has no entry in params"),
                ));
            }
        }
        for (name, space) in &self.params {
            if !used.contains(name.as_str()) {
                return Err(self.invalid(format!("params.{name}"), "is not used in text"));
            }
            match space {
                ParamSpace::Choices(c) if c.is_empty() => {
                    return Err(self.invalid(format!("params.{name}"), "has no choices"));
                }
                ParamSpace::IntRange { min, max } if min > max => {
                    return Err(
                        self.invalid(format!("params.{name}"), format!("min {min} > max {max}"))
                    );
                }
                _ => {}
            }
        }
        self.validate_schema()?;
        self.validate_plan()
    }

    fn validate_schema(&self) -> Result<(), TemplateError> {
        let s = &self.target_schema;
        if s.get("type").and_then(Value::as_str) != Some("object") {
            return Err(self.invalid(
                "target_schema",
                "must be an object schema (\"type\": \"object\")",
            ));
        }
        if let Some(uri) = s.get("$schema").and_then(Value::as_str)
            && !uri.contains("2020-12")
        {
            return Err(self.invalid(
                "target_schema",
                format!("$schema {uri} is not draft 2020-12"),
            ));
        }
        jsonschema::draft202012::new(s)
            .map_err(|e| self.invalid("target_schema", e.to_string()))?;
        if required_leaf_fields(s) == 0 {
            return Err(self.invalid("target_schema", "has no required leaf fields"));
        }
        Ok(())
    }

    fn validate_plan(&self) -> Result<(), TemplateError> {
        if self.reference_plan.is_empty() {
            return Err(self.invalid("reference_plan", "must have at least one step"));
        }
        if self.reference_cost_rao == 0 {
            return Err(self.invalid("reference_cost_rao", "must be positive"));
        }
        let mut seen = BTreeSet::new();
        for step in &self.reference_plan {
            for dep in &step.depends_on {
                if !seen.contains(dep.as_str()) {
                    return Err(self.invalid(
                        format!("reference_plan.{}", step.id),
                        format!("depends on {dep}, which is not an earlier step"),
                    ));
                }
            }
            if !seen.insert(step.id.as_str()) {
                return Err(
                    self.invalid(format!("reference_plan.{}", step.id), "duplicate step id")
                );
            }
        }
        Ok(())
    }

    /// The reference capabilities in plan order (with repeats).
    pub fn reference_capabilities(&self) -> Vec<Capability> {
        self.reference_plan.iter().map(|s| s.capability).collect()
    }

    /// The reference capabilities as a set, as the routing term compares them.
    pub fn reference_capability_set(&self) -> BTreeSet<Capability> {
        self.reference_plan.iter().map(|s| s.capability).collect()
    }
}

/// Draws one objective from `template`: each parameter (in name order) is drawn uniformly from its
/// space, then substituted into the text. Returns the objective text and the parameters as a JSON
/// object. Deterministic in the RNG: the same seed gives the same objective.
pub fn instantiate(template: &ObjectiveTemplate, rng: &mut impl Rng) -> (String, Value) {
    let mut params = serde_json::Map::new();
    let mut text = template.text.clone();
    for (name, space) in &template.params {
        let (value, rendered) = match space {
            ParamSpace::Choices(c) if c.is_empty() => (Value::Null, String::new()),
            ParamSpace::Choices(c) => {
                let pick = c[rng.random_range(0..c.len())].clone();
                (Value::String(pick.clone()), pick)
            }
            ParamSpace::IntRange { min, max } => {
                let (lo, hi) = if min <= max {
                    (*min, *max)
                } else {
                    (*max, *min)
                };
                let n = rng.random_range(lo..=hi);
                (Value::from(n), n.to_string())
            }
        };
        text = text.replace(&format!("{{{name}}}"), &rendered);
        params.insert(name.clone(), value);
    }
    (text, Value::Object(params))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    const MINI: &str = r#"
kind = "mini"
text = "Find {n} facts about {topic}."
reference_cost_rao = 1000
target_schema = '''{"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object",
  "required": ["facts"], "properties": {"facts": {"type": "array", "items": {"type": "object",
  "required": ["text"], "properties": {"text": {"type": "string"}, "url": {"type": "string"}}}}}}'''

[params]
topic = ["cats", "dogs"]
n = { min = 1, max = 5 }

[[reference_plan]]
id = "s"
capability = "web_search"

[[reference_plan]]
id = "w"
capability = "llm_synthesis"
depends_on = ["s"]
"#;

    #[test]
    fn parses_and_instantiates_deterministically() {
        let t = ObjectiveTemplate::from_toml_str(MINI).unwrap();
        assert_eq!(
            t.reference_capabilities(),
            vec![Capability::WebSearch, Capability::LlmSynthesis]
        );
        assert_eq!(leaf_fields(&t.target_schema), 2);
        assert_eq!(required_leaf_fields(&t.target_schema), 1);
        let mut a = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let mut b = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let (ta, pa) = instantiate(&t, &mut a);
        let (tb, pb) = instantiate(&t, &mut b);
        assert_eq!((&ta, &pa), (&tb, &pb));
        assert!(!ta.contains('{'), "{ta}");
        let n = pa["n"].as_i64().unwrap();
        assert!((1..=5).contains(&n));
        assert!(ta.contains(pa["topic"].as_str().unwrap()));
        // Different seeds eventually give different objectives.
        let mut c = rand_chacha::ChaCha8Rng::seed_from_u64(8);
        let distinct: BTreeSet<String> = (0..20).map(|_| instantiate(&t, &mut c).0).collect();
        assert!(distinct.len() > 1);
    }

    #[test]
    fn validation_names_the_problem() {
        let bad = |from: &str, to: &str| {
            ObjectiveTemplate::from_toml_str(&MINI.replace(from, to)).unwrap_err()
        };
        let field = |e: TemplateError| match e {
            TemplateError::Invalid { field, .. } => field,
            other => panic!("{other:?}"),
        };
        assert_eq!(field(bad("{topic}.", "{topik}.")), "text");
        assert_eq!(field(bad("max = 5", "max = 0")), "params.n");
        assert_eq!(
            field(bad("depends_on = [\"s\"]", "depends_on = [\"w\"]")),
            "reference_plan.w"
        );
        assert_eq!(
            field(bad("reference_cost_rao = 1000", "reference_cost_rao = 0")),
            "reference_cost_rao"
        );
        assert_eq!(
            field(bad("\"required\": [\"facts\"], ", "")),
            "target_schema"
        );
        assert_eq!(
            field(bad("\"type\": \"object\",\n", "\"type\": \"array\",\n")),
            "target_schema"
        );
        assert!(matches!(
            bad("web_search", "web_surf"),
            TemplateError::Parse(_)
        ));
        assert!(matches!(
            bad("kind = \"mini\"", "kind = \"mini\"\nextra = 1"),
            TemplateError::Parse(_)
        ));
    }

    #[test]
    fn capability_tags_round_trip() {
        for c in Capability::ALL {
            let json = serde_json::to_string(&c).unwrap();
            assert_eq!(json, format!("\"{}\"", c.tag()));
            assert_eq!(serde_json::from_str::<Capability>(&json).unwrap(), c);
        }
        assert_eq!(placeholders("a {x} b {y}{z} {"), vec!["x", "y", "z"]);
    }

    #[test]
    fn the_shipped_list_is_the_objectives_directory() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../mocks/objectives");
        let mut files: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".toml"))
            .collect();
        files.sort();
        let names: Vec<&str> = SHIPPED.iter().map(|(n, _)| *n).collect();
        assert_eq!(names, files);
        let kinds: Vec<String> = shipped().unwrap().into_iter().map(|t| t.kind).collect();
        assert_eq!(
            kinds,
            [
                "competitive_analysis",
                "data_aggregation",
                "market_research"
            ]
        );
        let e = ObjectiveTemplate::from_file_text("x.toml", "kind = 3").unwrap_err();
        assert!(e.to_string().starts_with("x.toml: "), "{e}");
    }
}

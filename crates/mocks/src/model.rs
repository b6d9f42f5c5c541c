//! The static model of mock subnets: loading `mocks/subnets/*.toml`, checking it, and compiling
//! every schema once (input validators, output generator plans).

use crate::behaviour::{Behaviour, SchemaVersion};
use crate::error::MockError;
use crate::plan::{self, Compiler, InputShape, Node};
use crate::state::SubnetState;
use orchestra_protocol::ledger::{Endpoint, Entry, Metrics, Status};
use orchestra_protocol::{Body, Hotkey};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

/// z-score of the 95th percentile of a standard normal.
pub(crate) const Z95: f64 = 1.644_853_626_951_472_2;

/// Embedding length when neither the file nor the schema says.
const DEFAULT_EMBEDDING_DIM: u32 = 16;

/// One mock subnet: its Ledger entry as the file declares it, its behaviour, and the compiled
/// forms of both. Fields are private because the compiled plans must never drift from the
/// entry they were built from; read them through [`MockSubnet::entry`] and
/// [`MockSubnet::behaviour`].
#[derive(Debug, Clone)]
pub struct MockSubnet {
    entry: Entry,
    behaviour: Behaviour,
    file: String,
    pub(crate) endpoints: Vec<CompiledEndpoint>,
    /// `ln p50` of the subnet's latency (before per-endpoint scaling).
    pub(crate) mu: f64,
    /// Log-space standard deviation of latency.
    pub(crate) sigma: f64,
    /// Resolved nominal failure rate.
    pub(crate) failure_rate: f64,
    /// Resolved subnet price, rao.
    pub(crate) price_rao: u64,
    /// Receipt key, present only when the subnet signs receipts.
    pub(crate) hotkey: Option<Hotkey>,
}

/// One endpoint with its schemas compiled.
#[derive(Debug, Clone)]
pub(crate) struct CompiledEndpoint {
    pub(crate) name: String,
    pub(crate) deterministic: bool,
    pub(crate) input: jsonschema::Validator,
    /// Sorted by version; the first is version 1.
    pub(crate) versions: Vec<CompiledVersion>,
    /// `mu` with the endpoint's latency scale applied.
    pub(crate) mu: f64,
    pub(crate) price_rao: u64,
}

/// One output schema version of an endpoint.
#[derive(Debug, Clone)]
pub(crate) struct CompiledVersion {
    pub(crate) version: u32,
    pub(crate) output_schema: Value,
    pub(crate) stable_fields: Vec<String>,
    pub(crate) plan: Node,
    /// Stable fields: pointer, the node generated there, and the last array index on the way.
    pub(crate) stable: Vec<(String, Node, usize)>,
}

/// `[entry]` as the file writes it: the Ledger entry without its bookkeeping fields.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryFile {
    netuid: u16,
    name: String,
    description: String,
    capabilities: Vec<String>,
    #[serde(default = "active")]
    status: Status,
    metrics: Metrics,
    endpoints: Vec<Endpoint>,
}

fn active() -> Status {
    Status::Active
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MockFile {
    entry: EntryFile,
    #[serde(default)]
    behaviour: Behaviour,
}

impl MockSubnet {
    /// Parse and compile one mock file; `name` (usually the path) only names it in errors.
    pub fn from_toml_str(name: &str, text: &str) -> Result<MockSubnet, MockError> {
        let de = toml::de::Deserializer::parse(text)
            .map_err(|e| parse_err(name, ".".into(), e.to_string()))?;
        let file: MockFile = serde_path_to_error::deserialize(de).map_err(|e| {
            let key = e.path().to_string();
            parse_err(name, key, e.into_inner().to_string().trim_end().to_string())
        })?;
        MockSubnet::from_file(name, file)
    }

    /// [`MockSubnet::from_toml_str`] with `overrides` merged onto the file's `[behaviour]`
    /// table first (tables merge key by key, anything else replaces): how a scenario tweaks a
    /// subnet without copying its file. Errors name the file and the merged key.
    pub fn from_toml_str_with_overrides(
        name: &str,
        text: &str,
        overrides: &toml::Table,
    ) -> Result<MockSubnet, MockError> {
        let mut table: toml::Table =
            toml::from_str(text).map_err(|e| parse_err(name, ".".into(), e.to_string()))?;
        let behaviour = table
            .entry("behaviour")
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        let toml::Value::Table(behaviour) = behaviour else {
            return Err(parse_err(
                name,
                "behaviour".into(),
                "must be a table".into(),
            ));
        };
        merge(behaviour, overrides);
        let file: MockFile =
            serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
                let key = e.path().to_string();
                parse_err(name, key, e.into_inner().to_string().trim_end().to_string())
            })?;
        MockSubnet::from_file(name, file)
    }

    fn from_file(name: &str, file: MockFile) -> Result<MockSubnet, MockError> {
        let e = file.entry;
        let entry = Entry {
            netuid: e.netuid,
            name: e.name,
            description: e.description,
            capabilities: e.capabilities,
            endpoints: e.endpoints,
            metrics: e.metrics,
            status: e.status,
            version: 1,
            last_verified_block: 0,
            verified_by: Vec::new(),
        };
        MockSubnet::new(name, entry, file.behaviour)
    }

    /// Compile an entry and behaviour built in code; `name` only names it in errors.
    pub fn new(name: &str, entry: Entry, behaviour: Behaviour) -> Result<MockSubnet, MockError> {
        let invalid = |key: String, message: String| MockError::Invalid {
            file: name.to_string(),
            key,
            message,
        };
        let m = &entry.metrics;
        if !(0.0..=1.0).contains(&m.reliability) {
            return Err(invalid(
                "entry.metrics.reliability".into(),
                "must be in 0..=1".into(),
            ));
        }
        for (i, ep) in entry.endpoints.iter().enumerate() {
            if entry.endpoints[..i].iter().any(|o| o.name == ep.name) {
                return Err(invalid(
                    format!("entry.endpoints[{i}].name"),
                    format!("duplicate endpoint `{}`", ep.name),
                ));
            }
        }
        let (p50, p95, lat_key) = match behaviour.latency {
            Some(l) => (l.p50_ms, l.p95_ms, "behaviour.latency"),
            None => (m.p50_latency_ms, m.p95_latency_ms, "entry.metrics"),
        };
        if p50 == 0 || p95 < p50 {
            return Err(invalid(
                lat_key.into(),
                format!("need 0 < p50 <= p95, got p50 {p50} and p95 {p95}"),
            ));
        }
        let mu = (p50 as f64).ln();
        let sigma = (p95 as f64 / p50 as f64).ln() / Z95;
        let failure_rate = behaviour.failure_rate.unwrap_or(1.0 - m.reliability);
        if !(0.0..=1.0).contains(&failure_rate) {
            return Err(invalid(
                "behaviour.failure_rate".into(),
                format!("must be in 0..=1, got {failure_rate}"),
            ));
        }
        if !(0.0..=1.0).contains(&behaviour.agreement) {
            return Err(invalid(
                "behaviour.agreement".into(),
                format!("must be in 0..=1, got {}", behaviour.agreement),
            ));
        }
        if let Some(r) = behaviour.spot_check_rate
            && !(0.0..=1.0).contains(&r)
        {
            return Err(invalid(
                "behaviour.spot_check_rate".into(),
                format!("must be in 0..=1, got {r}"),
            ));
        }
        if let Some(c) = behaviour.capacity_per_s
            && !(c.is_finite() && c > 0.0)
        {
            return Err(invalid(
                "behaviour.capacity_per_s".into(),
                format!("must be > 0, got {c}"),
            ));
        }
        let o = behaviour.overload;
        for (k, v) in [
            ("latency_exponent", o.latency_exponent),
            ("failure_slope", o.failure_slope),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(invalid(
                    format!("behaviour.overload.{k}"),
                    format!("must be >= 0, got {v}"),
                ));
            }
        }
        if behaviour.timeout_ms == 0 {
            return Err(invalid("behaviour.timeout_ms".into(), "must be > 0".into()));
        }
        if behaviour.max_items == 0 {
            return Err(invalid("behaviour.max_items".into(), "must be > 0".into()));
        }
        for (k, eb) in &behaviour.endpoints {
            if !entry.endpoints.iter().any(|ep| &ep.name == k) {
                return Err(invalid(
                    format!("behaviour.endpoints.{k}"),
                    format!("no endpoint `{k}` in [entry]"),
                ));
            }
            if let Some(s) = eb.latency_scale
                && !(s.is_finite() && s > 0.0)
            {
                return Err(invalid(
                    format!("behaviour.endpoints.{k}.latency_scale"),
                    format!("must be > 0, got {s}"),
                ));
            }
        }
        for (i, sv) in behaviour.schema_versions.iter().enumerate() {
            let key = format!("behaviour.schema_versions[{i}]");
            if !entry.endpoints.iter().any(|ep| ep.name == sv.endpoint) {
                return Err(invalid(
                    format!("{key}.endpoint"),
                    format!("no endpoint `{}` in [entry]", sv.endpoint),
                ));
            }
            if sv.version < 2 {
                return Err(invalid(
                    format!("{key}.version"),
                    "must be >= 2 (1 is the entry's schema)".into(),
                ));
            }
            if behaviour.schema_versions[..i]
                .iter()
                .any(|o| o.endpoint == sv.endpoint && o.version == sv.version)
            {
                return Err(invalid(
                    format!("{key}.version"),
                    format!("duplicate version {} of `{}`", sv.version, sv.endpoint),
                ));
            }
        }
        let price_rao = behaviour.price_rao.unwrap_or(m.cost_per_query_rao);
        let hotkey = match (&behaviour.hotkey_uri, behaviour.receipts) {
            (_, false) => None,
            (Some(uri), true) => Some(
                Hotkey::from_uri(uri)
                    .map_err(|e| invalid("behaviour.hotkey_uri".into(), e.to_string()))?,
            ),
            (None, true) => Some(receipt_dev_key(entry.netuid)),
        };
        let mut endpoints = Vec::with_capacity(entry.endpoints.len());
        for (i, ep) in entry.endpoints.iter().enumerate() {
            endpoints.push(compile_endpoint(name, i, ep, &behaviour, mu, price_rao)?);
        }
        let subnet = MockSubnet {
            file: name.to_string(),
            entry,
            behaviour,
            endpoints,
            mu,
            sigma,
            failure_rate,
            price_rao,
            hotkey,
        };
        subnet.self_check()?;
        Ok(subnet)
    }

    /// Generate one response per endpoint and version from the minimal input and validate it,
    /// so a schema the generator cannot meet fails at load, naming the file, not mid-run.
    fn self_check(&self) -> Result<(), MockError> {
        for (i, ep) in self.endpoints.iter().enumerate() {
            let minimal = &self.entry.endpoints[i].minimal_input;
            if let Err(e) = ep.input.validate(minimal) {
                return Err(MockError::Invalid {
                    file: self.file.clone(),
                    key: format!("entry.endpoints[{i}].minimal_input"),
                    message: format!("does not match input_schema: {e}"),
                });
            }
            for v in &ep.versions {
                let which = format!("output_schema v{}", v.version);
                let schema_err = |message: String| MockError::Schema {
                    file: self.file.clone(),
                    endpoint: ep.name.clone(),
                    which: which.clone(),
                    message,
                };
                let validator = jsonschema::validator_for(&v.output_schema)
                    .map_err(|e| schema_err(e.to_string()))?;
                let response = self.respond(
                    ep,
                    v,
                    &Body::new(minimal.clone()),
                    0,
                    plan::BASE_MS,
                    [7; 32],
                );
                if let Err(e) = validator.validate(&response) {
                    return Err(schema_err(format!(
                        "generated response does not validate ({e}): {response}"
                    )));
                }
            }
        }
        Ok(())
    }

    /// The Ledger entry as the file declares it (version 1, unverified).
    pub fn entry(&self) -> &Entry {
        &self.entry
    }

    /// The behaviour table as the file declares it (defaults not resolved).
    pub fn behaviour(&self) -> &Behaviour {
        &self.behaviour
    }

    /// The name the subnet was loaded under (its file path).
    pub fn file(&self) -> &str {
        &self.file
    }

    /// The subnet's netuid.
    pub fn netuid(&self) -> u16 {
        self.entry.netuid
    }

    /// Endpoint names, in entry order.
    pub fn endpoint_names(&self) -> impl Iterator<Item = &str> {
        self.endpoints.iter().map(|e| e.name.as_str())
    }

    /// The output schema versions `endpoint` has (ascending, starting at 1), or `None` for an
    /// unknown endpoint.
    pub fn schema_versions(&self, endpoint: &str) -> Option<Vec<u32>> {
        self.endpoint(endpoint)
            .map(|e| e.versions.iter().map(|v| v.version).collect())
    }

    /// The output schema of `endpoint` under `version`.
    pub fn output_schema(&self, endpoint: &str, version: u32) -> Option<&Value> {
        self.version(endpoint, version).map(|v| &v.output_schema)
    }

    /// The stable fields (JSON pointers) of `endpoint` under `version`.
    pub fn stable_fields(&self, endpoint: &str, version: u32) -> Option<&[String]> {
        self.version(endpoint, version)
            .map(|v| v.stable_fields.as_slice())
    }

    /// The public key receipts verify against, when the subnet signs receipts.
    pub fn receipt_key(&self) -> Option<&Hotkey> {
        self.hotkey.as_ref()
    }

    /// Resolved nominal failure rate (the file's, or `1 - reliability`).
    pub fn failure_rate(&self) -> f64 {
        self.failure_rate
    }

    /// Resolved price of one call to `endpoint` before the state's multiplier, rao.
    pub fn price_rao(&self, endpoint: &str) -> Option<u64> {
        self.endpoint(endpoint).map(|e| e.price_rao)
    }

    pub(crate) fn endpoint(&self, name: &str) -> Option<&CompiledEndpoint> {
        self.endpoints.iter().find(|e| e.name == name)
    }

    fn version(&self, endpoint: &str, version: u32) -> Option<&CompiledVersion> {
        self.endpoint(endpoint)?
            .versions
            .iter()
            .find(|v| v.version == version)
    }
}

fn parse_err(file: &str, key: String, message: String) -> MockError {
    MockError::Parse {
        file: file.to_string(),
        key,
        message,
    }
}

/// Deep-merge `over` onto `base`: tables key by key, other values replace.
fn merge(base: &mut toml::Table, over: &toml::Table) {
    for (k, v) in over {
        match (base.get_mut(k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            _ => {
                base.insert(k.clone(), v.clone());
            }
        }
    }
}

/// The default receipt key of subnet `netuid`: ed25519, because its signatures are a pure
/// function of key and message (sr25519 signing mixes in OS randomness, which would make two
/// runs of one seed differ), from a seed anyone can derive, because verifiers of simulated runs
/// need the public key and nothing real is at stake.
pub fn receipt_dev_key(netuid: u16) -> Hotkey {
    Hotkey::ed25519_from_seed(blake3::derive_key(
        "orchestra mocks receipt key v1",
        &netuid.to_le_bytes(),
    ))
}

fn compile_endpoint(
    file: &str,
    index: usize,
    ep: &Endpoint,
    behaviour: &Behaviour,
    mu: f64,
    subnet_price: u64,
) -> Result<CompiledEndpoint, MockError> {
    let schema_err = |which: String, message: String| MockError::Schema {
        file: file.to_string(),
        endpoint: ep.name.clone(),
        which,
        message,
    };
    let input = jsonschema::validator_for(&ep.input_schema)
        .map_err(|e| schema_err("input_schema".into(), e.to_string()))?;
    let eb = behaviour
        .endpoints
        .get(&ep.name)
        .cloned()
        .unwrap_or_default();
    let dim = eb.embedding_dim.unwrap_or(DEFAULT_EMBEDDING_DIM).max(1) as usize;
    let shape = InputShape::from_schema(&ep.input_schema);
    let mut compiler = Compiler::new(&shape, dim);

    let v1 = SchemaVersion {
        endpoint: ep.name.clone(),
        version: 1,
        note: None,
        output_schema: ep.output_schema.clone(),
        stable_fields: Some(ep.stable_fields.clone()),
    };
    let mut sources: Vec<(&SchemaVersion, String)> =
        vec![(&v1, format!("entry.endpoints[{index}].stable_fields"))];
    for (i, sv) in behaviour.schema_versions.iter().enumerate() {
        if sv.endpoint == ep.name {
            sources.push((sv, format!("behaviour.schema_versions[{i}].stable_fields")));
        }
    }
    sources.sort_by_key(|(sv, _)| sv.version);

    let mut versions = Vec::with_capacity(sources.len());
    for (sv, stable_key) in sources {
        let which = format!("output_schema v{}", sv.version);
        let mut plan = compiler
            .compile_root(&sv.output_schema)
            .map_err(|m| schema_err(which.clone(), m))?;
        let stable_fields = sv
            .stable_fields
            .clone()
            .unwrap_or_else(|| ep.stable_fields.clone());
        let mut stable = Vec::with_capacity(stable_fields.len());
        for p in &stable_fields {
            let (node, idx) =
                plan::pin_stable(&mut plan, p).map_err(|message| MockError::Invalid {
                    file: file.to_string(),
                    key: stable_key.clone(),
                    message: format!("{which}: {message}"),
                })?;
            stable.push((p.clone(), node, idx));
        }
        versions.push(CompiledVersion {
            version: sv.version,
            output_schema: sv.output_schema.clone(),
            stable_fields,
            plan,
            stable,
        });
    }
    Ok(CompiledEndpoint {
        name: ep.name.clone(),
        deterministic: ep.deterministic,
        input,
        versions,
        mu: mu + eb.latency_scale.unwrap_or(1.0).ln(),
        price_rao: eb.price_rao.unwrap_or(subnet_price),
    })
}

/// The files of `mocks/subnets/` as `(file name, text)`, in file-name order, embedded when this
/// crate is built: a file added to the directory is embedded on the next build.
pub static SHIPPED: &[(&str, &str)] = include!(concat!(env!("OUT_DIR"), "/shipped_subnets.rs"));

/// `(path, text)` of every `*.toml` file directly in `dir`, in file-name order; no file is an
/// error.
fn read_toml_files(dir: &Path) -> Result<Vec<(String, String)>, MockError> {
    let io = |path: &Path, source| MockError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut files = Vec::new();
    for item in std::fs::read_dir(dir).map_err(|e| io(dir, e))? {
        let path = item.map_err(|e| io(dir, e))?.path();
        if path.extension().is_some_and(|x| x == "toml") && path.is_file() {
            files.push(path);
        }
    }
    if files.is_empty() {
        return Err(MockError::NoFiles {
            dir: dir.to_path_buf(),
        });
    }
    files.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    files
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).map_err(|e| io(&path, e))?;
            Ok((path.display().to_string(), text))
        })
        .collect()
}

/// Every mock subnet of a run, by netuid.
#[derive(Debug, Clone, Default)]
pub struct MockSet {
    subnets: BTreeMap<u16, MockSubnet>,
}

impl MockSet {
    /// Load every `*.toml` file in `dir`, in file-name order (other entries are ignored; the
    /// walk is not recursive). An empty directory is an error (a wrong path would otherwise run
    /// with no subnets), as are two files with one netuid; every error names the file. This
    /// and [`MockSet::shipped`] are how every tool reads mock subnets, so they all accept and
    /// refuse the same files.
    pub fn load_dir(dir: impl AsRef<Path>) -> Result<MockSet, MockError> {
        MockSet::load_dir_with_overrides(dir, &BTreeMap::new())
    }

    /// [`MockSet::load_dir`] with per-netuid `[behaviour]` overrides, as
    /// [`MockSet::from_sources`] applies them.
    pub fn load_dir_with_overrides(
        dir: impl AsRef<Path>,
        overrides: &BTreeMap<u16, toml::Table>,
    ) -> Result<MockSet, MockError> {
        let files = read_toml_files(dir.as_ref())?;
        MockSet::from_sources(
            files.iter().map(|(n, t)| (n.as_str(), t.as_str())),
            overrides,
        )
    }

    /// The mock subnets shipped in `mocks/subnets/` (embedded at build time, see [`SHIPPED`]),
    /// with per-netuid `[behaviour]` overrides.
    pub fn shipped(overrides: &BTreeMap<u16, toml::Table>) -> Result<MockSet, MockError> {
        MockSet::from_sources(SHIPPED.iter().copied(), overrides)
    }

    /// Parse `(name, text)` sources (files embedded with `include_str!`, say) in name order,
    /// with per-netuid `[behaviour]` overrides (see
    /// [`MockSubnet::from_toml_str_with_overrides`]). An override for a netuid no source
    /// declares is an error, since it is surely a typo in a scenario.
    pub fn from_sources<'a>(
        sources: impl IntoIterator<Item = (&'a str, &'a str)>,
        overrides: &BTreeMap<u16, toml::Table>,
    ) -> Result<MockSet, MockError> {
        let mut sources: Vec<(&str, &str)> = sources.into_iter().collect();
        sources.sort_by(|a, b| a.0.cmp(b.0));
        let mut subnets = Vec::with_capacity(sources.len());
        for (name, text) in sources {
            let first = MockSubnet::from_toml_str(name, text)?;
            subnets.push(match overrides.get(&first.netuid()) {
                Some(o) => MockSubnet::from_toml_str_with_overrides(name, text, o)?,
                None => first,
            });
        }
        let set = MockSet::from_subnets(subnets)?;
        if let Some(n) = overrides.keys().find(|n| set.get(**n).is_none()) {
            return Err(MockError::Invalid {
                file: "(overrides)".into(),
                key: n.to_string(),
                message: format!("no mock subnet has netuid {n}"),
            });
        }
        Ok(set)
    }

    /// A set of already loaded subnets; duplicate netuids are an error.
    pub fn from_subnets(
        subnets: impl IntoIterator<Item = MockSubnet>,
    ) -> Result<MockSet, MockError> {
        let mut out: BTreeMap<u16, MockSubnet> = BTreeMap::new();
        for s in subnets {
            if let Some(first) = out.get(&s.netuid()) {
                return Err(MockError::Duplicate {
                    netuid: s.netuid(),
                    first: first.file.clone(),
                    second: s.file.clone(),
                });
            }
            out.insert(s.netuid(), s);
        }
        Ok(MockSet { subnets: out })
    }

    /// The subnet with this netuid.
    pub fn get(&self, netuid: u16) -> Option<&MockSubnet> {
        self.subnets.get(&netuid)
    }

    /// All subnets, by netuid.
    pub fn subnets(&self) -> &BTreeMap<u16, MockSubnet> {
        &self.subnets
    }

    /// Subnets in netuid order.
    pub fn iter(&self) -> impl Iterator<Item = &MockSubnet> {
        self.subnets.values()
    }

    /// How many subnets.
    pub fn len(&self) -> usize {
        self.subnets.len()
    }

    /// Whether there are none (never, for a set from [`MockSet::load_dir`]).
    pub fn is_empty(&self) -> bool {
        self.subnets.is_empty()
    }

    /// Every subnet's starting state, by netuid.
    pub fn initial_states(&self) -> BTreeMap<u16, SubnetState> {
        self.subnets
            .iter()
            .map(|(n, s)| (*n, s.initial_state()))
            .collect()
    }

    /// The Ledger entries as the files declare them, by netuid (what a Ledger is seeded with).
    pub fn entries(&self) -> BTreeMap<u16, Entry> {
        self.subnets
            .iter()
            .map(|(n, s)| (*n, s.entry.clone()))
            .collect()
    }
}

//! Typed errors of loading mock files and driving their state.

use std::path::PathBuf;

/// Why a mock subnet file or directory could not be loaded. Every variant names the file, and
/// where it makes sense the key, so a bad file is fixed without guessing.
#[derive(Debug, thiserror::Error)]
pub enum MockError {
    /// The directory or a file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// OS error.
        source: std::io::Error,
    },
    /// The directory holds no `*.toml` file: almost certainly a wrong path.
    #[error("{dir}: no *.toml mock subnet files")]
    NoFiles {
        /// The directory.
        dir: PathBuf,
    },
    /// The file is not TOML or does not fit the layout.
    #[error("{file}: at key `{key}`: {message}")]
    Parse {
        /// The file.
        file: String,
        /// Dotted path of the offending key (`.` when the error is not inside a key).
        key: String,
        /// Parser message, with line and column when known.
        message: String,
    },
    /// The file parses but a value is out of range or inconsistent.
    #[error("{file}: at key `{key}`: {message}")]
    Invalid {
        /// The file.
        file: String,
        /// Dotted path of the offending key.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// A JSON Schema uses a construct the generator cannot honour, or does not compile.
    #[error("{file}: endpoint `{endpoint}` {which}: {message}")]
    Schema {
        /// The file.
        file: String,
        /// The endpoint.
        endpoint: String,
        /// Which schema (`input_schema`, `output_schema v2`, …).
        which: String,
        /// What is wrong.
        message: String,
    },
    /// Two files declare the same netuid.
    #[error("netuid {netuid} is declared by both {first} and {second}")]
    Duplicate {
        /// The netuid.
        netuid: u16,
        /// One file.
        first: String,
        /// The other.
        second: String,
    },
}

/// Why a scenario event could not be applied to a [`SubnetState`](crate::SubnetState).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StateError {
    /// The subnet has no endpoint of that name.
    #[error("subnet {netuid} has no endpoint `{endpoint}`")]
    UnknownEndpoint {
        /// The subnet.
        netuid: u16,
        /// The endpoint asked for.
        endpoint: String,
    },
    /// The endpoint has no output schema of that version.
    #[error("subnet {netuid} endpoint `{endpoint}` has no schema version {version}")]
    UnknownVersion {
        /// The subnet.
        netuid: u16,
        /// The endpoint.
        endpoint: String,
        /// The version asked for.
        version: u32,
    },
    /// A multiplier or rate is negative, not finite, or out of range.
    #[error("{what} must be {range}, got {value}")]
    OutOfRange {
        /// The quantity.
        what: &'static str,
        /// The allowed range.
        range: &'static str,
        /// The value given.
        value: f64,
    },
}

//! `orchestra-sim epoch`: one Yuma epoch from JSON to JSON.

use orchestra_yuma::{EpochInput, EpochOutput, InputError, YumaError};

/// Why an epoch input could not be turned into an output.
#[derive(Debug, thiserror::Error)]
pub enum EpochCmdError {
    /// The input could not be read.
    #[error("reading {source_name}: {error}")]
    Read {
        /// File name, or `-` for stdin.
        source_name: String,
        /// The IO error.
        error: std::io::Error,
    },
    /// Not valid JSON, or not the expected shape; names the field path and line/column.
    #[error("{path}: {error}")]
    Parse {
        /// Field path (`neurons[3].weights[1]`), `.` at the top level.
        path: String,
        /// serde_json's message, with line and column.
        error: serde_json::Error,
    },
    /// Well-formed but something the chain could never hold (uid out of range, repeats).
    #[error(transparent)]
    Invalid(#[from] InputError),
    /// The epoch itself refused the input.
    #[error(transparent)]
    Epoch(#[from] YumaError),
}

/// Parses an epoch input, reporting the offending field path on error.
pub fn parse_input(text: &str) -> Result<EpochInput, EpochCmdError> {
    let de = &mut serde_json::Deserializer::from_str(text);
    let input: EpochInput = serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        EpochCmdError::Parse {
            path,
            error: e.into_inner(),
        }
    })?;
    Ok(input)
}

/// Parses, validates and runs one epoch.
pub fn run_epoch_text(text: &str) -> Result<EpochOutput, EpochCmdError> {
    let input = parse_input(text)?;
    orchestra_yuma::validate(&input)?;
    Ok(orchestra_yuma::run_epoch(&input)?)
}

/// [`run_epoch_text`], rendered as pretty JSON (fields in a fixed order) with a final newline.
pub fn run_epoch_json(text: &str) -> Result<String, EpochCmdError> {
    let out = run_epoch_text(text)?;
    let mut s = serde_json::to_string_pretty(&out).map_err(|error| EpochCmdError::Parse {
        path: ".".into(),
        error,
    })?;
    s.push('\n');
    Ok(s)
}

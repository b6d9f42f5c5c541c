//! The JSON error body every route of every server answers with:
//! `{"error": "<code>", "message": "<reason>"}`, `Content-Type: application/json`.
//!
//! `error` is a short machine-readable code (stable; clients branch on it), `message` a reason
//! for people that never echoes secrets, signatures or payloads.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

/// The JSON error body, for servers that build it and clients that read it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// Machine-readable code (`stale_request`, `not_a_validator`, …).
    pub error: String,
    /// Human-readable reason.
    pub message: String,
}

/// A JSON error response `{"error": code, "message": …}` with `status`.
pub fn json_error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    let body = ErrorBody {
        error: code.to_string(),
        message: message.into(),
    };
    // Serialising two strings cannot fail.
    let bytes = serde_json::to_vec(&body).unwrap_or_default();
    (status, [(header::CONTENT_TYPE, "application/json")], bytes).into_response()
}

/// A refusal or failure of any route, ready to answer with (status, code and reason).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Short code.
    pub code: &'static str,
    /// Human-readable reason.
    pub message: String,
}

impl ApiError {
    /// An error with `status`, `code` and `message`.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        json_error(self.status, self.code, self.message)
    }
}

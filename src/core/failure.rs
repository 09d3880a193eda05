//! Why an API call or a command failed at Core: an `ErrorCode` (with its
//! one HTTP status) and a message saying what to do.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::protocol::{ApiError, ErrorCode};

/// A failed API call: the status and the typed, actionable body.
#[derive(Debug)]
pub struct ApiFailure {
    status: StatusCode,
    body: ApiError,
}

impl ApiFailure {
    /// A failure with the status its code maps to (`ErrorCode::http_status`).
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ApiFailure {
        let status = StatusCode::from_u16(code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        ApiFailure { status, body: ApiError { code, message: message.into() } }
    }

    pub fn code(&self) -> ErrorCode {
        self.body.code
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// What went wrong, and what to do about it.
    pub fn message(&self) -> &str {
        &self.body.message
    }

    pub fn bad_request(message: impl Into<String>) -> ApiFailure {
        Self::new(ErrorCode::Malformed, message)
    }
    pub fn not_found(message: impl Into<String>) -> ApiFailure {
        Self::new(ErrorCode::NotFound, message)
    }
    pub fn unavailable(message: impl Into<String>) -> ApiFailure {
        Self::new(ErrorCode::Unavailable, message)
    }
    pub fn internal(error: impl std::fmt::Display) -> ApiFailure {
        tracing::error!(%error, "internal error answering an API call");
        Self::new(ErrorCode::Internal, format!("Core failed: {error}"))
    }
}

impl IntoResponse for ApiFailure {
    fn into_response(self) -> Response {
        (self.status, Json(self.body)).into_response()
    }
}

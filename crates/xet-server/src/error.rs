//! The crate's error type and its one mapping to HTTP responses.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use xet_store::ErrorKind;

use crate::auth::Denied;

/// Everything a request or [`Server`](crate::Server) can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The store refused or failed.
    #[error(transparent)]
    Store(#[from] xet_store::Error),
    /// 401: no token, a forged one, or an expired one.
    #[error("{0}")]
    Unauthorized(String),
    /// 403: the token's scope is too small, or a signed URL is bad or expired.
    #[error("{0}")]
    Forbidden(String),
    /// 400: the request is malformed.
    #[error("{0}")]
    BadRequest(String),
    /// 404 for things that are not store objects (unknown routes, repo types).
    #[error("{0}")]
    NotFound(String),
    /// 412: the object exists and the request said `If-None-Match: *`.
    #[error("{0}")]
    PreconditionFailed(String),
    /// 413: a body over its limit.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// 501: a route of the spec this server does not offer.
    #[error("{0}")]
    NotImplemented(String),
    /// Binding or serving the socket failed.
    #[error("{op} {addr}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The address.
        addr: String,
        /// The OS error.
        source: std::io::Error,
    },
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<Denied> for Error {
    fn from(d: Denied) -> Self {
        match d {
            Denied::Unauthenticated(m) => Error::Unauthorized(m),
            Denied::Forbidden(m) => Error::Forbidden(m),
        }
    }
}

impl Error {
    /// The HTTP status this error answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            Error::Store(e) => match e.kind() {
                ErrorKind::NotFound => StatusCode::NOT_FOUND,
                ErrorKind::BadInput => StatusCode::BAD_REQUEST,
                ErrorKind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
                ErrorKind::RangeNotSatisfiable => StatusCode::RANGE_NOT_SATISFIABLE,
                ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            },
            Error::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Error::Forbidden(_) => StatusCode::FORBIDDEN,
            Error::BadRequest(_) => StatusCode::BAD_REQUEST,
            Error::NotFound(_) => StatusCode::NOT_FOUND,
            Error::PreconditionFailed(_) => StatusCode::PRECONDITION_FAILED,
            Error::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Error::NotImplemented(_) => StatusCode::NOT_IMPLEMENTED,
            Error::Io { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// The one place errors become HTTP: the status of [`Error::status`] and a JSON body
/// `{"error": message}`. Server faults are logged; their detail stays in the log.
impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
            format!("internal server error ({}); see the server log", status.as_u16())
        } else {
            tracing::debug!(error = %self, %status, "request refused");
            self.to_string()
        };
        let body = serde_json::json!({ "error": message }).to_string();
        let mut resp = (status, [(header::CONTENT_TYPE, "application/json")], body).into_response();
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
        }
        resp
    }
}

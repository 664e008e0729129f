//! The server's one error type: what went wrong, as an HTTP status and a JSON body
//! `{"error": "..."}` whose text is the message the local CLI prints for the same fault.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// A request that failed.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// What went wrong, in words.
    pub message: String,
}

impl ApiError {
    /// An error with this status and message.
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }

    /// 400: the request itself is wrong.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    /// 404: no such store, path or key.
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, message)
    }

    /// 503: the server is stopping.
    pub fn shutting_down() -> ApiError {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the server is shutting down",
        )
    }

    /// 500: a bug or an engine task that died.
    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }
}

impl From<reel::Error> for ApiError {
    fn from(e: reel::Error) -> ApiError {
        use reel::Error as E;
        use reel::LogError as L;
        let status = match &e {
            E::NotFound(_) => StatusCode::NOT_FOUND,
            E::Conflict { .. } => StatusCode::PRECONDITION_FAILED,
            E::Encode(_)
            | E::Decode(_)
            | E::InvalidName { .. }
            | E::InvalidArgument(_)
            | E::WrongKind { .. }
            | E::CannotAdopt { .. }
            | E::ForeignFiles { .. } => StatusCode::BAD_REQUEST,
            E::ReaderBusy { .. } => StatusCode::CONFLICT,
            E::WatchBehind { .. } => StatusCode::GONE,
            E::Log(l) => match l {
                L::NotALog { .. } => StatusCode::NOT_FOUND,
                L::RecordTooLarge { .. } | L::BatchTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
                L::Full { .. } | L::DiskFull { .. } => StatusCode::INSUFFICIENT_STORAGE,
                L::InvalidArgument(_) => StatusCode::BAD_REQUEST,
                // A follower names its source: clients redirect their writes there.
                L::ReadOnly { .. } | L::Locked { .. } | L::Follower { .. } | L::NotNext { .. } => {
                    StatusCode::CONFLICT
                }
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            },
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, e.to_string())
    }
}

impl From<reel::LogError> for ApiError {
    fn from(e: reel::LogError) -> ApiError {
        reel::Error::from(e).into()
    }
}

impl From<tokio::task::JoinError> for ApiError {
    fn from(e: tokio::task::JoinError) -> ApiError {
        ApiError::internal(format!("the engine task failed: {e}"))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::error!(status = %self.status, "{}", self.message);
        }
        (
            self.status,
            axum::Json(serde_json::json!({ "error": self.message })),
        )
            .into_response()
    }
}

/// Shorthand for handler results.
pub type ApiResult<T> = Result<T, ApiError>;

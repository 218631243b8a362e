//! Exchange Online admin API (`InvokeCommand`).

use axum::response::{IntoResponse, Response};

pub async fn invoke_command() -> Response {
    axum::http::StatusCode::NOT_IMPLEMENTED.into_response()
}

pub async fn method_not_allowed() -> Response {
    axum::http::StatusCode::METHOD_NOT_ALLOWED.into_response()
}

//! Microsoft Graph (`/v1.0`, `/beta`).

use axum::response::{IntoResponse, Response};

pub async fn handle_v1() -> Response {
    axum::http::StatusCode::NOT_IMPLEMENTED.into_response()
}

pub async fn handle_beta() -> Response {
    axum::http::StatusCode::NOT_IMPLEMENTED.into_response()
}

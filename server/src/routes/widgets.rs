//! `GET /v1/widgets/{widget_id}`: what a widget frame needs to know about its tenant before it
//! trusts its parent page: the page origins allowed to embed it.
//!
//! The relay already refuses to be framed elsewhere (`frame-ancestors` on the frame page), and
//! the frame checks its parent against the same list before it starts or answers a message, so
//! that a browser without `frame-ancestors` support, or a page that opens the frame as a popup,
//! cannot drive it either. The list names sites that embed the widget publicly anyway.

use axum::Json;
use axum::extract::State;
use serde::Serialize;

use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiPath, from_hex};
use crate::state::AppState;

/// Response of `GET /v1/widgets/{widget_id}`.
#[derive(Serialize)]
pub struct WidgetInfo {
    /// Page origins (`scheme://host[:port]`) allowed to frame the widget, besides the relay's
    /// own pages.
    pub embed_origins: Vec<String>,
}

/// `GET /v1/widgets/{widget_id}` (public).
pub async fn get(
    State(state): State<AppState>,
    ApiPath(widget_id): ApiPath<String>,
) -> ApiResult<Json<WidgetInfo>> {
    let widget: [u8; 16] = from_hex("widget_id", &widget_id)?;
    let origins = crate::tenant::embed_origins(&state.db, &widget)
        .await?
        .ok_or_else(|| ApiError::not_found("widget"))?;
    Ok(Json(WidgetInfo {
        embed_origins: origins,
    }))
}

//! Request bodies: media type, size limit and JSON, each failure a SCIM error.

use actix_web::http::header;
use actix_web::{web, HttpRequest};
use futures_util::StreamExt;
use serde_json::Value;

use super::error::HttpError;
use crate::scim::ScimError;

fn too_large(limit: usize) -> HttpError {
    HttpError(ScimError::PayloadTooLarge(format!(
        "the body is larger than {limit} bytes"
    )))
}

/// Reads a whole body of at most `limit` bytes, giving up with 408 when it has not all
/// arrived within `timeout` (a client that stalls after its headers holds a connection).
pub async fn read_bytes(
    mut payload: web::Payload,
    limit: usize,
    timeout: std::time::Duration,
) -> Result<web::BytesMut, HttpError> {
    let read = async {
        let mut body = web::BytesMut::new();
        while let Some(chunk) = payload.next().await {
            let chunk = chunk.map_err(|e| {
                HttpError(ScimError::InvalidSyntax(format!(
                    "the body could not be read: {e}"
                )))
            })?;
            if body.len() + chunk.len() > limit {
                return Err(too_large(limit));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    };
    match tokio::time::timeout(timeout, read).await {
        Ok(r) => r,
        Err(_) => Err(HttpError(ScimError::RequestTimeout(format!(
            "the body did not arrive within {} seconds",
            timeout.as_secs()
        )))),
    }
}

/// Reads a JSON body of at most `limit` bytes, sent as application/scim+json or
/// application/json, within `timeout`.
pub async fn read_json(
    req: &HttpRequest,
    payload: web::Payload,
    limit: usize,
    timeout: std::time::Duration,
) -> Result<Value, HttpError> {
    if let Some(ct) = req.headers().get(header::CONTENT_TYPE) {
        let essence = ct
            .to_str()
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if essence != "application/scim+json" && essence != "application/json" {
            return Err(HttpError(ScimError::UnsupportedMediaType(format!(
                "'{essence}' is not accepted: send application/scim+json or application/json"
            ))));
        }
    }
    if let Some(len) = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
    {
        if len > limit {
            return Err(too_large(limit));
        }
    }
    let body = read_bytes(payload, limit, timeout).await?;
    if body.is_empty() {
        return Err(HttpError(ScimError::InvalidSyntax(
            "the body is empty".into(),
        )));
    }
    crate::scim::json::parse(&body).map_err(HttpError)
}

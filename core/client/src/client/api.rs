//! The relay's HTTP API as typed calls: JSON in and out, errors mapped, and the bearer token
//! obtained by challenge-response and renewed before it expires or when the relay refuses it.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use futures_util::lock::Mutex;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use sotto_core::crypto::sign::SignatureContext;
use sotto_core::device::Device;
use zeroize::Zeroizing;

use super::bodies;
use crate::transport::{HttpRequest, HttpResponse, Method, RelayUrl, Transport};
use crate::{Error, Result};

/// Renew a token this many seconds before the relay says it expires (at most a quarter of its
/// lifetime; a token the relay refuses earlier is renewed on its 401).
const TOKEN_MARGIN_SECS: u64 = 60;

pub(crate) fn b64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

pub(crate) fn unb64(s: &str) -> Result<Vec<u8>> {
    STANDARD
        .decode(s)
        .map_err(|_| Error::BadResponse("invalid base64"))
}

pub(crate) fn unhex<const N: usize>(s: &str) -> Result<[u8; N]> {
    let mut out = [0u8; N];
    hex::decode_to_slice(s, &mut out).map_err(|_| Error::BadResponse("invalid hex id"))?;
    Ok(out)
}

struct Token {
    value: Zeroizing<String>,
    /// When to stop using it: the relay's expiry less a margin.
    renew_at: u64,
}

/// A device's view of one relay.
pub(crate) struct Api<T> {
    pub transport: T,
    pub relay: RelayUrl,
    pub widget_id: [u8; 16],
    token: Mutex<Option<Token>>,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Deserialize)]
struct ErrorDetail {
    code: String,
}

#[derive(Deserialize)]
struct Challenge {
    challenge: String,
}

#[derive(Deserialize)]
struct Issued {
    token: String,
    expires_at: u64,
}

pub(crate) fn check(response: HttpResponse) -> Result<Vec<u8>> {
    if (200..300).contains(&response.status) {
        return Ok(response.body);
    }
    let code = serde_json::from_slice::<ErrorBody>(&response.body)
        .map(|b| b.error.code)
        .unwrap_or_else(|_| "unknown".to_owned());
    Err(Error::Relay {
        status: response.status,
        code,
    })
}

pub(crate) fn parse<R: DeserializeOwned>(body: &[u8]) -> Result<R> {
    serde_json::from_slice(body).map_err(|_| Error::BadResponse("unexpected JSON"))
}

impl<T: Transport> Api<T> {
    pub fn new(transport: T, relay: RelayUrl, widget_id: [u8; 16]) -> Self {
        Api {
            transport,
            relay,
            widget_id,
            token: Mutex::new(None),
        }
    }

    /// A request without a token (registration, authentication).
    pub async fn public(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Vec<u8>> {
        let response = self.send(method, path, None, body).await?;
        check(response)
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        bearer: Option<Zeroizing<String>>,
        json: Option<Vec<u8>>,
    ) -> Result<HttpResponse> {
        let request = HttpRequest {
            method,
            url: self.relay.http_url(path),
            bearer,
            json,
        };
        Ok(self.transport.request(request).await?)
    }

    /// An authenticated request; authenticates first if needed, and once more if the relay
    /// no longer accepts the token.
    pub async fn call(
        &self,
        device: &Device,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Vec<u8>> {
        let token = self.token(device, false).await?;
        let response = self.send(method, path, Some(token), body.clone()).await?;
        if response.status == 401 {
            let token = self.token(device, true).await?;
            let response = self.send(method, path, Some(token), body).await?;
            return check(response);
        }
        check(response)
    }

    /// [`Api::call`] and parse the JSON answer.
    pub async fn call_json<R: DeserializeOwned>(
        &self,
        device: &Device,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<R> {
        parse(&self.call(device, method, path, body).await?)
    }

    /// A valid token: the cached one, or a new one from challenge-response.
    pub async fn token(&self, device: &Device, renew: bool) -> Result<Zeroizing<String>> {
        let mut slot = self.token.lock().await;
        let now = self.transport.now();
        if !renew
            && let Some(t) = slot.as_ref()
            && t.renew_at > now
        {
            return Ok(t.value.clone());
        }
        *slot = None;
        let issued = self.authenticate(device).await?;
        let value = issued.value.clone();
        *slot = Some(issued);
        Ok(value)
    }

    async fn authenticate(&self, device: &Device) -> Result<Token> {
        let widget = hex::encode(self.widget_id);
        let device_hex = hex::encode(device.id().0);
        let body = self
            .public(
                Method::Post,
                "/v1/auth/challenge",
                Some(bodies::encode(&bodies::ChallengeRequest {
                    widget_id: &widget,
                    device_id: &device_hex,
                })?),
            )
            .await?;
        let challenge: Challenge = parse(&body)?;
        let raw = unb64(&challenge.challenge)?;
        let raw: [u8; 32] = raw
            .try_into()
            .map_err(|_| Error::BadResponse("challenge is not 32 bytes"))?;
        let message = auth_message(&raw, device, &self.widget_id, &self.relay.origin());
        let signature = device.sign(SignatureContext::RelayAuth, &message);
        let body = self
            .public(
                Method::Post,
                "/v1/auth/token",
                Some(bodies::encode(&bodies::TokenRequest {
                    widget_id: &widget,
                    device_id: &device_hex,
                    challenge: &challenge.challenge,
                    signature: &b64(signature.as_bytes()),
                })?),
            )
            .await?;
        let issued: Issued = parse(&body)?;
        let token = Zeroizing::new(issued.token);
        if token.len() != 64 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::BadResponse("token is not 32 bytes of hex"));
        }
        let lifetime = issued.expires_at.saturating_sub(self.transport.now());
        let margin = TOKEN_MARGIN_SECS.min(lifetime / 4);
        Ok(Token {
            value: token,
            renew_at: issued.expires_at.saturating_sub(margin),
        })
    }
}

/// `challenge || device_id || widget_id || u16 origin_len || origin` (docs/RELAY-API.md).
fn auth_message(challenge: &[u8; 32], device: &Device, widget: &[u8; 16], origin: &str) -> Vec<u8> {
    let origin = origin.as_bytes();
    let len = u16::try_from(origin.len()).unwrap_or(u16::MAX);
    let origin = origin.get(..usize::from(len)).unwrap_or(origin);
    let mut m = Vec::with_capacity(32 + 32 + 16 + 2 + origin.len());
    m.extend_from_slice(challenge);
    m.extend_from_slice(&device.id().0);
    m.extend_from_slice(widget);
    m.extend_from_slice(&len.to_be_bytes());
    m.extend_from_slice(origin);
    m
}

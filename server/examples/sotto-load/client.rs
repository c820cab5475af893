//! A minimal relay client: registration, challenge-response login and JSON calls, with real
//! `sotto-core` devices.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chacha20::ChaCha20Rng;
use rand_core::SeedableRng;
use serde_json::{Value, json};
use sotto_core::crypto::sign::SignatureContext;
use sotto_core::device::{Device, DeviceKind};
use sotto_core::wire::WireObject;

/// Why a call failed.
pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// Seconds since the Unix epoch.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// An RNG seeded from the OS.
pub fn rng() -> Result<ChaCha20Rng, Error> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| format!("randomness: {e}"))?;
    Ok(ChaCha20Rng::from_seed(seed))
}

/// Base64 (standard, padded), as the API uses.
pub fn b64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// Decodes base64.
pub fn unb64(s: &str) -> Result<Vec<u8>, Error> {
    Ok(STANDARD.decode(s)?)
}

/// A device of a tenant talking to a relay.
pub struct Client {
    pub http: reqwest::Client,
    pub base: String,
    pub widget_id: String,
    pub device: Device,
    pub token: Option<String>,
}

impl Client {
    /// A new device of `kind` (not registered yet).
    pub fn new(
        http: &reqwest::Client,
        base: &str,
        widget_id: &str,
        kind: DeviceKind,
    ) -> Result<Self, Error> {
        Ok(Client {
            http: http.clone(),
            base: base.to_owned(),
            widget_id: widget_id.to_owned(),
            device: Device::generate(kind, &mut rng()?, now()),
            token: None,
        })
    }

    /// The device id, hex.
    pub fn id_hex(&self) -> String {
        hex::encode(self.device.id().0)
    }

    /// A JSON call; fails unless the status is 2xx. Returns the body (Null when empty).
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, Error> {
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path}", self.base));
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await?;
        let status = resp.status();
        let text = resp.text().await?;
        if !status.is_success() {
            return Err(format!("{method} {path}: {status} {text}").into());
        }
        Ok(if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text)?
        })
    }

    /// POST with a JSON body.
    pub async fn post(&self, path: &str, body: Value) -> Result<Value, Error> {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    /// Registers the device (the first owner device passes the tenant's bootstrap code) and
    /// logs in.
    pub async fn join(&mut self, bootstrap_code: Option<&str>) -> Result<(), Error> {
        let mut body =
            json!({"widget_id": self.widget_id, "record": b64(&self.device.record().to_wire())});
        if let Some(code) = bootstrap_code {
            body["bootstrap_code"] = json!(code);
        }
        self.post("/v1/devices", body).await?;
        self.login().await
    }

    /// Challenge, signature, token.
    pub async fn login(&mut self) -> Result<(), Error> {
        let c = self
            .post(
                "/v1/auth/challenge",
                json!({"widget_id": self.widget_id, "device_id": self.id_hex()}),
            )
            .await?;
        let challenge: [u8; 32] = unb64(c["challenge"].as_str().ok_or("no challenge")?)?
            .try_into()
            .map_err(|_| "challenge length")?;
        let origin = c["origin"].as_str().ok_or("no origin")?;
        let widget: [u8; 16] = hex::decode(&self.widget_id)?
            .try_into()
            .map_err(|_| "widget id length")?;
        let message =
            sotto_relay::auth::auth_message(&challenge, &self.device.id(), &widget, origin);
        let signature = self.device.sign(SignatureContext::RelayAuth, &message);
        let t = self
            .post(
                "/v1/auth/token",
                json!({
                    "widget_id": self.widget_id,
                    "device_id": self.id_hex(),
                    "challenge": b64(&challenge),
                    "signature": b64(signature.as_bytes()),
                }),
            )
            .await?;
        self.token = Some(t["token"].as_str().ok_or("no token")?.to_owned());
        Ok(())
    }
}

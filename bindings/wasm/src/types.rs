//! The TypeScript declarations of what the package returns and accepts. The values are built
//! in `convert.rs`; the two files change together.

use wasm_bindgen::prelude::*;

#[wasm_bindgen(typescript_custom_section)]
const TYPES: &'static str = r#"
/** How a device is registered. */
export type DeviceKind = "visitor" | "member";

/** Options of `SottoClient.register`. */
export interface RegisterOptions {
  /** The relay's base URL: `https://...`, or `http://` on a loopback host for development. */
  relay: string;
  /** The tenant's widget id (32 hex digits). */
  widgetId: string;
  /** The IndexedDB database that keeps this device (one per device and origin). */
  database: string;
  kind: DeviceKind;
  /** The tenant's bootstrap code, for its first owner device only. */
  bootstrapCode?: string;
}

/** A message this client sent or queued. */
export interface Sent {
  conversation: string;
  epoch: number;
  counter: number;
  /** Where the relay stored it; `null` while it waits in the outbox (offline). */
  cursor: number | null;
}

/** An attachment's description (name and type are the sender's: untrusted). */
export interface AttachmentInfo {
  name: string;
  mimeType: string;
  size: number;
}

/** A message of a conversation's history. */
export interface Message {
  cursor: number | null;
  /** The sending device. */
  sender: string;
  mine: boolean;
  kind: "text" | "attachment" | "edit" | "delete" | "typing" | "receipt" | "system" | "identity";
  /** The text, for text messages. */
  text?: string;
  attachment?: AttachmentInfo;
  epoch: number;
  counter: number;
  /** Seconds since the Unix epoch. */
  at: number;
}

/** Something suspicious or lossy; the application should show it. */
export type SottoWarning =
  | { kind: "fork"; team: string }
  | { kind: "rollback"; team: string }
  | { kind: "badKeyWrap"; team: string; author: string; seq: number }
  | { kind: "gap"; conversation: string; sender: string; missing: number }
  | { kind: "unverifiedIdentity"; conversation: string; device: string }
  | { kind: "undecryptable"; conversation: string; cursor: number; code: string }
  | { kind: "sendFailed"; conversation: string; code: string }
  | { kind: "epochRefused"; conversation: string; epoch: number; author: string | null; code: string }
  | { kind: "unverifiedDeletion"; conversation: string; code: string }
  | { kind: "other" };

/** What `SottoClient.nextEvent` delivers. */
export type SottoEvent =
  | { type: "message"; conversation: string; message: Message }
  | { type: "sent"; conversation: string; cursor: number }
  | { type: "typing"; conversation: string; sender: string; typing: boolean }
  | { type: "receipt"; conversation: string; sender: string; readUpTo: number }
  | { type: "conversationStarted"; conversation: string; team: string }
  | { type: "conversationDeleted"; conversation: string }
  | { type: "teamChanged"; team: string; seq: number }
  | { type: "removedFromTeam"; team: string }
  /** The company vouches that this visitor device is its customer (the id is display text). */
  | { type: "identityVerified"; conversation: string; device: string; customerId: string }
  | { type: "connected" }
  | { type: "disconnected"; code: string | null }
  | { type: "warning"; warning: SottoWarning }
  | { type: "other" };

/** Every rejection of the package: an Error with a stable code. */
export interface SottoError extends Error {
  name: "SottoError";
  /**
   * Stable, never renamed: for example "not_registered", "store_read_only", "transport",
   * "url_insecure_scheme", "invalid_input", "wasm_load_failed"; the package README lists them.
   */
  code: string;
}
"#;

#[wasm_bindgen]
extern "C" {
    /// `RegisterOptions` as the caller passes it.
    #[wasm_bindgen(typescript_type = "RegisterOptions")]
    pub type RegisterOptions;
}

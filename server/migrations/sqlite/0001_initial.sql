-- Sotto relay schema, version 1 (SQLite). Keep in step with ../postgres/0001_initial.sql.
-- The relay stores ciphertext and the metadata it must route: wire objects (device records,
-- chain links, epoch records, messages) as the clients sent them, opaque blobs, and ids.

CREATE TABLE tenants (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    widget_id BLOB NOT NULL UNIQUE,
    bootstrap_hash BLOB,
    created_at INTEGER NOT NULL
);

CREATE TABLE devices (
    tenant_id INTEGER NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    device_id BLOB NOT NULL,
    kind INTEGER NOT NULL,
    record BLOB NOT NULL,
    bootstrap INTEGER NOT NULL DEFAULT 0,
    registered_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, device_id)
);

CREATE TABLE auth_challenges (
    challenge_hash BLOB PRIMARY KEY,
    tenant_id INTEGER NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    device_id BLOB NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX auth_challenges_expiry ON auth_challenges (expires_at);

CREATE TABLE auth_tokens (
    token_hash BLOB PRIMARY KEY,
    tenant_id INTEGER NOT NULL,
    device_id BLOB NOT NULL,
    expires_at INTEGER NOT NULL,
    FOREIGN KEY (tenant_id, device_id) REFERENCES devices (tenant_id, device_id) ON DELETE CASCADE
);
CREATE INDEX auth_tokens_expiry ON auth_tokens (expires_at);
CREATE INDEX auth_tokens_device ON auth_tokens (tenant_id, device_id);

CREATE TABLE teams (
    id INTEGER PRIMARY KEY,
    tenant_id INTEGER NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    team_id BLOB NOT NULL,
    fingerprint BLOB NOT NULL,
    head_seq INTEGER NOT NULL,
    head BLOB NOT NULL,
    deleted INTEGER NOT NULL DEFAULT 0,
    retention_secs INTEGER NOT NULL DEFAULT 0,
    attestation BLOB,
    created_at INTEGER NOT NULL,
    UNIQUE (tenant_id, team_id)
);

CREATE TABLE chain_links (
    team_ref INTEGER NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    link BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (team_ref, seq)
);

CREATE TABLE conversations (
    id INTEGER PRIMARY KEY,
    tenant_id INTEGER NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    conversation_id BLOB NOT NULL,
    team_ref INTEGER NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    last_cursor INTEGER NOT NULL DEFAULT 0,
    last_epoch INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    UNIQUE (tenant_id, conversation_id)
);
CREATE INDEX conversations_team ON conversations (team_ref);

CREATE TABLE conversation_visitors (
    conversation_ref INTEGER NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    device_id BLOB NOT NULL,
    record BLOB NOT NULL,
    PRIMARY KEY (conversation_ref, device_id)
);
CREATE INDEX conversation_visitors_device ON conversation_visitors (device_id);

CREATE TABLE epochs (
    conversation_ref INTEGER NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    epoch INTEGER NOT NULL,
    record BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (conversation_ref, epoch)
);

CREATE TABLE envelopes (
    conversation_ref INTEGER NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    cursor INTEGER NOT NULL,
    message BLOB NOT NULL,
    received_at INTEGER NOT NULL,
    PRIMARY KEY (conversation_ref, cursor)
);
CREATE INDEX envelopes_received ON envelopes (received_at);

CREATE TABLE acks (
    conversation_ref INTEGER NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    device_id BLOB NOT NULL,
    cursor INTEGER NOT NULL,
    PRIMARY KEY (conversation_ref, device_id)
);

CREATE TABLE blobs (
    blob_id BLOB PRIMARY KEY,
    tenant_id INTEGER NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    owner_device BLOB NOT NULL,
    kind INTEGER NOT NULL,
    conversation_ref INTEGER REFERENCES conversations (id) ON DELETE CASCADE,
    size INTEGER NOT NULL,
    data BLOB NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX blobs_conversation ON blobs (conversation_ref);
CREATE INDEX blobs_age ON blobs (kind, created_at);

CREATE TABLE blob_readers (
    blob_id BLOB NOT NULL REFERENCES blobs (blob_id) ON DELETE CASCADE,
    device_id BLOB NOT NULL,
    PRIMARY KEY (blob_id, device_id)
);

CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id INTEGER NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    at INTEGER NOT NULL,
    event TEXT NOT NULL,
    device_id BLOB,
    subject TEXT
);
CREATE INDEX audit_log_tenant ON audit_log (tenant_id, id);

-- Sotto relay schema, version 1 (PostgreSQL). Keep in step with ../sqlite/0001_initial.sql.
-- The relay stores ciphertext and the metadata it must route: wire objects (device records,
-- chain links, epoch records, messages) as the clients sent them, opaque blobs, and ids.

CREATE TABLE tenants (
    id BIGSERIAL PRIMARY KEY,
    name TEXT NOT NULL,
    widget_id BYTEA NOT NULL UNIQUE,
    bootstrap_hash BYTEA,
    created_at BIGINT NOT NULL
);

CREATE TABLE devices (
    tenant_id BIGINT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    device_id BYTEA NOT NULL,
    kind BIGINT NOT NULL,
    record BYTEA NOT NULL,
    bootstrap BIGINT NOT NULL DEFAULT 0,
    registered_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, device_id)
);

CREATE TABLE auth_challenges (
    challenge_hash BYTEA PRIMARY KEY,
    tenant_id BIGINT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    device_id BYTEA NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX auth_challenges_expiry ON auth_challenges (expires_at);

CREATE TABLE auth_tokens (
    token_hash BYTEA PRIMARY KEY,
    tenant_id BIGINT NOT NULL,
    device_id BYTEA NOT NULL,
    expires_at BIGINT NOT NULL,
    FOREIGN KEY (tenant_id, device_id) REFERENCES devices (tenant_id, device_id) ON DELETE CASCADE
);
CREATE INDEX auth_tokens_expiry ON auth_tokens (expires_at);
CREATE INDEX auth_tokens_device ON auth_tokens (tenant_id, device_id);

CREATE TABLE teams (
    id BIGSERIAL PRIMARY KEY,
    tenant_id BIGINT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    team_id BYTEA NOT NULL,
    fingerprint BYTEA NOT NULL,
    head_seq BIGINT NOT NULL,
    head BYTEA NOT NULL,
    deleted BIGINT NOT NULL DEFAULT 0,
    retention_secs BIGINT NOT NULL DEFAULT 0,
    attestation BYTEA,
    created_at BIGINT NOT NULL,
    UNIQUE (tenant_id, team_id)
);

CREATE TABLE chain_links (
    team_ref BIGINT NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    seq BIGINT NOT NULL,
    link BYTEA NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (team_ref, seq)
);

CREATE TABLE conversations (
    id BIGSERIAL PRIMARY KEY,
    tenant_id BIGINT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    conversation_id BYTEA NOT NULL,
    team_ref BIGINT NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    last_cursor BIGINT NOT NULL DEFAULT 0,
    last_epoch BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    UNIQUE (tenant_id, conversation_id)
);
CREATE INDEX conversations_team ON conversations (team_ref);

CREATE TABLE conversation_visitors (
    conversation_ref BIGINT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    device_id BYTEA NOT NULL,
    record BYTEA NOT NULL,
    PRIMARY KEY (conversation_ref, device_id)
);
CREATE INDEX conversation_visitors_device ON conversation_visitors (device_id);

CREATE TABLE epochs (
    conversation_ref BIGINT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    epoch BIGINT NOT NULL,
    record BYTEA NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (conversation_ref, epoch)
);

CREATE TABLE envelopes (
    conversation_ref BIGINT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    cursor BIGINT NOT NULL,
    message BYTEA NOT NULL,
    received_at BIGINT NOT NULL,
    PRIMARY KEY (conversation_ref, cursor)
);
CREATE INDEX envelopes_received ON envelopes (received_at);

CREATE TABLE acks (
    conversation_ref BIGINT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    device_id BYTEA NOT NULL,
    cursor BIGINT NOT NULL,
    PRIMARY KEY (conversation_ref, device_id)
);

CREATE TABLE blobs (
    blob_id BYTEA PRIMARY KEY,
    tenant_id BIGINT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    owner_device BYTEA NOT NULL,
    kind BIGINT NOT NULL,
    conversation_ref BIGINT REFERENCES conversations (id) ON DELETE CASCADE,
    size BIGINT NOT NULL,
    data BYTEA NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX blobs_conversation ON blobs (conversation_ref);
CREATE INDEX blobs_age ON blobs (kind, created_at);

CREATE TABLE blob_readers (
    blob_id BYTEA NOT NULL REFERENCES blobs (blob_id) ON DELETE CASCADE,
    device_id BYTEA NOT NULL,
    PRIMARY KEY (blob_id, device_id)
);

CREATE TABLE audit_log (
    id BIGSERIAL PRIMARY KEY,
    tenant_id BIGINT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    at BIGINT NOT NULL,
    event TEXT NOT NULL,
    device_id BYTEA,
    subject TEXT
);
CREATE INDEX audit_log_tenant ON audit_log (tenant_id, id);

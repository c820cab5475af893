-- Sotto relay schema, version 3 (PostgreSQL): tombstones of deleted conversations. Keep in step with
-- ../sqlite/0003_conversation_deletions.sql.

-- A deleted conversation keeps only its signed ConversationDeletion (PROTOCOL §7.13, 139
-- bytes), so clients that were away can verify who deleted it before they erase anything. The
-- visitor devices (concatenated 32-byte ids, at most 16) say who besides the team's readers
-- may fetch it.
CREATE TABLE conversation_deletions (
    tenant_id BIGINT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    conversation_id BYTEA NOT NULL,
    team_ref BIGINT NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    visitors BYTEA NOT NULL,
    deletion BYTEA NOT NULL,
    deleted_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, conversation_id)
);
CREATE INDEX conversation_deletions_team ON conversation_deletions (team_ref);

-- Sotto relay schema, version 3 (SQLite): tombstones of deleted conversations. Keep in step with
-- ../postgres/0003_conversation_deletions.sql.

-- A deleted conversation keeps only its signed ConversationDeletion (PROTOCOL §7.13, 139
-- bytes), so clients that were away can verify who deleted it before they erase anything. The
-- visitor devices (concatenated 32-byte ids, at most 16) say who besides the team's readers
-- may fetch it.
CREATE TABLE conversation_deletions (
    tenant_id INTEGER NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    conversation_id BLOB NOT NULL,
    team_ref INTEGER NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    visitors BLOB NOT NULL,
    deletion BLOB NOT NULL,
    deleted_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, conversation_id)
);
CREATE INDEX conversation_deletions_team ON conversation_deletions (team_ref);

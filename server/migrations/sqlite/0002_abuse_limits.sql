-- Sotto relay schema, version 2 (SQLite): what the abuse limits need. Keep in step with
-- ../postgres/0002_abuse_limits.sql.

-- The team an audit entry concerns (NULL for device-level events), so that the log is shown
-- only to managers of that team.
ALTER TABLE audit_log ADD COLUMN team_ref INTEGER;
CREATE INDEX audit_log_age ON audit_log (at);

-- When a device last obtained a token, so idle visitor devices can be swept.
ALTER TABLE devices ADD COLUMN last_seen_at INTEGER NOT NULL DEFAULT 0;
UPDATE devices SET last_seen_at = registered_at;
CREATE INDEX devices_idle ON devices (kind, last_seen_at);

-- Storage quotas sum blob sizes per device and per tenant.
CREATE INDEX blobs_owner ON blobs (tenant_id, owner_device, kind, size);

-- The page origins allowed to frame the tenant's widget (space-separated, normalized
-- `scheme://host[:port]`); empty: only the relay's own pages.
ALTER TABLE tenants ADD COLUMN embed_origins TEXT NOT NULL DEFAULT '';

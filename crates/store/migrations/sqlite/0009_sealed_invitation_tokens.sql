-- An invitation keeps its link's token sealed with the instance key
-- (AES-256-GCM under a key derived from N8N_ENCRYPTION_KEY, as credential
-- data and TOTP secrets) beside its SHA-256: "resend" and "copy invite link"
-- show the same link again until it is accepted, withdrawn, replaced by
-- "make a new link" or expires, while a copy of the database still opens
-- nothing. NULL for invitations made before: their links work, but cannot be
-- shown again (asking for the link then makes a new one).
ALTER TABLE invitations ADD COLUMN sealed_token TEXT;

-- Migration 0022 counted every address stored before it as confirmed, but
-- members could already change their own address then, without proving it
-- reaches them. The audit log records each such change ("email and names"
-- on user.profile_updated, by the member themselves): those addresses count
-- as unconfirmed until their owner follows a confirmation link (the
-- profile page sends one), unless a link to the address now stored was
-- followed already. Best effort: an audit log pruned by hand tells less.
UPDATE users SET email_verified = 0
WHERE id IN (
    SELECT actor_id FROM audit_events
    WHERE action = 'user.profile_updated' AND detail = 'email and names'
      AND actor_id IS NOT NULL
)
AND NOT EXISTS (
    SELECT 1 FROM email_verifications v
    WHERE v.user_id = users.id AND v.email = users.email AND v.used_at IS NOT NULL
);

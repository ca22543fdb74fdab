-- name: user_insert
-- A new account (email already lower-cased and trimmed); the unique email index refuses a second.
INSERT INTO users (id, email, display_name, password_hash, operator)
VALUES (gen_random_uuid(), $1, $2, $3, $4)
RETURNING id, email, display_name, operator, totp_secret IS NOT NULL AS totp, disabled_at, created_at;

-- name: user_by_email
-- What a login checks: the password hash, the second factor and whether the account is disabled.
SELECT id, email, display_name, password_hash, operator, totp_secret, disabled_at FROM users WHERE email = $1;

-- name: user_by_id
-- One account as the API shows it.
SELECT id, email, display_name, operator, totp_secret IS NOT NULL AS totp, disabled_at, created_at
FROM users WHERE id = $1;

-- name: user_secrets
-- The password hash and TOTP secret of one account, locked (FOR UPDATE) to change them.
SELECT id, password_hash, totp_secret, operator FROM users WHERE id = $1 FOR UPDATE;

-- name: user_access
-- What a request of this user may do: operator, disabled, and the grants per shop as JSON.
SELECT u.operator, u.disabled_at IS NOT NULL AS disabled,
       coalesce((SELECT jsonb_object_agg(g.shop_id, g.role) FROM shop_grants g WHERE g.user_id = u.id), '{}')::text
           AS grants
FROM users u WHERE u.id = $1;

-- name: user_set_password
-- A new password hash.
UPDATE users SET password_hash = $2, updated_at = now(), version = version + 1 WHERE id = $1;

-- name: user_set_totp
-- Turns the second factor on (a secret) or off (NULL); the code that proved it is spent (its time step $3).
UPDATE users SET totp_secret = $2, totp_last_step = greatest(totp_last_step, $3), updated_at = now(),
                 version = version + 1
WHERE id = $1;

-- name: totp_spend
-- Spends a TOTP code: accepted once, and only if its time step is later than the last one accepted (guarded:
-- of two requests with the same code, one gets the row); NULL if the code was used already.
UPDATE users SET totp_last_step = $2 WHERE id = $1 AND (totp_last_step IS NULL OR totp_last_step < $2) RETURNING id;

-- name: user_has_totp
-- Whether the account has its second factor on (to say what a refusal for lack of one asks for).
SELECT totp_secret IS NOT NULL FROM users WHERE id = $1;

-- name: user_disable
-- Disables an account (its sessions are revoked by session_revoke_all); NULL if already disabled.
UPDATE users SET disabled_at = now(), updated_at = now(), version = version + 1
WHERE id = $1 AND disabled_at IS NULL RETURNING id;

-- name: session_insert
-- A new session; only the digest of its id is kept.
INSERT INTO user_sessions (id_digest, user_id, second_factor, ip, user_agent, expires_at)
VALUES ($1, $2, $3, $4::inet, $5, now() + make_interval(secs => $6))
RETURNING public_id, created_at, expires_at;

-- name: session_lookup
-- A live session by the digest of its id: not revoked, not expired.
SELECT user_id, public_id, second_factor, expires_at FROM user_sessions
WHERE id_digest = $1 AND revoked_at IS NULL AND expires_at > now();

-- name: sessions_of_user
-- A user's live sessions, newest first.
SELECT public_id, id_digest, ip::text AS ip, user_agent, second_factor, created_at, expires_at FROM user_sessions
WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > now() ORDER BY created_at DESC LIMIT 100;

-- name: session_revoke
-- Revokes one of a user's sessions by its public id; its digest (to drop from caches), or NULL.
UPDATE user_sessions SET revoked_at = now()
WHERE user_id = $1 AND public_id = $2 AND revoked_at IS NULL RETURNING id_digest;

-- name: session_revoke_digest
-- Revokes the session with this digest (logout).
UPDATE user_sessions SET revoked_at = now() WHERE id_digest = $1 AND revoked_at IS NULL RETURNING user_id;

-- name: session_revoke_all
-- Revokes every live session of a user but the one with digest $2 (NULL: all); their digests.
UPDATE user_sessions SET revoked_at = now()
WHERE user_id = $1 AND revoked_at IS NULL AND ($2::bytea IS NULL OR id_digest <> $2) RETURNING id_digest;

-- name: grants_of_shop
-- A shop's people and their roles.
SELECT g.user_id, u.email, u.display_name, g.role, g.granted_at FROM shop_grants g JOIN users u ON u.id = g.user_id
WHERE g.shop_id = $1 ORDER BY g.granted_at, g.user_id;

-- name: grant_upsert
-- Gives a person a role at a shop (replacing the role they had there).
INSERT INTO shop_grants (user_id, shop_id, role, granted_by) VALUES ($1, $2, $3, $4)
ON CONFLICT (user_id, shop_id) DO UPDATE SET role = excluded.role, granted_by = excluded.granted_by,
                                             granted_at = now()
RETURNING user_id, shop_id, role, granted_at;

-- name: grant_delete
-- Removes a person's role at a shop; the role it had, or NULL.
DELETE FROM shop_grants WHERE user_id = $1 AND shop_id = $2 RETURNING role;

-- name: shop_grants_lock
-- Every role at a shop, locked (FOR UPDATE, in one order) before one of them changes: two changes at one
-- shop run one after the other, so two owners demoting each other at once cannot leave it without one.
SELECT user_id, role FROM shop_grants WHERE shop_id = $1 ORDER BY user_id FOR UPDATE;

-- name: invitation_insert
-- A single-use invitation; only the digest of its token is kept.
INSERT INTO invitations (token_digest, shop_id, email, role, invited_by, expires_at)
VALUES ($1, $2, $3, $4, $5, now() + make_interval(secs => $6))
RETURNING id, shop_id, email, role, created_at, expires_at;

-- name: invitation_accept
-- Uses an invitation once (guarded: not used, not revoked, not expired); what it grants, or NULL.
UPDATE invitations SET accepted_at = now(), accepted_by = $2
WHERE token_digest = $1 AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > now()
RETURNING id, shop_id, email, role, invited_by;

-- name: invitation_state
-- An invitation by its token: for whom, and why it cannot be used (used, revoked or expired); no row if unknown.
SELECT email, accepted_at IS NOT NULL AS used, revoked_at IS NOT NULL AS revoked, expires_at <= now() AS expired
FROM invitations WHERE token_digest = $1;

-- name: invitation_accepted_by
-- Notes which account accepted the invitation (known once the account is made).
UPDATE invitations SET accepted_by = $2 WHERE id = $1;

-- name: invitations_withdraw_of
-- Withdraws the open invitations person $2 made to shop $1 for roles other than $3 (what they may still give).
UPDATE invitations SET revoked_at = now()
WHERE shop_id = $1 AND invited_by = $2 AND accepted_at IS NULL AND revoked_at IS NULL AND NOT (role = ANY($3::text[]))
RETURNING id;

-- name: invitations_of_shop
-- A shop's invitations that can still be used.
SELECT id, shop_id, email, role, created_at, expires_at FROM invitations
WHERE shop_id = $1 AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > now() ORDER BY created_at;

-- name: invitation_revoke
-- Withdraws an unused invitation of a shop.
UPDATE invitations SET revoked_at = now()
WHERE id = $1 AND shop_id = $2 AND accepted_at IS NULL AND revoked_at IS NULL RETURNING id;

-- name: api_key_insert
-- A new API key; only its digest and first characters are kept.
INSERT INTO api_keys (key_digest, prefix, name, permissions, shop_ids, created_by, expires_at)
VALUES ($1, $2, $3, $4, $5, $6, $7)
RETURNING id, prefix, name, permissions, shop_ids, created_at, expires_at, last_used_at, revoked_at;

-- name: api_key_lookup
-- A usable key by its digest: not revoked, not expired; its maker, if the maker has an account (whose access
-- is then checked on every use).
SELECT k.id, k.permissions, k.shop_ids, u.id AS maker FROM api_keys k LEFT JOIN users u ON u.id = k.created_by
WHERE k.key_digest = $1 AND k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > now());

-- name: api_keys_of_shops
-- The keys that act for any of the shops $1 (NULL: every key), newest first.
SELECT id, prefix, name, permissions, shop_ids, created_at, expires_at, last_used_at, revoked_at FROM api_keys
WHERE $1::uuid[] IS NULL OR shop_ids && $1 ORDER BY created_at DESC LIMIT 200;

-- name: api_key_lock
-- One key, locked (FOR UPDATE) to revoke it.
SELECT id, key_digest, shop_ids, revoked_at FROM api_keys WHERE id = $1 FOR UPDATE;

-- name: api_key_revoke
-- Revokes a key (guarded: once).
UPDATE api_keys SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL
RETURNING id, prefix, name, permissions, shop_ids, created_at, expires_at, last_used_at, revoked_at;

-- name: api_key_touch
-- Notes a key's use, at most once a minute (a write per request would cost more than the request).
UPDATE api_keys SET last_used_at = now()
WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute');

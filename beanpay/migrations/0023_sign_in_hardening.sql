-- 0023 sign-in hardening: the last TOTP time step accepted per account, so a code is accepted once (RFC 6238
-- 5.2: a code replayed within its 30 s window, or an earlier step's, is refused); and the request id a
-- client sent, kept apart from the server's own in the audit log (a client's id is not evidence).
ALTER TABLE users ADD COLUMN totp_last_step bigint;
ALTER TABLE audit_log ADD COLUMN client_request_id text;

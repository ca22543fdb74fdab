-- 0011 accounts: people who log in (merchants, staff, operators), their grants per shop, sessions,
-- invitations and integrations' API keys. Customers are not here: they keep their accounts in the
-- coffee platform's identity provider, and beanpay knows them only by the `sub` of its tokens.
--
-- Nothing secret is stored in a form that can be used: passwords as argon2id hashes, session ids,
-- invitation tokens and API keys as SHA-256 digests (they are 32 random bytes, so a digest is enough
-- and a leaked table opens nothing).

ALTER TABLE users
    ADD COLUMN email          varchar(320),
    ADD COLUMN password_hash  text,
    ADD COLUMN operator       boolean NOT NULL DEFAULT false,
    ADD COLUMN totp_secret    text,
    ADD COLUMN disabled_at    timestamptz,
    ADD COLUMN updated_at     timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN version        integer NOT NULL DEFAULT 1,
    ADD CONSTRAINT users_email_check CHECK (email IS NULL OR (email = lower(btrim(email)) AND email LIKE '%_@_%'));
CREATE UNIQUE INDEX users_email_uq ON users (email);

-- the grants of 0001 were never written to; roles per shop are now owner, manager and staff
DROP TABLE user_roles;

CREATE TABLE shop_grants (
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    shop_id     uuid NOT NULL REFERENCES coffee_shops (id) ON DELETE CASCADE,
    role        varchar(16) NOT NULL CHECK (role IN ('owner', 'manager', 'staff')),
    granted_by  uuid REFERENCES users (id) ON DELETE SET NULL,
    granted_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, shop_id)
);
CREATE INDEX shop_grants_shop_idx ON shop_grants (shop_id);

CREATE TABLE user_sessions (
    id_digest     bytea PRIMARY KEY,  -- sha256 of the cookie's random id
    user_id       uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    public_id     uuid NOT NULL DEFAULT gen_random_uuid() UNIQUE,  -- how the session is named in lists
    second_factor boolean NOT NULL DEFAULT false,  -- TOTP checked at login
    ip            inet,
    user_agent    varchar(300),
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL,
    revoked_at    timestamptz
);
CREATE INDEX user_sessions_user_idx ON user_sessions (user_id, created_at);

CREATE TABLE invitations (
    token_digest  bytea PRIMARY KEY,
    id            uuid NOT NULL DEFAULT gen_random_uuid() UNIQUE,
    shop_id       uuid NOT NULL REFERENCES coffee_shops (id) ON DELETE CASCADE,
    email         varchar(320) NOT NULL CHECK (email = lower(btrim(email))),
    role          varchar(16) NOT NULL CHECK (role IN ('owner', 'manager', 'staff')),
    invited_by    uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL,
    accepted_at   timestamptz,
    accepted_by   uuid REFERENCES users (id) ON DELETE SET NULL,
    revoked_at    timestamptz
);
CREATE INDEX invitations_shop_idx ON invitations (shop_id, created_at);

CREATE TABLE api_keys (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    key_digest    bytea NOT NULL UNIQUE,
    prefix        varchar(16) NOT NULL,  -- the key's first characters, to recognise it in a list
    name          varchar(100) NOT NULL CHECK (length(btrim(name)) > 0),
    permissions   text[] NOT NULL CHECK (cardinality(permissions) > 0),
    shop_ids      uuid[] NOT NULL CHECK (cardinality(shop_ids) > 0),
    created_by    uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz,
    last_used_at  timestamptz,
    revoked_at    timestamptz
);
CREATE INDEX api_keys_shops_idx ON api_keys USING gin (shop_ids);

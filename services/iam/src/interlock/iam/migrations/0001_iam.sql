-- Tenants, users, sessions (refresh-token families), API keys, signing keys, and the
-- feed of revocations and key changes every IAM replica follows.
CREATE TABLE tenants (
    name       text        PRIMARY KEY,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE users (
    id            uuid        PRIMARY KEY,
    tenant        text        NOT NULL REFERENCES tenants (name),
    username      text        NOT NULL,
    password_hash text        NOT NULL,
    roles         text[]      NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    failed_logins integer     NOT NULL DEFAULT 0,
    locked_until  timestamptz,
    UNIQUE (tenant, username)
);

-- Opaque refresh tokens, stored as SHA-256. Each refresh marks its token used and adds
-- the next one to the same family; presenting a used token revokes the family.
CREATE TABLE refresh_tokens (
    token_hash text        PRIMARY KEY,
    family_id  uuid        NOT NULL,
    user_id    uuid        NOT NULL REFERENCES users (id),
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    used_at    timestamptz,
    revoked_at timestamptz
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);

CREATE TABLE api_keys (
    id           uuid        PRIMARY KEY,
    tenant       text        NOT NULL REFERENCES tenants (name),
    name         text        NOT NULL,
    key_hash     text        NOT NULL UNIQUE,
    prefix       text        NOT NULL,
    roles        text[]      NOT NULL,
    created_by   text        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz,
    last_used_at timestamptz,
    revoked_at   timestamptz
);
CREATE INDEX api_keys_tenant ON api_keys (tenant, created_at);

CREATE TABLE signing_keys (
    kid         text        PRIMARY KEY,
    private_pem text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    retired_at  timestamptz,
    expires_at  timestamptz
);

-- kind: 'session' | 'api_key' (ref revoked until expires_at) or 'signing_keys' (reload).
CREATE TABLE auth_changes (
    seq        bigserial   PRIMARY KEY,
    kind       text        NOT NULL,
    ref        text        NOT NULL,
    expires_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now()
);

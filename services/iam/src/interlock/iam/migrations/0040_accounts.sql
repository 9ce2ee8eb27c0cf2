-- Login throttling per name tried (whether or not the user exists), users that can be
-- disabled or made to change their password, and users that can be deleted.
CREATE TABLE login_attempts (
    tenant       text        NOT NULL,
    username     text        NOT NULL,
    failures     integer     NOT NULL DEFAULT 0,
    lockouts     integer     NOT NULL DEFAULT 0,
    locked_until timestamptz,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, username)
);
CREATE INDEX login_attempts_updated ON login_attempts (updated_at);

ALTER TABLE users
    DROP COLUMN failed_logins,
    DROP COLUMN locked_until,
    ADD COLUMN disabled_at timestamptz,
    ADD COLUMN must_change_password boolean NOT NULL DEFAULT false;

-- Deleting a user deletes their refresh tokens (revoked first, on the change feed).
ALTER TABLE refresh_tokens
    DROP CONSTRAINT refresh_tokens_user_id_fkey,
    ADD CONSTRAINT refresh_tokens_user_id_fkey
        FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE;
CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id);
CREATE INDEX api_keys_created_by ON api_keys (created_by);

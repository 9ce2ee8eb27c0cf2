-- Tenant secrets: write-only values, sealed with a key-encryption key from IAM's
-- settings (never stored in the database). Only workers read them, for a task.
CREATE TABLE tenant_secrets (
    tenant     text        NOT NULL REFERENCES tenants (name),
    name       text        NOT NULL,
    sealed     text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    updated_by text        NOT NULL,
    PRIMARY KEY (tenant, name)
);

-- Webhook signing secrets are stored sealed (AES-256-GCM under the service's
-- key-encryption key, the subscription's id as associated data): kek_id:base64url.
-- The key is not in the database, so the values are sealed by the service at start-up
-- (interlock.notification.sealing), which finds plain whsec_ values left from before.
ALTER TABLE subscriptions RENAME COLUMN secret TO sealed_secret;
ALTER TABLE subscriptions RENAME COLUMN previous_secret TO sealed_previous_secret;

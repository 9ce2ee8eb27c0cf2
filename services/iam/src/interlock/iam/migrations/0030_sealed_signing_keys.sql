-- Signing keys are stored sealed with a key-encryption key from IAM's settings
-- (AES-GCM, "kek_id:base64url(nonce || ciphertext)"); IAM seals the rows still in
-- plain text at start-up and clears private_pem, which later stays NULL.
ALTER TABLE signing_keys ALTER COLUMN private_pem DROP NOT NULL;
ALTER TABLE signing_keys ADD COLUMN sealed_private_key text;
ALTER TABLE signing_keys ADD CONSTRAINT signing_keys_have_a_key
    CHECK (private_pem IS NOT NULL OR sealed_private_key IS NOT NULL);

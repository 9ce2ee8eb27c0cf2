-- API keys issued from now on end with a checksum (checked before any lookup); the
-- ones issued before keep working and are marked as legacy here.
ALTER TABLE api_keys ADD COLUMN checksummed boolean NOT NULL DEFAULT false;
ALTER TABLE api_keys ALTER COLUMN checksummed SET DEFAULT true;

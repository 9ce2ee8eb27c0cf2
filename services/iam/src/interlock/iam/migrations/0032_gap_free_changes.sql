-- The feed of revocations and key changes must be gap-free: a follower reads
-- "seq > last seen", so a change whose sequence number was taken before another's but
-- committed after it would be skipped. Sequence numbers now come from one counter row,
-- taken in the writing transaction and locked until it commits, so numbers are handed
-- out in commit order (writers of changes, rare, wait for each other).
CREATE TABLE auth_change_counter (
    id  boolean PRIMARY KEY DEFAULT true CHECK (id),
    seq bigint  NOT NULL
);
INSERT INTO auth_change_counter (seq) SELECT coalesce(max(seq), 0) FROM auth_changes;
ALTER TABLE auth_changes ALTER COLUMN seq DROP DEFAULT;

ALTER TABLE things ADD COLUMN size integer NOT NULL DEFAULT 0;
INSERT INTO things (id, name) VALUES (1, 'first');

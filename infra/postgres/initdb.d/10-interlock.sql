-- The postgres image runs this once, on the first start with an empty data
-- volume. It creates the role every relational service connects as and one
-- database per service (no service reads another's database). Changing it
-- later takes `docker compose down -v` or manual SQL.

-- Read from the container's environment rather than written here, so the file
-- holds no secret and the password never appears on a command line.
\getenv interlock_password INTERLOCK_POSTGRES_PASSWORD
\if :{?interlock_password}
\else
  -- A role without a password could not log in over TCP: stop the init.
  DO $$ BEGIN RAISE EXCEPTION 'INTERLOCK_POSTGRES_PASSWORD is not set'; END $$;
\endif

CREATE ROLE interlock LOGIN PASSWORD :'interlock_password';

CREATE DATABASE iam OWNER interlock;
CREATE DATABASE workflow OWNER interlock;
CREATE DATABASE scheduler OWNER interlock;
CREATE DATABASE notification OWNER interlock;
CREATE DATABASE artifact OWNER interlock;

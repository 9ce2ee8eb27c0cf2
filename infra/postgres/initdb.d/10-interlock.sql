-- The postgres image runs this once, on the first start with an empty data
-- volume. Each relational service gets a login role of its own name and one
-- database it owns; no other role may connect to it (CONNECT is revoked from
-- PUBLIC), so no service reads another's database, even by mistake.
-- Changing it later takes `docker compose down -v` or manual SQL.

-- Passwords are read from the container's environment rather than written
-- here, so the file holds no secret and no password appears on a command line.
\getenv iam_password INTERLOCK_IAM_POSTGRES_PASSWORD
\getenv workflow_password INTERLOCK_WORKFLOW_POSTGRES_PASSWORD
\getenv scheduler_password INTERLOCK_SCHEDULER_POSTGRES_PASSWORD
\getenv notification_password INTERLOCK_NOTIFICATION_POSTGRES_PASSWORD
\getenv artifact_password INTERLOCK_ARTIFACT_POSTGRES_PASSWORD
\if :{?iam_password}
\else
  -- A role without a password could not log in over TCP: stop the init.
  DO $$ BEGIN RAISE EXCEPTION 'INTERLOCK_IAM_POSTGRES_PASSWORD is not set'; END $$;
\endif
\if :{?workflow_password}
\else
  DO $$ BEGIN RAISE EXCEPTION 'INTERLOCK_WORKFLOW_POSTGRES_PASSWORD is not set'; END $$;
\endif
\if :{?scheduler_password}
\else
  DO $$ BEGIN RAISE EXCEPTION 'INTERLOCK_SCHEDULER_POSTGRES_PASSWORD is not set'; END $$;
\endif
\if :{?notification_password}
\else
  DO $$ BEGIN RAISE EXCEPTION 'INTERLOCK_NOTIFICATION_POSTGRES_PASSWORD is not set'; END $$;
\endif
\if :{?artifact_password}
\else
  DO $$ BEGIN RAISE EXCEPTION 'INTERLOCK_ARTIFACT_POSTGRES_PASSWORD is not set'; END $$;
\endif

CREATE ROLE iam LOGIN PASSWORD :'iam_password';
CREATE ROLE workflow LOGIN PASSWORD :'workflow_password';
CREATE ROLE scheduler LOGIN PASSWORD :'scheduler_password';
CREATE ROLE notification LOGIN PASSWORD :'notification_password';
CREATE ROLE artifact LOGIN PASSWORD :'artifact_password';

CREATE DATABASE iam OWNER iam;
CREATE DATABASE workflow OWNER workflow;
CREATE DATABASE scheduler OWNER scheduler;
CREATE DATABASE notification OWNER notification;
CREATE DATABASE artifact OWNER artifact;

REVOKE ALL ON DATABASE iam FROM PUBLIC;
REVOKE ALL ON DATABASE workflow FROM PUBLIC;
REVOKE ALL ON DATABASE scheduler FROM PUBLIC;
REVOKE ALL ON DATABASE notification FROM PUBLIC;
REVOKE ALL ON DATABASE artifact FROM PUBLIC;

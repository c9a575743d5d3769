-- kdp_reader: the read-only role for team consoles (`kdplatform sql`, the dashboard) on the lab's PostgreSQL.
-- SELECT on every table and view of the schema, now and later (default privileges of the role that runs
-- the migrations, i.e. whoever runs this file), read-only transactions, a statement timeout, no CREATE.
-- Run as the database owner, with the role's password in $KDP_READER_PASSWORD (psql >= 15 reads it; kept
-- off the command line, where `ps` shows it) or as a psql variable; safe to run again:
--   KDP_READER_PASSWORD=... psql -v ON_ERROR_STOP=1 -f docker/kdp_reader.sql
-- (compose's db-reader-init service does this on every `up`).
\if :{?reader_password}
\else
  \getenv reader_password KDP_READER_PASSWORD
\endif
SELECT set_config('kdp.reader_password', :'reader_password', false);
DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'kdp_reader') THEN
    CREATE ROLE kdp_reader;
  END IF;
  EXECUTE format(
    'ALTER ROLE kdp_reader LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION PASSWORD %L',
    current_setting('kdp.reader_password'));
  EXECUTE format('GRANT CONNECT ON DATABASE %I TO kdp_reader', current_database());
  EXECUTE format('REVOKE CREATE, TEMPORARY ON DATABASE %I FROM kdp_reader', current_database());
END $$;
ALTER ROLE kdp_reader SET default_transaction_read_only = on;
ALTER ROLE kdp_reader SET statement_timeout = '120s';
GRANT USAGE ON SCHEMA public TO kdp_reader;
REVOKE CREATE ON SCHEMA public FROM kdp_reader;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO kdp_reader;
ALTER DEFAULT PRIVILEGES FOR ROLE CURRENT_USER IN SCHEMA public GRANT SELECT ON TABLES TO kdp_reader;

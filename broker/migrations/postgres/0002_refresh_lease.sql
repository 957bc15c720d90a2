-- Connect Medicare broker, PostgreSQL schema version 2: the refresh lease.
--
-- At most one refresh per connection runs across every broker replica (Blue Button's refresh
-- tokens are single use). A refresh takes the lease by writing a random holder id and an
-- expiry; it lives on the connection's row, so it goes with the connection, and it expires
-- by itself if its holder dies. A lease rather than a row lock held across the upstream call:
-- no transaction (and no pooled connection) stays open while the provider answers.
ALTER TABLE connections
    ADD COLUMN refresh_lease_holder TEXT,
    ADD COLUMN refresh_lease_until  BIGINT;

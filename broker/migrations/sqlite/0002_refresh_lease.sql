-- Connect Medicare broker, SQLite schema version 2: the refresh lease.
--
-- At most one refresh per connection runs across every broker process sharing this file
-- (Blue Button's refresh tokens are single use). A refresh takes the lease by writing a
-- random holder id and an expiry; it lives on the connection's row, so it goes with the
-- connection, and it expires by itself if its holder dies.
ALTER TABLE connections ADD COLUMN refresh_lease_holder TEXT;
ALTER TABLE connections ADD COLUMN refresh_lease_until INTEGER;

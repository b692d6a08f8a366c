-- The example shop's database: one table per service, a row per order, payment, reservation
-- and shipment, its status updated in place (as the services' own databases do).
-- `crosscheck cdc start` runs this in the local database `shop` (idempotent);
-- `crosscheck simulate --to-db` writes its traffic into these tables.
--
-- Debezium keys every change event by order_id (message.key.columns), so an order's changes
-- share a partition number on every topic. REPLICA IDENTITY FULL puts the whole old row in an
-- update's `before`: the mapping needs the previous status to skip updates that leave it as it
-- was, and a delete of a table keyed by a column other than its primary key needs order_id.

CREATE TABLE IF NOT EXISTS orders (
    order_id      text PRIMARY KEY,
    user_id       text,
    status        text NOT NULL,          -- placed | paid | cancelled
    items         jsonb,                  -- [{"sku", "quantity", "unit_price"}]
    total_amount  bigint,                 -- minor units
    currency      text,
    payment_id    text,                   -- the payment the order service applied (paid)
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL    -- when the current status was set
);

CREATE TABLE IF NOT EXISTS payments (
    payment_id    text PRIMARY KEY,
    order_id      text NOT NULL,
    status        text NOT NULL,          -- paid | failed | refunded
    amount        bigint NOT NULL,        -- charged, minor units
    refunded      bigint,                 -- refunded, minor units (refunded)
    currency      text NOT NULL,
    channel       text,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS payments_order_id ON payments (order_id);

CREATE TABLE IF NOT EXISTS reservations (
    reservation_id text PRIMARY KEY,
    order_id      text NOT NULL,
    sku           text NOT NULL,
    quantity      integer NOT NULL,
    status        text NOT NULL,          -- reserved | confirmed | released
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS reservations_order_id ON reservations (order_id);

CREATE TABLE IF NOT EXISTS shipments (
    shipment_id   text PRIMARY KEY,
    order_id      text NOT NULL,
    status        text NOT NULL,          -- created | dispatched | delivered | cancelled
    items         jsonb,                  -- [{"sku", "quantity"}]
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS shipments_order_id ON shipments (order_id);

ALTER TABLE orders REPLICA IDENTITY FULL;
ALTER TABLE payments REPLICA IDENTITY FULL;
ALTER TABLE reservations REPLICA IDENTITY FULL;
ALTER TABLE shipments REPLICA IDENTITY FULL;

-- The relational model of the shop (the write side) and its transactional outbox.
--
-- Every aggregate root carries a `version` that only grows: the projector keeps a snapshot
-- only if its version is newer than the stored one, so every change must advance it. Gaps
-- are allowed (a product whose row and stock change in one transaction may advance by 2).

-- Advance `version` on every UPDATE that did not advance it itself, so a writer that forgets
-- cannot publish two different snapshots under one version (the second would be dropped).
CREATE FUNCTION hemisphere_advance_version() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.version <= OLD.version THEN
        NEW.version := OLD.version + 1;
    END IF;
    RETURN NEW;
END;
$$;

CREATE TABLE customers (
    id             text PRIMARY KEY,
    name           text NOT NULL CHECK (name <> ''),
    email          text NOT NULL CHECK (email LIKE '%_@_%'),
    home_region    text NOT NULL,
    loyalty_points integer NOT NULL DEFAULT 0 CHECK (loyalty_points >= 0),
    version        bigint NOT NULL DEFAULT 1 CHECK (version >= 1),
    updated_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TRIGGER customers_advance_version
    BEFORE UPDATE ON customers
    FOR EACH ROW EXECUTE FUNCTION hemisphere_advance_version();

CREATE TABLE products (
    id           text PRIMARY KEY,
    sku          text NOT NULL UNIQUE,
    name         text NOT NULL CHECK (name <> ''),
    description  text,
    category     text NOT NULL,
    price_amount integer NOT NULL CHECK (price_amount >= 0),
    currency     char(3) NOT NULL,
    version      bigint NOT NULL DEFAULT 1 CHECK (version >= 1),
    updated_at   timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX products_category_idx ON products (category, id);

CREATE TRIGGER products_advance_version
    BEFORE UPDATE ON products
    FOR EACH ROW EXECUTE FUNCTION hemisphere_advance_version();

-- Stock lives apart from the catalogue row (the saga's steps lock and change it often), but a
-- product's snapshot shows `available`, so a stock change is a change of the product.
CREATE TABLE inventory (
    product_id text PRIMARY KEY REFERENCES products (id) ON DELETE CASCADE,
    available  integer NOT NULL DEFAULT 0 CHECK (available >= 0),
    reserved   integer NOT NULL DEFAULT 0 CHECK (reserved >= 0),
    sold       integer NOT NULL DEFAULT 0 CHECK (sold >= 0)
);

CREATE FUNCTION hemisphere_inventory_touches_product() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE products
       SET version = version + 1, updated_at = now()
     WHERE id = NEW.product_id;
    RETURN NULL;
END;
$$;

CREATE TRIGGER inventory_touches_product
    AFTER UPDATE ON inventory
    FOR EACH ROW
    WHEN (OLD.* IS DISTINCT FROM NEW.*)
    EXECUTE FUNCTION hemisphere_inventory_touches_product();

CREATE TABLE orders (
    id              text PRIMARY KEY,
    customer_id     text NOT NULL REFERENCES customers (id),
    status          text NOT NULL CHECK (status IN (
                        'PENDING', 'RESERVED', 'AUTHORIZED', 'CAPTURED',
                        'CONFIRMED', 'CANCELLED', 'FAILED')),
    currency        char(3) NOT NULL,
    total_amount    integer NOT NULL CHECK (total_amount >= 0),
    failure_reason  text,
    placed_in       text NOT NULL,
    idempotency_key text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    version         bigint NOT NULL DEFAULT 1 CHECK (version >= 1),
    -- A retried checkout (same key from the same customer) finds the first order.
    CONSTRAINT orders_idempotency_key_uq UNIQUE (customer_id, idempotency_key)
);

CREATE INDEX orders_customer_idx ON orders (customer_id, created_at DESC);

CREATE TRIGGER orders_advance_version
    BEFORE UPDATE ON orders
    FOR EACH ROW EXECUTE FUNCTION hemisphere_advance_version();

-- Name and price are copied at order time: the order shows what was bought, at what price,
-- even after the catalogue changes.
CREATE TABLE order_lines (
    order_id          text NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    line_no           integer NOT NULL CHECK (line_no >= 1),
    product_id        text NOT NULL REFERENCES products (id),
    product_name      text NOT NULL,
    quantity          integer NOT NULL CHECK (quantity > 0),
    unit_price_amount integer NOT NULL CHECK (unit_price_amount >= 0),
    currency          char(3) NOT NULL,
    PRIMARY KEY (order_id, line_no)
);

CREATE INDEX order_lines_product_idx ON order_lines (product_id);

CREATE TABLE order_status_history (
    order_id text NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    seq      integer NOT NULL CHECK (seq >= 1),
    status   text NOT NULL CHECK (status IN (
                 'PENDING', 'RESERVED', 'AUTHORIZED', 'CAPTURED',
                 'CONFIRMED', 'CANCELLED', 'FAILED')),
    at       timestamptz NOT NULL,
    reason   text,
    PRIMARY KEY (order_id, seq)
);

CREATE TABLE payments (
    id           text PRIMARY KEY,
    order_id     text NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    status       text NOT NULL,
    amount       integer NOT NULL CHECK (amount >= 0),
    currency     char(3) NOT NULL,
    provider_ref text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX payments_order_idx ON payments (order_id);

-- The transactional outbox: one row per event, written in the transaction of the change it
-- describes; the relay marks rows published once the projector has applied them.
CREATE TABLE outbox (
    id             bigserial PRIMARY KEY,
    aggregate_kind text NOT NULL CHECK (aggregate_kind IN ('Product', 'Customer', 'Order')),
    aggregate_id   text NOT NULL,
    version        bigint NOT NULL,
    payload        jsonb NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    published_at   timestamptz
);

-- The relay only ever looks for unpublished rows, oldest first: keep that index small.
CREATE INDEX outbox_unpublished_idx ON outbox (id) WHERE published_at IS NULL;

-- Wake the relays. NOTIFY is delivered at commit (never for a rolled-back insert) and
-- identical notifications of one transaction are folded into one, so per statement is enough.
CREATE FUNCTION hemisphere_outbox_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('hemisphere_outbox', '');
    RETURN NULL;
END;
$$;

CREATE TRIGGER outbox_notify
    AFTER INSERT ON outbox
    FOR EACH STATEMENT EXECUTE FUNCTION hemisphere_outbox_notify();

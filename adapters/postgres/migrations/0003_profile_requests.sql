-- Asynchronous profile updates: one row per (customer, idempotency key), claimed in the
-- transaction that applies the update, so a redelivered or resent request applies once.
--
-- No foreign key to customers: a request for an unknown customer is recorded as REJECTED
-- too, so its redeliveries are recognised and dropped instead of retried forever.
CREATE TABLE profile_update_requests (
    customer_id     text NOT NULL,
    idempotency_key text NOT NULL,
    request_id      text NOT NULL UNIQUE,
    -- What was asked (NULL: leave as is), to tell a resent request from a key reused for
    -- another change.
    name            text,
    email           text,
    status          text NOT NULL CHECK (status IN ('APPLIED', 'REJECTED')),
    reason          text,
    received_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (customer_id, idempotency_key)
);

-- The sagas' own bookkeeping (adapters/postgres/saga.py). Write side only: nothing here is
-- projected, and no event is appended for these rows.

-- One row per order that a saga touched; every step locks it first (FOR UPDATE), so the steps
-- of one order never interleave, whichever executions or redeliveries run them.
--
-- No foreign key to orders: a compensation can run for an order that CreateOrder never wrote
-- (it failed), and it must still leave `aborted_at` behind so that a late CreateOrder refuses.
CREATE TABLE sagas (
    order_id       text PRIMARY KEY,
    -- The executions' inputs, so the reconciler can re-run a saga even when Step Functions
    -- has lost the execution (the local endpoint forgets everything when it restarts).
    checkout_input jsonb,
    cancel_input   jsonb,
    -- Set by the first compensation (or by BeginCancellation): from then on every forward
    -- step fails with Order.Aborted, so a re-run can never go forward again.
    aborted_at     timestamptz,
    -- The failure reason of the error that made it compensate; MarkOrderFailed keeps the first.
    abort_reason   text,
    -- The saga reached its last step (ConfirmOrder, MarkOrderFailed, MarkOrderCancelled);
    -- BeginCancellation clears it, as a new saga starts on the order.
    done_at        timestamptz,
    -- How many times the reconciler re-ran it (the suffix of the next execution's name).
    attempts       integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    updated_at     timestamptz NOT NULL DEFAULT now()
);

-- The reconciler's question: which unfinished sagas have been idle the longest?
CREATE INDEX sagas_unfinished_idx ON sagas (updated_at) WHERE done_at IS NULL;

-- A step's recorded result, written in the step's own transaction: a redelivered task, or a
-- saga re-run from the start, finds it and answers the same without changing anything. Only
-- successes are recorded; a step that fails rolled everything back and may run again.
CREATE TABLE saga_steps (
    order_id    text NOT NULL,
    step        text NOT NULL,
    result      jsonb NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (order_id, step)
);

-- One payment per order, following the card provider. The *-ING statuses are written before
-- the provider is called, so a crash or a timeout leaves a trace that an outcome is unknown:
-- the compensations resolve it by replaying the call with the same idempotency key.
ALTER TABLE payments
    ADD COLUMN authorization_id text,
    ADD COLUMN capture_id       text,
    ADD COLUMN refund_id        text,
    ADD CONSTRAINT payments_one_per_order UNIQUE (order_id),
    ADD CONSTRAINT payments_status_check CHECK (status IN (
        'AUTHORIZING',     -- authorize sent, outcome unknown
        'AUTHORIZED',      -- a hold exists
        'DECLINED',        -- the provider refused the authorization
        'ABANDONED',       -- the authorization's outcome could not be learned; a hold lapses
        'CAPTURING',       -- capture sent, outcome unknown
        'CAPTURED',        -- money taken
        'CAPTURE_FAILED',  -- the provider refused the capture; the hold remains
        'VOIDED',          -- the hold was released
        'REFUNDED'         -- the money was given back
    ));

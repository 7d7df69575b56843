-- Payment timeouts, idempotent order creation, and per-day usage.

-- An order nobody paid within PAYMENT_TIMEOUT_MINUTES is expired by the
-- worker's timeout job. A payment that still arrives wins (money received)
-- and completes it, counted as an anomaly.
alter table payment_orders
    drop constraint payment_orders_status_check,
    add constraint payment_orders_status_check
        check (status in ('pending', 'paid', 'completed', 'failed', 'cancelled', 'expired')),
    -- when the timeout job expired it (kept if a late payment completes it)
    add column expired_at timestamptz;

-- The timeout job's scan: pending orders older than the timeout. On
-- created_at alone, not partial on status: a column in an index's predicate
-- counts as indexed, and every grant's status update would stop being a
-- heap-only update. created_at never changes, so this one costs the grant
-- path nothing; the job bounds its range scan from below (see
-- ledger::orders::expire_stale).
create index payment_orders_created_idx on payment_orders (created_at);

-- The Idempotency-Key of POST /api/payments/orders. A key is reserved
-- before Crossmint is called (so concurrent requests with one key make one
-- Crossmint call) and bound to the order it produced in the transaction
-- that records the order. A reservation whose request failed is deleted; one
-- whose request died is taken over once its lease has passed.
create table order_idempotency_keys (
    user_id text not null,
    idempotency_key text not null,
    -- the package the key was first used for: the same key with another is refused
    package_id text not null,
    -- which request holds the reservation, so a request whose lease was
    -- taken over cannot bind its (abandoned) order to the key
    reservation uuid not null,
    reserved_at timestamptz not null default now(),
    -- set once the order is recorded; null while the first request runs
    crossmint_order_id text,
    -- the first answer's body, returned again to a retry with the same key
    -- (it carries the order's client secret, which only this user receives)
    response jsonb,
    primary key (user_id, idempotency_key),
    constraint order_idempotency_keys_bound_check
        check ((crossmint_order_id is null) = (response is null))
);

-- Spends per user per UTC day (shared::usage). Written after the spend has
-- committed, never inside it: a failure here must not fail or undo a spend.
create table usage_daily (
    user_id text not null,
    day date not null,
    spends bigint not null,
    credits bigint not null,
    primary key (user_id, day),
    constraint usage_daily_counts_check check (spends > 0 and credits > 0)
);

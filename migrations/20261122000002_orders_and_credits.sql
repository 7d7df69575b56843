-- Orders, their event history, the credit ledger and balances.

create table payment_orders (
    id uuid primary key,
    -- Crossmint's order id; unique, so one payment can only ever be one order
    crossmint_order_id text not null,
    user_id text not null,
    package_id text not null,
    -- the package as it was when the order was created (name, price, credits)
    package_snapshot jsonb not null,
    -- expected price, exact decimal
    amount numeric(20, 6) not null,
    currency text not null default 'USDT',
    chain_used text,
    transaction_hash text,
    base_credits bigint not null,
    bonus_credits bigint not null default 0,
    total_credits bigint not null,
    status text not null default 'pending',
    -- [{status, at, reason}] in the order they happened
    status_history jsonb not null default '[]',
    -- set when an event contradicted the order; no automatic grant until cleared
    review_reason text,
    -- 'api' when the backend created it before payment, 'webhook' when built from event metadata
    created_from text not null,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    paid_at timestamptz,
    completed_at timestamptz,

    constraint payment_orders_crossmint_order_id_key unique (crossmint_order_id),
    constraint payment_orders_status_check
        check (status in ('pending', 'paid', 'completed', 'failed', 'cancelled')),
    constraint payment_orders_total_credits_check check (total_credits = base_credits + bonus_credits),
    constraint payment_orders_created_from_check check (created_from in ('api', 'webhook'))
)
-- Room for the status updates to stay heap-only (no indexed column changes).
with (fillfactor = 80);

create index payment_orders_user_created_idx on payment_orders (user_id, created_at desc);
-- Orders held for review; indexes no column that status updates change.
create index payment_orders_review_idx on payment_orders (id) where review_reason is not null;

-- Every event that touched an order, with the delivery it came from.
create table payment_order_events (
    id bigint generated always as identity primary key,
    order_id uuid not null references payment_orders (id),
    -- the delivery it came from (webhook_deliveries.id; no foreign key: the
    -- worker writes it from the row it just locked, and a check per event
    -- row cost measurable throughput)
    delivery_id bigint,
    -- the provider's event name, or ours (credits.added, review.held, ...)
    event_type text not null,
    event_data jsonb not null,
    created_at timestamptz not null default now()
);

create index payment_order_events_order_idx on payment_order_events (order_id, id);

-- Append-only: a correction is a new row, never an update.
create table credit_ledger (
    id bigint generated always as identity primary key,
    user_id text not null,
    -- signed: grants are positive, spends and corrections negative
    credits bigint not null,
    -- purchase_grant for now; spends and expiry come with the API
    kind text not null,
    order_id uuid references payment_orders (id),
    -- the delivery whose event caused this entry (webhook_deliveries.id):
    -- every grant is traceable. No foreign key, as for payment_order_events.
    delivery_id bigint,
    created_at timestamptz not null default now(),

    constraint credit_ledger_kind_check check (kind in ('purchase_grant'))
);

-- The heart of "never twice": at most one purchase grant per order, enforced
-- by the database whatever the application does.
create unique index credit_ledger_one_grant_per_order
    on credit_ledger (order_id) where kind = 'purchase_grant';
create index credit_ledger_user_idx on credit_ledger (user_id, created_at);

-- The balance is the sum of the user's ledger; kept here so reads are cheap.
create table user_credits (
    user_id text primary key,
    balance bigint not null,
    updated_at timestamptz not null default now(),
    constraint user_credits_balance_check check (balance >= 0)
);

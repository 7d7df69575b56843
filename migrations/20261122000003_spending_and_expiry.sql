-- Spending, expiry, and the frontend API's own state.

-- The purchase terms: how long the credits of this order stay valid (days
-- from the grant; null: they never expire). Fixed when the order is created,
-- so a later change of policy never changes what was bought.
alter table payment_orders
    add column credits_valid_days integer,
    add constraint payment_orders_credits_valid_days_check check (credits_valid_days > 0);

-- The ledger gains spends and expiries, both negative. Still append-only.
alter table credit_ledger
    drop constraint credit_ledger_kind_check,
    add constraint credit_ledger_kind_check check (kind in ('purchase_grant', 'spend', 'expiry')),
    add constraint credit_ledger_sign_check check ((kind = 'purchase_grant') = (credits > 0)),
    -- grants only: when what is left of them expires
    add column expires_at timestamptz,
    -- expiry only: the grant whose unspent rest this removes
    add column expired_grant_id bigint references credit_ledger (id),
    -- spends only: what the caller said it was for
    add column description text;

-- At most one expiry entry per grant, whatever runs the job how often.
create unique index credit_ledger_one_expiry_per_grant
    on credit_ledger (expired_grant_id) where kind = 'expiry';

-- What is left of each grant that expires. Spends draw from the
-- earliest-expiring lot first; the expiry job removes what is left once a
-- lot's time has come. Credits that never expire are the balance minus these.
create table credit_lots (
    grant_id bigint primary key references credit_ledger (id),
    user_id text not null,
    expires_at timestamptz not null,
    granted bigint not null,
    remaining bigint not null,
    constraint credit_lots_remaining_check check (remaining between 0 and granted)
);

create index credit_lots_user_live_idx on credit_lots (user_id, expires_at) where remaining > 0;
create index credit_lots_due_idx on credit_lots (expires_at) where remaining > 0;

-- One row per spend, keyed by the caller's idempotency key: the same key
-- never spends twice, and a retry gets the first answer back.
create table credit_spends (
    user_id text not null,
    idempotency_key text not null,
    credits bigint not null,
    description text,
    ledger_id bigint not null references credit_ledger (id),
    balance_after bigint not null,
    created_at timestamptz not null default now(),
    primary key (user_id, idempotency_key),
    constraint credit_spends_credits_check check (credits > 0)
);

-- Sliding-window rate limits shared by every API instance: the times of a
-- user's recent allowed requests per action.
create table api_rate_limits (
    user_id text not null,
    action text not null,
    hits timestamptz[] not null,
    primary key (user_id, action)
);

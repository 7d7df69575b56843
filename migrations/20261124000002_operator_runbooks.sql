-- The operator's runbooks (`ledgerhook-admin`): an audit trail, the switch
-- that pauses processing, revoking a grant, and granting by hand.

-- Every operator command, written in the same transaction as the change it
-- describes, so a change without its audit row cannot exist.
create table operator_actions (
    id bigint generated always as identity primary key,
    at timestamptz not null default now(),
    -- who ran it (--operator); null only for a command that changes nothing
    -- (a read) or an older command run without one
    operator text,
    -- why (--reason)
    reason text,
    -- the subcommand: pause, resume, revoke, grant, audit, ...
    command text not null,
    -- its arguments as given, less the operator and reason
    arguments jsonb not null default '{}',
    -- what changed; for a read or a no-op, what was found
    result jsonb not null default '{}',
    constraint operator_actions_command_check check (command <> '')
);

create index operator_actions_at_idx on operator_actions (at);

-- The switch every worker watches: while paused, workers take no messages
-- (deliveries keep being recorded by the ingester and wait in the queue).
-- One row, always present.
create table processing_control (
    id boolean primary key default true,
    paused boolean not null default false,
    -- when the switch was last turned either way
    since timestamptz not null default now(),
    changed_by text,
    reason text,
    constraint processing_control_one_row check (id)
);

insert into processing_control default values;

-- The ledger gains two kinds. A revoke is negative (zero when nothing was
-- left to take: it still marks the grant as revoked); a manual grant is
-- positive. Still append-only.
alter table credit_ledger
    drop constraint credit_ledger_kind_check,
    add constraint credit_ledger_kind_check
        check (kind in ('purchase_grant', 'spend', 'expiry', 'revoke', 'manual_grant')),
    drop constraint credit_ledger_sign_check,
    add constraint credit_ledger_sign_check
        check ((kind in ('purchase_grant', 'manual_grant')) = (credits > 0)),
    -- revoke only: the grant (purchase or manual) it takes back
    add column reverses_grant_id bigint references credit_ledger (id),
    -- revoke only: credits it should have taken but could not (already spent)
    add column shortfall bigint,
    -- manual grant only: the operator's key; the same key never grants twice
    add column idempotency_key text,
    add constraint credit_ledger_revoke_reverses_check
        check ((kind = 'revoke') = (reverses_grant_id is not null)),
    add constraint credit_ledger_shortfall_check
        check (shortfall is null or (kind = 'revoke' and shortfall >= 0)),
    add constraint credit_ledger_manual_grant_key_check
        check ((kind = 'manual_grant') = (idempotency_key is not null));

-- One revoke per grant: a second revoke of the same grant is refused by the
-- database, whatever runs it how often. (A partial refund, later, gets a kind
-- and a rule of its own.)
create unique index credit_ledger_one_revoke_per_grant
    on credit_ledger (reverses_grant_id) where kind = 'revoke';
-- One manual grant per idempotency key.
create unique index credit_ledger_manual_grant_key
    on credit_ledger (idempotency_key) where kind = 'manual_grant';
-- One manual grant per order, as for purchase grants.
create unique index credit_ledger_one_manual_grant_per_order
    on credit_ledger (order_id) where kind = 'manual_grant';

-- A revoke is recorded on its order (the status stays what it was; the
-- history and the events say what happened).
alter table payment_orders
    add column revoked_at timestamptz,
    -- credits actually taken back
    add column revoked_credits bigint,
    -- credits that could not be taken back (spent before the revoke)
    add column revoke_shortfall bigint,
    add constraint payment_orders_revoke_check
        check (revoked_credits >= 0 and revoke_shortfall >= 0);

-- The orders with a shortfall, summed by every worker for its metrics;
-- indexes no column that the worker's status updates change.
create index payment_orders_shortfall_idx
    on payment_orders (id) where revoke_shortfall > 0;

-- Duplicate deliveries of granted orders, for `ledgerhook-admin duplicates`.
-- On the events table (insert-only) rather than on webhook_deliveries, whose
-- processing updates would stop being heap-only with an index on `outcome`.
create index payment_order_events_duplicate_idx
    on payment_order_events (created_at) where event_data ->> 'decision' = 'duplicate';

-- Stripe subscriptions (design document 003). Each paid period is an order
-- of its own (the invoice that paid it, its plan as the package), so the
-- order machinery grants it once, checks its amount and takes back its
-- refunds; the order names its subscription here.
alter table payment_orders add column subscription_id text;
create index payment_orders_subscription_idx on payment_orders (subscription_id)
    where subscription_id is not null;

-- A subscription's own state, as Stripe's customer.subscription.* events
-- tell it. Owned by ledgerhook_store::subscriptions.
create table subscriptions (
    -- Stripe's id, sub_...
    id text primary key,
    user_id text not null,
    -- the plan now; a change applies from the next paid period
    plan_id text not null,
    -- Stripe's status: incomplete, active, past_due, canceled, unpaid, ...
    status text not null,
    -- cus_...: the customer portal is opened for it
    customer_id text,
    -- its item (si_...) and the item's product (prod_...): a plan change
    -- gives that item the new plan's price
    item_id text,
    product_id text,
    current_period_start timestamptz,
    current_period_end timestamptz,
    cancel_at_period_end boolean not null default false,
    canceled_at timestamptz,
    -- the `created` of the newest event applied: an older one arriving
    -- late changes nothing
    event_created_at timestamptz not null,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);
create index subscriptions_user_idx on subscriptions (user_id);

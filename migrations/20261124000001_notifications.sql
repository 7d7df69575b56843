-- Notifications about grants (an email to the buyer, a message to the team's
-- chat): an outbox. The grant's own statement writes the rows, so a grant
-- and its notifications commit together or not at all; ledgerhook-notifier
-- sends them later, apart from the payment path, so a mail server or a chat
-- service that is down never fails, delays or rolls back a grant.
-- Owned by ledgerhook_shared::notifications (the grant insert excepted).
create table notifications (
    -- the notification's id, derived from (order_id, channel) by the grant
    -- statement (md5 as a uuid), so the primary key is also the guard of one
    -- message per order and channel, with no second index to maintain on
    -- the payment path; also the email's Message-ID (<id@ledgerhook>), the
    -- same for every resend
    id uuid primary key,
    channel text not null,
    -- payment_orders.id; no foreign key: the row is written in the order's
    -- own grant statement, and a key check per row would cost the grant
    order_id uuid not null,
    -- email only: the buyer's address as the payment event gave it (untrusted)
    recipient text,
    -- what the message says: {orderId, userId, packageId, packageName,
    -- credits, amount (exact decimal text), currency}; rendered when sent
    facts jsonb not null,
    created_at timestamptz not null default now(),
    -- sending attempts so far (each claim that ended, sent or not)
    attempts integer not null default 0,
    -- when the notifier may try next (backoff after a failure)
    next_attempt_at timestamptz not null default now(),
    sent_at timestamptz,
    -- set when the attempts are spent; a person looks (an alert fires)
    parked_at timestamptz,
    -- the last failure, for the person who looks (never a secret)
    last_error text,

    constraint notifications_channel_check check (channel in ('email', 'discord', 'feishu')),
    constraint notifications_recipient_check check ((channel = 'email') = (recipient is not null)),
    constraint notifications_sent_or_parked check (sent_at is null or parked_at is null)
);

-- What the notifier claims: unsent, unparked rows whose time has come.
create index notifications_due_idx on notifications (next_attempt_at)
    where sent_at is null and parked_at is null;

-- The parked-notifications gauge and alert count these.
create index notifications_parked_idx on notifications (parked_at)
    where parked_at is not null;

-- The operator console (`ledgerhook-console`): who may sign in, their
-- sessions, and the indexes its lookups need.

-- People who may use the console. Created by `ledgerhook-admin operator
-- add`, which prints a one-time password once; only its argon2 hash is kept.
create table console_operators (
    name text primary key,
    -- viewer: looks; operator: looks and acts
    role text not null,
    -- argon2id, in the PHC string form (salt and parameters inside)
    password_hash text not null,
    -- true until the one-time password is replaced at the first sign-in
    must_change_password boolean not null default true,
    created_at timestamptz not null default now(),
    created_by text,
    constraint console_operators_role_check check (role in ('viewer', 'operator')),
    constraint console_operators_name_check check (name ~ '^[a-z0-9][a-z0-9._@-]{0,63}$')
);

-- A signed-in browser. The cookie holds a random token; only its SHA-256 is
-- stored, so a copy of this table signs nobody in. Removing the operator
-- removes their sessions.
create table console_sessions (
    token_hash bytea primary key,
    operator text not null references console_operators (name) on delete cascade,
    -- sent back in every form that changes something
    csrf_token text not null,
    created_at timestamptz not null default now(),
    -- moved at most once a minute, for the idle timeout
    last_seen_at timestamptz not null default now(),
    -- opened for a trusted proxy's user: valid only on requests that still
    -- carry the proxy's secret
    via_proxy boolean not null default false
);

create index console_sessions_operator_idx on console_sessions (operator);

-- The audit rows of one order or one user, for their pages (the operator's
-- commands name them as `order` and `user` in their arguments).
create index operator_actions_order_idx on operator_actions ((arguments ->> 'order'))
    where arguments ? 'order';
create index operator_actions_user_idx on operator_actions ((arguments ->> 'user'))
    where arguments ? 'user';

-- Every failed processing attempt of a delivery (a retry scheduled, or the
-- message parked), written by the worker once the message's copy to the wait
-- or parked queue is confirmed; the attempt that succeeded is the delivery's
-- own processed_at and outcome. Before this, attempts lived only in an AMQP
-- header. Only failures write here, so a healthy system writes nothing.
create table delivery_attempts (
    id bigint generated always as identity primary key,
    delivery_row bigint not null,
    -- 1 for the first attempt
    attempt integer not null,
    at timestamptz not null default now(),
    -- retry: another attempt is scheduled; parked: given up
    outcome text not null,
    reason text not null,
    -- how long until the next attempt (retries only)
    retry_in_ms bigint,
    constraint delivery_attempts_outcome_check check (outcome in ('retry', 'parked'))
);

create index delivery_attempts_delivery_idx on delivery_attempts (delivery_row, id);

-- The last requests the ingester refused, per reason ("the provider says we
-- answer 401": what did it send?). Never a body: its size only. Bounded: a
-- ring of `slot`s per reason (the ingester's REJECTED_REQUESTS_KEPT), each
-- new refusal overwriting its reason's oldest, and written at most
-- REJECTED_REQUESTS_PER_SECOND per ingester, so a flood of bad requests can
-- neither fill a table nor buy database time.
create table rejected_requests (
    reason text not null,
    slot integer not null,
    -- which write of this reason it is (the newest has the highest)
    seq bigint not null,
    at timestamptz not null,
    provider text not null,
    status smallint not null,
    -- [[name, value], ...], values cut at 256 bytes, at most 64 headers
    headers jsonb not null,
    -- bytes read (or declared) of the body, never the body
    body_bytes bigint,
    primary key (reason, slot)
);

-- Each reason's next write number.
create table rejected_request_counters (
    reason text primary key,
    next bigint not null
);

-- Pausing one provider: its deliveries wait (the workers set them aside in a
-- wait queue, unprocessed) while the others' are processed.
alter table processing_control
    add column paused_providers text[] not null default '{}';

-- Replays of everything a filter matched, run in the background by the
-- console that started them: progress, a cap, and a cancel an operator can
-- ask for at any time (the job stops between batches).
create table replay_jobs (
    id bigint generated always as identity primary key,
    created_at timestamptz not null default now(),
    created_by text not null,
    reason text not null,
    -- the deliveries filter, as the console's list takes it
    filter jsonb not null,
    -- the most deliveries looked at
    cap integer not null,
    -- running | done | cancelled | failed
    state text not null default 'running',
    matched integer not null default 0,
    -- published again (parked ones redriven, unprocessed ones queued)
    sent integer not null default 0,
    -- processed already, so never sent again
    skipped integer not null default 0,
    cancel_requested boolean not null default false,
    -- moved after each batch: a running job whose console died stops moving
    heartbeat_at timestamptz not null default now(),
    finished_at timestamptz,
    error text,
    constraint replay_jobs_state_check check (state in ('running', 'done', 'cancelled', 'failed')),
    constraint replay_jobs_cap_check check (cap > 0)
);

-- Stripe beside Crossmint: orders from more than one provider, and the
-- ledger entries that answer a refund or a dispute.

-- An order's id at its provider: Crossmint's order id, or Stripe's
-- Checkout Session (`cs_...`) or invoice (`in_...`) id. Still unique on its
-- own (the providers' id shapes differ, and an event naming another
-- provider's order is held for review by the state machine).
alter table payment_orders rename column crossmint_order_id to provider_order_id;
alter table payment_orders
    rename constraint payment_orders_crossmint_order_id_key to payment_orders_provider_order_id_key;
alter table payment_orders
    -- who takes the payment; a metadata-only change on existing rows
    add column provider text not null default 'crossmint',
    -- Stripe only: the PaymentIntent that paid the order, which refunds and
    -- disputes name. Set once, by the grant.
    add column payment_intent text,
    add constraint payment_orders_provider_check check (provider in ('crossmint', 'stripe'));

-- One payment is one order: a second order claiming the same PaymentIntent
-- is refused by the database (Checkout and its invoice can both announce
-- one payment). Partial, so Crossmint's grants (payment_intent stays null)
-- remain heap-only updates.
create unique index payment_orders_payment_intent_key
    on payment_orders (payment_intent) where payment_intent is not null;

alter table order_idempotency_keys rename column crossmint_order_id to provider_order_id;
alter table order_idempotency_keys
    rename constraint order_idempotency_keys_bound_check to order_idempotency_keys_bound_check_old;
alter table order_idempotency_keys
    drop constraint order_idempotency_keys_bound_check_old,
    add constraint order_idempotency_keys_bound_check
        check ((provider_order_id is null) = (response is null));

-- Refunds and disputes take credits back like a revoke does, as negative
-- entries (zero when everything was spent; the rest is the shortfall).
-- Unlike a revoke there may be several per grant (partial refunds), each
-- keyed by what the provider said: a charge's refunded total, a dispute's id.
alter table credit_ledger
    drop constraint credit_ledger_kind_check,
    add constraint credit_ledger_kind_check
        check (kind in ('purchase_grant', 'spend', 'expiry', 'revoke', 'manual_grant',
                        'refund', 'chargeback')),
    drop constraint credit_ledger_revoke_reverses_check,
    add constraint credit_ledger_take_back_reverses_check
        check ((kind in ('revoke', 'refund', 'chargeback')) = (reverses_grant_id is not null)),
    drop constraint credit_ledger_shortfall_check,
    add constraint credit_ledger_shortfall_check
        check (shortfall is null or (kind in ('revoke', 'refund', 'chargeback') and shortfall >= 0)),
    -- refund and chargeback only: the provider's fact this entry answers
    add column provider_reference text,
    add constraint credit_ledger_provider_reference_check
        check ((kind in ('refund', 'chargeback')) = (provider_reference is not null));

-- The same refund state or dispute never takes credits twice.
create unique index credit_ledger_one_entry_per_provider_reference
    on credit_ledger (kind, provider_reference) where provider_reference is not null;

-- Every take-back of a grant (revoke, refunds, chargebacks), found without
-- scanning the ledger while the user's rows are locked.
create index credit_ledger_reverses_grant_idx
    on credit_ledger (reverses_grant_id) where reverses_grant_id is not null;

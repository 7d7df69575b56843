//! Reading Stripe events (filled in by the worker work).

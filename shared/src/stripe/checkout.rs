//! Creating Checkout Sessions (filled in by the API work).

//! `sqlx::migrate!` embeds `migrations/` at compile time; without this, a
//! new migration file would not rebuild the crate, and a binary would run
//! with the old set (sqlx's documented build script).
fn main() {
    println!("cargo:rerun-if-changed=../migrations");
}

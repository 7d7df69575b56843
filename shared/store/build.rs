//! `sqlx::migrate!` embeds `migrations/` at compile time; without this, a
//! new migration file would not rebuild the crate, and a binary would run
//! with the old set (sqlx's documented build script). Nothing else: the
//! commit a binary names is read where the binary is compiled
//! (`ledgerhook_runtime::build!`), so a commit does not rebuild this crate.
fn main() {
    println!("cargo:rerun-if-changed=../../migrations");
}

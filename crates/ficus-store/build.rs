//! Rebuilds the crate when a migration is added: `sqlx::migrate!` embeds the SQL files at
//! compile time but cannot tell cargo to watch the folders for new ones.

fn main() {
    println!("cargo:rerun-if-changed=migrations");
}

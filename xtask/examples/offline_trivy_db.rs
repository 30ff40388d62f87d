//! Writes an offline Trivy vulnerability DB with no advisories into `<DIR>/db/`, for the
//! benchmarks (Trivy needs a DB and none can be downloaded here). Reuses the test support's
//! BoltDB writer. Usage: `cargo run -p xtask --example offline_trivy_db -- DIR`
//! then `TRIVY_CACHE_DIR=DIR TRIVY_SKIP_DB_UPDATE=true`.

#[path = "../tests/support/mod.rs"]
mod support;

fn main() {
    let Some(out) = std::env::args_os().nth(1) else {
        eprintln!("error: usage: offline_trivy_db DIR");
        std::process::exit(2);
    };
    let cache = support::trivy::Cache::with(&[]);
    let db = std::path::Path::new(&out).join("db");
    std::fs::create_dir_all(&db).expect("create DIR/db");
    for f in ["trivy.db", "metadata.json"] {
        std::fs::copy(cache.db_dir().join(f), db.join(f)).expect("copy the DB");
    }
    println!("{}", db.display());
}

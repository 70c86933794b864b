-- One-time passes over the data that SQL alone cannot make (names refolded in Rust).
CREATE TABLE data_migrations (
    name TEXT PRIMARY KEY NOT NULL,
    done TEXT NOT NULL
);

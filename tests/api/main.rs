//! The one integration-test binary: the real app, over HTTP, against a fresh database per
//! test, on SQLite and PostgreSQL. Its own harness (libtest-mimic) runs the tests the
//! macros in helpers.rs register, and reports those that need PostgreSQL as ignored when
//! TEST_POSTGRES_URL is unset, so the summary counts only what ran.

mod helpers;

mod auth;
mod backfill;
mod brake;
mod bulk;
mod crash;
mod credentials;
mod described;
mod discovery;
mod dry_run;
mod errors;
mod filter_property;
mod groups;
mod health;
mod hostile;
mod idp_compat;
mod import_walk;
mod ldap_target;
mod lifecycle;
mod membership_cost;
mod operations;
mod outbox;
mod patch;
mod paths;
mod query;
mod races;
mod reconcile;
mod scim_target;
mod secrets;
mod snapshots;
mod user_lives;
mod users;
mod vendors;

fn main() -> std::process::ExitCode {
    let args = libtest_mimic::Arguments::from_args();
    let postgres = std::env::var_os("TEST_POSTGRES_URL").is_some();
    let slapd = helpers::slapd_bin().exists();
    let mut trials: Vec<_> = inventory::iter::<helpers::Case>
        .into_iter()
        .map(|case| {
            let run = case.run;
            libtest_mimic::Trial::test(case.full_name(), move || {
                run();
                Ok(())
            })
            .with_ignored_flag(case.needs.missing(postgres, slapd))
        })
        .collect();
    trials.sort_by(|a, b| a.name().cmp(b.name()));
    libtest_mimic::run(&args, trials).exit_code()
}

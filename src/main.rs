//! The `scim-bridge` command: serve, migrate, token.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};

use scim_bridge::bridge::TokenKind;
use scim_bridge::clock::SystemClock;
use scim_bridge::config::{LogFormat, Settings};
use scim_bridge::emulator::entsso::{Callback, EntSsoEmulator};
use scim_bridge::emulator::Credentials;
use scim_bridge::startup::{Application, Core};
use scim_bridge::store::SqlStore;

#[derive(Parser)]
#[command(
    name = "scim-bridge",
    version,
    about = "A SCIM 2.0 server that provisions applications that do not speak SCIM"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Clone)]
struct Common {
    /// TOML settings file; environment variables override it.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// sqlite://PATH (default sqlite://scim-bridge.db) or postgres://...
    #[arg(long, global = true)]
    database_url: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the SCIM server.
    Serve {
        /// Address to listen on (default 127.0.0.1:8080; env SCIM_BRIDGE_LISTEN).
        #[arg(long)]
        listen: Option<String>,
        #[command(flatten)]
        common: Common,
    },
    /// Apply pending database migrations and exit.
    Migrate {
        #[command(flatten)]
        common: Common,
    },
    /// Fill a database with generated users and groups, for benchmarks.
    Seed {
        /// Users `user{i}@example.com`, externalId `ext{i}`.
        #[arg(long, default_value_t = 100_000)]
        users: u64,
        #[arg(long, default_value_t = 10)]
        groups: u64,
        /// Members of the first group (the first users).
        #[arg(long, default_value_t = 100_000)]
        big_group: u64,
        #[command(flatten)]
        common: Common,
    },
    /// Check a settings file and report each problem with its line; secrets are never shown.
    CheckConfig { file: PathBuf },
    /// Run the bridge with every connector wired to a local emulator, and say how to try it.
    Demo {
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: String,
        /// Default: a fresh SQLite database in a new temporary folder on every run, so the
        /// emulators (which start empty) and the database always agree.
        #[arg(long)]
        database_url: Option<String>,
    },
    /// Run a local stand-in of a target system.
    Emulate {
        /// webhook, openiam, pyramid, ethosce, itron or entsso
        kind: String,
        #[arg(long, default_value = "127.0.0.1:9100")]
        listen: String,
        /// The webhook's HMAC secret (signatures are checked when given).
        #[arg(long)]
        secret: Option<String>,
        /// The user callers must authenticate as (HTTP Basic, or Pyramid's service account).
        #[arg(long)]
        username: Option<String>,
        #[arg(long)]
        password: Option<String>,
        /// entsso: where PASSWORD_CHANGE_COMPLETE callbacks go.
        #[arg(long)]
        callback_url: Option<String>,
        /// entsso: the bearer token the callbacks present.
        #[arg(long)]
        callback_token: Option<String>,
    },
    /// Send a connector what it never received (or, with --all, everything), behind live
    /// changes, and show the progress a running bridge makes delivering it.
    Sync {
        #[arg(long)]
        connector: String,
        /// A fresh copy of every user and group, not only what the connector never had.
        #[arg(long)]
        all: bool,
        /// Queue and return at once, without watching.
        #[arg(long)]
        no_wait: bool,
        #[command(flatten)]
        common: Common,
    },
    /// Read every user back from a connector's target, compare it with what the bridge
    /// would send, and report per user; --repair queues what brings the target back.
    Reconcile {
        #[arg(long)]
        connector: String,
        /// Queue the changes that bring the target back to the bridge's state.
        #[arg(long)]
        repair: bool,
        /// The whole report as JSON on stdout (progress stays on stderr).
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        common: Common,
    },
    /// Inspect and retry outbox jobs.
    Outbox {
        #[command(subcommand)]
        action: OutboxAction,
    },
    /// Manage bearer tokens.
    Token {
        #[command(subcommand)]
        action: TokenAction,
    },
    /// Manage OAuth 2.0 clients (client credentials grant at POST /oauth/token).
    Client {
        #[command(subcommand)]
        action: ClientAction,
    },
    /// Work on a connector definition (a target described in a file).
    Connector {
        #[command(subcommand)]
        action: ConnectorAction,
    },
}

#[derive(Subcommand)]
enum ConnectorAction {
    /// Run a short life of a made-up user (create, update, deactivate, reactivate, read
    /// where defined, delete) through a definition against a target, printing each call,
    /// its answer and what the definition made of it.
    Test {
        /// The definition file.
        #[arg(long)]
        definition: String,
        /// The target's base URL (a connector's `url`).
        #[arg(long)]
        url: String,
        #[arg(long)]
        username: Option<String>,
        /// Literal, env:VAR or file:PATH.
        #[arg(long)]
        password: Option<String>,
        /// A bearer token or shared secret: literal, env:VAR or file:PATH.
        #[arg(long)]
        secret: Option<String>,
        /// One of the connector's options, as key=value (repeatable).
        #[arg(long = "option")]
        options: Vec<String>,
        /// The made-up user's userName (default: a new one each run).
        #[arg(long)]
        user_name: Option<String>,
        /// Seconds a call may take.
        #[arg(long, default_value_t = 10)]
        timeout_secs: u64,
    },
}

#[derive(Subcommand)]
enum ClientAction {
    /// Create a client; prints {"client_id", "client_secret"} once (only a hash is kept).
    Create {
        #[arg(long)]
        name: String,
        /// Space-separated: scim:read, scim:write.
        #[arg(long, default_value = "scim:read scim:write")]
        scope: String,
        /// Access-token lifetime, 60 to 360 minutes.
        #[arg(long, default_value_t = 60)]
        token_lifetime_mins: i32,
        #[command(flatten)]
        common: Common,
    },
    /// List clients: name, id, scopes, created, last used, revoked; never a secret.
    List {
        #[command(flatten)]
        common: Common,
    },
    /// Revoke a client; its access tokens stop working at once.
    Revoke {
        #[arg(long)]
        name: String,
        #[command(flatten)]
        common: Common,
    },
    /// Sign access tokens with a new key; tokens already issued stay valid until they expire.
    RotateKey {
        #[command(flatten)]
        common: Common,
    },
}

#[derive(Subcommand)]
enum OutboxAction {
    /// List jobs, oldest first.
    List {
        /// pending, dead, held or dry_run (dry_run jobs show the calls they would make)
        #[arg(long)]
        state: Option<String>,
        #[arg(long)]
        connector: Option<String>,
        #[command(flatten)]
        common: Common,
    },
    /// Deliver the jobs a connector's deletion brake holds (never held again).
    Release {
        #[arg(long)]
        connector: String,
        #[command(flatten)]
        common: Common,
    },
    /// Drop the jobs a connector's deletion brake holds (--connector): the target keeps
    /// those users as they are. Or drop one dead job (--id): the jobs of its resource
    /// held back behind it go on.
    Discard {
        #[arg(long)]
        connector: Option<String>,
        #[arg(long)]
        id: Option<i64>,
        #[command(flatten)]
        common: Common,
    },
    /// Put dead jobs back in the queue: one (--id) or all of a connector (--connector).
    Retry {
        #[arg(long)]
        id: Option<i64>,
        #[arg(long)]
        connector: Option<String>,
        #[command(flatten)]
        common: Common,
    },
}

#[derive(Subcommand)]
enum TokenAction {
    /// Create a token; it is printed once and only its hash is stored.
    Create {
        /// A name to recognise the token by.
        #[arg(long, default_value = "default")]
        name: String,
        /// An admin API token instead of a SCIM token.
        #[arg(long)]
        admin: bool,
        /// Space-separated: scim:read, scim:write.
        #[arg(long, default_value = "scim:read scim:write")]
        scope: String,
        #[command(flatten)]
        common: Common,
    },
    /// List tokens: name, kind, scopes, created, last used, revoked; never a token.
    List {
        #[command(flatten)]
        common: Common,
    },
    /// Revoke every token with this name, at once on every instance.
    Revoke {
        #[arg(long)]
        name: String,
        #[command(flatten)]
        common: Common,
    },
}

/// Prints credentials as a table: one a line, tab-separated.
fn print_credentials(list: &[scim_bridge::bridge::tokens::CredentialView], kinds: &[&str]) {
    println!("kind\tname\tclient_id\tscopes\tcreated\tlast_used\trevoked");
    for c in list.iter().filter(|c| kinds.contains(&c.kind)) {
        println!(
            "{}\t{}\t{}\t{}\t{}\t{}\t{}",
            c.kind,
            c.name,
            c.client_id.as_deref().unwrap_or("-"),
            c.scopes,
            c.created,
            c.last_used.as_deref().unwrap_or("never"),
            c.revoked.as_deref().unwrap_or("-")
        );
    }
}

fn scopes(text: &str) -> anyhow::Result<scim_bridge::bridge::Scopes> {
    scim_bridge::bridge::Scopes::parse(text).map_err(|e| anyhow::anyhow!("--scope: {e}"))
}

fn settings(common: &Common) -> anyhow::Result<Settings> {
    settings_with(common, |_| ())
}

/// The file, the environment, the flags in `common` and then `adjust`, every check made.
fn settings_with(common: &Common, adjust: impl FnOnce(&mut Settings)) -> anyhow::Result<Settings> {
    let env = |k: &str| std::env::var(k).ok();
    let s = Settings::read(common.config.as_deref(), &env, |s| {
        if let Some(url) = &common.database_url {
            s.database_url = url.clone();
        }
        adjust(s)
    })?;
    init_logging(s.log_format);
    for line in unknown_variable_lines() {
        log::warn!("{line}");
    }
    Ok(s)
}

/// A line for each `SCIM_BRIDGE_` variable that no setting reads.
fn unknown_variable_lines() -> Vec<String> {
    let names = std::env::vars_os().filter_map(|(k, _)| k.into_string().ok());
    scim_bridge::config::unknown_variables(names)
        .into_iter()
        .map(|(name, near)| match near {
            Some(near) => format!("{name} is not a setting and is ignored: did you mean {near}?"),
            None => format!("{name} is not a setting and is ignored"),
        })
        .collect()
}

/// The settings of a command that works on the database `serve` uses: a SQLite file that
/// does not exist is an error naming it, never a new empty database (a command run from
/// another directory would otherwise make one, and a token made there would never work).
fn existing(common: &Common) -> anyhow::Result<Settings> {
    let s = settings(common)?;
    let url = scim_bridge::store::DbUrl::parse(&s.database_url)?;
    if url.backend == scim_bridge::store::Backend::Sqlite
        && url.target != ":memory:"
        && !std::path::Path::new(&url.target).exists()
    {
        let here = std::env::current_dir()
            .map(|d| d.display().to_string())
            .unwrap_or_default();
        anyhow::bail!(
            "no database at {} (from {}, in {here}): run this where `serve` runs, or say which \
             database with --database-url, SCIM_BRIDGE_DATABASE_URL or --config; \
             `scim-bridge migrate` creates one",
            url.target,
            s.database_url
        );
    }
    Ok(s)
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve { listen, common } => {
            let s = settings_with(&common, |s| {
                if let Some(l) = listen {
                    s.listen = l;
                }
            })?;
            serve(s)
        }
        Command::Migrate { common } => {
            let s = settings(&common)?;
            SqlStore::open_waiting(
                &s.database_url,
                1,
                std::time::Duration::from_secs(s.database_wait_secs),
            )?;
            println!("migrations applied");
            Ok(())
        }
        Command::Emulate {
            kind,
            listen,
            secret,
            username,
            password,
            callback_url,
            callback_token,
        } => emulate(
            &kind,
            &listen,
            secret,
            Credentials::new(username, password),
            callback_url.map(|url| Callback {
                url,
                token: callback_token,
                auto: true,
            }),
        ),
        Command::Connector {
            action:
                ConnectorAction::Test {
                    definition,
                    url,
                    username,
                    password,
                    secret,
                    options,
                    user_name,
                    timeout_secs,
                },
        } => {
            use scim_bridge::connectors::declared::{probe, Credentials as Given};
            let open = |v: Option<String>| -> anyhow::Result<Option<scim_bridge::config::Secret>> {
                v.map(|v| scim_bridge::secret::resolve_secret(&v))
                    .transpose()
                    .map_err(|e| anyhow::anyhow!("{e}"))
            };
            let creds = Given {
                username,
                password: open(password)?,
                secret: open(secret)?,
            };
            let (target, map) = probe::target(
                &definition,
                &url,
                creds,
                &options,
                std::time::Duration::from_secs(timeout_secs.max(1)),
            )
            .map_err(|e| anyhow::anyhow!("{e}"))?;
            let user_name = user_name.unwrap_or_else(|| {
                format!(
                    "scim-bridge-test-{}@example.com",
                    &uuid::Uuid::new_v4().simple().to_string()[..8]
                )
            });
            println!("testing {definition} against {url} as {user_name}");
            // Blocking calls, off the runtime the command may run in.
            let report = std::thread::spawn(move || probe::run(&target, &map, &user_name))
                .join()
                .map_err(|_| anyhow::anyhow!("the test stopped unexpectedly"))?;
            print!("{}", report.text());
            if report.passed() {
                Ok(())
            } else {
                anyhow::bail!("the definition does not yet work against {url}")
            }
        }
        Command::CheckConfig { file } => {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
            let env = |k: &str| std::env::var(k).ok();
            let problems = scim_bridge::config::check(&text, &env);
            for p in &problems {
                println!("{}: {p}", file.display());
            }
            for line in unknown_variable_lines() {
                println!("warning: {line}");
            }
            if problems.is_empty() {
                println!("{}: no problems", file.display());
                Ok(())
            } else {
                anyhow::bail!("{} problem(s) in {}", problems.len(), file.display())
            }
        }
        Command::Demo {
            listen,
            database_url,
        } => demo(listen, database_url),
        Command::Sync {
            connector,
            all,
            no_wait,
            common,
        } => sync(&existing(&common)?, &connector, all, no_wait),
        Command::Reconcile {
            connector,
            repair,
            json,
            common,
        } => reconcile(&existing(&common)?, &connector, repair, json),
        Command::Outbox {
            action:
                OutboxAction::List {
                    state,
                    connector,
                    common,
                },
        } => {
            let s = existing(&common)?;
            let core = Core::build(&s, Arc::new(SystemClock))?;
            let text = |v: &serde_json::Value| match v {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Null => String::new(),
                other => other.to_string(),
            };
            for j in core
                .admin
                .jobs(state.as_deref(), connector.as_deref(), 1000)?
            {
                println!(
                    "{}\t{}\t{}\t{}\t{}\tattempts={}\t{}",
                    text(&j["id"]),
                    text(&j["state"]),
                    text(&j["connector"]),
                    text(&j["event"]),
                    text(&j["resourceId"]),
                    text(&j["attempts"]),
                    text(&j["lastError"])
                );
                for call in j["calls"].as_array().into_iter().flatten() {
                    println!("\twould call: {call}");
                }
            }
            Ok(())
        }
        Command::Outbox {
            action:
                OutboxAction::Retry {
                    id,
                    connector,
                    common,
                },
        } => {
            if id.is_none() && connector.is_none() {
                anyhow::bail!("say which dead jobs to retry: --id N or --connector NAME");
            }
            let s = existing(&common)?;
            let core = Core::build(&s, Arc::new(SystemClock))?;
            let n = match (id, connector) {
                (Some(id), _) => core.admin.retry_job(id)?,
                (None, Some(name)) => core.admin.retry_connector(&name)?,
                (None, None) => 0,
            };
            println!("{n} dead jobs put back in the queue");
            Ok(())
        }
        Command::Outbox {
            action: OutboxAction::Release { connector, common },
        } => {
            let core = Core::build(&existing(&common)?, Arc::new(SystemClock))?;
            let n = core.admin.release(&connector)?;
            println!("{n} held jobs of '{connector}' released: they will be delivered");
            Ok(())
        }
        Command::Outbox {
            action:
                OutboxAction::Discard {
                    connector,
                    id,
                    common,
                },
        } => {
            let core = Core::build(&existing(&common)?, Arc::new(SystemClock))?;
            match (id, connector) {
                (Some(id), None) => {
                    core.admin.discard_job(id)?;
                    println!("dead job {id} discarded; the jobs behind it go on");
                }
                (None, Some(connector)) => {
                    let dropped = core.admin.discard(&connector)?;
                    println!("{dropped} held jobs of '{connector}' discarded; the target keeps those users as they are");
                }
                _ => anyhow::bail!(
                    "say what to discard: --connector NAME (its held jobs) or --id N (one dead job)"
                ),
            }
            Ok(())
        }
        Command::Seed {
            users,
            groups,
            big_group,
            common,
        } => {
            let s = settings(&common)?;
            let core = Core::build(&s, Arc::new(SystemClock))?;
            let reg = Arc::new(core.resources.registry().clone());
            let started = std::time::Instant::now();
            scim_bridge::bridge::seed::seed(&core.store, &reg, users, groups, big_group)?;
            println!(
                "seeded {users} users and {groups} groups in {:.1}s",
                started.elapsed().as_secs_f64()
            );
            Ok(())
        }
        Command::Token {
            action:
                TokenAction::Create {
                    name,
                    admin,
                    scope,
                    common,
                },
        } => {
            let scopes = scopes(&scope)?;
            let s = existing(&common)?;
            let core = Core::build(&s, Arc::new(SystemClock))?;
            let kind = if admin {
                TokenKind::Admin
            } else {
                TokenKind::Scim
            };
            let token = core.tokens.create_scoped(&name, kind, scopes)?;
            println!("{token}");
            Ok(())
        }
        Command::Token {
            action: TokenAction::List { common },
        } => {
            let core = Core::build(&existing(&common)?, Arc::new(SystemClock))?;
            print_credentials(&core.tokens.list()?, &["token", "adminToken"]);
            Ok(())
        }
        Command::Token {
            action: TokenAction::Revoke { name, common },
        } => {
            let core = Core::build(&existing(&common)?, Arc::new(SystemClock))?;
            match core.tokens.revoke(&name)? {
                0 => anyhow::bail!("no live token is named '{name}'"),
                n => println!("{n} token(s) named '{name}' revoked"),
            }
            Ok(())
        }
        Command::Client {
            action:
                ClientAction::Create {
                    name,
                    scope,
                    token_lifetime_mins,
                    common,
                },
        } => {
            let scopes = scopes(&scope)?;
            let core = Core::build(&existing(&common)?, Arc::new(SystemClock))?;
            let made = core
                .tokens
                .create_client(&name, scopes, token_lifetime_mins)?;
            println!("{}", serde_json::to_string(&made)?);
            Ok(())
        }
        Command::Client {
            action: ClientAction::List { common },
        } => {
            let core = Core::build(&existing(&common)?, Arc::new(SystemClock))?;
            print_credentials(&core.tokens.list()?, &["client"]);
            Ok(())
        }
        Command::Client {
            action: ClientAction::Revoke { name, common },
        } => {
            let core = Core::build(&existing(&common)?, Arc::new(SystemClock))?;
            match core.tokens.revoke_client(&name)? {
                0 => anyhow::bail!("no live client is named '{name}'"),
                _ => println!("client '{name}' revoked; its access tokens no longer work"),
            }
            Ok(())
        }
        Command::Client {
            action: ClientAction::RotateKey { common },
        } => {
            let core = Core::build(&existing(&common)?, Arc::new(SystemClock))?;
            let kid = core.tokens.rotate_key()?;
            println!("access tokens are now signed with key {kid}");
            Ok(())
        }
    }
}

/// Starts the emulator of `kind` on `listener`; returns the server to await and its port.
fn start_emulator(
    kind: &str,
    listener: std::net::TcpListener,
    secret: Option<String>,
    creds: Credentials,
    callback: Option<Callback>,
) -> anyhow::Result<(actix_web::dev::Server, u16)> {
    use scim_bridge::emulator::{
        ethosce::EthosCeEmulator, itron::ItronEmulator, openiam::OpenIamEmulator,
        pyramid::PyramidEmulator, serve, webhook::WebhookEmulator,
    };
    Ok(match kind {
        "webhook" => serve(Arc::new(WebhookEmulator::new(secret)), listener)?,
        "openiam" => serve(Arc::new(OpenIamEmulator::new(creds)), listener)?,
        "pyramid" => serve(Arc::new(PyramidEmulator::new(creds)), listener)?,
        "ethosce" => serve(Arc::new(EthosCeEmulator::new(creds)), listener)?,
        "itron" => serve(Arc::new(ItronEmulator::new(creds)), listener)?,
        "entsso" => serve(Arc::new(EntSsoEmulator::new(creds, callback)), listener)?,
        other => anyhow::bail!(
            "no emulator for '{other}' (known: webhook, openiam, pyramid, ethosce, itron, entsso)"
        ),
    })
}

fn emulate(
    kind: &str,
    listen: &str,
    secret: Option<String>,
    creds: Credentials,
    callback: Option<Callback>,
) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = std::net::TcpListener::bind(listen)?;
        let (server, port) = start_emulator(kind, listener, secret, creds, callback)?;
        println!("{kind} emulator listening on 127.0.0.1:{port}; state at /_emulator/state");
        tokio::select! {
            r = server => r?,
            _ = tokio::signal::ctrl_c() => {}
        }
        Ok(())
    })
}

fn demo(listen: String, database_url: Option<String>) -> anyhow::Result<()> {
    let database_url = match database_url {
        Some(u) => u,
        None => {
            let dir = std::env::temp_dir().join(format!(
                "scim-bridge-demo-{}",
                uuid::Uuid::new_v4().simple()
            ));
            std::fs::create_dir_all(&dir)?;
            format!("sqlite://{}", dir.join("demo.db").display())
        }
    };
    use scim_bridge::bridge::tokens::generate_token;
    use scim_bridge::config::{ConnectorConfig, Secret};
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let secret = generate_token();
        let callback_token = generate_token();
        // The bridge's port must be known before the ENTSSO emulator starts (it calls back).
        let listener = std::net::TcpListener::bind(&listen)?;
        let bound = listener.local_addr()?;
        let port = bound.port();
        let (user, pass) = ("restws_demo", "demo-password");
        let mut connectors = Vec::new();
        let mut urls = Vec::new();
        for (kind, path) in [
            ("webhook", "/events"),
            ("openiam", "/openiam-idm-esb/idmsrvc/ProvisioningService"),
            ("pyramid", "/API2"),
            ("ethosce", ""),
            ("itron", "/PortalServices/api/User/UpdateSSOUser"),
            ("entsso", "/SendNotification"),
        ] {
            let l = std::net::TcpListener::bind("127.0.0.1:0")?;
            let callback = (kind == "entsso").then(|| Callback {
                url: format!("http://127.0.0.1:{port}/callbacks/entsso/demo-entsso"),
                token: Some(callback_token.clone()),
                auto: true,
            });
            let creds = Credentials::new(Some(user.into()), Some(pass.into()));
            let (server, eport) = start_emulator(kind, l, Some(secret.clone()), creds, callback)?;
            tokio::spawn(server);
            let mut c = ConnectorConfig::new(
                &format!("demo-{kind}"),
                kind.parse().map_err(anyhow::Error::msg)?,
                &format!("http://127.0.0.1:{eport}{path}"),
            );
            match kind {
                "webhook" => c.secret = Some(secret.as_str().into()),
                "entsso" => {
                    c = c.with_credentials(user, pass);
                    c.options.insert("callback_token".into(), callback_token.clone().into());
                }
                "openiam" => {
                    c = c.with_credentials(user, pass);
                    let account = scim_bridge::emulator::openiam::SERVICE_ACCOUNT_ID;
                    c.options.insert("requestor_id".into(), account.into());
                }
                _ => c = c.with_credentials(user, pass),
            }
            c.roles.insert("Analysts".into(), "END_USER".into());
            if kind == "ethosce" {
                c.roles.insert("Analysts".into(), "105847459".into());
            }
            connectors.push(c);
            urls.push((kind, eport));
        }
        let token = generate_token();
        let admin = generate_token();
        let settings = Settings {
            listen: bound.to_string(),
            database_url,
            token: Some(Secret::new(token.clone())),
            admin_token: Some(Secret::new(admin.clone())),
            outbox_base_delay_ms: 200,
            outbox_max_delay_ms: 5000,
            connectors,
            ..Settings::default()
        };
        drop(listener);
        let settings_url = settings.database_url.clone();
        let app = Application::build(settings, Arc::new(SystemClock))?;
        let port = app.port();
        println!("scim-bridge demo");
        println!("  database      : {}", scim_bridge::config::redacted_url(&settings_url));
        println!("  SCIM base URL : http://127.0.0.1:{port}/scim/v2");
        println!("  SCIM token    : {token}");
        println!("  admin page    : http://127.0.0.1:{port}/admin   (sign in with the admin token)");
        println!("  admin API     : http://127.0.0.1:{port}/admin/v1");
        println!("  admin token   : {admin}");
        for (kind, eport) in &urls {
            println!("  {kind:<8} emulator (connector demo-{kind}): http://127.0.0.1:{eport}/_emulator/state");
        }
        println!();
        println!("Try it:");
        println!("  curl -s -X POST http://127.0.0.1:{port}/scim/v2/Users -H 'Authorization: Bearer {token}' \\");
        println!("    -H 'Content-Type: application/scim+json' \\");
        println!("    -d '{{\"userName\":\"demo@example.com\",\"name\":{{\"givenName\":\"Demo\",\"familyName\":\"User\"}},\"emails\":[{{\"value\":\"demo@example.com\",\"primary\":true}}],\"password\":\"Demo-passw0rd\",\"active\":true}}'");
        for (kind, eport) in &urls {
            if *kind != "webhook" {
                println!("  curl -s http://127.0.0.1:{eport}/_emulator/state    # {kind}");
            }
        }
        println!("  curl -s http://127.0.0.1:{port}/admin/v1/users/demo@example.com -H 'Authorization: Bearer {admin}'");
        println!();
        println!("Ctrl-C stops it.");
        app.run_until_signalled().await?;
        Ok(())
    })
}

/// A first SCIM token, made only when no way to reach the SCIM API exists (no SCIM token,
/// stored or set, no OAuth client, no JWT issuer). Shown on a terminal; otherwise (a
/// service, whose output goes to a journal) written to `initial-token` in the state
/// directory (systemd's STATE_DIRECTORY, the SQLite file's folder, or the working one),
/// readable by its owner only, and the log says where, never the token.
fn first_token(core: &Core, sqlite_dir: Option<PathBuf>) -> anyhow::Result<()> {
    use std::io::IsTerminal;
    let tokens = &core.tokens;
    if tokens.any(TokenKind::Scim)? || tokens.any_client()? || !core.issuers.is_empty() {
        return Ok(());
    }
    if std::io::stdout().is_terminal() {
        let token = tokens.create("initial", TokenKind::Scim)?;
        println!("No SCIM token existed, so one was made. It is shown this once; keep it:");
        println!("{token}");
        return Ok(());
    }
    let dir = std::env::var_os("STATE_DIRECTORY")
        .and_then(|d| std::env::split_paths(&d).next())
        .or(sqlite_dir.filter(|d| !d.as_os_str().is_empty()))
        .unwrap_or_else(|| PathBuf::from("."));
    let path = dir.join("initial-token");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = match options.open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            log::warn!(
                "no way to reach the SCIM API is configured, and {} exists already: no token was made; read that one, or remove the file and start again",
                path.display()
            );
            return Ok(());
        }
        Err(e) => anyhow::bail!(
            "cannot write the first SCIM token to {}: {e}",
            path.display()
        ),
    };
    let token = tokens.create("initial", TokenKind::Scim)?;
    std::io::Write::write_all(&mut file, format!("{token}\n").as_bytes())?;
    log::warn!(
        "no way to reach the SCIM API was configured, so a SCIM token named 'initial' was made and written to {} (readable by its owner only): read it, then delete the file",
        path.display()
    );
    Ok(())
}

fn serve(s: Settings) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listen = s.listen.clone();
        let scheme = if s.tls_cert.is_some() {
            "https"
        } else {
            "http"
        };
        let database = scim_bridge::config::redacted_url(&s.database_url);
        let connectors: Vec<String> = s
            .connectors
            .iter()
            .map(|c| format!("{} ({}, {:?})", c.name, c.kind, c.mode).to_lowercase())
            .collect();
        let sqlite_dir = scim_bridge::store::DbUrl::parse(&s.database_url)
            .ok()
            .filter(|u| u.backend == scim_bridge::store::Backend::Sqlite)
            .and_then(|u| {
                std::path::Path::new(&u.target)
                    .parent()
                    .map(std::path::Path::to_path_buf)
            });
        let app = Application::build(s, Arc::new(SystemClock))?;
        first_token(&app.core, sqlite_dir)?;
        log::info!(
            "scim-bridge {} on {:?}: {database}",
            env!("CARGO_PKG_VERSION"),
            app.core.store.backend()
        );
        if connectors.is_empty() {
            log::info!("no connectors: changes are stored and reach no target");
        } else {
            log::info!("connectors: {}", connectors.join(", "));
        }
        if let Some(p) = app.metrics_port() {
            log::info!("metrics on their own listener, port {p}");
        }
        log::info!("Ctrl-C or SIGTERM stops it; requests in flight finish first");
        log::info!("listening on {scheme}://{listen} (port {})", app.port());
        app.run_until_signalled().await?;
        log::info!("scim-bridge stopped");
        Ok(())
    })
}

/// Queues a sync and draws its progress (done, total, rate, time left) until the running
/// bridge has delivered it; Ctrl-C stops watching, not the sync.
fn sync(s: &Settings, connector: &str, all: bool, no_wait: bool) -> anyhow::Result<()> {
    let core = Core::build(s, Arc::new(SystemClock))?;
    let first = core.backfill.queue(connector, all)?;
    let total = first["total"].as_u64().unwrap_or(0);
    println!(
        "{total} jobs queued for '{connector}' ({})",
        if all {
            "everything"
        } else {
            "what it never received"
        }
    );
    if no_wait || total == 0 {
        return Ok(());
    }
    let bar = indicatif::ProgressBar::new(total);
    bar.set_style(indicatif::ProgressStyle::with_template(
        "{bar:40} {pos}/{len} delivered, {per_sec}, {eta} left {msg}",
    )?);
    loop {
        let p = core.backfill.progress(connector)?;
        bar.set_position(p["done"].as_u64().unwrap_or(0));
        let dead = p["dead"].as_u64().unwrap_or(0);
        if dead > 0 {
            bar.set_message(format!("({dead} dead)"));
        }
        if p["pending"].as_u64() == Some(0) {
            bar.finish();
            println!(
                "done: {} delivered, {dead} dead (see scim-bridge outbox list --state dead)",
                p["done"]
            );
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
}

/// Reconciles a connector on this process, drawing its progress on stderr, then prints the
/// report: a line per user that is not in sync and a summary, or all of it as JSON.
fn reconcile(s: &Settings, connector: &str, repair: bool, json: bool) -> anyhow::Result<()> {
    use scim_bridge::bridge::reconcile::{Progress, UserState};
    use std::sync::atomic::Ordering;
    let core = Core::build(s, Arc::new(SystemClock))?;
    let progress = Progress::default();
    let finished = std::sync::atomic::AtomicBool::new(false);
    let bar =
        indicatif::ProgressBar::with_draw_target(None, indicatif::ProgressDrawTarget::stderr());
    bar.set_style(indicatif::ProgressStyle::with_template(
        "{bar:40} {pos}/{len} users read, {per_sec}, {eta} left",
    )?);
    let report = std::thread::scope(|scope| {
        scope.spawn(|| {
            while !finished.load(Ordering::Acquire) {
                bar.set_length(progress.total.load(Ordering::Relaxed) as u64);
                bar.set_position(progress.done.load(Ordering::Relaxed) as u64);
                std::thread::sleep(std::time::Duration::from_millis(200));
            }
        });
        let report = core.reconcile.run(connector, repair, &progress);
        finished.store(true, Ordering::Release);
        report
    })?;
    bar.finish_and_clear();
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    if let Some(why) = &report.reason {
        println!("{connector}: not reconciled: {why}");
        return Ok(());
    }
    for u in &report.results {
        let who = u
            .principal
            .as_deref()
            .or(u.user_name.as_deref())
            .unwrap_or(&u.id);
        match u.state {
            UserState::InSync | UserState::OutOfScope => {}
            UserState::Missing => println!("missing    {who} ({})", u.id),
            UserState::Different => {
                println!("different  {who} ({})", u.id);
                for f in &u.fields {
                    let show = |v: &Option<serde_json::Value>| {
                        v.as_ref().map_or("(none)".to_string(), |v| v.to_string())
                    };
                    println!(
                        "             {}: target {} bridge {}",
                        f.field,
                        show(&f.target),
                        show(&f.bridge)
                    );
                }
            }
            UserState::Error => println!(
                "error      {who} ({}): {}",
                u.id,
                u.error.as_deref().unwrap_or("")
            ),
        }
    }
    for p in report.unknown_to_bridge.iter().flatten() {
        println!("unknown    {p} (in the target, not in the bridge)");
    }
    println!(
        "{connector}: {} users: {} in sync, {} missing, {} different, {} out of scope, {} errors; {}",
        report.users,
        report.in_sync,
        report.missing,
        report.different,
        report.out_of_scope,
        report.errors,
        match &report.unknown_to_bridge {
            Some(u) => format!("{} in the target unknown to the bridge", u.len()),
            None => "the target cannot list its users".to_string(),
        }
    );
    if repair {
        println!(
            "{} repairs queued; the running bridge delivers them (scim-bridge sync --connector {connector} shows the progress)",
            report.repair_queued
        );
    } else if report.missing + report.different > 0 {
        println!("run again with --repair to bring the target back to the bridge's state");
    }
    Ok(())
}

/// Log lines to stderr in `format`; RUST_LOG chooses which (default `info`). Once per
/// process: the first call wins.
fn init_logging(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // A log reader that went away must not take the bridge down: a failed write is
    // dropped, not reported on the same closed stderr (which panics).
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .log_internal_errors(false);
    // try_init: a second call (a command that reads settings twice) changes nothing.
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
    };
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if matches!(
        cli.command,
        Command::CheckConfig { .. }
            | Command::Demo { .. }
            | Command::Emulate { .. }
            | Command::Connector { .. }
    ) {
        init_logging(LogFormat::Text);
    }
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("scim-bridge: {e}");
            ExitCode::FAILURE
        }
    }
}

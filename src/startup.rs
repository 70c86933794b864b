//! Building the application from settings, on any port (0 in tests), and running it.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::{Server, ServerHandle};
use actix_web::{web, App, HttpServer};

use crate::bridge::schemas::{load_registry, SchemaLoadError};
use crate::bridge::{Resources, TokenKind, Tokens};
use crate::clock::Clock;
use std::collections::HashMap;

use crate::config::{resolve_secret, ConnectorConfig, ConnectorKind, Mode, Settings};
use crate::connectors::Connector;
use crate::http::{self, AppState};
use crate::outbox::seal::Sealer;
use crate::outbox::worker::{Dispatcher, RetryPolicy};
use crate::outbox::{Fanout, Route, Wakeup};
use crate::store::{SqlStore, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Settings(#[from] crate::config::Problems),
    #[error(transparent)]
    Schemas(#[from] SchemaLoadError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("connector '{name}': {why}")]
    Connector { name: String, why: String },
    #[error("jwt_issuer: {0}")]
    JwtIssuer(String),
    #[error("{name}: {why}")]
    Setting { name: &'static str, why: String },
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
}

/// Everything but the HTTP server: the store, the registry and the use cases.
pub struct Core {
    pub store: Arc<SqlStore>,
    pub resources: Arc<Resources>,
    pub tokens: Arc<Tokens>,
    pub dispatcher: Arc<Dispatcher>,
    /// Configured connectors: name and kind.
    pub connectors: Vec<(String, ConnectorKind)>,
    /// Administrators' use cases: standings, jobs, retries.
    pub admin: Arc<crate::bridge::Admin>,
    /// Completions from targets that call back (ENTSSO's PASSWORD_CHANGE_COMPLETE).
    pub callbacks: Arc<crate::bridge::Callbacks>,
    pub clock: Arc<dyn Clock>,
    /// Outside JWT issuers (`[[jwt_issuer]]`).
    pub issuers: Arc<crate::bridge::jwt::Issuers>,
    /// What `/metrics` serves.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// The audit trail.
    pub audit: Arc<crate::bridge::audit::Audit>,
    /// Backfill and sync of connectors.
    pub backfill: Arc<crate::bridge::backfill::Backfill>,
    /// Reconcile: each connector's users read back and compared.
    pub reconcile: Arc<crate::bridge::reconcile::Reconcile>,
    /// The connectors as backfill sees them at start.
    pub starting: Vec<crate::bridge::backfill::Starting>,
}

fn build_connector(c: &ConnectorConfig) -> Result<Arc<dyn Connector>, StartupError> {
    crate::connectors::build(c).map_err(|why| StartupError::Connector {
        name: c.name.clone(),
        why,
    })
}

/// The outbox key from the settings, or one made for this process.
/// The configured outbox key's sealer, if one is configured.
fn configured_sealer(settings: &Settings) -> Result<Option<Sealer>, StartupError> {
    match &settings.outbox_key {
        Some(_) => sealer(settings).map(Some),
        None => Ok(None),
    }
}

fn sealer(settings: &Settings) -> Result<Sealer, StartupError> {
    let err = |why: String| StartupError::Connector {
        name: "outbox_key".into(),
        why,
    };
    match &settings.outbox_key {
        Some(k) => {
            let key = resolve_secret(k.expose()).map_err(|e| err(e.to_string()))?;
            Sealer::from_base64(key.expose()).map_err(|e| err(e.to_string()))
        }
        None => {
            if !settings.connectors.is_empty() {
                log::warn!(
                    "no outbox_key (SCIM_BRIDGE_OUTBOX_KEY) is set: passwords waiting in the outbox are sealed with a key made for this process and cannot be delivered after a restart"
                );
            }
            Ok(Sealer::ephemeral())
        }
    }
}

impl Core {
    pub fn build(settings: &Settings, clock: Arc<dyn Clock>) -> Result<Core, StartupError> {
        // The checks check-config makes: settings built in code pass them too.
        settings.check()?;
        let registry = Arc::new(load_registry(settings.schemas_dir.as_deref())?);
        let store = Arc::new(SqlStore::open_waiting(
            &settings.database_url,
            settings.pool_size,
            Duration::from_secs(settings.database_wait_secs),
        )?);
        let mut connectors: HashMap<String, Arc<dyn Connector>> = HashMap::new();
        let mut names = Vec::new();
        let mut routes = Vec::new();
        let mut sync_timeout = Duration::from_secs(10);
        let mut callbacks = HashMap::new();
        for c in &settings.connectors {
            let built = build_connector(c)?;
            let route = Route {
                name: c.name.clone(),
                sync: c.mode == Mode::Sync,
                passwords: built.supports(crate::model::Event::UserPasswordSet),
                ignore_password_on_create: c.ignore_password_on_create,
            };
            if route.sync {
                sync_timeout = Duration::from_secs(c.sync_timeout_secs.max(1));
            }
            if c.kind == ConnectorKind::EntSso {
                if let Some(t) = c.options.get("callback_token").and_then(|v| v.as_str()) {
                    let token = resolve_secret(t).map_err(|e| StartupError::Connector {
                        name: c.name.clone(),
                        why: e.to_string(),
                    })?;
                    callbacks.insert(c.name.clone(), token);
                }
            }
            routes.push(route);
            if connectors.insert(c.name.clone(), built).is_some() {
                return Err(StartupError::Connector {
                    name: c.name.clone(),
                    why: "the name is used twice".into(),
                });
            }
            names.push((c.name.clone(), c.kind));
        }
        let readable: std::collections::BTreeMap<_, _> = settings
            .connectors
            .iter()
            .filter_map(|c| {
                connectors.get(&c.name).map(|built| {
                    (
                        c.name.clone(),
                        crate::bridge::reconcile::Readable {
                            connector: built.clone(),
                            limits: crate::bridge::reconcile::Limits {
                                concurrency: c.reconcile_concurrency,
                                per_sec: c.reconcile_requests_per_sec,
                            },
                        },
                    )
                })
            })
            .collect();
        let sealer = sealer(settings)?;
        let wakeup = Arc::new(Wakeup::default());
        let fanout = Arc::new(Fanout::new(routes, wakeup.clone(), sealer.clone()));
        let metrics = Arc::new(crate::metrics::Metrics::new());
        let resources = Arc::new(
            Resources::new(registry, store.clone(), clock.clone())
                .with_metrics(metrics.clone())
                .with_fanout(fanout)
                .with_sync_timeout(sync_timeout)
                .with_page_bytes(settings.max_page_bytes),
        );
        let policy = RetryPolicy {
            max_attempts: (settings.outbox_max_attempts > 0)
                .then_some(settings.outbox_max_attempts),
            max_age: Duration::from_secs(settings.outbox_max_age_secs),
            base_delay: Duration::from_millis(settings.outbox_base_delay_ms),
            max_delay: Duration::from_millis(settings.outbox_max_delay_ms),
            lease: Duration::from_secs(settings.outbox_lease_secs.max(1)),
            deleted_retention: Duration::from_secs(settings.deleted_retention_days * 24 * 3600),
        };
        let dispatcher = Arc::new(
            Dispatcher::new(
                store.clone(),
                connectors,
                clock.clone(),
                policy,
                wakeup,
                sealer,
            )
            .with_metrics(metrics.clone())
            .with_brakes(
                settings
                    .connectors
                    .iter()
                    .filter_map(|c| {
                        c.deprovision_limit.map(|limit| {
                            let window = Duration::from_secs(c.deprovision_window_secs.max(1));
                            (
                                c.name.clone(),
                                crate::outbox::worker::Brake { limit, window },
                            )
                        })
                    })
                    .collect(),
            ),
        );
        let mut tokens = Tokens::new(store.clone(), clock.clone());
        // Literal, or `env:VAR` / `file:PATH` as connector secrets are; one that cannot be
        // resolved stops the start, rather than become a token spelled `env:...`.
        for (name, value, kind) in [
            ("token", &settings.token, TokenKind::Scim),
            ("admin_token", &settings.admin_token, TokenKind::Admin),
        ] {
            if let Some(t) = value {
                let t = crate::secret::resolve_secret(t.expose()).map_err(|e| {
                    StartupError::Setting {
                        name,
                        why: e.to_string(),
                    }
                })?;
                if t.expose().is_empty() {
                    return Err(StartupError::Setting {
                        name,
                        why: "the token is empty".into(),
                    });
                }
                tokens.allow_fixed(kind, t.expose());
            }
        }
        // The access-token signing keys are sealed with the outbox key when there is one;
        // without it they stay as they are (a key made per process would lose them at a
        // restart, and other instances could not read them).
        let tokens = match configured_sealer(settings)? {
            Some(s) => {
                let (t, sealed) = tokens.with_sealer(s).map_err(|e| StartupError::Setting {
                    name: "outbox_key",
                    why: e.to_string(),
                })?;
                if sealed > 0 {
                    log::info!("sealed {sealed} access-token signing keys with the outbox key");
                }
                t
            }
            None => {
                if tokens.any_client().unwrap_or(false) {
                    log::warn!(
                        "no outbox_key (SCIM_BRIDGE_OUTBOX_KEY) is set: the access-token signing keys are stored in the clear"
                    );
                }
                tokens
            }
        };
        let issuers = crate::bridge::jwt::Issuers::new(&settings.jwt_issuers)
            .map_err(StartupError::JwtIssuer)?;
        let admin = Arc::new(crate::bridge::Admin::new(
            store.clone(),
            resources.clone(),
            clock.clone(),
            names.clone(),
        ));
        let audit = Arc::new(crate::bridge::audit::Audit::new(
            store.clone(),
            clock.clone(),
            Duration::from_secs(settings.audit_retention_days.max(1) * 24 * 3600),
        ));
        let backfill = Arc::new(crate::bridge::backfill::Backfill::new(
            store.clone(),
            resources.clone(),
            clock.clone(),
            names.clone(),
        ));
        let reconcile = Arc::new(crate::bridge::reconcile::Reconcile::new(
            store.clone(),
            resources.clone(),
            clock.clone(),
            readable,
        ));
        let callbacks = Arc::new(crate::bridge::Callbacks::new(
            store.clone(),
            clock.clone(),
            callbacks,
        ));
        Ok(Core {
            store,
            resources,
            admin,
            tokens: Arc::new(tokens),
            dispatcher,
            connectors: names,
            callbacks,
            clock,
            issuers: Arc::new(issuers),
            metrics,
            audit,
            backfill,
            reconcile,
            starting: settings
                .connectors
                .iter()
                .map(|c| crate::bridge::backfill::Starting {
                    name: c.name.clone(),
                    backfill: c.backfill,
                    mode: c.mode,
                })
                .collect(),
        })
    }
}

pub struct Application {
    port: u16,
    server: Server,
    /// `/metrics` on a listener of its own (`metrics_listen`), and its port.
    metrics_server: Option<(Server, u16)>,
    pub core: Arc<Core>,
}

/// Who delivers the outbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// `outbox_workers` threads of the bridge's own, as `serve` runs.
    Background,
    /// Nobody but the caller, through `core.dispatcher` (`deliver_due`): a test drains the
    /// outbox when it chooses, deterministically.
    OnDemand,
}

impl Application {
    /// Binds the listener and prepares the server; it runs once awaited.
    pub fn build(settings: Settings, clock: Arc<dyn Clock>) -> Result<Application, StartupError> {
        Application::build_with(settings, clock, Delivery::Background)
    }

    /// As [`Application::build`], with the outbox delivered as `delivery` says.
    pub fn build_with(
        settings: Settings,
        clock: Arc<dyn Clock>,
        delivery: Delivery,
    ) -> Result<Application, StartupError> {
        let core = Arc::new(Core::build(&settings, clock)?);
        let listener =
            TcpListener::bind(&settings.listen).map_err(|source| StartupError::Bind {
                addr: settings.listen.clone(),
                source,
            })?;
        let port = listener
            .local_addr()
            .map_err(|source| StartupError::Bind {
                addr: settings.listen.clone(),
                source,
            })?
            .port();
        let settings = Arc::new(settings);
        let metrics_token = settings
            .metrics_token
            .as_ref()
            .map(|t| resolve_secret(t.expose()))
            .transpose()
            .map_err(|e| StartupError::Setting {
                name: "metrics_token",
                why: e.to_string(),
            })?;
        let state = web::Data::new(AppState {
            resources: core.resources.clone(),
            tokens: core.tokens.clone(),
            settings: settings.clone(),
            admin: core.admin.clone(),
            callbacks: core.callbacks.clone(),
            clock: core.clock.clone(),
            issuers: core.issuers.clone(),
            budget: crate::http::budget::Budget::new(
                settings.rate_limit_per_sec,
                settings.rate_limit_burst,
            )
            .map(Arc::new),
            failures: crate::http::budget::Failures::new(
                settings.auth_failures_per_sec,
                settings.auth_failures_burst,
            )
            .map(Arc::new),
            metrics: core.metrics.clone(),
            metrics_token,
            audit: core.audit.clone(),
            backfill: core.backfill.clone(),
            reconcile: core.reconcile.clone(),
        });
        if !core.connectors.is_empty() {
            // A connector this database has never seen gets everything it holds, once; so
            // does one that has just left dry run.
            let new =
                core.backfill
                    .on_start(&core.starting)
                    .map_err(|e| StartupError::Connector {
                        name: "backfill".into(),
                        why: e.to_string(),
                    })?;
            for (name, jobs, why) in new {
                log::info!(
                    "connector '{name}' {why}: {jobs} jobs queued to send it every user and group as they stand"
                );
            }
            if delivery == Delivery::Background {
                core.dispatcher.spawn(settings.outbox_workers.max(1));
            }
        }
        let registry = Arc::new(core.resources.registry().clone());
        let metrics_here = settings.metrics_listen.is_none();
        let app_state = state.clone();
        let mut server = HttpServer::new(move || {
            App::new()
                .wrap(actix_web::middleware::from_fn(http::paths::normalize))
                // Outermost: the request id and the access line cover everything inside.
                .wrap(actix_web::middleware::from_fn(http::observe::observe))
                .app_data(app_state.clone())
                .configure(http::configure(&registry, metrics_here))
        })
        .shutdown_timeout(settings.shutdown_timeout_secs)
        // actix stops at once on SIGINT; the bridge drains on SIGINT and SIGTERM alike
        // (run_until_signalled).
        .disable_signals()
        .client_request_timeout(Duration::from_secs(30));
        if settings.workers > 0 {
            server = server.workers(settings.workers);
        }
        let bind_err = |source| StartupError::Bind {
            addr: settings.listen.clone(),
            source,
        };
        let server = match (&settings.tls_cert, &settings.tls_key) {
            (Some(cert), Some(key)) => {
                let tls =
                    crate::tls::server_config(cert, key).map_err(|e| StartupError::Setting {
                        name: e.setting(),
                        why: e.to_string(),
                    })?;
                server.listen_rustls_0_23(listener, tls).map_err(bind_err)?
            }
            _ => server.listen(listener).map_err(bind_err)?,
        }
        .run();
        let metrics_server = match &settings.metrics_listen {
            None => None,
            Some(addr) => {
                let bind_err = |source| StartupError::Bind {
                    addr: addr.clone(),
                    source,
                };
                let l = TcpListener::bind(addr).map_err(bind_err)?;
                let mport = l.local_addr().map_err(bind_err)?.port();
                let state = state.clone();
                let s = HttpServer::new(move || {
                    App::new()
                        .app_data(state.clone())
                        .configure(http::configure_metrics)
                })
                .workers(1)
                .disable_signals()
                .shutdown_timeout(1)
                .listen(l)
                .map_err(bind_err)?
                .run();
                Some((s, mport))
            }
        };
        Ok(Application {
            port,
            server,
            metrics_server,
            core,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port of `/metrics`' own listener, when `metrics_listen` is set.
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics_server.as_ref().map(|(_, p)| *p)
    }

    /// A handle to stop the server gracefully (as SIGTERM does).
    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Serves until SIGINT or SIGTERM, then stops gracefully: the listener closes and
    /// requests in flight finish (up to `shutdown_timeout_secs`), as the handle's stop does.
    pub async fn run_until_signalled(self) -> std::io::Result<()> {
        let handle = self.server.handle();
        let signals = tokio::spawn(async move {
            let why = stop_signal().await;
            log::info!("{why}: stopping; requests in flight may finish");
            handle.stop(true).await;
        });
        let result = self.run_until_stopped().await;
        signals.abort();
        result
    }

    /// Serves until a stop through the handle (requests in flight finish).
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let metrics = self.metrics_server.map(|(s, _)| {
            let handle = s.handle();
            (tokio::spawn(s), handle)
        });
        let result = self.server.await;
        if let Some((task, handle)) = metrics {
            handle.stop(false).await;
            let _ = task.await;
        }
        self.core.dispatcher.stop();
        result
    }
}

/// Waits for SIGINT (Ctrl-C) or, on Unix, SIGTERM; says which came.
async fn stop_signal() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => tokio::select! {
                _ = tokio::signal::ctrl_c() => "SIGINT",
                _ = term.recv() => "SIGTERM",
            },
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                "SIGINT"
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        "Ctrl-C"
    }
}

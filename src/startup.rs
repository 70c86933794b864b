//! Building the application from settings, on any port (0 in tests), and running it.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::{Server, ServerHandle};
use actix_web::middleware::Logger;
use actix_web::{web, App, HttpServer};

use crate::bridge::schemas::{load_registry, SchemaLoadError};
use crate::bridge::{Resources, TokenKind, Tokens};
use crate::clock::Clock;
use crate::config::Settings;
use crate::http::{self, AppState};
use crate::store::{SqlStore, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Schemas(#[from] SchemaLoadError),
    #[error(transparent)]
    Store(#[from] StoreError),
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
}

impl Core {
    pub fn build(settings: &Settings, clock: Arc<dyn Clock>) -> Result<Core, StartupError> {
        let registry = Arc::new(load_registry(settings.schemas_dir.as_deref())?);
        let store = Arc::new(SqlStore::open(&settings.database_url, settings.pool_size)?);
        let resources = Arc::new(Resources::new(registry, store.clone(), clock.clone()));
        let mut tokens = Tokens::new(store.clone(), clock);
        if let Some(t) = &settings.token {
            tokens.allow_fixed(TokenKind::Scim, t.expose());
        }
        Ok(Core {
            store,
            resources,
            tokens: Arc::new(tokens),
        })
    }
}

pub struct Application {
    port: u16,
    server: Server,
    pub core: Arc<Core>,
}

impl Application {
    /// Binds the listener and prepares the server; it runs once awaited.
    pub fn build(settings: Settings, clock: Arc<dyn Clock>) -> Result<Application, StartupError> {
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
        let state = web::Data::new(AppState {
            resources: core.resources.clone(),
            tokens: core.tokens.clone(),
            settings: settings.clone(),
        });
        let registry = Arc::new(core.resources.registry().clone());
        let mut server = HttpServer::new(move || {
            App::new()
                .wrap(Logger::new("%a \"%r\" %s %b %Dms"))
                .app_data(state.clone())
                .configure(http::configure(&registry))
        })
        .shutdown_timeout(settings.shutdown_timeout_secs)
        .client_request_timeout(Duration::from_secs(30));
        if settings.workers > 0 {
            server = server.workers(settings.workers);
        }
        let server = server
            .listen(listener)
            .map_err(|source| StartupError::Bind {
                addr: settings.listen.clone(),
                source,
            })?
            .run();
        Ok(Application { port, server, core })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// A handle to stop the server gracefully (as SIGTERM does).
    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Serves until SIGTERM or SIGINT (requests in flight finish) or a stop through the handle.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}

//! scim-ceiling: what the HTTP layer alone allows on this machine. An actix-web server
//! answering `GET /scim/v2/Users/{id}` with a fixed SCIM-sized user document and echoing
//! what `POST /scim/v2/Users` sends (201), with the bridge's own server settings (one
//! worker when pinned to a core), so `bench/run` can report each workload as a share of it.

use actix_web::{web, App, HttpResponse, HttpServer};
use clap::Parser;

#[derive(Parser, Debug)]
#[command(
    name = "scim-ceiling",
    about = "A trivial actix-web SCIM endpoint, the benchmark's ceiling"
)]
struct Args {
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: String,
    #[arg(long, default_value_t = 1)]
    workers: usize,
}

/// A user as the bridge answers a GET of a seeded one (about the same size and shape).
const USER: &str = r#"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"id":"00000000-0000-4000-8000-000000000001","userName":"user1@example.com","externalId":"ext1","name":{"givenName":"Given","familyName":"Family"},"active":true,"emails":[{"value":"user1@example.com","type":"work","primary":true}],"meta":{"resourceType":"User","created":"2026-11-23T02:45:30.000Z","lastModified":"2026-11-23T02:45:30.000Z","location":"http://127.0.0.1:8080/scim/v2/Users/00000000-0000-4000-8000-000000000001","version":"W/\"1\""}}"#;

async fn get() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/scim+json")
        .insert_header(("ETag", "W/\"1\""))
        .body(USER)
}

async fn post(body: web::Bytes) -> HttpResponse {
    HttpResponse::Created()
        .content_type("application/scim+json")
        .body(body)
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let listener = std::net::TcpListener::bind(&args.listen)?;
    let port = listener.local_addr()?.port();
    let server = HttpServer::new(|| {
        App::new()
            .route("/scim/v2/Users/{id}", web::get().to(get))
            .route("/scim/v2/Users", web::post().to(post))
    })
    .workers(args.workers.max(1))
    .listen(listener)?
    .run();
    eprintln!("scim-ceiling listening (port {port})");
    server.await
}

//! `regsync run --metrics-listen ADDR`: `/metrics` (Prometheus text), `/healthz` (readiness:
//! 200 when every register is caught up within the allowed lag and its publisher is not failing,
//! else 503 with the reason; a seed or a long catch-up is not ready, not dead) and `/livez`
//! (liveness: 200 while the process serves).

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio_util::sync::CancellationToken;

/// Serves the worker's metrics and health on `listen` until `shutdown`.
pub async fn serve(listen: &str, max_lag: i64, shutdown: CancellationToken) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| anyhow::anyhow!("--metrics-listen {listen}: {e}"))?;
    tracing::info!(listen = %listener.local_addr()?, "metrics and health served");
    let app = Router::new()
        .route(
            "/metrics",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                    ingest::metrics::render(),
                )
            }),
        )
        .route("/livez", get(|| async { "alive\n" }))
        .route(
            "/healthz",
            get(move || async move {
                match ingest::metrics::health(max_lag) {
                    Ok(s) => (StatusCode::OK, format!("ok: {s}\n")).into_response(),
                    Err(s) => (StatusCode::SERVICE_UNAVAILABLE, format!("unhealthy: {s}\n"))
                        .into_response(),
                }
            }),
        );
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await;
    });
    Ok(())
}

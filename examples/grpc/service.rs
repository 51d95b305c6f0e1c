//! The gRPC demo's services, shared by `examples/grpc_demo.rs` and
//! `tests/grpc.rs`: the standard health service with a line per call, and
//! `corrlog.demo.v1.Orders`, whose lines all carry the request id (in the
//! handler, a sync service layer, `spawn_blocking`, a spawned task, and
//! while a response stream is polled).

use std::pin::Pin;

use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status, Streaming};
use tonic_health::pb::health_server::{Health, HealthServer};
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};
use tonic_health::server::{HealthReporter, HealthService, WatchStream};

#[allow(
    clippy::all,
    unreachable_pub,
    missing_docs,
    missing_debug_implementations
)]
#[path = "corrlog.demo.v1.rs"]
pub(crate) mod pb;

use pb::orders_server::{Orders, OrdersServer};
use pb::{
    BoomReply, BoomRequest, FailReply, FailRequest, GetOrderRequest, ImportReply,
    ListOrdersRequest, Order,
};

/// The most orders one `ListOrders` call streams.
pub(crate) const MAX_LIST: u32 = 10_000;

/// The health service and the orders service, with the orders service
/// reported as serving.
pub(crate) async fn services() -> (HealthServer<LoggedHealth>, OrdersServer<DemoOrders>) {
    let reporter = HealthReporter::new();
    reporter.set_serving::<OrdersServer<DemoOrders>>().await;
    let health = LoggedHealth(HealthService::from_health_reporter(reporter));
    (HealthServer::new(health), OrdersServer::new(DemoOrders))
}

/// `grpc.health.v1.Health` from tonic-health, with a line per call.
#[derive(Debug)]
pub(crate) struct LoggedHealth(HealthService);

#[tonic::async_trait]
impl Health for LoggedHealth {
    async fn check(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<HealthCheckResponse>, Status> {
        tracing::info!(target: "grpc_demo", service = %request.get_ref().service, "health check");
        self.0.check(request).await
    }

    type WatchStream = WatchStream;

    async fn watch(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<WatchStream>, Status> {
        tracing::info!(target: "grpc_demo", service = %request.get_ref().service, "health watch");
        self.0.watch(request).await
    }
}

/// `corrlog.demo.v1.Orders`.
#[derive(Debug, Default)]
pub(crate) struct DemoOrders;

/// The service layer: plain sync code, no id passed in.
fn load_order(order_id: &str) -> Result<(), Status> {
    tracing::info!(target: "grpc_demo", "loading order");
    if order_id.starts_with("missing") {
        tracing::warn!(target: "grpc_demo", "no such order");
        return Err(Status::not_found(format!("no order {order_id}")));
    }
    Ok(())
}

fn current_id() -> String {
    corrlog::request_id()
        .map(|id| id.to_string())
        .unwrap_or_default()
}

#[tonic::async_trait]
impl Orders for DemoOrders {
    async fn get_order(
        &self,
        request: Request<GetOrderRequest>,
    ) -> Result<Response<Order>, Status> {
        let order_id = request.into_inner().order_id;
        // Every later line of this call carries `order_id`.
        corrlog::bind("order_id", order_id.as_str());
        tracing::debug!(target: "grpc_demo", "get_order called");
        load_order(&order_id)?;
        let blocking_request_id = corrlog::spawn_blocking(|| {
            tracing::info!(target: "grpc_demo", "reading the order file");
            current_id()
        })
        .await
        .map_err(|_| Status::internal("the blocking task failed"))?;
        let audit = corrlog::spawn(async { tracing::info!(target: "grpc_demo", "audit record") });
        audit
            .await
            .map_err(|_| Status::internal("the audit task failed"))?;
        Ok(Response::new(Order {
            order_id,
            handler_request_id: current_id(),
            blocking_request_id,
        }))
    }

    type ListOrdersStream = Pin<Box<dyn Stream<Item = Result<Order, Status>> + Send>>;

    async fn list_orders(
        &self,
        request: Request<ListOrdersRequest>,
    ) -> Result<Response<Self::ListOrdersStream>, Status> {
        let count = request.into_inner().count;
        if count > MAX_LIST {
            return Err(Status::invalid_argument(format!(
                "count {count} is above the limit of {MAX_LIST}"
            )));
        }
        tracing::info!(target: "grpc_demo", count, "listing orders");
        // Each item is made while the server polls the stream, after the
        // handler returned: its line still carries the id.
        let stream = tokio_stream::iter(0..count).map(|n| {
            tracing::debug!(target: "grpc_demo", n, "streaming order");
            Ok(Order {
                order_id: n.to_string(),
                handler_request_id: current_id(),
                blocking_request_id: String::new(),
            })
        });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn import_orders(
        &self,
        request: Request<Streaming<Order>>,
    ) -> Result<Response<ImportReply>, Status> {
        let mut stream = request.into_inner();
        let mut imported = 0;
        while let Some(order) = stream.message().await? {
            tracing::debug!(target: "grpc_demo", order_id = %order.order_id, "importing order");
            imported += 1;
        }
        tracing::info!(target: "grpc_demo", imported, "import done");
        Ok(Response::new(ImportReply {
            imported,
            handler_request_id: current_id(),
        }))
    }

    async fn fail(&self, _request: Request<FailRequest>) -> Result<Response<FailReply>, Status> {
        tracing::error!(target: "grpc_demo", "the order store is unavailable");
        Err(Status::internal("the order store is unavailable"))
    }

    async fn boom(&self, _request: Request<BoomRequest>) -> Result<Response<BoomReply>, Status> {
        tracing::info!(target: "grpc_demo", "about to panic");
        panic!("boom: the handler panicked");
    }
}

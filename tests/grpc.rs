//! gRPC over tonic: the demo's services (`examples/grpc/service.rs`) behind
//! `RequestLayer` on a real tonic server on 127.0.0.1:0, called by real
//! tonic clients over HTTP/2. Unary, server- and client-streaming calls,
//! failures, panics (in the handler and in a response stream), cancelled
//! streams, hostile metadata, outgoing propagation, and thousands of
//! overlapping calls.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "../examples/grpc/service.rs"]
#[allow(dead_code)]
mod service;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Duration;

use common::{client_runtime, contains, hostile_ids, parse_lines, str_field};
use corrlog::context::TraceContext;
use corrlog::testing::TestLogs;
use corrlog::LogLayer;
use corrlog::{RequestContext, RequestId, RequestLayer};
use http::HeaderValue;
use serde_json::Value;
use service::pb::orders_client::OrdersClient;
use service::pb::orders_server::{Orders, OrdersServer};
use service::pb::{
    BoomReply, BoomRequest, FailReply, FailRequest, GetOrderRequest, ImportReply,
    ListOrdersRequest, Order,
};
use tokio::runtime::Runtime;
use tokio_stream::{Stream, StreamExt};
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Request, Response, Status, Streaming};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::{EnvFilter, Layer};

const ORDERS: &str = "/corrlog.demo.v1.Orders";

/// A tonic server on its own multi-thread runtime, every thread logging
/// the demo's and corrlog's lines into a capture.
struct GrpcServer {
    addr: SocketAddr,
    capture: TestLogs,
    runtime: Option<Runtime>,
}

impl GrpcServer {
    fn start(workers: usize) -> Self {
        Self::start_with(workers, None)
    }

    /// With `orders` in place of the demo's orders service.
    fn start_with(workers: usize, orders: Option<OrdersServer<TestOrders>>) -> Self {
        let capture = TestLogs::new();
        let filter = EnvFilter::new("warn,corrlog=trace,grpc_demo=trace");
        let dispatch = tracing::Dispatch::new(
            tracing_subscriber::registry().with(LogLayer::new(capture.clone()).with_filter(filter)),
        );
        let runtime = corrlog::testing::runtime_with(dispatch, workers);
        let addr = runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let (health, demo_orders) = service::services().await;
            let router = tonic::transport::Server::builder()
                .layer(RequestLayer::new().grpc(true))
                .add_service(health);
            let router = match orders {
                Some(orders) => router.add_service(orders),
                None => router.add_service(demo_orders),
            };
            let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
            tokio::spawn(router.serve_with_incoming(incoming));
            addr
        });
        GrpcServer {
            addr,
            capture,
            runtime: Some(runtime),
        }
    }

    fn channel(&self) -> Channel {
        Endpoint::from_shared(format!("http://{}", self.addr))
            .unwrap()
            .connect_lazy()
    }

    fn lines(&self) -> Vec<Value> {
        parse_lines(&self.capture.bytes())
    }

    fn lines_for(&self, id: &str) -> Vec<Value> {
        self.lines()
            .into_iter()
            .filter(|l| str_field(l, "request_id") == Some(id))
            .collect()
    }

    /// The access line of request `id`, waiting for it: a stream's line is
    /// written when the server has sent (or abandoned) its body, which can
    /// be just after the client saw the end.
    fn access_line(&self, id: &str) -> Value {
        for _ in 0..200 {
            if let Some(line) = self
                .lines_for(id)
                .into_iter()
                .find(|l| l["message"] == "request finished")
            {
                return line;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("no access line for {id}: {:#?}", self.lines_for(id));
    }
}

impl Drop for GrpcServer {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_timeout(Duration::from_secs(5));
        }
    }
}

fn with_id<T>(message: T, id: &str) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("x-request-id", id.parse().unwrap());
    request
}

fn metadata_id<T>(response: &Response<T>) -> String {
    response
        .metadata()
        .get("x-request-id")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned()
}

fn status_id(status: &Status) -> String {
    status
        .metadata()
        .get("x-request-id")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned()
}

#[test]
fn a_unary_call_carries_one_id_through_every_layer_and_its_access_line() {
    let server = GrpcServer::start(2);
    let reply = client_runtime().block_on(async {
        let mut client = OrdersClient::new(server.channel());
        let request = with_id(
            GetOrderRequest {
                order_id: "42".into(),
            },
            "grpc-call-1",
        );
        client.get_order(request).await.unwrap()
    });
    assert_eq!(metadata_id(&reply), "grpc-call-1", "echoed in metadata");
    let order = reply.into_inner();
    assert_eq!(order.handler_request_id, "grpc-call-1");
    assert_eq!(order.blocking_request_id, "grpc-call-1");

    let access = server.access_line("grpc-call-1");
    let lines = server.lines_for("grpc-call-1");
    for message in [
        "get_order called",
        "loading order",
        "reading the order file",
        "audit record",
    ] {
        let line = lines
            .iter()
            .find(|l| l["message"] == message)
            .unwrap_or_else(|| panic!("{message}: {lines:#?}"));
        assert_eq!(line["order_id"], "42", "{message}: bound field");
        assert_eq!(line["trace_id"], access["trace_id"], "{message}");
    }
    assert_eq!(access["level"], "INFO");
    assert_eq!(access["route"], format!("{ORDERS}/GetOrder"));
    assert_eq!(access["path"], format!("{ORDERS}/GetOrder"));
    assert_eq!(access["method"], "POST");
    assert_eq!(access["status"], 200);
    assert_eq!(access["grpc_status"], 0);
    assert_eq!(access["grpc_status_name"], "OK");
    assert_eq!(access["messages_out"], 1);
    assert!(access.get("reason").is_none(), "{access}");
}

#[test]
fn statuses_set_the_access_line_s_level_by_their_class() {
    let server = GrpcServer::start(2);
    let (not_found, internal, invalid) = client_runtime().block_on(async {
        let mut client = OrdersClient::new(server.channel());
        let not_found = client
            .get_order(with_id(
                GetOrderRequest {
                    order_id: "missing-7".into(),
                },
                "grpc-not-found",
            ))
            .await
            .unwrap_err();
        let internal = client
            .fail(with_id(FailRequest {}, "grpc-fail"))
            .await
            .unwrap_err();
        let invalid = client
            .list_orders(with_id(
                ListOrdersRequest {
                    count: service::MAX_LIST + 1,
                },
                "grpc-invalid",
            ))
            .await
            .unwrap_err();
        (not_found, internal, invalid)
    });
    for (status, id, code, name, level) in [
        (
            &not_found,
            "grpc-not-found",
            Code::NotFound,
            "NOT_FOUND",
            "WARN",
        ),
        (&internal, "grpc-fail", Code::Internal, "INTERNAL", "ERROR"),
        (
            &invalid,
            "grpc-invalid",
            Code::InvalidArgument,
            "INVALID_ARGUMENT",
            "WARN",
        ),
    ] {
        assert_eq!(status.code(), code, "{id}");
        assert_eq!(
            status_id(status),
            id,
            "{id}: the id is in the error's metadata"
        );
        let access = server.access_line(id);
        assert_eq!(access["grpc_status"], code as i32, "{id}");
        assert_eq!(access["grpc_status_name"], name, "{id}");
        assert_eq!(access["level"], level, "{id}");
        assert_eq!(
            access["status"], 200,
            "{id}: gRPC errors travel over HTTP 200"
        );
        // A trailers-only response carries no message.
        assert_eq!(access["messages_out"], 0, "{id}");
    }
    let lines = server.lines_for("grpc-fail");
    assert!(lines
        .iter()
        .any(|l| l["message"] == "the order store is unavailable" && l["level"] == "ERROR"));
}

#[test]
fn a_panicking_handler_becomes_internal_with_the_id_and_the_server_keeps_serving() {
    let server = GrpcServer::start(2);
    let (status, generated, after) = client_runtime().block_on(async {
        let mut client = OrdersClient::new(server.channel());
        let status = client
            .boom(with_id(BoomRequest {}, "grpc-boom-1"))
            .await
            .unwrap_err();
        // Without an incoming id, the generated one is what the client gets.
        let generated = client.boom(BoomRequest {}).await.unwrap_err();
        let after = client
            .get_order(GetOrderRequest {
                order_id: "1".into(),
            })
            .await;
        (status, generated, after)
    });
    assert_eq!(status.code(), Code::Internal);
    assert_eq!(status_id(&status), "grpc-boom-1");
    assert_eq!(status.message(), "internal error; request id grpc-boom-1");
    assert!(
        !status.message().contains("boom:"),
        "the panic message stays in the log"
    );
    let generated_id = status_id(&generated);
    assert!(common::is_uuid_v4(&generated_id), "{generated_id}");
    assert_eq!(
        generated.message(),
        format!("internal error; request id {generated_id}")
    );
    assert!(after.is_ok(), "still serving: {after:?}");

    for id in ["grpc-boom-1", generated_id.as_str()] {
        let lines = server.lines_for(id);
        let panic_line = lines
            .iter()
            .find(|l| l["message"] == "boom: the handler panicked")
            .unwrap_or_else(|| panic!("{lines:#?}"));
        assert_eq!(panic_line["level"], "ERROR");
        assert_eq!(panic_line["logger"], "corrlog::panic");
        let errors = lines.iter().filter(|l| l["level"] == "ERROR").count();
        assert_eq!(errors, 2, "one panic line and the access line: {lines:#?}");
        let access = server.access_line(id);
        assert_eq!(access["level"], "ERROR");
        assert_eq!(access["reason"], "panic");
        assert_eq!(access["grpc_status"], 13);
        assert_eq!(access["grpc_status_name"], "INTERNAL");
        assert_eq!(access["route"], format!("{ORDERS}/Boom"));
    }
}

#[test]
fn streams_keep_the_context_while_polled_and_count_their_messages() {
    let server = GrpcServer::start(2);
    let (listed, imported) = client_runtime().block_on(async {
        let mut client = OrdersClient::new(server.channel());
        let mut stream = client
            .list_orders(with_id(ListOrdersRequest { count: 50 }, "grpc-list"))
            .await
            .unwrap()
            .into_inner();
        let mut listed = Vec::new();
        while let Some(order) = stream.message().await.unwrap() {
            listed.push(order);
        }
        let outgoing = tokio_stream::iter((0..20).map(|n| Order {
            order_id: format!("import-{n}"),
            ..Order::default()
        }));
        let imported = client
            .import_orders(with_id(outgoing, "grpc-import"))
            .await
            .unwrap()
            .into_inner();
        (listed, imported)
    });
    assert_eq!(listed.len(), 50);
    assert!(listed.iter().all(|o| o.handler_request_id == "grpc-list"));
    let streamed = server
        .lines_for("grpc-list")
        .into_iter()
        .filter(|l| l["message"] == "streaming order")
        .count();
    assert_eq!(streamed, 50, "every item's line carries the id");
    let access = server.access_line("grpc-list");
    assert_eq!(access["messages_out"], 50);
    assert_eq!(access["grpc_status_name"], "OK");
    assert_eq!(access["route"], format!("{ORDERS}/ListOrders"));

    assert_eq!(imported.imported, 20);
    assert_eq!(imported.handler_request_id, "grpc-import");
    let lines = server.lines_for("grpc-import");
    assert_eq!(
        lines
            .iter()
            .filter(|l| l["message"] == "importing order")
            .count(),
        20
    );
    let access = server.access_line("grpc-import");
    assert_eq!(access["messages_out"], 1);
    assert_eq!(access["grpc_status_name"], "OK");
}

#[test]
fn the_health_service_answers_and_logs_with_the_id() {
    let server = GrpcServer::start(2);
    let (overall, orders, watched) = client_runtime().block_on(async {
        let mut client = HealthClient::new(server.channel());
        let overall = client
            .check(with_id(HealthCheckRequest::default(), "health-1"))
            .await
            .unwrap()
            .into_inner();
        let orders = client
            .check(with_id(
                HealthCheckRequest {
                    service: "corrlog.demo.v1.Orders".into(),
                },
                "health-2",
            ))
            .await
            .unwrap()
            .into_inner();
        let mut watch = client
            .watch(with_id(HealthCheckRequest::default(), "health-watch"))
            .await
            .unwrap()
            .into_inner();
        let first = watch.message().await.unwrap().unwrap();
        // The client hangs up on a stream that never ends by itself.
        drop(watch);
        (overall, orders, first)
    });
    assert_eq!(overall.status(), ServingStatus::Serving);
    assert_eq!(orders.status(), ServingStatus::Serving);
    assert_eq!(watched.status(), ServingStatus::Serving);
    for (id, message) in [
        ("health-1", "health check"),
        ("health-2", "health check"),
        ("health-watch", "health watch"),
    ] {
        assert!(
            server.lines_for(id).iter().any(|l| l["message"] == message),
            "{id}"
        );
    }
    assert_eq!(server.access_line("health-1")["grpc_status_name"], "OK");
    let watch = server.access_line("health-watch");
    assert_eq!(watch["reason"], "client_disconnect");
    assert_eq!(watch["level"], "WARN");
    assert_eq!(watch["route"], "/grpc.health.v1.Health/Watch");
    assert!(watch["messages_out"].as_u64().unwrap() >= 1, "{watch}");
    assert!(
        watch.get("grpc_status").is_none(),
        "no status was sent: {watch}"
    );
}

/// An orders service whose `ListOrders` stream panics at its third item
/// and whose `GetOrder` never answers.
struct TestOrders;

#[tonic::async_trait]
impl Orders for TestOrders {
    async fn get_order(&self, _: Request<GetOrderRequest>) -> Result<Response<Order>, Status> {
        tracing::info!(target: "grpc_demo", "waiting forever");
        std::future::pending().await
    }

    type ListOrdersStream = Pin<Box<dyn Stream<Item = Result<Order, Status>> + Send>>;

    async fn list_orders(
        &self,
        _: Request<ListOrdersRequest>,
    ) -> Result<Response<Self::ListOrdersStream>, Status> {
        let stream = tokio_stream::iter(0..10).map(|n| {
            assert!(n < 2, "the order stream broke at item {n}");
            Ok(Order {
                order_id: n.to_string(),
                ..Order::default()
            })
        });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn import_orders(
        &self,
        _: Request<Streaming<Order>>,
    ) -> Result<Response<ImportReply>, Status> {
        Err(Status::unimplemented("not here"))
    }

    async fn fail(&self, _: Request<FailRequest>) -> Result<Response<FailReply>, Status> {
        Err(Status::unimplemented("not here"))
    }

    async fn boom(&self, _: Request<BoomRequest>) -> Result<Response<BoomReply>, Status> {
        Err(Status::unimplemented("not here"))
    }
}

#[test]
fn a_panic_in_a_response_stream_ends_it_with_internal_and_the_id() {
    let server = GrpcServer::start_with(2, Some(OrdersServer::new(TestOrders)));
    let (received, error) = client_runtime().block_on(async {
        let mut client = OrdersClient::new(server.channel());
        let mut stream = client
            .list_orders(with_id(
                ListOrdersRequest { count: 10 },
                "grpc-stream-panic",
            ))
            .await
            .unwrap()
            .into_inner();
        let mut received = 0;
        loop {
            match stream.message().await {
                Ok(Some(_)) => received += 1,
                Ok(None) => panic!("the stream ended as if complete"),
                Err(status) => break (received, status),
            }
        }
    });
    // tonic may batch the first items with the one that panicked: what the
    // client got is what the access line counts.
    assert!(received <= 2, "{received}");
    assert_eq!(error.code(), Code::Internal);
    assert_eq!(
        error.message(),
        "internal error; request id grpc-stream-panic"
    );
    let lines = server.lines_for("grpc-stream-panic");
    assert!(lines
        .iter()
        .any(|l| l["logger"] == "corrlog::panic" && l["level"] == "ERROR"));
    let access = server.access_line("grpc-stream-panic");
    assert_eq!(access["reason"], "body_panic");
    assert_eq!(access["grpc_status_name"], "INTERNAL");
    assert_eq!(access["level"], "ERROR");
    assert_eq!(access["messages_out"], received);
    // The unimplemented methods are caller errors of the server's kind.
    let unimplemented = client_runtime().block_on(async {
        let mut client = OrdersClient::new(server.channel());
        client
            .fail(with_id(FailRequest {}, "grpc-unimplemented"))
            .await
            .unwrap_err()
    });
    assert_eq!(unimplemented.code(), Code::Unimplemented);
    let access = server.access_line("grpc-unimplemented");
    assert_eq!(access["grpc_status_name"], "UNIMPLEMENTED");
    assert_eq!(access["level"], "ERROR");
}

#[test]
fn a_call_the_client_gives_up_on_is_cancelled() {
    let server = GrpcServer::start_with(2, Some(OrdersServer::new(TestOrders)));
    client_runtime().block_on(async {
        let mut client = OrdersClient::new(server.channel());
        let call = client.get_order(with_id(
            GetOrderRequest {
                order_id: "1".into(),
            },
            "grpc-gave-up",
        ));
        // The handler has started when its line is there; then the client
        // drops the call, which resets the HTTP/2 stream.
        let waited = tokio::time::timeout(Duration::from_secs(30), async {
            tokio::pin!(call);
            loop {
                tokio::select! {
                    _ = &mut call => panic!("the call answered"),
                    _ = tokio::time::sleep(Duration::from_millis(20)) => {}
                }
                if !server.lines_for("grpc-gave-up").is_empty() {
                    break;
                }
            }
        })
        .await;
        assert!(waited.is_ok(), "the handler never started");
    });
    let access = server.access_line("grpc-gave-up");
    assert_eq!(access["reason"], "cancelled");
    assert_eq!(access["level"], "WARN");
    assert!(access.get("grpc_status").is_none(), "{access}");
    assert_eq!(access["route"], format!("{ORDERS}/GetOrder"));
}

#[test]
fn hostile_metadata_is_replaced_and_never_echoed_or_logged() {
    let server = GrpcServer::start(2);
    let mut issued = Vec::new();
    let mut refused = Vec::new();
    client_runtime().block_on(async {
        for (name, value) in hostile_ids() {
            // Raw bytes on the wire: the header is set below tonic's
            // metadata API, which would refuse some of them itself.
            let Ok(header) = HeaderValue::from_bytes(&value) else {
                refused.push(name);
                continue;
            };
            let channel = tower::ServiceBuilder::new()
                .map_request(move |mut req: http::Request<tonic::body::Body>| {
                    req.headers_mut().insert("x-request-id", header.clone());
                    req
                })
                .service(server.channel());
            let mut client = OrdersClient::new(channel);
            match client
                .get_order(GetOrderRequest {
                    order_id: "7".into(),
                })
                .await
            {
                Ok(reply) => {
                    let id = metadata_id(&reply);
                    assert!(common::is_uuid_v4(&id), "{name}: replaced, got {id:?}");
                    assert_eq!(reply.get_ref().handler_request_id, id, "{name}");
                    issued.push((name, id));
                }
                // The HTTP/2 layer refuses a header list over its limit
                // before any middleware runs.
                Err(status) => {
                    assert!(status.metadata().get("x-request-id").is_none(), "{name}");
                    refused.push(name);
                }
            }
        }
    });
    eprintln!("refused before the service: {refused:?}");
    assert!(
        issued.len() >= 20,
        "most classes reach the layer: {issued:?}"
    );
    let raw = server.capture.bytes();
    parse_lines(&raw);
    for (name, value) in hostile_ids() {
        let needle = &value[..value.len().min(64)];
        if needle.iter().any(|b| !b.is_ascii_alphanumeric()) || value.len() > 128 {
            assert!(!contains(&raw, needle), "{name}: raw value in the log");
        }
    }
    for (name, id) in &issued {
        assert_eq!(server.access_line(id)["grpc_status_name"], "OK", "{name}");
    }
}

#[test]
fn a_client_behind_propagate_layer_continues_the_callers_request() {
    let server = GrpcServer::start(2);
    let trace = TraceContext::new_root();
    let caller = RequestContext::with_trace(
        RequestId::new("caller-req-1").unwrap(),
        Some(trace.clone()),
        corrlog::http::X_REQUEST_ID,
    );
    let reply = client_runtime().block_on(caller.scope(async {
        let channel = tower::ServiceBuilder::new()
            .layer(corrlog::propagate::PropagateLayer)
            .service(server.channel());
        let mut client = OrdersClient::new(channel);
        client
            .get_order(GetOrderRequest {
                order_id: "9".into(),
            })
            .await
            .unwrap()
    }));
    assert_eq!(metadata_id(&reply), "caller-req-1");
    let access = server.access_line("caller-req-1");
    assert_eq!(access["trace_id"], trace.trace_id_hex());
    assert_eq!(access["parent_span_id"], trace.span_id_hex());
    assert_ne!(
        access["span_id"],
        trace.span_id_hex(),
        "a new span for the hop"
    );
}

#[test]
fn thousands_of_overlapping_calls_never_mix_their_ids() {
    const CALLS: usize = 2_000;
    const STREAMS: usize = 200;
    let server = GrpcServer::start(4);
    let (unary, streams) = client_runtime().block_on(async {
        // A few connections, each multiplexing many calls at once.
        let channels: Vec<Channel> = (0..4).map(|_| server.channel()).collect();
        let unary = (0..CALLS).map(|n| {
            let mut client = OrdersClient::new(channels[n % channels.len()].clone());
            tokio::spawn(async move {
                let id = format!("load-{n}");
                let reply = client
                    .get_order(with_id(
                        GetOrderRequest {
                            order_id: n.to_string(),
                        },
                        &id,
                    ))
                    .await
                    .unwrap();
                (id, metadata_id(&reply), reply.into_inner())
            })
        });
        let unary: Vec<_> = unary.collect();
        let streams = (0..STREAMS).map(|n| {
            let mut client = OrdersClient::new(channels[n % channels.len()].clone());
            tokio::spawn(async move {
                let id = format!("stream-{n}");
                let mut stream = client
                    .list_orders(with_id(ListOrdersRequest { count: 5 }, &id))
                    .await
                    .unwrap()
                    .into_inner();
                let mut seen = Vec::new();
                while let Some(order) = stream.message().await.unwrap() {
                    seen.push(order.handler_request_id);
                }
                (id, seen)
            })
        });
        let streams: Vec<_> = streams.collect();
        let mut unary_done = Vec::new();
        for task in unary {
            unary_done.push(task.await.unwrap());
        }
        let mut streams_done = Vec::new();
        for task in streams {
            streams_done.push(task.await.unwrap());
        }
        (unary_done, streams_done)
    });
    for (id, echoed, order) in &unary {
        assert_eq!(echoed, id);
        assert_eq!(&order.handler_request_id, id);
        assert_eq!(&order.blocking_request_id, id);
    }
    for (id, seen) in &streams {
        assert_eq!(seen.len(), 5);
        assert!(seen.iter().all(|s| s == id), "{id}: {seen:?}");
    }
    // Every line of a call carries that call's order id and nothing else.
    let mut by_id: HashMap<String, Vec<Value>> = HashMap::new();
    for _ in 0..200 {
        by_id.clear();
        for line in server.lines() {
            if let Some(id) = str_field(&line, "request_id") {
                by_id.entry(id.to_owned()).or_default().push(line.clone());
            }
        }
        let finished = by_id
            .values()
            .filter(|lines| lines.iter().any(|l| l["message"] == "request finished"))
            .count();
        if finished == CALLS + STREAMS {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    for n in 0..CALLS {
        let lines = &by_id[&format!("load-{n}")];
        assert_eq!(
            lines.len(),
            5,
            "load-{n}: four in the handler, the access line: {lines:#?}"
        );
        for line in lines {
            if line["message"] != "request finished" {
                assert_eq!(line["order_id"], n.to_string(), "{line}");
            }
        }
    }
    for n in 0..STREAMS {
        let lines = &by_id[&format!("stream-{n}")];
        let access = lines
            .iter()
            .find(|l| l["message"] == "request finished")
            .unwrap();
        assert_eq!(access["messages_out"], 5);
        assert_eq!(lines.len(), 7, "stream-{n}: listing, 5 items, access");
    }
}

#[test]
fn the_grpc_demo_serves_health_and_orders_and_logs_each_call_with_its_id() {
    let (demo, stdout, addr) = common::demo::start_example("grpc_demo", &[]);
    let (health, missing, boom) = client_runtime().block_on(async {
        let channel = Endpoint::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect_lazy();
        let health = HealthClient::new(channel.clone())
            .check(with_id(HealthCheckRequest::default(), "demo-health"))
            .await
            .unwrap()
            .into_inner();
        let mut orders = OrdersClient::new(channel);
        let missing = orders
            .get_order(with_id(
                GetOrderRequest {
                    order_id: "missing-3".into(),
                },
                "demo-missing",
            ))
            .await
            .unwrap_err();
        let boom = orders
            .boom(with_id(BoomRequest {}, "demo-boom"))
            .await
            .unwrap_err();
        (health, missing, boom)
    });
    assert_eq!(health.status(), ServingStatus::Serving);
    assert_eq!(missing.code(), Code::NotFound);
    assert_eq!(boom.code(), Code::Internal);
    assert_eq!(status_id(&boom), "demo-boom");

    let (out, err) = common::demo::stop(demo, stdout);
    assert!(!err.contains("panicked at"), "the panic is a line: {err}");
    let lines = parse_lines(out.as_bytes());
    let of = |id: &str| -> Vec<&Value> {
        lines
            .iter()
            .filter(|l| str_field(l, "request_id") == Some(id))
            .collect()
    };
    assert!(of("demo-health")
        .iter()
        .any(|l| l["message"] == "health check"));
    let missing = of("demo-missing");
    assert!(missing.iter().any(|l| l["message"] == "no such order"));
    let access = missing
        .iter()
        .find(|l| l["message"] == "request finished")
        .unwrap();
    assert_eq!(access["grpc_status_name"], "NOT_FOUND");
    assert_eq!(access["level"], "WARN");
    assert_eq!(access["service.name"], "corrlog-grpc-demo");
    let boom = of("demo-boom");
    assert!(
        boom.iter()
            .any(|l| l["logger"] == "corrlog::panic" && l["level"] == "ERROR"),
        "{boom:#?}"
    );
    assert!(lines.iter().any(|l| l["message"] == "shut down cleanly"));
}

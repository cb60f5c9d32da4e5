//! JSON bodies (feature `json`): a value sent with `Body::from_json` comes
//! back equal through `Body::json`, and a body that is not the JSON expected
//! is a body error saying so.

use crate::support::{self, Adapter};
use muxpool::client::Client;
use muxpool::{Body, ErrorKind};
use muxpool_testkit::hyper_server::{HyperServer, Options};

#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct Order {
    id: u64,
    items: Vec<String>,
    note: Option<String>,
}

async fn json_goes_and_comes_back<R: Adapter>() {
    let server = HyperServer::start(Options::default());
    let client = Client::<R>::new();
    let order = Order {
        id: 7,
        items: vec!["tea".into(), "milk \"oat\"".into()],
        note: None,
    };
    let request = http::Request::post(server.url("/echo"))
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Body::from_json(&order).expect("serializable"))
        .expect("a request");
    let response = client.send(request).await.expect("an answer");
    assert_eq!(
        response.headers()[http::header::CONTENT_TYPE],
        "application/json"
    );
    let back: Order = response.into_body().json().await.expect("the same JSON");
    assert_eq!(back, order);

    // `/` answers `hello`, which is no order.
    let request = http::Request::get(server.url("/"))
        .body(Body::empty())
        .expect("a request");
    let response = client.send(request).await.expect("an answer");
    let error = response
        .into_body()
        .json::<Order>()
        .await
        .expect_err("not JSON");
    assert_eq!(error.kind(), ErrorKind::Body, "{error:#}");
    assert!(
        error
            .to_string()
            .contains("the body is not the JSON expected"),
        "{error}"
    );

    // A map whose keys are not strings has no JSON form.
    let mut odd = std::collections::BTreeMap::new();
    odd.insert(vec![1u8], 2u8);
    let error = Body::from_json(&odd).expect_err("no JSON form");
    assert_eq!(error.kind(), ErrorKind::Request, "{error:#}");
}

support::conformance!(json_goes_and_comes_back,);

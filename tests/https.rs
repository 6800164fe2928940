//! HTTPS upstreams: rustls, certificate verification, h2 by ALPN, per-upstream headers.

mod support;

use serde_json::json;
use support::anvil::Anvil;
use support::nodewatch::{test_config, Nodewatch};
use support::rpc;
use support::tls::TlsRelay;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_https_upstream_with_a_private_ca_is_served_over_h2() {
    let Some(anvil) = support::tools::require_anvil() else {
        return;
    };
    let node = Anvil::spawn(&anvil).await;
    let relay = TlsRelay::start(&node.url()).await;
    let mut config = test_config(&[format!("{}/v3/KEY", relay.url)]);
    config.upstreams[0].ca_file = Some(relay.ca_file.clone());
    config.upstreams[0]
        .headers
        .insert("Authorization".into(), "Bearer KEY".into());
    let nw = Nodewatch::start_with(config).await;
    nw.wait_all_healthy().await;
    // eth_blockNumber, not eth_chainId: the answer cache answers the chain id itself after
    // the first time, and every call here must reach the upstream.
    let before = relay.versions().len();
    for _ in 0..5 {
        assert_eq!(
            rpc::call(&nw.url, "eth_blockNumber", json!([])).await,
            rpc::call(&node.url(), "eth_blockNumber", json!([])).await
        );
    }
    let versions = relay.versions();
    assert!(versions.len() >= before + 5, "{versions:?}");
    assert!(
        versions.iter().all(|v| *v == http::Version::HTTP_2),
        "{versions:?}"
    );
    let auth = relay.authorization();
    assert!(
        auth.iter().all(|a| a.as_deref() == Some("Bearer KEY")),
        "{auth:?}"
    );
    nw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_certificate_is_refused() {
    let Some(anvil) = support::tools::require_anvil() else {
        return;
    };
    let node = Anvil::spawn(&anvil).await;
    let relay = TlsRelay::start(&node.url()).await;
    // No ca_file: the webpki roots do not trust the test CA. Rank 2 (plain HTTP) answers.
    let nw = Nodewatch::start(&[relay.url.clone(), node.url()]).await;
    nw.wait_for("u1 down", std::time::Duration::from_secs(5), |s| {
        s.upstreams[0].status == nodewatch::upstream::health::Status::Unhealthy
    })
    .await;
    let error = nw.handle.snapshot.load().upstreams[0]
        .last_error
        .clone()
        .unwrap();
    assert!(error.to_lowercase().contains("certificate"), "{error}");
    assert_eq!(
        rpc::call(&nw.url, "eth_chainId", json!([])).await,
        json!("0x7a69")
    );
    assert!(
        relay.versions().is_empty(),
        "no request crossed an untrusted TLS session"
    );
    nw.stop().await;
}

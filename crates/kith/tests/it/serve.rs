//! `kith serve` itself: it starts, answers health checks and sets safe headers.

use crate::harness::Served;

#[tokio::test]
async fn serve_answers_health_checks_with_safe_headers() {
    let s = Served::start(200, "");
    let client = reqwest::Client::new();
    let r = client
        .get(format!("{}/healthz", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = client
        .get(format!("{}/readyz", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    assert_eq!(r.headers()["x-frame-options"], "DENY");
    assert!(
        r.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
    let css = client
        .get(format!("{}/static/kith.css", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(css.status(), 200);
    assert!(css.text().await.unwrap().contains("--accent"));
}

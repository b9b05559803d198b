use super::*;

#[test]
fn capture_stops_at_the_limit() {
    let mut c = BodyCapture::default();
    c.push(&[b'a'; 30_000]);
    c.push(&[b'b'; 20_000]);
    assert_eq!(c.buf.len(), 50_000);
    c.push(b"c");
    assert!(c.too_large);
    assert!(c.buf.capacity() == 0);
    assert_eq!(c.into_body(), BODY_TOO_LARGE);
}

#[test]
fn hosts_cannot_reach_into_the_path_or_query() {
    let url = |host: &str| {
        let mut url = String::from("http://");
        push_host(&mut url, host);
        url.push_str("/p?token=t");
        url
    };
    assert_eq!(
        url("api.example.com:8443"),
        "http://api.example.com:8443/p?token=t"
    );
    assert_eq!(url("[::1]:80"), "http://[::1]:80/p?token=t");
    assert_eq!(url("127.0.0.1#"), "http://127.0.0.1%23/p?token=t");
    assert_eq!(url("127.0.0.1?x=1"), "http://127.0.0.1%3Fx%3D1/p?token=t");
    assert_eq!(
        url("evil.example/a b@c"),
        "http://evil.example%2Fa%20b%40c/p?token=t"
    );
    assert_eq!(url("h\u{e9}"), "http://h%C3%A9/p?token=t");
    assert_eq!(
        url(&"a".repeat(1000)).len(),
        "http:///p?token=t".len() + MAX_HOST_LEN
    );
    assert_eq!(apitally_core::adapter::url_path(&url("x#?y")), "/p");
}

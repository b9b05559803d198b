use super::*;

#[test]
fn lengths_of_every_size_are_written_as_varints() {
    for len in [0usize, 1, 127, 128, 300, 16_383, 16_384, 70_000] {
        let mut buf = vec![7];
        message(&mut buf, 1, |b| b.extend(std::iter::repeat_n(b'x', len)));
        let mut expected = vec![7, 0x0a];
        varint(&mut expected, len as u64);
        expected.extend(std::iter::repeat_n(b'x', len));
        assert_eq!(buf, expected, "{len}");
    }
}

#[test]
fn ip_addresses_as_text() {
    for ip in [
        "203.0.113.7",
        "0.0.0.0",
        "255.255.255.255",
        "::1",
        "2001:db8::8a2e:370:7334",
    ] {
        let mut buf = [0; 45];
        assert_eq!(ip_text(ip.parse().unwrap(), &mut buf), ip);
    }
}

#[test]
fn urls_split_into_their_parts() {
    let p = url_parts("https://api.example.com:8443/items/1?token=x");
    assert_eq!(
        (p.scheme, p.address, p.port, p.path, p.query),
        (
            "https",
            "api.example.com",
            Some(8443),
            "/items/1",
            Some("token=x")
        )
    );
    let p = url_parts("http://[::1]:80/");
    assert_eq!((p.address, p.port), ("[::1]", Some(80)));
    let p = url_parts("http://h/p?");
    assert_eq!((p.address, p.port, p.query), ("h", None, None));
}

use super::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn ranges_of_both_families_parse_and_match() {
    let proxies =
        TrustedProxies::parse([" 10.0.0.0/8", "192.168.1.7", "", "fd00::/8", "::1"]).unwrap();
    for trusted in [
        "10.1.2.3",
        "192.168.1.7",
        "fd12::1",
        "::1",
        "::ffff:10.9.9.9",
    ] {
        assert!(proxies.contains(ip(trusted)), "{trusted}");
    }
    for other in [
        "11.0.0.1",
        "192.168.1.8",
        "fe80::1",
        "::2",
        "::ffff:11.0.0.1",
    ] {
        assert!(!proxies.contains(ip(other)), "{other}");
    }
    assert!(TrustedProxies::parse(["0.0.0.0/0"])
        .unwrap()
        .contains(ip("8.8.8.8")));
    assert!(TrustedProxies::parse(["::/0"])
        .unwrap()
        .contains(ip("2001:db8::1")));
    for bad in [
        "10.0.0.0/33",
        "::/129",
        "10.0.0.0/-1",
        "localhost",
        "10.0.0",
        "1.2.3.4/x",
    ] {
        assert!(TrustedProxies::parse([bad]).is_err(), "{bad}");
    }
    assert!(TrustedProxies::none().is_empty());
}

#[test]
fn the_client_is_the_rightmost_untrusted_address_behind_trusted_peers() {
    let proxies = TrustedProxies::parse(["10.0.0.0/8", "2001:db8:ffff::/48"]).unwrap();
    let lb = ip("10.0.0.2");
    let client = |forwarded: &[&[u8]], xff: &[&[u8]]| proxies.client_address(lb, forwarded, xff);
    // X-Forwarded-For: spoofed entries on the left are never reached.
    assert_eq!(
        client(&[], &[b"6.6.6.6, 203.0.113.9, 10.0.0.5"]),
        ip("203.0.113.9")
    );
    assert_eq!(
        client(&[], &[b"6.6.6.6", b"203.0.113.9 , 10.0.0.5"]),
        ip("203.0.113.9")
    );
    assert_eq!(client(&[], &[b"203.0.113.9:4711"]), ip("203.0.113.9"));
    assert_eq!(
        client(&[], &[b"[2001:db8::7]:4711, 2001:db8:ffff::1"]),
        ip("2001:db8::7")
    );
    assert_eq!(client(&[], &[b"2001:db8::7"]), ip("2001:db8::7"));
    // All trusted: the leftmost.
    assert_eq!(client(&[], &[b"10.0.0.9, 10.0.0.5"]), ip("10.0.0.9"));
    // Forwarded wins over X-Forwarded-For.
    assert_eq!(
        client(
            &[b"for=6.6.6.6, for=\"[2001:db8::7]:4711\";proto=https, For=10.0.0.5"],
            &[b"1.1.1.1"]
        ),
        ip("2001:db8::7")
    );
    assert_eq!(
        client(&[b"proto=https;for=203.0.113.9;by=10.0.0.2"], &[]),
        ip("203.0.113.9")
    );
    // No header: the peer.
    assert_eq!(client(&[], &[]), lb);
}

#[test]
fn what_cannot_be_read_gives_the_peer() {
    let proxies = TrustedProxies::parse(["10.0.0.0/8"]).unwrap();
    let lb = ip("10.0.0.2");
    let long = format!("{}1.2.3.4", "x".repeat(10_000));
    let many = vec!["10.0.0.1"; 40].join(",");
    for (forwarded, xff) in [
        (&[&b"for=_hidden"[..]][..], &[][..]),
        (&[&b"for=unknown, for=10.0.0.3"[..]], &[]),
        (&[&b"for=\"[2001:db8::7\""[..]], &[]),
        (&[&b"proto=https"[..]], &[]),
        (&[], &[&b"garbage"[..]]),
        (&[], &[&b"1.2.3.4:99999"[..]]),
        (&[], &[&b"1.2.3.4:0"[..]]),
        (&[], &[&b"[::1]x"[..]]),
        (&[], &[&b"example.com"[..]]),
        (&[], &[&b""[..]]),
        (&[], &[&b"caf\xc3\xa9"[..]]),
        (&[], &[long.as_bytes()]),
        (&[], &[many.as_bytes()]),
    ] {
        assert_eq!(
            proxies.client_address(lb, forwarded, xff),
            lb,
            "{forwarded:?} {xff:?}"
        );
    }
    // Garbage left of the client is never read.
    assert_eq!(
        proxies.client_address(lb, &[], &[format!("{long}, 203.0.113.9").as_bytes()]),
        ip("203.0.113.9")
    );
}

#[test]
fn nothing_trusted_means_the_peer_whatever_the_headers() {
    let peer = ip("203.0.113.9");
    assert_eq!(
        TrustedProxies::none().client_address(peer, &[b"for=1.2.3.4"], &[b"5.6.7.8"]),
        peer
    );
}

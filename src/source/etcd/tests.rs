use std::collections::BTreeMap;

use super::*;

fn settings(prefix: &str) -> Settings {
    Settings {
        endpoints: Vec::new(),
        prefix: prefix.as_bytes().to_vec(),
        version_key: format!("{prefix}.version").into_bytes(),
        timeout: DEFAULT_TIMEOUT,
        resync: DEFAULT_RESYNC,
        template: Upstream::new("").weight(2),
    }
}

fn kvs(pairs: &[(&str, &str)]) -> BTreeMap<Vec<u8>, Vec<u8>> {
    pairs.iter().map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec())).collect()
}

fn addresses(list: &[Upstream]) -> Vec<&str> {
    list.iter().map(|u| u.address.as_str()).collect()
}

#[test]
fn entries_are_ordered_by_key_then_endpoint_and_outside_keys_ignored() {
    let s = settings("/svc/");
    let list = upstreams(
        &s,
        &kvs(&[
            ("/svc/b", r#"{"endpoints":["http://10.0.0.3:80","10.0.0.4:80"]}"#),
            ("/svc/a", " 10.0.0.1:80\n"),
            ("/svc0", "10.9.9.9:80"),
            ("/other", "10.9.9.8:80"),
        ]),
    );
    assert_eq!(addresses(&list), ["10.0.0.1:80", "10.0.0.3:80", "10.0.0.4:80"]);
    assert!(list.iter().all(|u| u.weight == 2), "the template applies");
}

#[test]
fn version_key_selects_json_entries_of_that_version_only() {
    let s = settings("/svc/");
    let mut map = kvs(&[
        ("/svc/blue", r#"{"endpoints":["http://10.0.0.1:80"],"version":"blue"}"#),
        ("/svc/green", r#"{"endpoints":["http://10.0.0.2:80"],"version":"green"}"#),
        ("/svc/plain", "10.0.0.3:80"),
    ]);
    assert_eq!(addresses(&upstreams(&s, &map)), ["10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"]);
    map.insert(b"/svc/.version".to_vec(), b"green".to_vec());
    assert_eq!(addresses(&upstreams(&s, &map)), ["10.0.0.2:80"]);
    map.insert(b"/svc/.version".to_vec(), b" ".to_vec());
    assert_eq!(upstreams(&s, &map).len(), 3, "an empty version selects everything");
}

#[test]
fn json_entries_carry_weight_max_requests_and_tier() {
    let s = settings("/svc/");
    let list = upstreams(&s, &kvs(&[("/svc/a", r#"{"endpoints":["h1:80"],"weight":5,"max_requests":10,"tier":1}"#)]));
    assert_eq!(list, [Upstream::new("h1:80").weight(5).max_requests(10).tier(1)]);
}

#[test]
fn bad_entries_are_skipped_and_the_others_kept() {
    let s = settings("/svc/");
    let list = upstreams(
        &s,
        &kvs(&[
            ("/svc/1", "not an address"),
            ("/svc/2", r#"{"endpoints":"h:80"}"#),
            ("/svc/3", r#"{"endpoints":["h:80"],"colour":"red"}"#),
            ("/svc/4", r#"{"endpoints":["ok:80","bad"]}"#),
            ("/svc/5", r#"{"endpoints":["h:80"],"weight":0}"#),
            ("/svc/6", "{broken"),
            ("/svc/7", "good:81"),
        ]),
    );
    assert_eq!(addresses(&list), ["good:81"]);
}

#[test]
fn build_refuses_bad_configurations() {
    let e = Etcd::builder(Vec::<String>::new(), "/p/").build().unwrap_err();
    assert_eq!((e.kind(), e.message()), (ErrorKind::InvalidArgument, "etcd: no endpoints"));
    let e = Etcd::builder(["ftp://h:1"], "/p/").build().unwrap_err();
    assert_eq!(e.message(), "etcd endpoint \"ftp://h:1\": scheme \"ftp\" is not supported (only http)");
    let e = Etcd::builder(["h:1"], "/p/").timeout(Duration::ZERO).build().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidLimit);
    let e = Etcd::builder(["h:1"], "/p/").template(Upstream::new("").weight(0)).build().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidWeight);
}

#[test]
fn an_unreachable_cluster_is_the_fetch_error() {
    // Port 1 on loopback: nothing listens there, so the connection is refused at once.
    let etcd = Etcd::builder(["http://127.0.0.1:1"], "/p/").build().unwrap();
    let err = etcd.fetch(&Context::new(), &mut Vec::new()).unwrap_err().to_string();
    assert!(err.starts_with("connecting to etcd at 127.0.0.1:1: "), "{err}");
}

/// A fake gateway on loopback that answers each request with the next of `answers` (the
/// status line and headers are added; a watch answer is left open) and records every request
/// as `(path, body)`.
fn fake_gateway(answers: Vec<String>) -> (String, std::sync::mpsc::Receiver<(String, String)>) {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut open = Vec::new();
        for answer in answers {
            let Ok((stream, _)) = listener.accept() else { return };
            let mut reader = BufReader::new(stream);
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            let path = line.split(' ').nth(1).unwrap_or_default().to_owned();
            let mut length = 0;
            loop {
                let mut header = String::new();
                reader.read_line(&mut header).unwrap();
                if header.trim().is_empty() {
                    break;
                }
                if let Some(v) = header.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap();
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            let watch = path == "/v3/watch";
            tx.send((path, String::from_utf8(body).unwrap())).unwrap();
            let mut stream = reader.into_inner();
            write!(stream, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n{answer}")
                .unwrap();
            stream.flush().unwrap();
            if watch {
                open.push(stream); // a watch stays open
            }
        }
        // Keep the last watch open until the test ends.
        std::thread::park();
    });
    (url, rx)
}

#[test]
fn a_compacted_watch_is_read_and_watched_again_from_the_new_revision() {
    let kv = |key: &str, value: &str| {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD;
        format!(r#"{{"key":"{}","value":"{}"}}"#, b64.encode(key), b64.encode(value))
    };
    let (url, requests) = fake_gateway(vec![
        format!(r#"{{"header":{{"revision":"5"}},"kvs":[{}]}}"#, kv("/p/a", "10.0.0.1:80")),
        concat!(
            r#"{"result":{"header":{"revision":"5"},"created":true}}"#,
            "\n",
            r#"{"result":{"header":{"revision":"9"},"canceled":true,"compact_revision":"7"}}"#,
            "\n"
        )
        .to_owned(),
        format!(r#"{{"header":{{"revision":"9"}},"kvs":[{}]}}"#, kv("/p/b", "10.0.0.2:80")),
        r#"{"result":{"header":{"revision":"9"},"created":true}}"#.to_owned(),
    ]);
    let etcd = Etcd::builder([url], "/p/").build().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let mut out = Vec::new();
        etcd.fetch(&Context::new(), &mut out).unwrap();
        if addresses(&out) == ["10.0.0.2:80"] {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the re-read list never came: {out:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
    let seen: Vec<_> = (0..4).map(|_| requests.recv_timeout(Duration::from_secs(30)).unwrap()).collect();
    let paths: Vec<_> = seen.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(paths, ["/v3/kv/range", "/v3/watch", "/v3/kv/range", "/v3/watch"]);
    assert!(seen[1].1.contains(r#""start_revision":"6""#), "{}", seen[1].1);
    assert!(seen[3].1.contains(r#""start_revision":"10""#), "{}", seen[3].1);
}

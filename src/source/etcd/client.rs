//! A minimal client of etcd's v3 JSON gateway: `POST /v3/kv/range` and the streaming
//! `POST /v3/watch`, over plain HTTP/1.1 with hyper, one connection per call.
//!
//! The gateway speaks protobuf's JSON mapping: bytes are base64, 64-bit integers are strings,
//! fields with their zero value are left out (so PUT events have no `type`, and an empty
//! range has no `kvs`).

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

/// The largest range response read (a guard against a misconfigured prefix such as "").
const MAX_RANGE_BYTES: usize = 64 << 20;

/// One etcd client URL, reduced to what a TCP connection needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Endpoint {
    /// `host:port`, as given (a name is resolved at every connection).
    pub(crate) authority: String,
}

impl Endpoint {
    /// `http://host:port`, `host:port` or `http://host` (port 2379). HTTPS is refused: this
    /// client speaks plain HTTP only.
    pub(crate) fn parse(url: &str) -> Result<Self, String> {
        let rest = match url.split_once("://") {
            Some(("http", rest)) => rest,
            Some((scheme, _)) => {
                return Err(format!("etcd endpoint {url:?}: scheme {scheme:?} is not supported (only http)"));
            }
            None => url,
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.is_empty() || rest.contains('/') || rest.contains('@') {
            return Err(format!("etcd endpoint {url:?}: expected http://host:port"));
        }
        let has_port = match rest.rsplit_once(':') {
            Some((host, _)) => !host.ends_with(':') && (!rest.starts_with('[') || host.ends_with(']')),
            None => false,
        };
        let authority = if has_port { rest.to_owned() } else { format!("{rest}:2379") };
        crate::upstream::validate_address(&authority).map_err(|e| format!("etcd endpoint {url:?}: {}", e.message()))?;
        Ok(Self { authority })
    }
}

/// A key and its value.
pub(crate) struct Kv {
    pub(crate) key: Vec<u8>,
    pub(crate) value: Vec<u8>,
}

/// The result of a range read.
pub(crate) struct Range {
    pub(crate) revision: i64,
    pub(crate) kvs: Vec<Kv>,
}

/// One change seen by a watch.
pub(crate) enum Event {
    Put(Kv),
    Delete(Vec<u8>),
}

/// One message of a watch stream.
pub(crate) enum WatchMessage {
    Created,
    Events(Vec<Event>),
    /// The watch ended on the server's side (e.g. its start revision was compacted).
    Canceled(String),
}

/// The key just past every key that starts with `prefix` (etcd's `range_end` for a prefix);
/// `[0]` (to the end of the key space) when there is none.
pub(crate) fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(&last) = end.last() {
        if last < 0xff {
            *end.last_mut().expect("not empty") += 1;
            return end;
        }
        end.pop();
    }
    vec![0]
}

/// The range-request fields for a prefix (all keys when the prefix is empty).
fn range_fields(prefix: &[u8]) -> (String, String) {
    let key = if prefix.is_empty() { vec![0] } else { prefix.to_vec() };
    (B64.encode(key), B64.encode(prefix_end(prefix)))
}

/// Sends one POST and returns the response once its head has arrived. The connection's
/// driver runs as a task on the current runtime.
async fn post(endpoint: &Endpoint, path: &str, body: String) -> Result<hyper::Response<Incoming>, String> {
    let stream = tokio::net::TcpStream::connect(endpoint.authority.as_str())
        .await
        .map_err(|e| format!("connecting to etcd at {}: {e}", endpoint.authority))?;
    let _ = stream.set_nodelay(true);
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("etcd at {}: {e}", endpoint.authority))?;
    tokio::spawn(connection);
    let request = hyper::Request::post(path)
        .header(hyper::header::HOST, endpoint.authority.as_str())
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| format!("etcd request: {e}"))?;
    let response =
        sender.send_request(request).await.map_err(|e| format!("etcd at {}: {path}: {e}", endpoint.authority))?;
    if !response.status().is_success() {
        let status = response.status();
        let text = Limited::new(response.into_body(), 4096)
            .collect()
            .await
            .map(|b| String::from_utf8_lossy(&b.to_bytes()).into_owned())
            .unwrap_or_default();
        return Err(format!("etcd at {}: {path}: HTTP {status}: {}", endpoint.authority, text.trim()));
    }
    Ok(response)
}

/// Reads the keys of `prefix` (or the single key `key` when `single`), at `revision` when
/// given, within `timeout`.
pub(crate) async fn range(
    endpoint: &Endpoint,
    key: &[u8],
    single: bool,
    revision: Option<i64>,
    timeout: Duration,
) -> Result<Range, String> {
    let call = async {
        let mut body = if single {
            json!({ "key": B64.encode(key) })
        } else {
            let (key, range_end) = range_fields(key);
            json!({ "key": key, "range_end": range_end })
        };
        if let Some(rev) = revision {
            body["revision"] = json!(rev.to_string());
        }
        let response = post(endpoint, "/v3/kv/range", body.to_string()).await?;
        let bytes = Limited::new(response.into_body(), MAX_RANGE_BYTES)
            .collect()
            .await
            .map_err(|e| format!("etcd at {}: reading a range: {e}", endpoint.authority))?
            .to_bytes();
        let v: Value = serde_json::from_slice(&bytes)
            .map_err(|e| format!("etcd at {}: range response is not JSON: {e}", endpoint.authority))?;
        parse_range(&v).map_err(|e| format!("etcd at {}: range response: {e}", endpoint.authority))
    };
    match tokio::time::timeout(timeout, call).await {
        Ok(result) => result,
        Err(_) => Err(format!("etcd at {}: range read timed out after {timeout:?}", endpoint.authority)),
    }
}

/// Opens a watch stream on `prefix` (and on `extra_key`, when it lies outside the prefix)
/// from `start_revision`; returns once the response head arrived, within `timeout`.
pub(crate) async fn watch(
    endpoint: &Endpoint,
    prefix: &[u8],
    extra_key: Option<&[u8]>,
    start_revision: i64,
    timeout: Duration,
) -> Result<Incoming, String> {
    let (key, range_end) = range_fields(prefix);
    // The gateway reads any number of requests from one body, each starting its own watch
    // on the same stream.
    let mut body = json!({ "create_request": {
        "key": key, "range_end": range_end, "start_revision": start_revision.to_string()
    }})
    .to_string();
    if let Some(k) = extra_key {
        body.push_str(
            &json!({ "create_request": { "key": B64.encode(k), "start_revision": start_revision.to_string() } })
                .to_string(),
        );
    }
    match tokio::time::timeout(timeout, post(endpoint, "/v3/watch", body)).await {
        Ok(result) => result.map(hyper::Response::into_body),
        Err(_) => Err(format!("etcd at {}: opening a watch timed out after {timeout:?}", endpoint.authority)),
    }
}

/// Splits the stream's bytes into JSON messages; keeps an incomplete tail for later.
#[derive(Default)]
pub(crate) struct StreamDecoder {
    buf: Vec<u8>,
}

impl StreamDecoder {
    /// Adds bytes and returns every complete message they finish.
    pub(crate) fn push(&mut self, bytes: &[u8]) -> Result<Vec<WatchMessage>, String> {
        self.buf.extend_from_slice(bytes);
        let mut messages = Vec::new();
        let mut stream = serde_json::Deserializer::from_slice(&self.buf).into_iter::<Value>();
        let mut consumed = 0;
        loop {
            match stream.next() {
                Some(Ok(v)) => {
                    consumed = stream.byte_offset();
                    messages.push(parse_watch(&v)?);
                }
                Some(Err(e)) if e.is_eof() => break,
                Some(Err(e)) => return Err(format!("watch stream is not JSON: {e}")),
                None => {
                    consumed = self.buf.len();
                    break;
                }
            }
        }
        self.buf.drain(..consumed);
        Ok(messages)
    }
}

fn int(v: &Value) -> Option<i64> {
    match v {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.as_i64(),
        Value::Null => Some(0),
        _ => None,
    }
}

fn bytes_field(v: &Value, field: &str) -> Result<Vec<u8>, String> {
    match &v[field] {
        Value::Null => Ok(Vec::new()),
        Value::String(s) => B64.decode(s).map_err(|e| format!("{field} is not base64: {e}")),
        _ => Err(format!("{field} is not a string")),
    }
}

fn parse_kv(v: &Value) -> Result<Kv, String> {
    Ok(Kv { key: bytes_field(v, "key")?, value: bytes_field(v, "value")? })
}

fn revision_of(v: &Value) -> Result<i64, String> {
    int(&v["header"]["revision"]).ok_or_else(|| "header.revision is not an integer".to_owned())
}

fn parse_range(v: &Value) -> Result<Range, String> {
    if let Some(e) = v.get("error").or_else(|| v.get("message")) {
        return Err(format!("etcd error: {e}"));
    }
    let kvs = match &v["kvs"] {
        Value::Null => Vec::new(),
        Value::Array(list) => list.iter().map(parse_kv).collect::<Result<_, _>>()?,
        _ => return Err("kvs is not an array".to_owned()),
    };
    Ok(Range { revision: revision_of(v)?, kvs })
}

fn parse_watch(v: &Value) -> Result<WatchMessage, String> {
    if let Some(e) = v.get("error") {
        return Err(format!("watch error: {e}"));
    }
    let r = &v["result"];
    if !r.is_object() {
        return Err(format!("unexpected watch message: {v}"));
    }
    if r["canceled"] == Value::Bool(true) {
        let reason = match (int(&r["compact_revision"]), r["cancel_reason"].as_str()) {
            (Some(c), _) if c > 0 => format!("compacted (revision {c} is the oldest left)"),
            (_, Some(reason)) if !reason.is_empty() => reason.to_owned(),
            _ => "canceled by the server".to_owned(),
        };
        return Ok(WatchMessage::Canceled(reason));
    }
    if r["created"] == Value::Bool(true) {
        return Ok(WatchMessage::Created);
    }
    let events = match &r["events"] {
        Value::Null => Vec::new(),
        Value::Array(list) => list
            .iter()
            .map(|e| {
                let kv = parse_kv(&e["kv"])?;
                Ok(if e["type"] == "DELETE" { Event::Delete(kv.key) } else { Event::Put(kv) })
            })
            .collect::<Result<_, String>>()?,
        _ => return Err("events is not an array".to_owned()),
    };
    Ok(WatchMessage::Events(events))
}

/// The next chunk of a watch stream; `None` at its end.
pub(crate) async fn next_chunk(body: &mut Incoming) -> Result<Option<Bytes>, String> {
    loop {
        match body.frame().await {
            None => return Ok(None),
            Some(Err(e)) => return Err(format!("watch stream broke: {e}")),
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    return Ok(Some(data));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_increments_the_last_byte_below_0xff() {
        assert_eq!(prefix_end(b"/a/"), b"/a0");
        assert_eq!(prefix_end(b"a\xff"), b"b");
        assert_eq!(prefix_end(b"\xff\xff"), vec![0]);
        assert_eq!(prefix_end(b""), vec![0]);
    }

    #[test]
    fn endpoints_parse_to_authorities() {
        assert_eq!(Endpoint::parse("http://127.0.0.1:2379").unwrap().authority, "127.0.0.1:2379");
        assert_eq!(Endpoint::parse("http://etcd.internal/").unwrap().authority, "etcd.internal:2379");
        assert_eq!(Endpoint::parse("10.0.0.1:4001").unwrap().authority, "10.0.0.1:4001");
        assert_eq!(Endpoint::parse("http://[::1]").unwrap().authority, "[::1]:2379");
        assert_eq!(Endpoint::parse("http://[::1]:23").unwrap().authority, "[::1]:23");
        let err = Endpoint::parse("https://10.0.0.1:2379").unwrap_err();
        assert_eq!(err, "etcd endpoint \"https://10.0.0.1:2379\": scheme \"https\" is not supported (only http)");
        assert!(Endpoint::parse("http://a:1/v3").unwrap_err().contains("expected http://host:port"));
    }

    #[test]
    fn stream_decoder_keeps_partial_messages_and_reads_put_and_delete() {
        let mut d = StreamDecoder::default();
        let created = br#"{"result":{"header":{"revision":"3"},"created":true}}"#;
        let events = br#"{"result":{"header":{"revision":"5"},"events":[{"kv":{"key":"L2Ev","value":"eA=="}},{"type":"DELETE","kv":{"key":"L2Iv"}}]}}"#;
        let mut all = created.to_vec();
        all.push(b'\n');
        all.extend_from_slice(events);
        let (head, tail) = all.split_at(created.len() + 20);
        let first = d.push(head).unwrap();
        assert_eq!(first.len(), 1);
        assert!(matches!(first[0], WatchMessage::Created));
        let second = d.push(tail).unwrap();
        let [WatchMessage::Events(events)] = &second[..] else { panic!("one event message") };
        assert!(matches!(&events[0], Event::Put(kv) if kv.key == b"/a/" && kv.value == b"x"));
        assert!(matches!(&events[1], Event::Delete(k) if k == b"/b/"));
        let canceled = d.push(br#"{"result":{"canceled":true,"compact_revision":"9"}}"#).unwrap();
        assert!(matches!(&canceled[0], WatchMessage::Canceled(r) if r.contains("compacted")));
    }
}

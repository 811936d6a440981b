//! The watcher's task, run by the source's [`Background`](crate::source::background::Background)
//! thread: read, publish, watch, apply, and again on every break.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use super::client::{self, Event, StreamDecoder, WatchMessage};
use super::{Settings, upstreams};
use crate::source::background::Published;

const FIRST_PAUSE: Duration = Duration::from_millis(100);
const MAX_PAUSE: Duration = Duration::from_secs(5);

type Kvs = BTreeMap<Vec<u8>, Vec<u8>>;

/// Reads and watches until the source stops the task.
pub(super) async fn run(settings: Arc<Settings>, published: Arc<Published>) {
    let (settings, published) = (&*settings, &*published);
    let mut preferred = 0;
    // Before the next read after a failed read, and after a watch that ended early: each
    // grows while failures repeat, so that a server that refuses every watch (or a cluster
    // that is down) is asked at most every `MAX_PAUSE`.
    let mut read_pause = FIRST_PAUSE;
    let mut watch_pause = FIRST_PAUSE;
    loop {
        let pause = match read(settings, &mut preferred).await {
            Ok((revision, mut kvs)) => {
                read_pause = FIRST_PAUSE;
                published.set(Ok(upstreams(settings, &kvs)));
                let endpoint = &settings.endpoints[preferred];
                let started = tokio::time::Instant::now();
                let why = watch(settings, endpoint, revision, &mut kvs, published).await;
                log::debug!("etcd: watch on {} ended ({why}); reading again", endpoint.authority);
                if started.elapsed() >= MAX_PAUSE {
                    watch_pause = FIRST_PAUSE;
                }
                next_pause(&mut watch_pause)
            }
            Err(error) => {
                log::debug!("etcd: {error}; retrying in {read_pause:?}");
                published.set(Err(error));
                next_pause(&mut read_pause)
            }
        };
        tokio::time::sleep(pause).await;
    }
}

/// The pause to take now; doubles the next one, up to `MAX_PAUSE`.
fn next_pause(pause: &mut Duration) -> Duration {
    let now = *pause;
    *pause = (now * 2).min(MAX_PAUSE);
    now
}

/// Reads the prefix (and the version key) from the first endpoint that answers, starting at
/// `preferred`, which is left pointing at that endpoint. Returns the revision read at.
async fn read(settings: &Settings, preferred: &mut usize) -> Result<(i64, Kvs), String> {
    let n = settings.endpoints.len();
    let mut errors = Vec::new();
    for i in 0..n {
        let index = (*preferred + i) % n;
        match read_from(settings, &settings.endpoints[index]).await {
            Ok(read) => {
                *preferred = index;
                return Ok(read);
            }
            Err(e) => errors.push(e),
        }
    }
    Err(errors.join("; "))
}

async fn read_from(settings: &Settings, endpoint: &client::Endpoint) -> Result<(i64, Kvs), String> {
    let range = client::range(endpoint, &settings.prefix, false, None, settings.timeout).await?;
    let mut kvs: Kvs = range.kvs.into_iter().map(|kv| (kv.key, kv.value)).collect();
    if settings.version_key_apart() {
        // At the prefix's revision, so that one watch from the next revision misses nothing.
        let version =
            client::range(endpoint, &settings.version_key, true, Some(range.revision), settings.timeout).await?;
        kvs.extend(version.kvs.into_iter().map(|kv| (kv.key, kv.value)));
    }
    Ok((range.revision, kvs))
}

/// Watches from `revision + 1`, applying changes to `kvs` and publishing each new list, until
/// the stream ends, breaks, is cancelled or `resync` is up; returns why.
async fn watch(
    settings: &Settings,
    endpoint: &client::Endpoint,
    revision: i64,
    kvs: &mut Kvs,
    published: &Published,
) -> String {
    let extra = settings.version_key_apart().then_some(settings.version_key.as_slice());
    let mut body = match client::watch(endpoint, &settings.prefix, extra, revision + 1, settings.timeout).await {
        Ok(body) => body,
        Err(e) => return e,
    };
    let deadline = tokio::time::Instant::now() + settings.resync;
    let mut decoder = StreamDecoder::default();
    loop {
        let chunk = match tokio::time::timeout_at(deadline, client::next_chunk(&mut body)).await {
            Err(_) => return "periodic re-read".to_owned(),
            Ok(Ok(None)) => return "the stream ended".to_owned(),
            Ok(Err(e)) => return e,
            Ok(Ok(Some(chunk))) => chunk,
        };
        let messages = match decoder.push(&chunk) {
            Ok(m) => m,
            Err(e) => return e,
        };
        let mut changed = false;
        for message in messages {
            match message {
                WatchMessage::Created => {}
                WatchMessage::Canceled(why) => return format!("watch cancelled: {why}"),
                WatchMessage::Events(events) => {
                    for event in events {
                        changed = true;
                        match event {
                            Event::Put(kv) => kvs.insert(kv.key, kv.value),
                            Event::Delete(key) => kvs.remove(&key),
                        };
                    }
                }
            }
        }
        if changed {
            published.set(Ok(upstreams(settings, kvs)));
        }
    }
}

//! The watcher's task, run by the source's [`Background`](crate::source::background::Background)
//! thread: it keeps the source's list.
//!
//! It subscribes to `GET /events` (container events) first and lists the containers after
//! the daemon answered, so no change falls between the listing and the subscription. Every
//! event schedules a re-list `debounce` later (events that arrive meanwhile join it); a
//! re-list also runs every `refresh`, and 1 s after a failed one. When the stream ends or fails it resubscribes (after
//! a backoff from 0.25 s doubling to 5 s while the daemon is unreachable) and lists again,
//! so changes made while the stream was down are not missed. Each listing's outcome (the
//! upstreams, or the daemon's error) replaces the published one.

use std::sync::Arc;
use std::time::Duration;

use http_body_util::BodyExt;
use hyper::body::Incoming;
use tokio::time::{Instant, sleep, sleep_until, timeout};

use super::{Settings, api};
use crate::source::background::Published;

const MIN_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How soon a failed listing is retried while the event stream is up.
const RETRY: Duration = Duration::from_secs(1);
/// The longest event line accepted; a longer one is a broken stream.
const MAX_LINE: usize = 1 << 20;

/// Follows the daemon until the source stops the task.
pub(crate) async fn watch(settings: Arc<Settings>, published: Arc<Published>) {
    let (settings, published) = (&*settings, &*published);
    let mut backoff = MIN_BACKOFF;
    loop {
        let path = format!("/events{}", api::filters_query(&serde_json::json!({"type": ["container"]})));
        match timeout(settings.timeout, api::get(settings, &path)).await {
            Ok(Ok(events)) => {
                backoff = MIN_BACKOFF;
                follow(settings, published, events).await;
            }
            Ok(Err(e)) => fail(settings, published, e),
            Err(_) => fail(settings, published, format!("GET /events: no answer within {:?}", settings.timeout)),
        }
        sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Logs and publishes a failure, naming the daemon.
fn fail(settings: &Settings, published: &Published, e: String) {
    let e = format!("docker daemon at {}: {e}", settings.socket);
    log::warn!("{e}");
    published.set(Err(e));
}

/// Lists now, then after each debounced event and every `refresh`, until the stream ends.
async fn follow(settings: &Settings, published: &Published, mut events: Incoming) {
    let mut due = (!relist(settings, published).await).then(|| Instant::now() + RETRY);
    let mut periodic = Instant::now() + settings.refresh;
    let mut line = Vec::new();
    loop {
        let wake = due.map_or(periodic, |d| d.min(periodic));
        tokio::select! {
            frame = events.frame() => match frame {
                Some(Ok(frame)) => {
                    let Ok(data) = frame.into_data() else { continue };
                    line.extend_from_slice(&data);
                    if line.contains(&b'\n') {
                        line.drain(..=line.iter().rposition(|&b| b == b'\n').unwrap_or(0));
                        due.get_or_insert_with(|| Instant::now() + settings.debounce);
                    }
                    if line.len() > MAX_LINE {
                        log::warn!("docker: event line over {MAX_LINE} bytes; resubscribing");
                        return;
                    }
                }
                Some(Err(e)) => {
                    log::warn!("docker: event stream failed: {e}; resubscribing");
                    return;
                }
                None => {
                    log::warn!("docker: event stream ended; resubscribing");
                    return;
                }
            },
            () = sleep_until(wake) => {
                periodic = Instant::now() + settings.refresh;
                due = (!relist(settings, published).await).then(|| Instant::now() + RETRY);
            }
        }
    }
}

/// Lists and publishes the outcome; `false` if the listing failed.
async fn relist(settings: &Settings, published: &Published) -> bool {
    match timeout(settings.timeout, api::list(settings)).await {
        Ok(Ok(containers)) => {
            published.set(Ok(api::upstreams(settings, containers)));
            return true;
        }
        Ok(Err(e)) => fail(settings, published, e),
        Err(_) => fail(settings, published, format!("GET /containers/json: no answer within {:?}", settings.timeout)),
    }
    false
}

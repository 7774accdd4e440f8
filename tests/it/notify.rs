//! Webhook notifications through the real binary, to a real HTTP receiver on 127.0.0.1: the
//! configured events batched, failed and held runs, retries until the receiver answers, the
//! Slack payload shape, `--no-notify` and `notify --test`.

use crate::harness::{sql_i64, text, TestApp, SOURCE};
use serde_json::Value;
use std::sync::{Arc, Mutex};

/// A webhook receiver: every body it got, and the statuses it answers, in order (then 200).
#[derive(Clone, Default)]
pub(crate) struct Receiver {
    bodies: Arc<Mutex<Vec<Value>>>,
    requests: Arc<Mutex<u32>>,
    answers: Arc<Mutex<Vec<u16>>>,
}

impl Receiver {
    pub(crate) async fn start(answers: &[u16]) -> (Receiver, String) {
        let r = Receiver {
            answers: Arc::new(Mutex::new(answers.to_vec())),
            ..Receiver::default()
        };
        let state = r.clone();
        let app = axum::Router::new().route(
            "/hooks/T000/B000/XXXX",
            axum::routing::post(move |body: axum::body::Bytes| {
                let s = state.clone();
                async move {
                    *s.requests.lock().unwrap() += 1;
                    let mut answers = s.answers.lock().unwrap();
                    let status = if answers.is_empty() {
                        200
                    } else {
                        answers.remove(0)
                    };
                    if status == 200 {
                        s.bodies
                            .lock()
                            .unwrap()
                            .push(serde_json::from_slice(&body).unwrap_or(Value::Null));
                    }
                    (axum::http::StatusCode::from_u16(status).unwrap(), "ok")
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!(
            "http://{}/hooks/T000/B000/XXXX",
            listener.local_addr().unwrap()
        );
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (r, url)
    }

    pub(crate) fn bodies(&self) -> Vec<Value> {
        self.bodies.lock().unwrap().clone()
    }

    fn take(&self) -> Vec<Value> {
        std::mem::take(&mut *self.bodies.lock().unwrap())
    }
}

fn notify_toml(url: &str, format: &str, events: &[&str]) -> String {
    let events: Vec<String> = events.iter().map(|e| format!("{e:?}")).collect();
    format!(
        "\n[[notify]]\nname = \"ops\"\nurl = {url:?}\nformat = {format:?}\nevents = [{}]\nretry_initial_interval_ms = 10\n",
        events.join(", ")
    )
}

fn configure(app: &TestApp, source_extra: &str, notify: &str) {
    app.configure(source_extra);
    let mut t = std::fs::read_to_string(&app.config_path).unwrap();
    t.push_str(notify);
    std::fs::write(&app.config_path, t).unwrap();
}

/// (event, count) of each message, in order.
fn events(bodies: &[Value]) -> Vec<(String, u64)> {
    bodies
        .iter()
        .map(|b| {
            (
                b["event"].as_str().unwrap().to_string(),
                b["count"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_sends_exactly_the_configured_events_batched() {
    let app = TestApp::new(400).await;
    let (rx, url) = Receiver::start(&[]).await;
    let events_on = ["offer_added", "offer_removed", "payout_changed"];
    configure(&app, "", &notify_toml(&url, "json", &events_on));
    let out = app.bin(&["--once"], &[]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let live = app.sandbox.with_trackly(|t| t.catalog.live(|_| true));
    assert_eq!(
        events(&rx.take()),
        vec![("offer_added".to_string(), live.len() as u64)],
        "a 400-offer first sync is one message"
    );
    app.sandbox.with_trackly(|t| {
        t.catalog.update(live[0].index, |o| o.payout_cents += 300);
        t.catalog.update(live[1].index, |o| o.payout_cents += 300);
        t.catalog.update(live[2].index, |o| o.status = "paused");
        t.catalog.remove(live[3].index);
    });
    let out = app.bin(&["--once"], &[]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let got = rx.take();
    let mut ev = events(&got);
    ev.sort();
    assert_eq!(
        ev,
        vec![
            ("offer_removed".to_string(), 1),
            ("payout_changed".to_string(), 2)
        ],
        "no status_changed: not configured"
    );
    let payout = got.iter().find(|b| b["event"] == "payout_changed").unwrap();
    assert_eq!(payout["source"], SOURCE);
    assert_eq!(payout["offers"].as_array().unwrap().len(), 2);
    assert!(payout["offers"][0]["old"].is_string() && payout["offers"][0]["new"].is_string());
    // Nothing new: nothing sent.
    let out = app.bin(&["--once"], &[]).await;
    assert!(out.status.success());
    assert!(rx.take().is_empty());
    assert_eq!(
        sql_i64(
            &app,
            "SELECT count(*) FROM notify_outbox WHERE state <> 'done'"
        ),
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_run_and_a_held_run_each_send_one_message() {
    let app = TestApp::new(100).await;
    let (rx, url) = Receiver::start(&[]).await;
    let on = ["run_failed", "run_held"];
    configure(&app, "", &notify_toml(&url, "json", &on));
    assert!(app.bin(&["--once"], &[]).await.status.success());
    assert!(rx.take().is_empty(), "a complete run is not reported");
    // A wrong key: the run fails.
    let good = std::fs::read_to_string(&app.config_path).unwrap();
    std::fs::write(
        &app.config_path,
        good.replace(&app.api_key, "trk_wrong00000000000000000000000000"),
    )
    .unwrap();
    let out = app.bin(&["--once"], &[]).await;
    assert_eq!(out.status.code(), Some(1));
    let got = rx.take();
    assert_eq!(events(&got), vec![("run_failed".to_string(), 1)]);
    assert_eq!(got[0]["state"], "failed");
    assert!(
        got[0]["error"].as_str().unwrap().contains("401"),
        "{}",
        got[0]
    );
    assert!(
        !got[0].to_string().contains("trk_wrong"),
        "no key in a message"
    );
    // Most offers gone: the mass-removal guard holds the run.
    std::fs::write(&app.config_path, &good).unwrap();
    app.sandbox.with_trackly(|t| {
        for o in t.catalog.live(|_| true).iter().skip(10) {
            t.catalog.remove(o.index);
        }
    });
    let out = app.bin(&["--once"], &[]).await;
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(events(&rx.take()), vec![("run_held".to_string(), 1)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_failing_twice_gets_the_message_once_its_retries_go_through() {
    let app = TestApp::new(20).await;
    let (rx, url) = Receiver::start(&[500, 500]).await;
    configure(&app, "", &notify_toml(&url, "slack", &["offer_added"]));
    let out = app.bin(&["--once"], &[]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(*rx.requests.lock().unwrap(), 3, "two 500s, then the 200");
    let got = rx.bodies();
    assert_eq!(got.len(), 1);
    // Slack's incoming-webhook payload: `text`, and `blocks` of `section`s with mrkdwn text.
    let b = &got[0];
    assert!(
        b["text"]
            .as_str()
            .unwrap()
            .contains("20 new offer(s) from trackly-test"),
        "{b}"
    );
    assert_eq!(b["blocks"][0]["type"], "section");
    assert_eq!(b["blocks"][0]["text"]["type"], "mrkdwn");
    assert!(b["blocks"][0]["text"]["text"]
        .as_str()
        .unwrap()
        .contains("… and 10 more"));
    assert_eq!(
        sql_i64(
            &app,
            "SELECT count(*) FROM notify_outbox WHERE state = 'done'"
        ),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_receiver_keeps_the_message_until_a_later_run_delivers_it() {
    let app = TestApp::new(20).await;
    // Three failures exhaust one run's retries; the next run delivers.
    let (rx, url) = Receiver::start(&[503, 503, 503]).await;
    configure(&app, "", &notify_toml(&url, "json", &["offer_added"]));
    assert!(
        app.bin(&["--once"], &[]).await.status.success(),
        "a notification does not fail the run"
    );
    assert!(rx.bodies().is_empty());
    assert_eq!(
        sql_i64(
            &app,
            "SELECT count(*) FROM notify_outbox WHERE state = 'pending' AND attempts = 1"
        ),
        1
    );
    let listed = app
        .bin(
            &[
                "inspect",
                "notifications",
                "--state",
                "pending",
                "--format",
                "json",
            ],
            &[],
        )
        .await;
    let rows: Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 1, "{rows}");
    assert!(
        !listed.stdout.windows(4).any(|w| w == b"XXXX"),
        "the webhook URL is a secret"
    );
    // Due again after its back-off (2 s).
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert!(app.bin(&["--once"], &[]).await.status.success());
    assert_eq!(events(&rx.take()), vec![("offer_added".to_string(), 20)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_notify_records_and_a_later_run_sends_and_notify_test_works() {
    let app = TestApp::new(10).await;
    let (rx, url) = Receiver::start(&[]).await;
    configure(&app, "", &notify_toml(&url, "json", &["offer_added"]));
    assert!(app
        .bin(&["--once", "--no-notify"], &[])
        .await
        .status
        .success());
    assert!(rx.take().is_empty());
    assert_eq!(
        sql_i64(
            &app,
            "SELECT count(*) FROM notify_outbox WHERE state = 'pending'"
        ),
        1
    );
    assert!(app.bin(&["--once"], &[]).await.status.success());
    assert_eq!(events(&rx.take()), vec![("offer_added".to_string(), 10)]);
    let out = app.bin(&["notify", "--test", "ops"], &[]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(rx.take()[0]["event"], "test");
    let out = app.bin(&["notify", "--test", "nope"], &[]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("no notifier \"nope\""));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhook_url_never_reaches_an_error_a_log_or_the_database() {
    let app = TestApp::new(5).await;
    // Nothing listens there: a connect error, whose message names the URL it tried.
    let port = crate::harness::free_port();
    let url = format!("http://127.0.0.1:{port}/services/T0SECRET/B0SECRET/tok3nSECRET");
    configure(&app, "", &notify_toml(&url, "slack", &["offer_added"]));
    let out = app.bin(&["--once"], &[("RUST_LOG", "debug")]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let logs = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(logs.contains("notification failed"), "{logs}");
    // The database's bytes: the SQLite file, or every row of the PostgreSQL schema.
    let db = match &app.pg {
        None => std::fs::read(&app.db_path).unwrap(),
        Some(db) => crate::harness::pg_schema_text(db).into_bytes(),
    };
    for secret in ["tok3nSECRET", "B0SECRET", "T0SECRET"] {
        assert!(!logs.contains(secret), "{secret} in the logs:\n{logs}");
        assert!(
            !db.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "{secret} in the database"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_sends_what_has_waited_its_batch_window_and_counts_it() {
    use crate::daemon::{until, Daemon};
    use std::time::Duration;
    let app = TestApp::new(30).await;
    let (rx, url) = Receiver::start(&[]).await;
    let tail = notify_toml(&url, "json", &["offer_added"]).replace(
        "retry_initial_interval_ms = 10",
        "retry_initial_interval_ms = 10\nbatch_seconds = 1",
    );
    let d = Daemon::start_with(&app, "", "", &tail);
    until(Duration::from_secs(20), "the offer_added message", || {
        !rx.bodies().is_empty()
    })
    .await;
    // Runs every second add nothing more: one message.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(events(&rx.bodies()), vec![("offer_added".to_string(), 30)]);
    let metrics = reqwest::get(format!("{}/metrics", d.metrics))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("offersync_notifications_total{notifier=\"ops\",result=\"sent\"} 1"),
        "{metrics}"
    );
    let (code, ..) = d.stop(Duration::from_secs(10)).await;
    assert_eq!(code, Some(0));
}

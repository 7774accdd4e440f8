//! What a notification message says: one batched event as Slack's incoming-webhook payload
//! (`text` plus `blocks` with one `section` of `mrkdwn` text, the documented shape) or as one
//! plain JSON object (schema in the README).

use crate::config::NotifyFormat;
use crate::model::NotifyEvent;
use serde_json::{json, Value};

/// Several pending rows of one (notifier, event, source, target), merged into one event.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    pub notifier: String,
    pub event: NotifyEvent,
    pub source: Option<String>,
    pub target: Option<String>,
    pub count: u64,
    pub run_ids: Vec<i64>,
    /// The first offers, at most `model::NOTIFY_SAMPLE`.
    pub offers: Vec<Value>,
    /// For run events: the last run's state, reason and error.
    pub detail: Option<Value>,
    pub first_at: String,
}

impl Batch {
    /// The event as the JSON format sends it.
    pub fn to_json(&self) -> Value {
        let mut v = json!({
            "notifier": self.notifier,
            "event": self.event.as_str(),
            "source": self.source,
            "target": self.target,
            "count": self.count,
            "run_ids": self.run_ids,
            "offers": self.offers,
            "first_at": self.first_at,
        });
        if let Some(d) = &self.detail {
            for k in ["state", "reason", "error"] {
                v[k] = d.get(k).cloned().unwrap_or(Value::Null);
            }
        }
        v
    }

    /// One line a person reads.
    pub fn headline(&self) -> String {
        let src = self.source.as_deref().unwrap_or("-");
        let tgt = self.target.as_deref().unwrap_or("-");
        let n = self.count;
        match self.event {
            NotifyEvent::OfferAdded => format!("{n} new offer(s) from {src}"),
            NotifyEvent::OfferRemoved => format!("{n} offer(s) removed from {src}"),
            NotifyEvent::PayoutChanged => format!("{n} payout change(s) at {src}"),
            NotifyEvent::StatusChanged => format!("{n} status change(s) at {src}"),
            NotifyEvent::RunFailed => format!("sync of {src} failed"),
            NotifyEvent::RunHeld => format!("sync of {src} held by the mass-removal guard"),
            NotifyEvent::PushDead => format!("{n} push operation(s) to {tgt} are dead"),
            NotifyEvent::AwaitingApproval => {
                format!("{n} new offer(s) from {src} await approval for {tgt}")
            }
        }
    }

    fn lines(&self) -> Vec<String> {
        let mut out = vec![format!("*offersync: {}*", self.headline())];
        if let Some(d) = &self.detail {
            for k in ["reason", "error"] {
                if let Some(t) = d.get(k).and_then(Value::as_str) {
                    out.push(format!("{k}: {t}"));
                }
            }
        }
        for o in &self.offers {
            let id = o.get("external_id").and_then(Value::as_str).unwrap_or("?");
            let name = o.get("name").and_then(Value::as_str).unwrap_or("");
            let mut line = format!("• `{id}` {name}");
            if let (Some(old), Some(new)) = (o.get("old"), o.get("new")) {
                line.push_str(&format!(": {} → {}", text(old), text(new)));
            }
            if let Some(e) = o.get("error").and_then(Value::as_str) {
                line.push_str(&format!(": {e}"));
            }
            out.push(line);
        }
        let shown = self.offers.len() as u64;
        if self.count > shown && shown > 0 {
            out.push(format!("… and {} more", self.count - shown));
        }
        out
    }

    /// The request body in `format`.
    pub fn body(&self, format: NotifyFormat) -> Value {
        match format {
            NotifyFormat::Json => self.to_json(),
            NotifyFormat::Slack => {
                // A section's text holds at most 3,000 characters.
                let mut text = self.lines().join("\n");
                if text.len() > 2900 {
                    let mut cut = 2900;
                    while !text.is_char_boundary(cut) {
                        cut -= 1;
                    }
                    text.truncate(cut);
                    text.push('…');
                }
                json!({
                    "text": format!("offersync: {}", self.headline()),
                    "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}],
                })
            }
        }
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "none".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch() -> Batch {
        Batch {
            notifier: "ops".into(),
            event: NotifyEvent::PayoutChanged,
            source: Some("trackly".into()),
            target: None,
            count: 12,
            run_ids: vec![3, 4],
            offers: vec![json!({"external_id": "9", "name": "Game", "old": "1.2", "new": "2.4"})],
            detail: None,
            first_at: "2026-12-01T00:00:00Z".into(),
        }
    }

    /// Slack's incoming webhooks take `text` (the fallback and notification text) and `blocks`,
    /// each `section` block with a `text` object of `type` `mrkdwn` or `plain_text` and a
    /// `text` of at most 3,000 characters.
    #[test]
    fn slack_messages_have_the_documented_shape() {
        let b = batch().body(NotifyFormat::Slack);
        assert!(b["text"]
            .as_str()
            .unwrap()
            .contains("12 payout change(s) at trackly"));
        let blocks = b["blocks"].as_array().unwrap();
        assert_eq!(blocks.len(), 1);
        assert_eq!(blocks[0]["type"], "section");
        assert_eq!(blocks[0]["text"]["type"], "mrkdwn");
        let t = blocks[0]["text"]["text"].as_str().unwrap();
        assert!(t.len() <= 3000);
        assert!(
            t.contains("`9` Game: 1.2 → 2.4") && t.contains("… and 11 more"),
            "{t}"
        );
        assert_eq!(b.as_object().unwrap().len(), 2, "only text and blocks");
    }

    #[test]
    fn json_messages_carry_the_event_fields() {
        let b = batch().body(NotifyFormat::Json);
        assert_eq!(b["event"], "payout_changed");
        assert_eq!(b["count"], 12);
        assert_eq!(b["run_ids"], json!([3, 4]));
        assert_eq!(b["offers"][0]["new"], "2.4");
    }
}

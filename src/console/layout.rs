//! The page frame every console page shares (navigation, login state, notices), the one style
//! sheet (served as a file: the Content-Security-Policy allows no inline style or script), and
//! small rendering helpers.

use maud::{html, Markup, DOCTYPE};

/// Who is looking: a logged-in operator carries the CSRF token every form must send back.
#[derive(Debug, Clone, Default)]
pub struct Viewer {
    pub csrf: Option<String>,
}

impl Viewer {
    pub fn logged_in(&self) -> bool {
        self.csrf.is_some()
    }

    /// The hidden CSRF field of a form (empty without a session: the form is not shown then).
    pub fn csrf_field(&self) -> Markup {
        html! { @if let Some(t) = &self.csrf { input type="hidden" name="csrf" value=(t); } }
    }
}

const NAV: &[(&str, &str)] = &[
    ("/", "Overview"),
    ("/offers", "Offers"),
    ("/approvals", "Approvals"),
    ("/removals", "Held removals"),
    ("/dead", "Dead pushes"),
];

/// A whole page: `title`, the current path's nav entry marked, an optional notice, `body`.
pub fn page(
    title: &str,
    path: &str,
    viewer: &Viewer,
    notice: Option<&str>,
    body: Markup,
) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · offersync" }
                link rel="stylesheet" href="/static/console.css";
            }
            body {
                header {
                    span.brand { "offersync" }
                    nav {
                        @for (href, label) in NAV {
                            @if *href == path { a.current href=(href) { (label) } }
                            @else { a href=(href) { (label) } }
                        }
                    }
                    @if let Some(csrf) = &viewer.csrf {
                        form.logout method="post" action="/logout" {
                            input type="hidden" name="csrf" value=(csrf);
                            button type="submit" { "Log out" }
                        }
                    } @else {
                        a.login href="/login" { "Log in" }
                    }
                }
                main {
                    h1 { (title) }
                    @if let Some(n) = notice { p.notice role="status" { (n) } }
                    (body)
                }
            }
        }
    }
}

/// What a read-only visitor sees where an action would be.
pub fn login_to_act() -> Markup {
    html! { p.hint { a href="/login" { "Log in" } " to act on this page." } }
}

/// A JSON list of strings (`["US","GB"]`) as `US, GB`.
pub fn list(json: &str) -> String {
    serde_json::from_str::<Vec<String>>(json)
        .map(|v| v.join(", "))
        .unwrap_or_else(|_| json.to_string())
}

/// A money amount with its unit: `2.50 USD`, `12 %`.
pub fn money(payout: Option<&str>, currency: Option<&str>, unit: &str) -> String {
    match payout {
        None => "—".into(),
        Some(p) if unit == "percent" => format!("{p} %"),
        Some(p) => format!("{p} {}", currency.unwrap_or("")).trim().to_string(),
    }
}

/// A JSON cell as text (strings without their quotes).
pub fn cell(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Null => String::new(),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

pub const CSS: &str = r#"
:root { --fg: #1d232a; --muted: #5b6570; --line: #d8dde3; --bg: #f7f8fa; --accent: #1f5fbf;
        --bad: #a8261b; --ok: #1d7a3a; --warn: #8a5a00; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg);
       background: var(--bg); }
header { display: flex; flex-wrap: wrap; align-items: center; gap: .5rem 1rem; padding: .6rem 1rem;
         background: #fff; border-bottom: 1px solid var(--line); }
.brand { font-weight: 700; }
nav { display: flex; flex-wrap: wrap; gap: .25rem .9rem; flex: 1; }
nav a { color: var(--accent); text-decoration: none; }
nav a.current { font-weight: 700; text-decoration: underline; }
main { padding: 1rem; max-width: 1400px; }
h1 { font-size: 1.35rem; margin: .2rem 0 1rem; }
h2 { font-size: 1.1rem; margin: 1.5rem 0 .5rem; }
.notice { background: #e8f1fd; border: 1px solid #b7cff3; padding: .5rem .75rem; }
.error { background: #fbeaea; border: 1px solid #e5b3ae; padding: .5rem .75rem; }
.hint, .muted { color: var(--muted); }
.table { overflow-x: auto; background: #fff; border: 1px solid var(--line); }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .35rem .55rem; border-bottom: 1px solid var(--line);
         vertical-align: top; }
th { background: #eef1f4; font-weight: 600; white-space: nowrap; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.state-ok, .fresh { color: var(--ok); font-weight: 600; }
.state-bad, .stale { color: var(--bad); font-weight: 600; }
.state-warn { color: var(--warn); font-weight: 600; }
form.filters { display: flex; flex-wrap: wrap; gap: .5rem .75rem; align-items: end;
               margin-bottom: 1rem; }
form.filters label { display: flex; flex-direction: column; font-size: .85rem; color: var(--muted); }
input, select, button { font: inherit; padding: .3rem .45rem; }
input[type=number] { width: 7rem; }
button { background: var(--accent); color: #fff; border: 0; border-radius: 3px; cursor: pointer; }
button.secondary { background: #6b7683; }
button.danger { background: var(--bad); }
.actions { display: flex; flex-wrap: wrap; gap: .5rem; margin: .5rem 0; }
form.inline { display: inline; }
form.logout button { background: none; color: var(--accent); padding: 0; }
a.login { color: var(--accent); }
pre { background: #fff; border: 1px solid var(--line); padding: .75rem; overflow-x: auto;
      white-space: pre-wrap; word-break: break-word; font-size: .85rem; }
dl.fields { display: grid; grid-template-columns: max-content 1fr; gap: .2rem 1rem;
            background: #fff; border: 1px solid var(--line); padding: .75rem; }
dl.fields dt { font-weight: 600; }
dl.fields dd { margin: 0; word-break: break-word; }
.pager { margin: .75rem 0; display: flex; gap: 1rem; }
@media (max-width: 640px) {
  main { padding: .6rem; }
  th, td { padding: .3rem .35rem; font-size: .9rem; }
  dl.fields { grid-template-columns: 1fr; }
}
"#;

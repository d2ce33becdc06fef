//! Browser tests: the real `kith serve` driven through headless Chromium by
//! chromedriver (WebDriver), as a customer and a member of staff use it.
//!
//! Without `/usr/bin/chromium` and `/usr/bin/chromedriver` (Debian's
//! `chromium` and `chromium-driver`) a test says on stderr that it did not run
//! and passes; under CI (`KITH_REQUIRE_SERVICES=1`) it fails instead, so a
//! missing browser cannot pass for a green run.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};

use crate::harness::{self, AGENT, STAFF_PASSWORD, Served};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// How long a page may take to load or an element to appear.
const PATIENCE: Duration = Duration::from_secs(20);

fn required() -> bool {
    std::env::var_os("KITH_REQUIRE_SERVICES").is_some_and(|v| !v.is_empty() && v != "0")
}

/// Whether this machine has the browser. Under CI a missing one fails the test.
fn browser_present(test: &str) -> bool {
    let missing: Vec<&str> = [CHROMIUM, CHROMEDRIVER]
        .into_iter()
        .filter(|p| !Path::new(p).is_file())
        .collect();
    if missing.is_empty() {
        return true;
    }
    if required() {
        panic!(
            "{test}: browser tests are required under CI (KITH_REQUIRE_SERVICES) but {} missing \
             (apt-get install chromium chromium-driver)",
            missing.join(" and ")
        );
    }
    // Straight to stderr: the test harness swallows `eprintln!` of passing
    // tests, and this line is the only sign the test did not run.
    let _ = writeln!(
        std::io::stderr(),
        "skipped: {test}: browser tests need /usr/bin/chromium and /usr/bin/chromedriver \
         (apt-get install chromium chromium-driver)"
    );
    false
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

/// A chromedriver on a free loopback port. Each [`Chromedriver::session`] is
/// a fresh Chromium with a profile of its own (no cookies shared). Dropping it
/// ends every session (closing their browsers) and stops chromedriver.
pub struct Chromedriver {
    child: Child,
    port: u16,
    /// Profiles and chromedriver's log.
    dir: tempfile::TempDir,
}

impl Chromedriver {
    pub fn start() -> Chromedriver {
        let dir = tempfile::tempdir().expect("a temporary directory for chromedriver");
        let log = dir.path().join("chromedriver.log");
        // The free port may be taken by another test before chromedriver
        // binds it: then chromedriver exits, and another port is tried.
        for _ in 0..3 {
            let port = free_port();
            let mut child = Command::new(CHROMEDRIVER)
                .arg(format!("--port={port}"))
                .arg(format!("--log-path={}", log.display()))
                .arg("--log-level=WARNING")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("{CHROMEDRIVER} does not start: {e}"));
            let deadline = Instant::now() + PATIENCE;
            loop {
                if http(port, "GET", "/status").is_ok() {
                    return Chromedriver { child, port, dir };
                }
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                if Instant::now() >= deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("{CHROMEDRIVER} did not answer on port {port} within {PATIENCE:?}");
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        panic!(
            "{CHROMEDRIVER} exited at start three times: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("chromedriver.log")).unwrap_or_default()
    }

    /// A new headless Chromium, `width`×`height` CSS pixels, with a fresh profile.
    pub async fn session(&self, width: u32, height: u32) -> Browser {
        let profile = tempfile::Builder::new()
            .prefix("profile-")
            .tempdir_in(self.dir.path())
            .expect("a profile directory")
            .keep();
        let args = [
            "--headless=new".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            // No internet here: without these Chromium waits on refused connections.
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--disable-dev-shm-usage".into(),
            // Overlay scrollbars, as on a phone: the page gets the window's
            // whole width, and screenshots show no scrollbar.
            "--hide-scrollbars".into(),
            format!("--user-data-dir={}", profile.display()),
            format!("--window-size={width},{height}"),
        ];
        let mut caps = serde_json::Map::new();
        caps.insert("browserName".into(), json!("chrome"));
        caps.insert(
            "goog:chromeOptions".into(),
            json!({ "binary": CHROMIUM, "args": args }),
        );
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .unwrap_or_else(|e| {
                panic!("chromedriver could not start Chromium: {e}\n{}", self.log())
            });
        let browser = Browser { client };
        browser.fit_viewport(width, height).await;
        browser
    }
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        // /shutdown quits every session's browser before chromedriver exits;
        // a plain kill would leave the browsers running.
        let _ = http(self.port, "GET", "/shutdown");
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One request to chromedriver without an async client (for start and drop).
fn http(port: u16, method: &str, path: &str) -> std::io::Result<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )?;
    // chromedriver keeps the connection open: read the head and Content-Length bytes.
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = s.read(&mut chunk)?;
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf);
        if let Some(head_end) = text.find("\r\n\r\n") {
            let length = text[..head_end]
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            if n == 0 || buf.len() >= head_end + 4 + length {
                let text = text.into_owned();
                return if text.starts_with("HTTP/1.1 200") {
                    Ok(text)
                } else {
                    Err(std::io::Error::other(text))
                };
            }
        }
        if n == 0 {
            return Err(std::io::Error::other("chromedriver closed the connection"));
        }
    }
}

/// One browser session, with the steps the tests take. Every failure names
/// the page it happened on and what the page said.
pub struct Browser {
    client: Client,
}

impl Browser {
    /// Sizes the window so the page's viewport is `width`×`height` (headless
    /// Chromium's window is slightly larger than its viewport).
    async fn fit_viewport(&self, width: u32, height: u32) {
        self.client
            .set_window_size(width, height)
            .await
            .expect("set the window size");
        let inner = self
            .client
            .execute("return [window.innerWidth, window.innerHeight]", vec![])
            .await
            .expect("read the viewport");
        let (w, h) = (
            inner[0].as_u64().unwrap_or(0) as u32,
            inner[1].as_u64().unwrap_or(0) as u32,
        );
        if (w, h) != (width, height) {
            self.client
                .set_window_size(
                    width + (width - w.min(width)),
                    height + (height - h.min(height)),
                )
                .await
                .expect("set the window size");
        }
    }

    pub async fn close(self) {
        let _ = self.client.close().await;
    }

    pub async fn goto(&self, url: &str) {
        self.client
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("could not load {url}: {e}"));
    }

    pub async fn url(&self) -> String {
        self.client
            .current_url()
            .await
            .map(|u| u.to_string())
            .unwrap_or_default()
    }

    pub async fn path(&self) -> String {
        self.client
            .current_url()
            .await
            .map(|u| u.path().to_string())
            .unwrap_or_default()
    }

    /// The page's visible text.
    pub async fn text(&self) -> String {
        match self.client.find(Locator::Css("body")).await {
            Ok(body) => body.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    pub async fn script(&self, js: &str) -> Value {
        self.script_with(js, vec![]).await
    }

    /// Runs `js` with `args` as `arguments[0]`, `arguments[1]`, …
    pub async fn script_with(&self, js: &str, args: Vec<Value>) -> Value {
        match self.client.execute(js, args).await {
            Ok(v) => v,
            Err(e) => panic!("script {js:?} failed on {}: {e}", self.url().await),
        }
    }

    /// Fails saying `what`, with the page's URL and text.
    pub async fn fail(&self, what: &str) -> ! {
        let text = self.text().await;
        let excerpt: String = text.chars().take(3000).collect();
        panic!("{what}\n  page: {}\n  text: {excerpt}", self.url().await)
    }

    /// The element `css` matches, waiting for it to appear.
    pub async fn find(&self, css: &str) -> Element {
        let deadline = Instant::now() + PATIENCE;
        loop {
            match self.client.find(Locator::Css(css)).await {
                Ok(e) => return e,
                Err(e) if e.is_no_such_element() && Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(100)).await
                }
                Err(e) => {
                    self.fail(&format!("no element matches {css:?} ({e})"))
                        .await
                }
            }
        }
    }

    /// Types `value` into the field `css` (after clearing it).
    pub async fn fill(&self, css: &str, value: &str) {
        let field = self.find(css).await;
        let _ = field.clear().await;
        field
            .send_keys(value)
            .await
            .unwrap_or_else(|e| panic!("could not type into {css}: {e}"));
    }

    /// Clicks `css` and waits for the page it leads to.
    pub async fn click_and_wait(&self, css: &str) {
        let old = self.find("html").await;
        self.find(css)
            .await
            .click()
            .await
            .unwrap_or_else(|e| panic!("could not click {css}: {e}"));
        self.wait_for_new_page(&old).await;
    }

    /// Submits `form` with its button; fails saying `what` unless that leads to `path`.
    pub async fn submit(&self, form: &str, path: &str, what: &str) {
        self.click_and_wait(&format!(r#"{form} button[type="submit"]"#))
            .await;
        if self.path().await != path {
            self.fail(what).await;
        }
    }

    /// Waits until `old` (the previous page's root) is gone and the new page has loaded.
    async fn wait_for_new_page(&self, old: &Element) {
        let deadline = Instant::now() + PATIENCE;
        while old.tag_name().await.is_ok() {
            if Instant::now() >= deadline {
                self.fail("the page did not change after the action").await;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // A script may fail while the navigation is under way: that is "not yet".
        while !matches!(
            self.client.execute("return document.readyState", vec![]).await,
            Ok(state) if state == "complete"
        ) {
            if Instant::now() >= deadline {
                self.fail("the page did not finish loading").await;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The viewport as a PNG.
    pub async fn screenshot(&self) -> Vec<u8> {
        match self.client.screenshot().await {
            Ok(png) => png,
            Err(e) => panic!("screenshot of {} failed: {e}", self.url().await),
        }
    }

    /// The visible text of the element `css` matches.
    pub async fn text_of(&self, css: &str) -> String {
        self.find(css).await.text().await.unwrap_or_default()
    }

    /// Fails unless the element `css` shows `needle`.
    pub async fn expect_in(&self, css: &str, needle: &str) {
        let text = self.text_of(css).await;
        if !text.contains(needle) {
            self.fail(&format!(
                "expected {css} to show {needle:?}; it shows: {text}"
            ))
            .await;
        }
    }

    /// The visible text of the nearest element around `css` that matches
    /// `closest` (a CSS selector list), e.g. the table row around a form.
    pub async fn around(&self, css: &str, closest: &str) -> String {
        self.find(css).await;
        let text = self
            .script_with(
                "const e = document.querySelector(arguments[0]);\
                 const c = e && e.closest(arguments[1]);\
                 return c ? c.innerText : null;",
                vec![json!(css), json!(closest)],
            )
            .await;
        match text.as_str() {
            Some(t) => t.to_string(),
            None => {
                self.fail(&format!("nothing matching {closest:?} holds {css:?}"))
                    .await
            }
        }
    }

    /// Presses Tab once, as a keyboard user moves to the next control.
    pub async fn tab(&self) {
        self.press(TAB).await;
    }

    /// Presses one key (a character or a WebDriver key code) on whatever has focus.
    pub async fn press(&self, key: char) {
        self.type_text(&key.to_string()).await;
    }

    /// Types `text` into whatever has focus.
    pub async fn type_text(&self, text: &str) {
        let mut keys = KeyActions::new("keyboard".into());
        for c in text.chars() {
            keys = keys
                .then(KeyAction::Down { value: c })
                .then(KeyAction::Up { value: c });
        }
        self.client
            .perform_actions(keys)
            .await
            .unwrap_or_else(|e| panic!("could not type {text:?}: {e}"));
    }

    /// What has focus, as `tag#id[name]` (and the text of links and buttons).
    pub async fn focused(&self) -> String {
        self.script(
            "const e = document.activeElement;\
             if (!e || e === document.body) return 'body';\
             let d = e.tagName.toLowerCase();\
             if (e.id) d += '#' + e.id;\
             if (e.name) d += '[' + e.name + ']';\
             if (e.tagName === 'A' || e.tagName === 'BUTTON') d += ' \"' + e.innerText.trim() + '\"';\
             return d;",
        )
        .await
        .as_str()
        .unwrap_or_default()
        .to_string()
    }

    /// Whether the element `css` matches has focus.
    pub async fn focus_is(&self, css: &str) -> bool {
        self.script_with(
            "return document.activeElement === document.querySelector(arguments[0]);",
            vec![json!(css)],
        )
        .await
            == true
    }

    /// Whether the element `css` matches is selected (a radio button or option).
    pub async fn is_selected(&self, css: &str) -> bool {
        self.find(css).await.is_selected().await.unwrap_or(false)
    }

    /// Why the page scrolls sideways in its window, naming the elements that
    /// stick out (those inside a scrolling box such as `.table-wrap` do not
    /// count), or `None` when it fits.
    pub async fn overflow(&self) -> Option<String> {
        let r = self
            .script(
                "const w = window.innerWidth;\
                 const clipped = e => {\
                   for (let p = e.parentElement; p && p !== document.body; p = p.parentElement) {\
                     if (getComputedStyle(p).overflowX !== 'visible') return true;\
                   }\
                   return false;\
                 };\
                 const out = [];\
                 for (const e of document.querySelectorAll('body *')) {\
                   const r = e.getBoundingClientRect();\
                   if (r.right > w + 0.5 && out.length < 4 && !clipped(e)) {\
                     out.push(e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') +\
                       (e.className && typeof e.className === 'string' ? '.' + e.className.split(' ').join('.') : '') +\
                       ' (right edge ' + Math.round(r.right) + ' px: \"' +\
                       e.innerText.trim().replace(/\\s+/g, ' ').slice(0, 80) + '\")');\
                   }\
                 }\
                 return [document.documentElement.scrollWidth, w, out];",
            )
            .await;
        let (scroll, inner) = (r[0].as_u64().unwrap_or(0), r[1].as_u64().unwrap_or(0));
        let path = self.path().await;
        (scroll > inner).then(|| {
            let culprits: Vec<&str> = r[2]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            format!(
                "{path} is {scroll} px wide in a {inner} px window (it scrolls sideways); \
                 sticking out: {}",
                culprits.join("; ")
            )
        })
    }
}

/// The window sizes the tests use: a desktop and a phone (CSS pixels).
const DESKTOP: (u32, u32) = (1280, 900);
const PHONE: (u32, u32) = (375, 812);
const TAB: char = '\u{E004}';
const ENTER: char = '\u{E007}';

/// Who the flows are about: the demo's showcase customer.
struct Person {
    email: String,
    name: String,
    party: String,
}

impl Person {
    fn showcase(served: &Served) -> Person {
        let view = harness::json(served.kith(&["view", &served.customer_email, "--json"]));
        Person {
            email: served.customer_email.clone(),
            name: view["name"]
                .as_str()
                .expect("the showcase customer has a name")
                .into(),
            party: view["party"].as_str().expect("a party id").into(),
        }
    }
}

/// Staff sign in with e-mail and password and land on the console's start page.
async fn staff_sign_in(b: &Browser, base: &str) {
    b.goto(&format!("{base}/staff/sign-in")).await;
    let form = r#"form[action="/staff/sign-in"]"#;
    b.fill(&format!(r#"{form} input[name="email"]"#), AGENT)
        .await;
    b.fill(&format!(r#"{form} input[name="password"]"#), STAFF_PASSWORD)
        .await;
    b.submit(form, "/staff", "staff sign-in did not lead to /staff")
        .await;
}

/// Staff search for `who` by name and open their party page from the results.
async fn staff_open_party(b: &Browser, who: &Person) {
    let form = r#"form[action="/staff/search"]"#;
    b.fill(&format!(r#"{form} input[name="q"]"#), &who.name)
        .await;
    b.submit(
        form,
        "/staff/search",
        "the search form did not lead to /staff/search",
    )
    .await;
    b.click_and_wait(&format!(r#"main a[href="/staff/parties/{}"]"#, who.party))
        .await;
    if b.path().await != format!("/staff/parties/{}", who.party) {
        b.fail("the search result did not open the party page")
            .await;
    }
    b.expect_in("h1", &who.name).await;
}

/// Waits for the file sender to deliver a code to `to`.
async fn code_for(served: &Served, to: &str) -> String {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(code) = served.last_code_for(to) {
            return code;
        }
        assert!(
            Instant::now() < deadline,
            "no one-time code reached {to} within {PATIENCE:?}; server log:\n{}",
            served.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The sign-in page works from the keyboard alone: Tab reaches the labelled
/// address field and then its button, typing fills the field and Enter on
/// the button asks for a code. Returns with the code form showing.
async fn customer_asks_for_code_by_keyboard(b: &Browser, base: &str, who: &Person) {
    let field = r#"form[action="/sign-in"] input[name="identifier"]"#;
    let button = r#"form[action="/sign-in"] button[type="submit"]"#;
    b.goto(&format!("{base}/sign-in")).await;
    let label = b
        .script_with(
            "const i = document.querySelector(arguments[0]);\
             if (!i) return '';\
             if (i.labels && i.labels.length) return i.labels[0].innerText.trim();\
             return (i.getAttribute('aria-label') || '').trim();",
            vec![json!(field)],
        )
        .await;
    if label.as_str().unwrap_or_default().is_empty() {
        b.fail("the sign-in field has no label").await;
    }
    // Walk the page with Tab, typing the address when the field has focus,
    // until the form's button has focus.
    let mut order = Vec::new();
    let mut typed = false;
    let mut on_button = false;
    for _ in 0..25 {
        b.tab().await;
        order.push(b.focused().await);
        if b.focus_is(field).await && !typed {
            b.type_text(&who.email).await;
            typed = true;
        } else if b.focus_is(button).await {
            on_button = true;
            break;
        }
    }
    // The field, then straight to its button.
    let field_then_button =
        typed && on_button && order.len() >= 2 && order[order.len() - 2].contains("[identifier]");
    if !field_then_button {
        b.fail(&format!(
            "Tab should reach the labelled address field and then its button; focus went: {}",
            order.join(" → ")
        ))
        .await;
    }
    let old = b.find("html").await;
    b.press(ENTER).await;
    b.wait_for_new_page(&old).await;
    b.find(r#"form[action="/sign-in/code"] input[name="code"]"#)
        .await;
}

/// Types the one-time code the file sender delivered and lands on `/me`.
async fn customer_enters_code(b: &Browser, served: &Served, who: &Person) {
    let code = code_for(served, &who.email).await;
    let form = r#"form[action="/sign-in/code"]"#;
    b.fill(&format!(r#"{form} input[name="code"]"#), &code)
        .await;
    b.submit(form, "/me", "the code did not sign the customer in to /me")
        .await;
}

/// The attribute the customer corrects, and the value they propose.
const CORRECTED: (&str, &str) = ("city", "Ripon");
/// The topic whose consent the customer changes (the showcase customer said yes).
const CONSENT: &str = "newsletter";

/// `/me` shows the customer's data with where each value came from: the
/// corrected attribute's row holds the view's best value and names its
/// source record and dates.
async fn customer_sees_provenance(b: &Browser, served: &Served, who: &Person) {
    let (attribute, _) = CORRECTED;
    let view = harness::json(served.kith(&["view", &who.email, "--json"]));
    let row = view["profile"]
        .as_array()
        .and_then(|p| p.iter().find(|a| a["attribute"] == attribute))
        .unwrap_or_else(|| panic!("the showcase customer has no {attribute} in the view"));
    let best = row["best"].as_str().expect("a best value");
    let first = &row["values"][0]["provenance"];
    let origin = format!(
        "{}, record {}",
        first["source"].as_str().unwrap(),
        first["key"].as_str().unwrap()
    );
    b.expect_in("h1", &who.name).await;
    let shown = b.around(&correction_form(attribute), ROW).await;
    for needle in [best, &origin, "last updated"] {
        if !shown.contains(needle) {
            b.fail(&format!(
                "the {attribute} row should show {needle:?}; it shows: {shown}"
            ))
            .await;
        }
    }
    // Every source the view gathered from is listed with its status.
    for s in view["sources"].as_array().expect("sources") {
        b.expect_in("#sources", s["name"].as_str().unwrap()).await;
    }
}

/// The correction form of `attribute` on `/me`.
fn correction_form(attribute: &str) -> String {
    format!(r#"form[action="/me/corrections"]:has(input[name="attribute"][value="{attribute}"])"#)
}

/// What holds one profile value with its provenance and correction form,
/// whether the page lays the profile out as a table or a list.
const ROW: &str = "tr, dd, li";

/// The customer says the value is wrong and proposes the right one; the
/// page then shows it as theirs.
async fn customer_corrects(b: &Browser) {
    let (attribute, value) = CORRECTED;
    let form = correction_form(attribute);
    b.find(&format!(
        r#"details:has(input[name="attribute"][value="{attribute}"]) > summary"#
    ))
    .await
    .click()
    .await
    .expect("open the correction form");
    b.fill(&format!(r#"{form} input[name="value"]"#), value)
        .await;
    b.submit(&form, "/me", "the correction did not come back to /me")
        .await;
    b.find(".notice[role=status]").await;
    let shown = b.around(&form, ROW).await;
    for needle in [value, "you told us"] {
        if !shown.contains(needle) {
            b.fail(&format!(
                "after the correction the {attribute} row should show {needle:?}; it shows: {shown}"
            ))
            .await;
        }
    }
}

/// The customer withdraws a consent; the form shows the new choice as theirs.
async fn customer_changes_consent(b: &Browser) {
    let no = format!(r#"form[action="/me/choices"] input[name="consent:{CONSENT}"][value="no"]"#);
    if b.is_selected(&no).await {
        b.fail(&format!(
            "{CONSENT} should start as yes for the showcase customer"
        ))
        .await;
    }
    b.find(&no).await.click().await.expect("choose no");
    b.submit(
        r#"form[action="/me/choices"]"#,
        "/me",
        "saving choices did not come back to /me",
    )
    .await;
    b.find(".notice[role=status]").await;
    if !b.is_selected(&no).await {
        b.fail(&format!("after saving, {CONSENT} is not shown as no"))
            .await;
    }
    let shown = b.around(&no, "fieldset, tr, li").await;
    if !shown.contains("you told us") {
        b.fail(&format!(
            "after saving, {CONSENT} should say the customer chose it; it shows: {shown}"
        ))
        .await;
    }
}

/// Loads each page and notes the ones that scroll sideways.
async fn pages_that_overflow(b: &Browser, base: &str, paths: &[&str]) -> Vec<String> {
    let mut wide = Vec::new();
    for path in paths {
        b.goto(&format!("{base}{path}")).await;
        wide.extend(b.overflow().await);
    }
    wide
}

/// The customer's access page names the member of staff who looked.
async fn customer_sees_who_looked(b: &Browser, base: &str) {
    b.goto(&format!("{base}/me/access")).await;
    b.expect_in(r#"section[aria-labelledby="staff-h"]"#, AGENT)
        .await;
}

/// Staff see the customer's correction and consent, and their own view in
/// the party's access log.
async fn staff_sees_requests_and_audit(b: &Browser) {
    let (attribute, value) = CORRECTED;
    b.expect_in("#requests", attribute).await;
    b.expect_in("#requests", value).await;
    b.expect_in("#requests", CONSENT).await;
    let me = format!("staff:{AGENT}");
    let logged = b
        .script_with(
            "return [...document.querySelectorAll('#access tbody tr')]\
               .some(r => r.cells.length > 2 && r.cells[1].innerText.trim() === arguments[0]\
                          && r.cells[2].innerText.trim() === 'view');",
            vec![json!(me)],
        )
        .await;
    if logged != true {
        b.fail(&format!("the access log has no \"view\" entry by {me}"))
            .await;
    }
}

/// Item 7 of issue 5 end to end in a real browser, on one server: a customer
/// signs in by keyboard with a one-time code, sees their data with
/// provenance, corrects a value and withdraws a consent; staff, in a browser
/// of their own, sign in, find the customer by name and see the correction,
/// the consent and the audit entry of their view, which the customer then
/// sees too. Customer and console pages must fit a 375 px phone.
#[tokio::test]
async fn browser_customer_and_staff_flows() {
    if !browser_present("browser_customer_and_staff_flows") {
        return;
    }
    let served = Served::start(200, "");
    let who = Person::showcase(&served);
    let driver = Chromedriver::start();
    let base = served.base.as_str();
    // Pages that scroll sideways on a phone; reported together at the end.
    let mut too_wide = Vec::new();

    let customer = driver.session(PHONE.0, PHONE.1).await;
    too_wide.extend(pages_that_overflow(&customer, base, &["/sign-in"]).await);
    customer.fit_viewport(DESKTOP.0, DESKTOP.1).await;
    customer_asks_for_code_by_keyboard(&customer, base, &who).await;
    customer_enters_code(&customer, &served, &who).await;
    customer_sees_provenance(&customer, &served, &who).await;
    customer_corrects(&customer).await;
    customer_changes_consent(&customer).await;

    let staff = driver.session(DESKTOP.0, DESKTOP.1).await;
    staff_sign_in(&staff, base).await;
    staff_open_party(&staff, &who).await;
    staff_sees_requests_and_audit(&staff).await;
    staff.fit_viewport(PHONE.0, PHONE.1).await;
    let party = format!("/staff/parties/{}", who.party);
    let search = format!("/staff/search?q={}", who.name.replace(' ', "+"));
    too_wide.extend(pages_that_overflow(&staff, base, &["/staff", &search, &party]).await);
    staff.close().await;

    customer_sees_who_looked(&customer, base).await;
    customer.fit_viewport(PHONE.0, PHONE.1).await;
    too_wide.extend(
        pages_that_overflow(
            &customer,
            base,
            &["/me", "/me/links", "/me/access", "/me/erasure"],
        )
        .await,
    );
    customer.close().await;
    assert!(
        too_wide.is_empty(),
        "pages must fit a {} px phone:\n  {}",
        PHONE.0,
        too_wide.join("\n  ")
    );
}

/// A process of this test's own (the demo's loyalty API, a second server),
/// killed when dropped.
struct Background(Child);

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Serves the demo's loyalty API where the configuration expects it, so the
/// screenshots show every source answering.
fn serve_loyalty(served: &Served) -> Background {
    let config = std::fs::read_to_string(&served.config).expect("read kith.toml");
    let addr = config
        .lines()
        .filter(|l| l.contains("base_url"))
        .find_map(|l| {
            let rest = l.split("http://").nth(1)?;
            rest.split(['/', '"']).next().map(str::to_string)
        })
        .expect("the demo's loyalty source has an http base_url");
    let child = Command::new(env!("CARGO_BIN_EXE_kith"))
        .args([
            "demo-api",
            "--dir",
            served.dir().to_str().unwrap(),
            "--listen",
            &addr,
        ])
        .env_remove("KITH_CONFIG")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("kith demo-api starts");
    let guard = Background(child);
    let deadline = Instant::now() + PATIENCE;
    while TcpStream::connect(&addr).is_err() {
        assert!(
            Instant::now() < deadline,
            "the loyalty API never listened on {addr}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    guard
}

/// Another `kith serve` on the same configuration and store, started after
/// `kith resolve` so it loads the trained model. Returns it and its address.
fn serve_again(served: &Served) -> (Background, String) {
    let (child, base, _log) = harness::spawn_server(&served.config, "127.0.0.1:0");
    let guard = Background(child);
    harness::wait_ready_at(&base);
    (guard, base)
}

/// Writes the viewport of `b` to `docs/screenshots/NAME.png`.
async fn capture(b: &Browser, name: &str) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("crates/kith sits two folders below the workspace root");
    let dir = root.join("docs").join("screenshots");
    std::fs::create_dir_all(&dir).expect("create docs/screenshots");
    let png = b.screenshot().await;
    let path = dir.join(format!("{name}.png"));
    std::fs::write(&path, &png).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    let _ = writeln!(
        std::io::stderr(),
        "wrote {} ({} KiB)",
        path.display(),
        png.len() / 1024
    );
}

/// The README's screenshots: the customer's `/me` page on a desktop and a
/// phone, and the console's party page, review queue and match waterfall,
/// after the customer corrected a value and withdrew a consent. The demo's
/// loyalty API is up and the model trained (`kith resolve`), so every source
/// answers and the review queue holds the pairs the model was unsure of.
#[tokio::test]
#[ignore = "writes docs/screenshots; run by scripts/screenshots.sh"]
async fn readme_screenshots() {
    if !browser_present("readme_screenshots") {
        return;
    }
    let served = Served::start(300, "");
    let _loyalty = serve_loyalty(&served);
    let out = served.kith(&["resolve"]);
    assert!(
        out.status.success(),
        "kith resolve: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let (_server, base) = serve_again(&served);
    let base = base.as_str();
    let who = Person::showcase(&served);
    let driver = Chromedriver::start();

    let customer = driver.session(DESKTOP.0, DESKTOP.1).await;
    customer_asks_for_code_by_keyboard(&customer, base, &who).await;
    customer_enters_code(&customer, &served, &who).await;
    customer_corrects(&customer).await;
    customer_changes_consent(&customer).await;
    customer.goto(&format!("{base}/me")).await;
    capture(&customer, "portal-me-desktop").await;
    customer.fit_viewport(PHONE.0, PHONE.1).await;
    customer.goto(&format!("{base}/me")).await;
    capture(&customer, "portal-me-phone").await;
    customer.close().await;

    let staff = driver.session(DESKTOP.0, DESKTOP.1).await;
    staff_sign_in(&staff, base).await;
    staff_open_party(&staff, &who).await;
    capture(&staff, "console-party").await;
    staff.goto(&format!("{base}/staff/review")).await;
    capture(&staff, "console-review").await;
    staff
        .click_and_wait(r#"main a[href^="/staff/explain?"]"#)
        .await;
    staff
        .script(
            "const h = document.querySelector('main h2');\
             if (h) h.scrollIntoView();",
        )
        .await;
    capture(&staff, "console-explain").await;
    staff.close().await;
}

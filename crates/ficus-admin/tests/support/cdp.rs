//! A small Chrome DevTools Protocol client for the browser test: launch headless Chromium,
//! attach to its page over a WebSocket, navigate, evaluate JavaScript, wait for conditions,
//! take screenshots. Hand-written over `tokio-tungstenite` rather than a CDP crate: the test
//! needs six methods, and the maintained crates bring hundreds of generated protocol types.
//! Every wait is bounded, and the browser's whole process group is killed on drop, also when
//! the test panics.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// The longest any single wait may take.
pub const WAIT: Duration = Duration::from_secs(15);
/// How often a condition is polled.
const POLL: Duration = Duration::from_millis(100);

/// Where Chromium is: `FICUS_CHROMIUM`, else Debian's `/usr/bin/chromium`.
pub fn chromium_path() -> Option<PathBuf> {
    let p = std::env::var_os("FICUS_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    p.is_file().then_some(p)
}

/// A running headless Chromium; dropping it kills the browser and everything it started.
pub struct Browser {
    child: Child,
    /// The devtools port, read from `DevToolsActivePort`.
    port: u16,
    profile: tempfile::TempDir,
}

impl Browser {
    pub async fn launch(binary: &Path) -> Result<Browser, String> {
        let profile = tempfile::tempdir().map_err(|e| e.to_string())?;
        let log = std::fs::File::create(profile.path().join("chromium.log"))
            .map_err(|e| e.to_string())?;
        let mut cmd = Command::new(binary);
        cmd.args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--disable-dev-shm-usage",
            "--hide-scrollbars",
            "--window-size=1280,900",
            "--remote-debugging-port=0",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("about:blank")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(log));
        // Its own process group, so the drop guard can end the renderers and helpers too.
        #[cfg(unix)]
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
        let mut browser = Browser {
            child,
            port: 0,
            profile,
        };
        let port_file = browser.profile.path().join("DevToolsActivePort");
        let started = Instant::now();
        loop {
            if let Ok(text) = std::fs::read_to_string(&port_file) {
                if let Some(port) = text.lines().next().and_then(|l| l.trim().parse().ok()) {
                    browser.port = port;
                    return Ok(browser);
                }
            }
            if let Ok(Some(status)) = browser.child.try_wait() {
                return Err(format!(
                    "chromium exited ({status}) before opening its devtools port\n{}",
                    browser.log()
                ));
            }
            if started.elapsed() > WAIT {
                return Err(format!(
                    "chromium did not open its devtools port within {WAIT:?}\n{}",
                    browser.log()
                ));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// The end of Chromium's own log, for failure messages.
    pub fn log(&self) -> String {
        let text =
            std::fs::read_to_string(self.profile.path().join("chromium.log")).unwrap_or_default();
        let lines: Vec<&str> = text
            .lines()
            .filter(|l| !l.contains("dbus") && !l.trim().is_empty())
            .collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// Attaches to the page Chromium opened (`about:blank`).
    pub async fn page(&self) -> Result<Page, String> {
        let started = Instant::now();
        let ws_url = loop {
            let list = http_get(&format!("http://127.0.0.1:{}/json/list", self.port)).await;
            if let Some(Value::Array(targets)) = list
                .as_deref()
                .ok()
                .and_then(|t| serde_json::from_str(t).ok())
            {
                let page = targets.iter().find(|t| t["type"] == "page");
                if let Some(url) = page.and_then(|t| t["webSocketDebuggerUrl"].as_str()) {
                    break url.to_string();
                }
            }
            if started.elapsed() > WAIT {
                return Err(format!("no page target within {WAIT:?}: {list:?}"));
            }
            tokio::time::sleep(POLL).await;
        };
        let (ws, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(&ws_url))
            .await
            .map_err(|_| format!("connecting to {ws_url} took longer than {WAIT:?}"))?
            .map_err(|e| format!("cannot connect to {ws_url}: {e}"))?;
        let mut page = Page {
            ws,
            next_id: 0,
            problems: Vec::new(),
        };
        for m in ["Page.enable", "Runtime.enable", "Log.enable"] {
            page.call(m, json!({})).await?;
        }
        Ok(page)
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let pid = self.child.id();
        // SIGTERM to the group lets Chromium shut its helpers down; SIGKILL if it lingers.
        let group = |sig: &str| {
            Command::new("kill")
                .args([sig, "--", &format!("-{pid}")])
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        if !group("-TERM") {
            let _ = self.child.kill();
        }
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(5) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        group("-KILL");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One page, driven over its WebSocket.
pub struct Page {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_id: u64,
    /// Uncaught exceptions, console errors and browser log errors (CSP violations, failed
    /// loads) seen so far.
    pub problems: Vec<String>,
}

impl Page {
    /// Sends one command and waits (bounded) for its answer, noting the events in between.
    pub async fn call(&mut self, method: &str, params: Value) -> Result<Value, String> {
        self.next_id += 1;
        let id = self.next_id;
        let msg = json!({"id": id, "method": method, "params": params}).to_string();
        self.ws
            .send(Message::text(msg))
            .await
            .map_err(|e| format!("{method}: send: {e}"))?;
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let next = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .map_err(|_| format!("{method}: no answer within {WAIT:?}"))?;
            let msg = match next {
                Some(Ok(m)) => m,
                Some(Err(e)) => return Err(format!("{method}: {e}")),
                None => return Err(format!("{method}: the browser closed the connection")),
            };
            let Ok(text) = msg.to_text() else { continue };
            let Ok(v) = serde_json::from_str::<Value>(text) else {
                continue;
            };
            if v["id"].as_u64() == Some(id) {
                if let Some(err) = v.get("error") {
                    return Err(format!("{method}: {err}"));
                }
                return Ok(v["result"].clone());
            }
            self.note_event(&v);
        }
    }

    fn note_event(&mut self, v: &Value) {
        let p = &v["params"];
        match v["method"].as_str() {
            Some("Runtime.exceptionThrown") => {
                let d = &p["exceptionDetails"];
                self.problems.push(format!(
                    "uncaught: {} {}",
                    d["text"].as_str().unwrap_or(""),
                    d["exception"]["description"].as_str().unwrap_or("")
                ));
            }
            Some("Runtime.consoleAPICalled") if p["type"] == "error" => {
                self.problems.push(format!("console.error: {}", p["args"]));
            }
            Some("Log.entryAdded") if p["entry"]["level"] == "error" => {
                self.problems.push(format!(
                    "log: {} {}",
                    p["entry"]["text"].as_str().unwrap_or(""),
                    p["entry"]["url"].as_str().unwrap_or("")
                ));
            }
            _ => {}
        }
    }

    /// Evaluates a JavaScript expression (promises awaited) and returns its value.
    pub async fn eval(&mut self, expression: &str) -> Result<Value, String> {
        let r = self
            .call(
                "Runtime.evaluate",
                json!({"expression": expression, "awaitPromise": true, "returnByValue": true}),
            )
            .await?;
        if let Some(ex) = r.get("exceptionDetails") {
            return Err(format!(
                "{expression}: {}",
                ex["exception"]["description"]
                    .as_str()
                    .or(ex["text"].as_str())
                    .unwrap_or("exception")
            ));
        }
        Ok(r["result"]["value"].clone())
    }

    /// Polls `expression` until it is truthy (then returns its value), for at most [`WAIT`];
    /// panics naming `what`, the last value and the page's text otherwise.
    pub async fn wait_for(&mut self, what: &str, expression: &str) -> Value {
        let started = Instant::now();
        let mut last = Value::Null;
        while started.elapsed() < WAIT {
            last = match self.eval(expression).await {
                Ok(v) if truthy(&v) => return v,
                Ok(v) => v,
                Err(e) => Value::String(e),
            };
            tokio::time::sleep(POLL).await;
        }
        let text = self
            .eval("document.body ? document.body.innerText.slice(0, 3000) : ''")
            .await
            .unwrap_or_default();
        panic!(
            "timed out after {WAIT:?} waiting for {what}\n  expression: {expression}\n  last value: {last}\n  problems: {:?}\n  page text:\n{}",
            self.problems,
            text.as_str().unwrap_or("")
        );
    }

    /// Navigates and waits for the document to load.
    pub async fn navigate(&mut self, url: &str) -> Result<(), String> {
        let r = self.call("Page.navigate", json!({"url": url})).await?;
        if let Some(e) = r["errorText"].as_str() {
            return Err(format!("navigate {url}: {e}"));
        }
        self.wait_for(
            &format!("{url} to load"),
            "document.readyState === 'complete'",
        )
        .await;
        Ok(())
    }

    /// Clicks the element `selector` (which must exist).
    pub async fn click(&mut self, selector: &str) -> Result<(), String> {
        let sel = serde_json::to_string(selector).expect("a string serializes");
        let found = self
            .eval(&format!(
                "(() => {{ const e = document.querySelector({sel}); if (!e) return false; e.click(); return true; }})()"
            ))
            .await?;
        if found != Value::Bool(true) {
            return Err(format!("no element {selector} to click"));
        }
        Ok(())
    }

    /// Sets an input's value as if typed.
    pub async fn fill(&mut self, selector: &str, value: &str) -> Result<(), String> {
        let sel = serde_json::to_string(selector).expect("a string serializes");
        let val = serde_json::to_string(value).expect("a string serializes");
        let found = self
            .eval(&format!(
                "(() => {{ const e = document.querySelector({sel}); if (!e) return false; e.value = {val}; e.dispatchEvent(new Event('input', {{bubbles: true}})); return true; }})()"
            ))
            .await?;
        if found != Value::Bool(true) {
            return Err(format!("no input {selector} to fill"));
        }
        Ok(())
    }

    /// Sets the viewport (CSS pixels).
    pub async fn viewport(&mut self, width: u32, height: u32) -> Result<(), String> {
        self.call(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": false}),
        )
        .await
        .map(|_| ())
    }

    /// A PNG of the whole page at `width` CSS pixels.
    pub async fn screenshot(&mut self, width: u32, path: &Path) -> Result<(), String> {
        use base64::Engine as _;
        let m = self.call("Page.getLayoutMetrics", json!({})).await?;
        let height = m["cssContentSize"]["height"].as_f64().unwrap_or(900.0);
        let height = (height.ceil() as u32).clamp(600, 6000);
        self.viewport(width, height).await?;
        let shot = self
            .call("Page.captureScreenshot", json!({"format": "png"}))
            .await;
        self.viewport(width, 900).await?;
        let data = shot?["data"].as_str().unwrap_or_default().to_string();
        let png = base64::engine::general_purpose::STANDARD
            .decode(data)
            .map_err(|e| e.to_string())?;
        std::fs::write(path, png).map_err(|e| format!("{}: {e}", path.display()))
    }
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

/// A plain GET over loopback (the devtools target list).
async fn http_get(url: &str) -> Result<String, String> {
    use http_body_util::{BodyExt, Full};
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Full<bytes::Bytes>>();
    let req = hyper::Request::get(url)
        .body(Full::new(bytes::Bytes::new()))
        .map_err(|e| e.to_string())?;
    let resp = tokio::time::timeout(WAIT, client.request(req))
        .await
        .map_err(|_| "timed out".to_string())?
        .map_err(|e| e.to_string())?;
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok(String::from_utf8_lossy(&body).into_owned())
}

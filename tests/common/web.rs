//! A browser for the web admin's JSON API in tests: reqwest over HTTPS trusting exactly the
//! box's certificate, with the session cookie and the CSRF token.

use super::TestBox;
use reqwest::blocking::{Client, Response};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::sync::Arc;

/// A strong password that meets the policy, for users the tests make.
pub const GOOD: &str = "Sakura2026x";
/// Another one, for the forced change at first login.
pub const GOOD2: &str = "Fuji3776Zan";

pub fn client_trusting(pem: &[u8]) -> Client {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::pem::PemObject::pem_slice_iter(pem) {
        let cert: rustls::pki_types::CertificateDer<'static> = cert.expect("certificate PEM");
        roots.add(cert).expect("root");
    }
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    Client::builder()
        .use_preconfigured_tls(tls)
        .redirect(reqwest::redirect::Policy::none())
        // A refused upload (413) is answered before its body is read, and the box then closes
        // the connection; a pooled connection would fail the next request at random.
        .pool_max_idle_per_host(0)
        .timeout(std::time::Duration::from_secs(20))
        .build()
        .expect("client")
}

/// One browser: a client, the session cookie and the CSRF token.
pub struct Web {
    pub base: String,
    pub client: Client,
    pub cookie: Option<String>,
    pub csrf: Option<String>,
}

impl Web {
    pub fn new(tb: &TestBox) -> Web {
        let pem = std::fs::read(tb.data_dir().join("web/admin.pem")).expect("the box wrote its certificate");
        Web { base: tb.web_url(), client: client_trusting(&pem), cookie: None, csrf: None }
    }

    pub fn send(&self, method: &str, path: &str, body: Option<Value>, csrf: bool) -> Response {
        let m = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = self.client.request(m, format!("{}{path}", self.base));
        if let Some(c) = &self.cookie {
            req = req.header("cookie", format!("hakoden_session={c}"));
        }
        if csrf {
            if let Some(t) = &self.csrf {
                req = req.header("x-csrf-token", t);
            }
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        req.send().unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }

    pub fn call(&self, method: &str, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let r = self.send(method, path, body, true);
        let status = r.status();
        let v = r.json().unwrap_or(Value::Null);
        (status, v)
    }

    pub fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call("GET", path, None)
    }

    pub fn login(&mut self, user: &str, password: &str) -> (StatusCode, Value) {
        let r =
            self.send("POST", "/api/v1/login", Some(json!({ "user": user, "password": password })), false);
        let status = r.status();
        if let Some(c) = r.headers().get("set-cookie").and_then(|v| v.to_str().ok()) {
            assert!(c.contains("HttpOnly") && c.contains("Secure") && c.contains("SameSite=Strict"), "{c}");
            self.cookie = c.split(';').next().and_then(|kv| kv.split_once('=')).map(|(_, v)| v.to_string());
        }
        let v: Value = r.json().unwrap_or(Value::Null);
        if let Some(t) = v["csrf_token"].as_str() {
            self.csrf = Some(t.to_string());
        }
        (status, v)
    }

    /// Logs in with a password someone else set and replaces it with `new`.
    pub fn first_login(&mut self, user: &str, initial: &str, new: &str) {
        let (s, v) = self.login(user, initial);
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["user"]["must_change_password"], true);
        let (s, v) = self.call(
            "POST",
            "/api/v1/me/password",
            Some(json!({ "current_password": initial, "new_password": new })),
        );
        assert_eq!(s, StatusCode::OK, "{v}");
    }
}

/// Logs in as the seeded admin (first login: the printed password, changed to [`GOOD`]).
pub fn admin(tb: &TestBox) -> Web {
    let pw = tb.web_admin_password().expect("the first start printed the admin password");
    let mut w = Web::new(tb);
    w.first_login("admin", &pw, GOOD);
    w
}

/// Creates a user (as `w`) with a role and an extension; its first password is [`GOOD`].
pub fn create_user_with_extension(w: &Web, id: &str, role: &str, extension: &str) {
    let (s, v) = w.call(
        "POST",
        "/api/v1/users",
        Some(json!({ "id": id, "name": format!("User {id}"), "role": role, "extension": extension, "password": GOOD })),
    );
    assert_eq!(s, StatusCode::CREATED, "{v}");
}

/// Where `scripts/test.sh` installed `playwright-core` (`HAKODEN_NODE_CACHE`, default
/// `~/.cache/hakoden-node`), if it did.
pub fn node_modules() -> Option<std::path::PathBuf> {
    use std::path::PathBuf;
    let cache = std::env::var_os("HAKODEN_NODE_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/hakoden-node")))?;
    let modules = cache.join("node_modules");
    modules.join("playwright-core/package.json").is_file().then_some(modules)
}

fn ci() -> bool {
    std::env::var("CI").map(|v| !v.is_empty() && v != "false" && v != "0").unwrap_or(false)
}

/// Runs the browser flow `tests/web_ui/<script>` against `tb` with `env` (plus `BASE_URL`,
/// `OUT_DIR` = `target/web-artifacts/<artifacts>/`, `USER_DATA_DIR` = a fresh Chromium profile,
/// `NODE_PATH`) and asserts it exits 0 within `timeout`. Returns the artifacts directory, or
/// `None` when a developer machine lacks chromium/node/playwright-core (CI fails instead).
pub fn browser_flow(
    tb: &TestBox,
    script: &str,
    artifacts: &str,
    env: &[(&str, &str)],
    timeout: std::time::Duration,
) -> Option<std::path::PathBuf> {
    use std::path::PathBuf;
    if !super::require_tool("chromium") || !super::require_tool("node") {
        return None;
    }
    let Some(modules) = node_modules() else {
        assert!(!ci(), "playwright-core is not installed; scripts/test.sh installs it");
        eprintln!("SKIPPED: playwright-core is not installed (run scripts/test.sh to install it)");
        return None;
    };
    let out_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/web-artifacts").join(artifacts);
    let _ = std::fs::remove_dir_all(&out_dir);
    std::fs::create_dir_all(&out_dir).expect("artifacts dir");
    let profile = tb.scratch(&format!("chromium-{artifacts}"));
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/web_ui").join(script);
    let mut cmd = std::process::Command::new("node");
    cmd.arg(&path)
        .env("NODE_PATH", &modules)
        .env("BASE_URL", tb.web_url())
        .env("OUT_DIR", &out_dir)
        .env("USER_DATA_DIR", &profile);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let run = super::run_bounded(&mut cmd, &tb.scratch(&format!("node-{artifacts}")), artifacts, timeout);
    assert!(
        run.code == Some(0),
        "browser flow {script} failed (exit {:?}, timed out {}):\n{}\n{}\nscreenshots in {}",
        run.code,
        run.timed_out,
        run.stdout,
        run.stderr,
        out_dir.display()
    );
    Some(out_dir)
}

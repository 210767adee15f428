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

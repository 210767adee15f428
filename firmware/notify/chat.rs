//! Chat notifications of new voicemail (seed 001's 留守レポ): the request each service expects,
//! the per-box rule with its caller whitelist, and [`send`], the driver.
//!
//! | service | endpoint | text | audio |
//! |---|---|---|---|
//! | Slack, webhook | incoming webhook URL, `{"text"}` | yes | no |
//! | Slack, bot token | `chat.postMessage`; audio: `files.getUploadURLExternal`, upload, `files.completeUploadExternal` | yes | yes |
//! | Microsoft Teams | incoming webhook / Workflows URL, Adaptive Card message | yes | no |
//! | Google Chat | space webhook URL, `{"text"}` | yes | no |
//! | Chatwork | `POST /v2/rooms/{room}/messages` form `body`; audio: `/files` multipart | yes | yes |
//! | LINE WORKS | Bot API 2.0 `POST /bots/{bot}/channels/{ch}/messages`; audio: `/attachments` | yes | yes |
//!
//! LINE Notify (seed 001's "LINE") ended its service on 31 March 2025 and is not offered.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::http::{self, Field, HttpError, Request, Response};

/// Longest text sent (LINE WORKS takes 2,000 characters, Chatwork and Slack more; one limit
/// keeps the notice the same everywhere).
pub const MAX_TEXT_CHARS: usize = 2000;

/// Most whitelist entries per rule (a list of customers, not a phone book).
pub const MAX_WHITELIST: usize = 500;

/// Default API bases (configurable so tests and proxies can point elsewhere).
pub const SLACK_API: &str = "https://slack.com/api";
/// Chatwork API v2.
pub const CHATWORK_API: &str = "https://api.chatwork.com/v2";
/// LINE WORKS API 2.0.
pub const LINE_WORKS_API: &str = "https://www.worksapis.com/v1.0";

/// A chat service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Service {
    /// Slack: an incoming webhook URL, or a bot token + channel id (needed for audio).
    Slack,
    /// Microsoft Teams incoming webhook.
    Teams,
    /// Google Chat space webhook.
    GoogleChat,
    /// Chatwork API token + room id.
    Chatwork,
    /// LINE WORKS bot: access token + bot id + channel id.
    LineWorks,
}

/// One configured chat destination (proposed `[[chat]]` table, `docs/notify.md`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatTarget {
    /// Its name, used by rules.
    pub name: String,
    /// The service.
    pub service: Service,
    /// Webhook URL (Slack webhook, Teams, Google Chat), or the API base (empty: the public one).
    #[serde(default)]
    pub url: String,
    /// API token (Slack bot `xoxb-`, Chatwork, LINE WORKS access token).
    #[serde(default)]
    pub token: String,
    /// Slack channel id, Chatwork room id, LINE WORKS channel id.
    #[serde(default)]
    pub channel: String,
    /// LINE WORKS bot id.
    #[serde(default)]
    pub bot_id: String,
    /// LINE WORKS service account (seed 001: client id/secret, service account, private key);
    /// used to get an access token when `token` is empty.
    #[serde(default)]
    pub line_works_account: Option<LineWorksAccount>,
    /// Attach the audio where the service takes files.
    #[serde(default)]
    pub send_audio: bool,
    /// Trust only this CA for HTTPS (tests, a company proxy).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

/// A LINE WORKS service account (API 2.0 JWT authentication, RFC 7523).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineWorksAccount {
    /// The app's client id.
    pub client_id: String,
    /// The app's client secret.
    pub client_secret: String,
    /// The service account id (`xxxxx.serviceaccount@domain`).
    pub service_account: String,
    /// The PKCS#8 PEM private key file from the Developer Console.
    pub private_key_file: PathBuf,
    /// The token endpoint (empty: the public one, [`LINE_WORKS_TOKEN_URL`]).
    #[serde(default)]
    pub token_url: String,
}

/// LINE WORKS token endpoint.
pub const LINE_WORKS_TOKEN_URL: &str = "https://auth.worksmobile.com/oauth2/v2.0/token";

/// Lifetime asked for the JWT assertion (it is used at once; LINE WORKS allows up to 60 min).
pub const JWT_LIFETIME_SECS: u64 = 600;

/// Largest private key file read (a 4096-bit RSA key in PEM is about 3.3 KB).
const MAX_KEY_FILE_BYTES: u64 = 16 * 1024;

fn b64url(data: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(data)
}

/// The signed JWT assertion (RS256) of a service account at `now_unix_s`, from the PKCS#8 PEM
/// key text.
pub fn line_works_jwt(
    account: &LineWorksAccount,
    key_pem: &[u8],
    now_unix_s: u64,
) -> Result<String, ChatError> {
    use rustls::pki_types::pem::PemObject as _;
    let bad_key = |e: String| ChatError::Config(format!("LINE WORKS private key: {e}"));
    let der = rustls::pki_types::PrivatePkcs8KeyDer::from_pem_slice(key_pem)
        .map_err(|e| bad_key(format!("{e:?}")))?;
    let key = ring::signature::RsaKeyPair::from_pkcs8(der.secret_pkcs8_der())
        .map_err(|e| bad_key(e.to_string()))?;
    let header = b64url(br#"{"alg":"RS256","typ":"JWT"}"#);
    let claims = json!({
        "iss": account.client_id,
        "sub": account.service_account,
        "iat": now_unix_s,
        "exp": now_unix_s.saturating_add(JWT_LIFETIME_SECS),
    });
    let signing_input = format!("{header}.{}", b64url(claims.to_string().as_bytes()));
    let mut sig = vec![0u8; key.public().modulus_len()];
    key.sign(
        &ring::signature::RSA_PKCS1_SHA256,
        &ring::rand::SystemRandom::new(),
        signing_input.as_bytes(),
        &mut sig,
    )
    .map_err(|_| bad_key("signing failed".into()))?;
    Ok(format!("{signing_input}.{}", b64url(&sig)))
}

/// The token request for a JWT assertion (RFC 7523 §2.1; scope `bot` sends bot messages).
pub fn line_works_token_request(account: &LineWorksAccount, jwt: &str) -> Request {
    let url = if account.token_url.is_empty() {
        LINE_WORKS_TOKEN_URL.to_string()
    } else {
        account.token_url.clone()
    };
    Request {
        url,
        headers: vec![],
        content_type: "application/x-www-form-urlencoded".into(),
        body: http::form(&[
            ("assertion", jwt),
            ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
            ("client_id", &account.client_id),
            ("client_secret", &account.client_secret),
            ("scope", "bot"),
        ]),
    }
}

/// The target with an access token: itself when it has one, else one fetched with its service
/// account (a fresh token per notification: voicemail is rare enough).
#[allow(clippy::disallowed_methods)] // driver: reads the clock for the JWT's iat/exp
async fn with_token(t: &ChatTarget) -> Result<std::borrow::Cow<'_, ChatTarget>, ChatError> {
    let (Service::LineWorks, true, Some(account)) =
        (t.service, t.token.is_empty(), t.line_works_account.as_ref())
    else {
        return Ok(std::borrow::Cow::Borrowed(t));
    };
    let path = &account.private_key_file;
    let meta = std::fs::metadata(path).map_err(|e| ChatError::Config(format!("{}: {e}", path.display())))?;
    if meta.len() > MAX_KEY_FILE_BYTES {
        return Err(ChatError::Config(format!("{}: not a private key (too big)", path.display())));
    }
    let pem = std::fs::read(path).map_err(|e| ChatError::Config(format!("{}: {e}", path.display())))?;
    let now =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let jwt = line_works_jwt(account, &pem, now)?;
    let resp = check(http::post(&line_works_token_request(account, &jwt), t.ca_file.as_deref()).await?)?;
    let token = json_field(&resp, "access_token")?;
    Ok(std::borrow::Cow::Owned(ChatTarget { token, ..t.clone() }))
}

/// The notification rule of one box number (seed 001: a rule per number with a whitelist).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ChatRule {
    /// The box (number) it applies to.
    pub box_no: String,
    /// Names of the [`ChatTarget`]s to notify.
    pub targets: Vec<String>,
    /// Callers that bypass voicemail and ring normally: a number, or a prefix ending in `*`.
    #[serde(default)]
    pub whitelist: Vec<String>,
}

/// Digits of a number, `+81` read as the national `0` (Japanese numbers arrive both ways).
fn canonical(number: &str) -> String {
    let digits: String = number.chars().filter(char::is_ascii_digit).collect();
    if number.trim_start().starts_with('+') {
        if let Some(national) = digits.strip_prefix("81") {
            return format!("0{national}");
        }
    }
    digits
}

/// True when `caller` is on the rule's whitelist and should ring through instead of reaching
/// voicemail. A withheld caller never matches.
pub fn bypasses_voicemail(rule: &ChatRule, caller: &str) -> bool {
    let caller = canonical(caller);
    if caller.is_empty() {
        return false;
    }
    rule.whitelist.iter().take(MAX_WHITELIST).any(|entry| match entry.trim().strip_suffix('*') {
        Some(prefix) => {
            let p = canonical(prefix);
            !p.is_empty() && caller.starts_with(&p)
        }
        None => {
            let e = canonical(entry);
            !e.is_empty() && e == caller
        }
    })
}

/// Why a chat notification failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChatError {
    /// The target lacks a field its service needs.
    Config(String),
    /// The request did not complete.
    Http(HttpError),
    /// The service answered an error (status and its text).
    Refused {
        /// HTTP status.
        status: u16,
        /// The service's answer.
        text: String,
    },
}

impl ChatError {
    /// True when retrying cannot help (configuration, 4xx other than 429).
    pub fn is_permanent(&self) -> bool {
        match self {
            ChatError::Config(_) => true,
            ChatError::Http(HttpError::BadUrl(_)) => true,
            ChatError::Http(_) => false,
            ChatError::Refused { status, .. } => {
                (400..500).contains(status) && *status != 429 && *status != 408
            }
        }
    }
}

impl std::fmt::Display for ChatError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChatError::Config(s) => write!(f, "configuration: {s}"),
            ChatError::Http(e) => write!(f, "{e}"),
            ChatError::Refused { status, text } => write!(f, "service answered {status}: {text}"),
        }
    }
}

impl std::error::Error for ChatError {}

impl From<HttpError> for ChatError {
    fn from(e: HttpError) -> Self {
        ChatError::Http(e)
    }
}

fn cut(text: &str) -> String {
    text.chars().take(MAX_TEXT_CHARS).collect()
}

fn base<'a>(t: &'a ChatTarget, default: &'a str) -> &'a str {
    if t.url.is_empty() {
        default
    } else {
        t.url.trim_end_matches('/')
    }
}

fn need(t: &ChatTarget, field: &str, value: &str) -> Result<(), ChatError> {
    if value.is_empty() {
        return Err(ChatError::Config(format!("chat target {:?} ({:?}) needs `{field}`", t.name, t.service)));
    }
    Ok(())
}

fn json_request(url: String, headers: Vec<(String, String)>, body: serde_json::Value) -> Request {
    Request {
        url,
        headers,
        content_type: "application/json; charset=utf-8".into(),
        body: body.to_string().into_bytes(),
    }
}

fn bearer(token: &str) -> Vec<(String, String)> {
    vec![("Authorization".into(), format!("Bearer {token}"))]
}

/// The request posting `text` alone to the target (the first request when audio follows, or
/// the only one).
pub fn text_request(t: &ChatTarget, text: &str) -> Result<Request, ChatError> {
    let text = cut(text);
    Ok(match t.service {
        Service::Slack if t.token.is_empty() => {
            need(t, "url", &t.url)?;
            json_request(t.url.clone(), vec![], json!({ "text": text }))
        }
        Service::Slack => {
            need(t, "channel", &t.channel)?;
            let url = format!("{}/chat.postMessage", base(t, SLACK_API));
            json_request(url, bearer(&t.token), json!({ "channel": t.channel, "text": text }))
        }
        // Workflows / incoming webhooks take a message with one Adaptive Card attachment.
        Service::Teams => {
            need(t, "url", &t.url)?;
            json_request(
                t.url.clone(),
                vec![],
                json!({
                    "type": "message",
                    "attachments": [{
                        "contentType": "application/vnd.microsoft.card.adaptive",
                        "contentUrl": null,
                        "content": {
                            "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                            "type": "AdaptiveCard",
                            "version": "1.4",
                            "body": [{ "type": "TextBlock", "text": text, "wrap": true }]
                        }
                    }]
                }),
            )
        }
        Service::GoogleChat => {
            need(t, "url", &t.url)?;
            json_request(t.url.clone(), vec![], json!({ "text": text }))
        }
        Service::Chatwork => {
            need(t, "token", &t.token)?;
            need(t, "channel", &t.channel)?;
            Request {
                url: format!("{}/rooms/{}/messages", base(t, CHATWORK_API), path_segment(&t.channel)),
                headers: vec![("X-ChatWorkToken".into(), t.token.clone())],
                content_type: "application/x-www-form-urlencoded".into(),
                body: http::form(&[("body", &text)]),
            }
        }
        Service::LineWorks => {
            line_works_check(t)?;
            json_request(
                line_works_messages_url(t),
                bearer(&t.token),
                json!({ "content": { "type": "text", "text": text } }),
            )
        }
    })
}

fn line_works_check(t: &ChatTarget) -> Result<(), ChatError> {
    need(t, "token", &t.token)?;
    need(t, "bot_id", &t.bot_id)?;
    need(t, "channel", &t.channel)
}

fn line_works_messages_url(t: &ChatTarget) -> String {
    format!(
        "{}/bots/{}/channels/{}/messages",
        base(t, LINE_WORKS_API),
        path_segment(&t.bot_id),
        path_segment(&t.channel)
    )
}

/// Ids go into URL paths: keep only characters that cannot change the path.
fn path_segment(s: &str) -> String {
    s.chars().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')).collect()
}

/// True when the target will carry the audio too.
pub fn sends_audio(t: &ChatTarget) -> bool {
    t.send_audio && matches!(t.service, Service::Chatwork | Service::LineWorks)
        || (t.send_audio && t.service == Service::Slack && !t.token.is_empty())
}

fn check(resp: Response) -> Result<Response, ChatError> {
    if !(200..300).contains(&resp.status) {
        return Err(ChatError::Refused { status: resp.status, text: resp.text() });
    }
    Ok(resp)
}

/// Slack's Web API answers 200 with `"ok": false` on errors.
fn check_slack(resp: Response) -> Result<serde_json::Value, ChatError> {
    let resp = check(resp)?;
    let v: serde_json::Value = serde_json::from_slice(&resp.body).unwrap_or(serde_json::Value::Null);
    if v.get("ok").and_then(|o| o.as_bool()) != Some(true) {
        return Err(ChatError::Refused { status: resp.status, text: resp.text() });
    }
    Ok(v)
}

fn json_field(resp: &Response, key: &str) -> Result<String, ChatError> {
    let v: serde_json::Value = serde_json::from_slice(&resp.body).unwrap_or(serde_json::Value::Null);
    v.get(key)
        .and_then(|x| x.as_str().map(str::to_string).or_else(|| x.as_i64().map(|n| n.to_string())))
        .ok_or_else(|| ChatError::Refused {
            status: resp.status,
            text: format!("no `{key}` in {}", resp.text()),
        })
}

/// Posts the notice to one target, with the audio where the target sends it.
pub async fn send(t: &ChatTarget, text: &str, audio: Option<(&str, &[u8])>) -> Result<(), ChatError> {
    let t = &*with_token(t).await?;
    let ca = t.ca_file.as_deref();
    let audio = audio.filter(|_| sends_audio(t));
    let boundary = "hakoden-chat-boundary-7d1f3a";
    match (t.service, audio) {
        (Service::Slack, Some((name, wav))) => {
            // files.getUploadURLExternal (form), upload the bytes, files.completeUploadExternal.
            need(t, "channel", &t.channel)?;
            let api = base(t, SLACK_API);
            let len = wav.len().to_string();
            let r = http::post(
                &Request {
                    url: format!("{api}/files.getUploadURLExternal"),
                    headers: bearer(&t.token),
                    content_type: "application/x-www-form-urlencoded".into(),
                    body: http::form(&[("filename", name), ("length", &len)]),
                },
                ca,
            )
            .await?;
            let v = check_slack(r)?;
            let upload_url = v.get("upload_url").and_then(|u| u.as_str()).unwrap_or_default().to_string();
            let file_id = v.get("file_id").and_then(|u| u.as_str()).unwrap_or_default().to_string();
            if upload_url.is_empty() || file_id.is_empty() {
                return Err(ChatError::Refused { status: 200, text: "no upload_url/file_id".into() });
            }
            let (ct, body) = http::multipart(
                &[Field { name: "file", file_name: Some(name), content_type: Some("audio/wav"), data: wav }],
                boundary,
            );
            check(
                http::post(&Request { url: upload_url, headers: vec![], content_type: ct, body }, ca).await?,
            )?;
            let done = json_request(
                format!("{api}/files.completeUploadExternal"),
                bearer(&t.token),
                json!({ "files": [{ "id": file_id, "title": name }], "channel_id": t.channel, "initial_comment": cut(text) }),
            );
            check_slack(http::post(&done, ca).await?)?;
        }
        (Service::Slack, None) if !t.token.is_empty() => {
            check_slack(http::post(&text_request(t, text)?, ca).await?)?;
        }
        (Service::Chatwork, Some((name, wav))) => {
            need(t, "token", &t.token)?;
            need(t, "channel", &t.channel)?;
            let message = cut(text);
            let (ct, body) = http::multipart(
                &[
                    Field { name: "file", file_name: Some(name), content_type: Some("audio/wav"), data: wav },
                    Field { name: "message", file_name: None, content_type: None, data: message.as_bytes() },
                ],
                boundary,
            );
            let req = Request {
                url: format!("{}/rooms/{}/files", base(t, CHATWORK_API), path_segment(&t.channel)),
                headers: vec![("X-ChatWorkToken".into(), t.token.clone())],
                content_type: ct,
                body,
            };
            check(http::post(&req, ca).await?)?;
        }
        (Service::LineWorks, Some((name, wav))) => {
            // The text first, then: create the attachment, upload it, send it as a file message.
            check(http::post(&text_request(t, text)?, ca).await?)?;
            let api = base(t, LINE_WORKS_API);
            let create = json_request(
                format!("{api}/bots/{}/attachments", path_segment(&t.bot_id)),
                bearer(&t.token),
                json!({ "fileName": name }),
            );
            let r = check(http::post(&create, ca).await?)?;
            let upload_url = json_field(&r, "uploadUrl")?;
            let file_id = json_field(&r, "fileId")?;
            let (ct, body) = http::multipart(
                &[Field {
                    name: "Filedata",
                    file_name: Some(name),
                    content_type: Some("audio/wav"),
                    data: wav,
                }],
                boundary,
            );
            check(
                http::post(
                    &Request { url: upload_url, headers: bearer(&t.token), content_type: ct, body },
                    ca,
                )
                .await?,
            )?;
            let msg = json_request(
                line_works_messages_url(t),
                bearer(&t.token),
                json!({ "content": { "type": "file", "fileId": file_id } }),
            );
            check(http::post(&msg, ca).await?)?;
        }
        _ => {
            check(http::post(&text_request(t, text)?, ca).await?)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(list: &[&str]) -> ChatRule {
        ChatRule {
            box_no: "804".into(),
            targets: vec![],
            whitelist: list.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn target(service: Service) -> ChatTarget {
        ChatTarget {
            name: "t".into(),
            service,
            url: "http://127.0.0.1:9/hook".into(),
            token: String::new(),
            channel: String::new(),
            bot_id: String::new(),
            line_works_account: None,
            send_audio: false,
            ca_file: None,
        }
    }

    #[test]
    fn whitelisted_callers_bypass_voicemail_by_number_or_prefix() {
        let r = rule(&["03-1234-5678", "090*", "+81 6 0000 1111"]);
        assert!(bypasses_voicemail(&r, "0312345678"));
        assert!(bypasses_voicemail(&r, "+81312345678"));
        assert!(bypasses_voicemail(&r, "09011112222"));
        assert!(bypasses_voicemail(&r, "0600001111"));
        assert!(!bypasses_voicemail(&r, "0312345679"));
        assert!(!bypasses_voicemail(&r, ""), "a withheld caller never bypasses");
        assert!(!bypasses_voicemail(&rule(&["*"]), "0312345678"), "an empty prefix matches nobody");
    }

    #[test]
    fn slack_google_and_teams_bodies_carry_the_text() {
        for s in [Service::Slack, Service::GoogleChat] {
            let r = text_request(&target(s), "新着 voicemail").unwrap();
            let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
            assert_eq!(v["text"], "新着 voicemail");
        }
        let r = text_request(&target(Service::Teams), "hi").unwrap();
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(v["attachments"][0]["content"]["type"], "AdaptiveCard");
        assert_eq!(v["attachments"][0]["content"]["body"][0]["text"], "hi");
    }

    #[test]
    fn chatwork_and_line_works_need_their_ids_and_use_their_headers() {
        let mut t = target(Service::Chatwork);
        assert!(matches!(text_request(&t, "x"), Err(ChatError::Config(_))));
        t.token = "tok".into();
        t.channel = "123/../x".into();
        t.url = "http://127.0.0.1:9/v2".into();
        let r = text_request(&t, "a b").unwrap();
        assert_eq!(r.url, "http://127.0.0.1:9/v2/rooms/123..x/messages");
        assert_eq!(r.headers, [("X-ChatWorkToken".to_string(), "tok".to_string())]);
        assert_eq!(r.body, b"body=a%20b");
        let mut t = target(Service::LineWorks);
        t.token = "at".into();
        t.bot_id = "2000001".into();
        t.channel = "ch-1".into();
        let r = text_request(&t, "x").unwrap();
        assert!(r.url.ends_with("/bots/2000001/channels/ch-1/messages"));
        assert_eq!(r.headers[0].1, "Bearer at");
    }

    #[test]
    fn the_line_works_jwt_is_rs256_signed_with_the_service_account_claims() {
        use base64::Engine as _;
        let pem = include_bytes!("../../tests/data/notify/lineworks-test-key.pem");
        let account = LineWorksAccount {
            client_id: "cid".into(),
            client_secret: "secret".into(),
            service_account: "abc.serviceaccount@example".into(),
            private_key_file: PathBuf::new(),
            token_url: String::new(),
        };
        let jwt = line_works_jwt(&account, pem, 1_700_000_000).unwrap();
        let parts: Vec<&str> = jwt.split('.').collect();
        assert_eq!(parts.len(), 3);
        let dec = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(s).unwrap();
        let claims: serde_json::Value = serde_json::from_slice(&dec(parts[1])).unwrap();
        assert_eq!(
            claims,
            json!({"iss": "cid", "sub": "abc.serviceaccount@example", "iat": 1_700_000_000u64, "exp": 1_700_000_600u64})
        );
        use rustls::pki_types::pem::PemObject as _;
        let der = rustls::pki_types::PrivatePkcs8KeyDer::from_pem_slice(pem).unwrap();
        let key = ring::signature::RsaKeyPair::from_pkcs8(der.secret_pkcs8_der()).unwrap();
        use ring::signature::KeyPair as _;
        let public = ring::signature::UnparsedPublicKey::new(
            &ring::signature::RSA_PKCS1_2048_8192_SHA256,
            key.public_key().as_ref(),
        );
        public.verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &dec(parts[2])).unwrap();
        let req = line_works_token_request(&account, &jwt);
        assert_eq!(req.url, LINE_WORKS_TOKEN_URL);
        assert!(String::from_utf8(req.body)
            .unwrap()
            .contains("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer"));
        assert!(matches!(line_works_jwt(&account, b"not a key", 0), Err(ChatError::Config(_))));
    }

    #[test]
    fn text_is_cut_to_the_common_limit() {
        let r = text_request(&target(Service::GoogleChat), &"あ".repeat(MAX_TEXT_CHARS + 10)).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(v["text"].as_str().unwrap().chars().count(), MAX_TEXT_CHARS);
    }
}

//! A small HTTP/1.1 POST client for chat webhooks and APIs: one request per connection
//! (`Connection: close`), over TCP or TLS, with a `Content-Length` body, a bounded response and
//! timeouts. Request building and response parsing are pure; [`post`] is the driver.

use std::path::Path;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Time to open the connection and finish the TLS handshake.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// Time for the whole exchange after connecting (an upload of a few MB on a slow uplink).
pub const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(120);

/// Largest response read: chat APIs answer small JSON; a bigger answer is cut off, not buffered.
pub const MAX_RESPONSE_BYTES: usize = 256 * 1024;

/// A parsed `http://` or `https://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    /// `https`.
    pub tls: bool,
    /// Host name or IP literal (without brackets).
    pub host: String,
    /// Port.
    pub port: u16,
    /// Path and query, starting with `/`.
    pub path: String,
}

/// Why a request failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HttpError {
    /// The URL is not `http(s)://host[:port]/path`.
    BadUrl(String),
    /// The network or TLS failed.
    Io(String),
    /// No answer in time.
    Timeout,
    /// The answer is not HTTP/1.x.
    BadResponse(String),
}

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HttpError::BadUrl(u) => write!(f, "bad URL {u:?}"),
            HttpError::Io(e) => write!(f, "network: {e}"),
            HttpError::Timeout => write!(f, "no answer in time"),
            HttpError::BadResponse(e) => write!(f, "bad response: {e}"),
        }
    }
}

impl std::error::Error for HttpError {}

impl Url {
    /// Parses `http(s)://host[:port][/path]`; user info and fragments are refused.
    pub fn parse(s: &str) -> Result<Url, HttpError> {
        let bad = || HttpError::BadUrl(s.chars().take(200).collect());
        let (tls, rest) = if let Some(r) = s.strip_prefix("https://") {
            (true, r)
        } else if let Some(r) = s.strip_prefix("http://") {
            (false, r)
        } else {
            return Err(bad());
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, "/"),
        };
        if authority.is_empty() || authority.contains('@') || path.contains('#') {
            return Err(bad());
        }
        if !path.chars().all(|c| c.is_ascii_graphic()) {
            return Err(bad());
        }
        let default_port = if tls { 443 } else { 80 };
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (h, after) = v6.split_once(']').ok_or_else(bad)?;
            let port = match after.strip_prefix(':') {
                Some(p) => p.parse().map_err(|_| bad())?,
                None if after.is_empty() => default_port,
                None => return Err(bad()),
            };
            (h.to_string(), port)
        } else {
            match authority.split_once(':') {
                Some((h, p)) => (h.to_string(), p.parse().map_err(|_| bad())?),
                None => (authority.to_string(), default_port),
            }
        };
        if host.is_empty() || !host.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':'))
        {
            return Err(bad());
        }
        Ok(Url { tls, host, port, path: path.to_string() })
    }
}

/// One POST.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Where.
    pub url: String,
    /// Extra headers (authorization tokens).
    pub headers: Vec<(String, String)>,
    /// `Content-Type`.
    pub content_type: String,
    /// The body.
    pub body: Vec<u8>,
}

/// The answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Body (chunked encoding undone), at most [`MAX_RESPONSE_BYTES`].
    pub body: Vec<u8>,
}

impl Response {
    /// The body as text, for error messages.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).chars().take(300).collect()
    }
}

/// The request's bytes. Header values lose CR and LF (a token with a newline must not add
/// headers).
pub fn encode(req: &Request, url: &Url) -> Vec<u8> {
    let clean = |s: &str| s.chars().filter(|c| *c != '\r' && *c != '\n').collect::<String>();
    let host = if url.host.contains(':') { format!("[{}]", url.host) } else { url.host.clone() };
    let default = if url.tls { 443 } else { 80 };
    let host = if url.port == default { host } else { format!("{host}:{}", url.port) };
    let mut head = format!(
        "POST {} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: Hakoden\r\nConnection: close\r\nContent-Type: {}\r\nContent-Length: {}\r\n",
        url.path,
        clean(&req.content_type),
        req.body.len()
    );
    for (n, v) in &req.headers {
        head.push_str(&format!("{}: {}\r\n", clean(n), clean(v)));
    }
    head.push_str("\r\n");
    let mut out = head.into_bytes();
    out.extend_from_slice(&req.body);
    out
}

/// Parses a complete response (the connection closed after it).
pub fn parse_response(raw: &[u8]) -> Result<Response, HttpError> {
    let bad = |s: &str| HttpError::BadResponse(s.to_string());
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n").ok_or_else(|| bad("no end of headers"))?;
    let head = std::str::from_utf8(raw.get(..end).unwrap_or(&[])).map_err(|_| bad("headers not UTF-8"))?;
    let body = raw.get(end + 4..).unwrap_or(&[]);
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let mut parts = status_line.splitn(3, ' ');
    if !parts.next().is_some_and(|v| v.starts_with("HTTP/1.")) {
        return Err(bad("not HTTP/1.x"));
    }
    let status: u16 = parts
        .next()
        .and_then(|c| c.parse().ok())
        .filter(|c| (100..600).contains(c))
        .ok_or_else(|| bad("bad status"))?;
    let mut chunked = false;
    let mut length = None;
    for line in lines {
        let Some((n, v)) = line.split_once(':') else { continue };
        if n.trim().eq_ignore_ascii_case("transfer-encoding") && v.to_ascii_lowercase().contains("chunked") {
            chunked = true;
        } else if n.trim().eq_ignore_ascii_case("content-length") {
            length = v.trim().parse::<usize>().ok();
        }
    }
    let body = if chunked {
        dechunk(body).ok_or_else(|| bad("bad chunked body"))?
    } else {
        match length {
            Some(n) => body.get(..n).unwrap_or(body).to_vec(),
            None => body.to_vec(),
        }
    };
    Ok(Response { status, body })
}

fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = data.windows(2).position(|w| w == b"\r\n")?;
        let size_line = std::str::from_utf8(data.get(..eol)?).ok()?;
        let size = usize::from_str_radix(size_line.split(';').next()?.trim(), 16).ok()?;
        data = data.get(eol + 2..)?;
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(data.get(..size)?);
        data = data.get(size..)?.strip_prefix(b"\r\n")?;
    }
}

/// `application/x-www-form-urlencoded` of name-value pairs.
pub fn form(fields: &[(&str, &str)]) -> Vec<u8> {
    let enc = |s: &str| {
        let mut o = String::new();
        for b in s.bytes() {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                o.push(char::from(b));
            } else {
                o.push_str(&format!("%{b:02X}"));
            }
        }
        o
    };
    fields.iter().map(|(n, v)| format!("{}={}", enc(n), enc(v))).collect::<Vec<_>>().join("&").into_bytes()
}

/// One `multipart/form-data` field.
#[derive(Debug, Clone)]
pub struct Field<'a> {
    /// The field name.
    pub name: &'a str,
    /// `Some` for a file.
    pub file_name: Option<&'a str>,
    /// The file's content type.
    pub content_type: Option<&'a str>,
    /// The value.
    pub data: &'a [u8],
}

/// A `multipart/form-data` body (RFC 7578) and its content type.
pub fn multipart(fields: &[Field<'_>], boundary: &str) -> (String, Vec<u8>) {
    let q = |s: &str| s.chars().filter(|c| !matches!(c, '"' | '\r' | '\n' | '\\')).collect::<String>();
    let mut out = Vec::new();
    for f in fields {
        out.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{}\"", q(f.name)).as_bytes(),
        );
        if let Some(name) = f.file_name {
            out.extend_from_slice(format!("; filename=\"{}\"", q(name)).as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        if let Some(ct) = f.content_type {
            out.extend_from_slice(format!("Content-Type: {}\r\n", q(ct)).as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(f.data);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), out)
}

/// Sends one POST and reads the answer. `ca_file`: trust only that CA for `https` (tests, a
/// private proxy); otherwise the built-in public roots.
pub async fn post(req: &Request, ca_file: Option<&Path>) -> Result<Response, HttpError> {
    let url = Url::parse(&req.url)?;
    let bytes = encode(req, &url);
    let connect = async {
        let tcp = TcpStream::connect((url.host.as_str(), url.port))
            .await
            .map_err(|e| HttpError::Io(e.to_string()))?;
        if url.tls {
            let config = super::tls::client_config(ca_file).map_err(|e| HttpError::Io(e.to_string()))?;
            let name = super::tls::server_name(&url.host).map_err(|e| HttpError::BadUrl(e.0))?;
            let tls = tokio_rustls::TlsConnector::from(config)
                .connect(name, tcp)
                .await
                .map_err(|e| HttpError::Io(format!("TLS: {e}")))?;
            Ok::<_, HttpError>(Stream::Tls(Box::new(tls)))
        } else {
            Ok(Stream::Plain(tcp))
        }
    };
    let mut stream =
        tokio::time::timeout(CONNECT_TIMEOUT, connect).await.map_err(|_| HttpError::Timeout)??;
    let exchange = async {
        stream.write_all(&bytes).await?;
        let mut raw = Vec::new();
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = stream.read(&mut buf).await?;
            if n == 0 || raw.len() >= MAX_RESPONSE_BYTES {
                break;
            }
            raw.extend_from_slice(buf.get(..n).unwrap_or(&[]));
        }
        Ok::<_, std::io::Error>(raw)
    };
    let raw = tokio::time::timeout(EXCHANGE_TIMEOUT, exchange)
        .await
        .map_err(|_| HttpError::Timeout)?
        .map_err(|e| HttpError::Io(e.to_string()))?;
    parse_response(&raw)
}

enum Stream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl Stream {
    async fn write_all(&mut self, b: &[u8]) -> std::io::Result<()> {
        match self {
            Stream::Plain(s) => s.write_all(b).await,
            Stream::Tls(s) => {
                s.write_all(b).await?;
                s.flush().await
            }
        }
    }

    async fn read(&mut self, b: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(b).await,
            // A server that closes without close_notify still sent a complete answer.
            Stream::Tls(s) => match s.read(b).await {
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(0),
                r => r,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_with_default_and_explicit_ports() {
        let u = Url::parse("https://hooks.slack.com/services/T/B/x?y=1").unwrap();
        assert_eq!(
            (u.tls, u.host.as_str(), u.port, u.path.as_str()),
            (true, "hooks.slack.com", 443, "/services/T/B/x?y=1")
        );
        let u = Url::parse("http://127.0.0.1:8080").unwrap();
        assert_eq!((u.port, u.path.as_str()), (8080, "/"));
        let u = Url::parse("http://[::1]:81/a").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("::1", 81));
        for bad in
            ["ftp://x/", "http://", "http://u@h/", "http://h:99999/", "http://h/a b", "http://h\r\nX: y/"]
        {
            assert!(Url::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn responses_parse_with_length_or_chunks_and_garbage_is_an_error() {
        let r = parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA").unwrap();
        assert_eq!((r.status, r.body.as_slice()), (200, &b"ok"[..]));
        let r = parse_response(
            b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x\r\nde\r\n0\r\n\r\n",
        )
        .unwrap();
        assert_eq!(r.body, b"abcde");
        for bad in [
            &b""[..],
            b"hello\r\n\r\n",
            b"HTTP/1.1 abc\r\n\r\n",
            b"HTTP/1.1 200\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        ] {
            assert!(parse_response(bad).is_err());
        }
    }

    #[test]
    fn random_responses_and_urls_never_panic() {
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let alphabet = b"HTTP/1.1 200\r\n:0123456789abcdefTransfer-Encoding: chunked;Content-Length[]@/";
        for _ in 0..20_000 {
            let len = (next() % 96) as usize;
            let input: Vec<u8> =
                (0..len).map(|_| alphabet[(next() % alphabet.len() as u64) as usize]).collect();
            let _ = parse_response(&input);
            let _ = Url::parse(&format!("http://{}", String::from_utf8_lossy(&input)));
        }
    }

    #[test]
    fn header_values_cannot_inject_lines() {
        let req = Request {
            url: "http://h/p".into(),
            headers: vec![("X-ChatWorkToken".into(), "t\r\nEvil: 1".into())],
            content_type: "application/json".into(),
            body: b"{}".to_vec(),
        };
        let text = String::from_utf8(encode(&req, &Url::parse(&req.url).unwrap())).unwrap();
        assert!(text.contains("X-ChatWorkToken: tEvil: 1\r\n"));
        assert!(text.contains("Content-Length: 2\r\n"));
    }

    #[test]
    fn forms_percent_encode_utf8() {
        assert_eq!(form(&[("body", "留 a&b")]), b"body=%E7%95%99%20a%26b");
    }
}

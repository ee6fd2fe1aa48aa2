//! Test infrastructure for mail: an SMTP server that speaks a real SMTP
//! conversation over TCP (plain, STARTTLS or implicit TLS, with AUTH PLAIN,
//! LOGIN and XOAUTH2) and keeps what it is sent; and a local OAuth 2 token
//! endpoint for service-account (JWT bearer) flows. Self-tests at the end
//! drive both with lettre.

use std::{
    collections::HashMap,
    io,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::Duration,
};

use axum::{
    Json, Router,
    extract::{Form, State, rejection::FormRejection},
    http::{Method, StatusCode},
};
use base64::{Engine as _, engine::general_purpose::STANDARD as BASE64};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Value, json};
use tokio::{
    io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader},
    net::{TcpListener, TcpStream},
    sync::watch,
    task::{JoinHandle, JoinSet},
};
use tokio_rustls::{
    TlsAcceptor,
    rustls::{
        ServerConfig,
        crypto::ring::default_provider,
        pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer},
    },
};

// ---------------------------------------------------------------- SMTP sink

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Security {
    Plain,
    StartTls,
    ImplicitTls,
}

/// One message as the sink received it.
#[derive(Clone, Debug)]
pub struct Delivered {
    pub from: String,
    pub to: Vec<String>,
    /// The DATA, dot-unstuffed, CRLF line ends, without the final `.`.
    pub raw: String,
    /// `"PLAIN user"`, `"LOGIN user"` or `"XOAUTH2 user"`; None without AUTH.
    pub auth: Option<String>,
    pub tls: bool,
}

/// What the connections share with the test.
struct Shared {
    security: Security,
    credentials: Option<(String, String)>,
    /// (user, bearer token) pairs accepted by AUTH XOAUTH2.
    xoauth2: Mutex<Vec<(String, String)>>,
    refuse: AtomicBool,
    delivered: watch::Sender<Vec<Delivered>>,
    acceptor: TlsAcceptor,
}

impl Shared {
    /// AUTH is required once any credential (password or token) is known.
    fn auth_required(&self) -> bool {
        self.credentials.is_some() || !lock(&self.xoauth2).is_empty()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// An SMTP server on 127.0.0.1 that keeps every message it accepts.
/// Dropping it stops the listener and every open connection.
pub struct SmtpSink {
    port: u16,
    certificate_pem: String,
    shared: Arc<Shared>,
    /// How many messages `next_message` has handed out.
    taken: AtomicUsize,
    task: JoinHandle<()>,
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl SmtpSink {
    /// Listens on 127.0.0.1:0. `credentials`: Some((user, password))
    /// requires AUTH (PLAIN and LOGIN; advertised only after TLS when
    /// `security` is StartTls); None accepts mail without AUTH (unless
    /// [`Self::accept_xoauth2`] is called, which also makes AUTH required).
    pub async fn start(security: Security, credentials: Option<(&str, &str)>) -> SmtpSink {
        let certified = rcgen::generate_simple_self_signed(vec![
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
        ])
        .unwrap_or_else(|e| panic!("cannot make a certificate for the SMTP sink: {e}"));
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
            certified.signing_key.serialize_der(),
        ));
        let config = ServerConfig::builder_with_provider(Arc::new(default_provider()))
            .with_safe_default_protocol_versions()
            .and_then(|builder| {
                builder
                    .with_no_client_auth()
                    .with_single_cert(vec![certified.cert.der().clone()], key)
            })
            .unwrap_or_else(|e| panic!("cannot configure TLS for the SMTP sink: {e}"));

        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("the SMTP sink cannot listen: {e}"));
        let port = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("the SMTP sink has no address: {e}"))
            .port();
        let shared = Arc::new(Shared {
            security,
            credentials: credentials.map(|(u, p)| (u.to_owned(), p.to_owned())),
            xoauth2: Mutex::new(Vec::new()),
            refuse: AtomicBool::new(false),
            delivered: watch::Sender::new(Vec::new()),
            acceptor: TlsAcceptor::from(Arc::new(config)),
        });
        let task = tokio::spawn(listen(listener, shared.clone()));
        SmtpSink {
            port,
            certificate_pem: certified.cert.pem(),
            shared,
            taken: AtomicUsize::new(0),
            task,
        }
    }

    /// Also accept AUTH XOAUTH2 for `user` with this bearer token.
    pub fn accept_xoauth2(&self, user: &str, token: &str) {
        lock(&self.shared.xoauth2).push((user.to_owned(), token.to_owned()));
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// PEM of the self-signed certificate (for "localhost" and
    /// "127.0.0.1"), for the client to trust.
    pub fn certificate_pem(&self) -> String {
        self.certificate_pem.clone()
    }

    /// From now on answer `554 5.7.1 Relay access denied` to RCPT TO; false
    /// restores.
    pub fn refuse_recipients(&self, refuse: bool) {
        self.shared.refuse.store(refuse, Ordering::SeqCst);
    }

    /// The next message not yet returned by this method (the first call
    /// returns the first message ever delivered). Waits up to `timeout`.
    pub async fn next_message(&self, timeout: Duration) -> Delivered {
        let index = self.taken.load(Ordering::SeqCst);
        let mut receiver = self.shared.delivered.subscribe();
        let waited =
            tokio::time::timeout(timeout, receiver.wait_for(|all| all.len() > index)).await;
        match waited {
            Ok(Ok(all)) => {
                self.taken.store(index + 1, Ordering::SeqCst);
                all[index].clone()
            }
            _ => panic!(
                "the SMTP sink on port {} received no message #{} within {timeout:?} \
                 ({} delivered in all)",
                self.port,
                index + 1,
                self.shared.delivered.borrow().len()
            ),
        }
    }

    /// Every message delivered so far, oldest first.
    pub fn delivered(&self) -> Vec<Delivered> {
        self.shared.delivered.borrow().clone()
    }
}

/// Accepts connections until aborted; dropping the set ends them all.
async fn listen(listener: TcpListener, shared: Arc<Shared>) {
    let mut connections = JoinSet::new();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        while connections.try_join_next().is_some() {}
        connections.spawn(serve(stream, shared.clone()));
    }
}

/// One connection; errors (a client hanging up, a failed handshake) only
/// end it.
async fn serve(tcp: TcpStream, shared: Arc<Shared>) -> io::Result<()> {
    if shared.security == Security::ImplicitTls {
        let mut tls = shared.acceptor.accept(tcp).await?;
        converse(&mut tls, &shared, true, true).await?;
        return Ok(());
    }
    let mut tcp = tcp;
    if converse(&mut tcp, &shared, false, true).await? == Ended::StartTls {
        // RFC 3207: forget everything; the client greets again.
        let mut tls = shared.acceptor.accept(tcp).await?;
        converse(&mut tls, &shared, true, false).await?;
    }
    Ok(())
}

#[derive(Debug, PartialEq, Eq)]
enum Ended {
    Quit,
    StartTls,
}

/// Reads a line (CRLF kept); None at end of stream.
async fn read_line<S: AsyncRead + Unpin>(reader: &mut BufReader<S>) -> io::Result<Option<Vec<u8>>> {
    let mut line = Vec::new();
    let read = reader.read_until(b'\n', &mut line).await?;
    Ok((read > 0).then_some(line))
}

async fn reply<S: AsyncWrite + Unpin>(stream: &mut S, text: &str) -> io::Result<()> {
    stream.write_all(format!("{text}\r\n").as_bytes()).await?;
    stream.flush().await
}

/// The address inside `<...>` after `FROM:` / `TO:`.
fn path_argument(argument: &str) -> Option<String> {
    let start = argument.find('<')?;
    let end = argument[start..].find('>')? + start;
    Some(argument[start + 1..end].to_owned())
}

fn decode_base64_line(line: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(line).ok()?.trim();
    String::from_utf8(BASE64.decode(text).ok()?).ok()
}

/// The SMTP conversation on one stream, until QUIT, the end of the stream
/// or STARTTLS (the caller then upgrades the stream and calls again).
async fn converse<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    shared: &Shared,
    tls: bool,
    greet: bool,
) -> io::Result<Ended> {
    let mut stream = BufReader::new(stream);
    if greet {
        reply(&mut stream, "220 localhost ESMTP Usher test sink").await?;
    }
    let auth_offered = || shared.auth_required() && (tls || shared.security != Security::StartTls);
    let mut greeted = false;
    let mut auth: Option<String> = None;
    let mut from: Option<String> = None;
    let mut to: Vec<String> = Vec::new();

    while let Some(line) = read_line(&mut stream).await? {
        let line = String::from_utf8_lossy(&line);
        let line = line.trim_end_matches(['\r', '\n']);
        let (verb, argument) = line.split_once(' ').unwrap_or((line, ""));
        match verb.to_ascii_uppercase().as_str() {
            "EHLO" => {
                greeted = true;
                (from, to) = (None, Vec::new());
                let mut lines = vec![format!("localhost greets {argument}")];
                lines.push("SIZE 10485760".into());
                lines.push("8BITMIME".into());
                if shared.security == Security::StartTls && !tls {
                    lines.push("STARTTLS".into());
                }
                if auth_offered() {
                    lines.push("AUTH PLAIN LOGIN XOAUTH2".into());
                }
                let last = lines.len() - 1;
                for (i, text) in lines.iter().enumerate() {
                    let separator = if i == last { ' ' } else { '-' };
                    stream
                        .write_all(format!("250{separator}{text}\r\n").as_bytes())
                        .await?;
                }
                stream.flush().await?;
            }
            "HELO" => {
                greeted = true;
                (from, to) = (None, Vec::new());
                reply(&mut stream, "250 localhost").await?;
            }
            "STARTTLS" => {
                if tls {
                    reply(&mut stream, "503 5.5.1 TLS already active").await?;
                } else if shared.security != Security::StartTls {
                    reply(&mut stream, "454 4.7.0 TLS not available").await?;
                } else {
                    reply(&mut stream, "220 2.0.0 Ready to start TLS").await?;
                    return Ok(Ended::StartTls);
                }
            }
            "AUTH" => {
                if !greeted || !auth_offered() || auth.is_some() {
                    reply(&mut stream, "503 5.5.1 AUTH not allowed now").await?;
                    continue;
                }
                let (mechanism, initial) = argument.split_once(' ').unwrap_or((argument, ""));
                let mechanism = mechanism.to_ascii_uppercase();
                match authenticate(&mut stream, shared, &mechanism, initial).await? {
                    Some(user) => {
                        auth = Some(format!("{mechanism} {user}"));
                        reply(&mut stream, "235 2.7.0 Authentication successful").await?;
                    }
                    None => {
                        reply(&mut stream, "535 5.7.8 Authentication credentials invalid").await?;
                    }
                }
            }
            "MAIL" => {
                if !greeted {
                    reply(&mut stream, "503 5.5.1 Say EHLO first").await?;
                } else if shared.auth_required() && auth.is_none() {
                    reply(&mut stream, "530 5.7.0 Authentication required").await?;
                } else if let Some(address) = path_argument(argument) {
                    (from, to) = (Some(address), Vec::new());
                    reply(&mut stream, "250 2.1.0 Ok").await?;
                } else {
                    reply(&mut stream, "501 5.5.4 Syntax: MAIL FROM:<address>").await?;
                }
            }
            "RCPT" => {
                if from.is_none() {
                    reply(&mut stream, "503 5.5.1 Need MAIL first").await?;
                } else if shared.refuse.load(Ordering::SeqCst) {
                    reply(&mut stream, "554 5.7.1 Relay access denied").await?;
                } else if let Some(address) = path_argument(argument) {
                    to.push(address);
                    reply(&mut stream, "250 2.1.5 Ok").await?;
                } else {
                    reply(&mut stream, "501 5.5.4 Syntax: RCPT TO:<address>").await?;
                }
            }
            "DATA" => {
                let Some(sender) = from.take().filter(|_| !to.is_empty()) else {
                    reply(&mut stream, "503 5.5.1 Need RCPT first").await?;
                    continue;
                };
                reply(&mut stream, "354 End data with <CR><LF>.<CR><LF>").await?;
                let mut raw = Vec::new();
                loop {
                    let Some(line) = read_line(&mut stream).await? else {
                        return Ok(Ended::Quit);
                    };
                    if line == b".\r\n" || line == b".\n" {
                        break;
                    }
                    let unstuffed = line.strip_prefix(b".").unwrap_or(&line);
                    raw.extend_from_slice(unstuffed);
                }
                let message = Delivered {
                    from: sender,
                    to: std::mem::take(&mut to),
                    raw: String::from_utf8_lossy(&raw).into_owned(),
                    auth: auth.clone(),
                    tls,
                };
                shared.delivered.send_modify(|all| all.push(message));
                reply(&mut stream, "250 2.0.0 Ok: queued").await?;
            }
            "RSET" => {
                (from, to) = (None, Vec::new());
                reply(&mut stream, "250 2.0.0 Ok").await?;
            }
            "NOOP" => reply(&mut stream, "250 2.0.0 Ok").await?,
            "QUIT" => {
                reply(&mut stream, "221 2.0.0 Bye").await?;
                return Ok(Ended::Quit);
            }
            _ => reply(&mut stream, "500 5.5.2 Command not recognized").await?,
        }
    }
    Ok(Ended::Quit)
}

/// Runs one AUTH exchange; the user on success, None on failure.
async fn authenticate<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut BufReader<S>,
    shared: &Shared,
    mechanism: &str,
    initial: &str,
) -> io::Result<Option<String>> {
    /// The initial response, or the client's answer to an empty challenge.
    async fn response<S: AsyncRead + AsyncWrite + Unpin>(
        stream: &mut BufReader<S>,
        initial: &str,
        challenge: &str,
    ) -> io::Result<Option<String>> {
        if !initial.is_empty() && initial != "=" {
            return Ok(decode_base64_line(initial.as_bytes()));
        }
        reply(stream, &format!("334 {}", BASE64.encode(challenge))).await?;
        Ok(read_line(stream)
            .await?
            .and_then(|line| decode_base64_line(&line)))
    }

    let password_ok = |user: &str, password: &str| {
        shared
            .credentials
            .as_ref()
            .is_some_and(|(u, p)| u == user && p == password)
    };
    let user = match mechanism {
        "PLAIN" => {
            // authzid NUL authcid NUL password
            let decoded = response(stream, initial, "").await?.unwrap_or_default();
            let fields: Vec<&str> = decoded.split('\0').collect();
            match fields.as_slice() {
                [_, user, password] if password_ok(user, password) => Some((*user).to_owned()),
                _ => None,
            }
        }
        "LOGIN" => {
            let user = response(stream, initial, "Username:")
                .await?
                .unwrap_or_default();
            let password = response(stream, "", "Password:").await?.unwrap_or_default();
            password_ok(&user, &password).then_some(user)
        }
        "XOAUTH2" => {
            // "user=" user ^A "auth=Bearer " token ^A ^A
            let decoded = response(stream, initial, "").await?.unwrap_or_default();
            let mut user = None;
            let mut token = None;
            for field in decoded.split('\x01') {
                if let Some(value) = field.strip_prefix("user=") {
                    user = Some(value.to_owned());
                } else if let Some(value) = field.strip_prefix("auth=Bearer ") {
                    token = Some(value.to_owned());
                }
            }
            match (user, token) {
                (Some(user), Some(token))
                    if lock(&shared.xoauth2)
                        .iter()
                        .any(|(u, t)| *u == user && *t == token) =>
                {
                    Some(user)
                }
                _ => None,
            }
        }
        _ => None,
    };
    Ok(user)
}

// ------------------------------------------------------- reading a message

/// Splits a MIME entity into unfolded headers and its body.
fn split_entity(entity: &str) -> (Vec<(String, String)>, String) {
    let mut headers: Vec<(String, String)> = Vec::new();
    let mut lines = entity
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l));
    for line in lines.by_ref() {
        if line.is_empty() {
            break;
        }
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = headers.last_mut() {
                value.push(' ');
                value.push_str(line.trim());
            }
        } else if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_owned(), value.trim().to_owned()));
        }
    }
    (headers, lines.collect::<Vec<_>>().join("\r\n"))
}

fn find_header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// A parameter of a header value, e.g. `boundary` of Content-Type.
fn header_parameter(value: &str, name: &str) -> Option<String> {
    value.split(';').skip(1).find_map(|parameter| {
        let (key, value) = parameter.split_once('=')?;
        key.trim()
            .eq_ignore_ascii_case(name)
            .then(|| value.trim().trim_matches('"').to_owned())
    })
}

/// Decodes quoted-printable (soft line breaks removed).
fn decode_quoted_printable(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' {
            if bytes[i + 1..].starts_with(b"\r\n") {
                i += 3;
                continue;
            }
            if bytes[i + 1..].starts_with(b"\n") {
                i += 2;
                continue;
            }
            if let Some(byte) = bytes
                .get(i + 1..i + 3)
                .and_then(|hex| std::str::from_utf8(hex).ok())
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
            {
                out.push(byte);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

/// Decodes RFC 2047 encoded-words (`=?charset?B|Q?text?=`), joining
/// adjacent ones; charsets other than UTF-8/ASCII are read as UTF-8.
fn decode_encoded_words(value: &str) -> String {
    fn word(text: &str) -> Option<(Vec<u8>, usize)> {
        let inner = text.strip_prefix("=?")?;
        let (_charset, rest) = inner.split_once('?')?;
        let (encoding, rest) = rest.split_once('?')?;
        let end = rest.find("?=")?;
        let payload = &rest[..end];
        if payload.contains(' ') {
            return None;
        }
        let decoded = match encoding {
            "B" | "b" => BASE64.decode(payload).ok()?,
            "Q" | "q" => decode_quoted_printable(&payload.replace('_', " ")),
            _ => return None,
        };
        let length = text.len() - rest.len() + end + 2;
        Some((decoded, length))
    }

    let mut out = Vec::new();
    let mut rest = value;
    let mut after_word = false;
    while let Some(start) = rest.find("=?") {
        let (before, candidate) = rest.split_at(start);
        match word(candidate) {
            Some((decoded, length)) => {
                if !(after_word && before.trim().is_empty()) {
                    out.extend_from_slice(before.as_bytes());
                }
                out.extend_from_slice(&decoded);
                rest = &candidate[length..];
                after_word = true;
            }
            None => {
                out.extend_from_slice(before.as_bytes());
                out.extend_from_slice(b"=?");
                rest = &candidate[2..];
                after_word = false;
            }
        }
    }
    out.extend_from_slice(rest.as_bytes());
    String::from_utf8_lossy(&out).into_owned()
}

/// Every leaf part of a MIME entity as (lower-case media type, decoded text).
fn leaf_parts(entity: &str) -> Vec<(String, String)> {
    let (headers, body) = split_entity(entity);
    let content_type = find_header(&headers, "Content-Type").unwrap_or("text/plain");
    let media_type = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if media_type.starts_with("multipart/") {
        let Some(boundary) = header_parameter(content_type, "boundary") else {
            return Vec::new();
        };
        let delimiter = format!("--{boundary}");
        let mut parts = Vec::new();
        let mut current: Option<Vec<&str>> = None;
        for line in body.split("\r\n") {
            if line.trim_end() == delimiter || line.trim_end() == format!("{delimiter}--") {
                if let Some(lines) = current.take() {
                    parts.extend(leaf_parts(&lines.join("\r\n")));
                }
                if line.trim_end() != delimiter {
                    break;
                }
                current = Some(Vec::new());
            } else if let Some(lines) = current.as_mut() {
                lines.push(line);
            }
        }
        return parts;
    }
    let encoding = find_header(&headers, "Content-Transfer-Encoding")
        .unwrap_or("7bit")
        .to_ascii_lowercase();
    let bytes = match encoding.as_str() {
        "quoted-printable" => decode_quoted_printable(&body),
        "base64" => {
            let compact: String = body.split_whitespace().collect();
            BASE64.decode(compact).unwrap_or_default()
        }
        _ => body.into_bytes(),
    };
    vec![(media_type, String::from_utf8_lossy(&bytes).into_owned())]
}

/// The URLs (http and https) in a text, HTML entities for `&` and quotes
/// unescaped, trailing punctuation dropped.
fn urls(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(start) = ["http://", "https://"]
        .iter()
        .filter_map(|scheme| rest.find(scheme))
        .min()
    {
        let candidate = &rest[start..];
        let end = candidate
            .find(|c: char| c.is_whitespace() || "\"'<>()[]".contains(c))
            .unwrap_or(candidate.len());
        let url = candidate[..end].trim_end_matches(['.', ',', ';', ':', '!', '?']);
        found.push(
            url.replace("&amp;", "&")
                .replace("&#38;", "&")
                .replace("&#x3D;", "=")
                .replace("&#61;", "="),
        );
        rest = &candidate[end.max(1)..];
    }
    found
}

impl Delivered {
    fn headers(&self) -> Vec<(String, String)> {
        split_entity(&self.raw).0
    }

    /// The first header of that name (case-insensitive), unfolded, with
    /// RFC 2047 encoded-words decoded.
    pub fn header(&self, name: &str) -> Option<String> {
        find_header(&self.headers(), name).map(decode_encoded_words)
    }

    fn part(&self, media_type: &str) -> String {
        leaf_parts(&self.raw)
            .into_iter()
            .find(|(t, _)| t == media_type)
            .map(|(_, text)| text)
            .unwrap_or_default()
    }

    /// The decoded text/plain part ("" when there is none).
    pub fn text(&self) -> String {
        self.part("text/plain")
    }

    /// The decoded text/html part ("" when there is none).
    pub fn html(&self) -> String {
        self.part("text/html")
    }

    /// The first URL in the text part, then the HTML part, that contains
    /// `needle`; decoded (no soft line breaks, `&amp;` unescaped).
    pub fn link(&self, needle: &str) -> Option<String> {
        [self.text(), self.html()]
            .iter()
            .flat_map(|text| urls(text))
            .find(|url| url.contains(needle))
    }
}

// ---------------------------------------------------------- token endpoint

/// A local OAuth 2 token endpoint for two-legged service-account flows
/// (RFC 7523 JWT bearer grant), with its own RSA key pair.
pub struct TokenEndpoint {
    url: String,
    private_key_pem: String,
    accepted: Arc<Mutex<Vec<(Value, String)>>>,
    issue: Arc<Mutex<Option<String>>>,
    task: JoinHandle<()>,
}

impl Drop for TokenEndpoint {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct TokenState {
    url: String,
    public_key: DecodingKey,
    accepted: Arc<Mutex<Vec<(Value, String)>>>,
    issue: Arc<Mutex<Option<String>>>,
}

/// Makes a 2048-bit RSA key pair: (PKCS#8 private PEM, SPKI public PEM).
fn rsa_key_pair() -> (String, String) {
    use rsa::pkcs8::{EncodePrivateKey as _, EncodePublicKey as _, LineEnding};
    let private = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048)
        .unwrap_or_else(|e| panic!("cannot generate an RSA key: {e}"));
    let private_pem = private
        .to_pkcs8_pem(LineEnding::LF)
        .unwrap_or_else(|e| panic!("cannot encode the RSA key: {e}"));
    let public_pem = private
        .to_public_key()
        .to_public_key_pem(LineEnding::LF)
        .unwrap_or_else(|e| panic!("cannot encode the RSA public key: {e}"));
    (private_pem.to_string(), public_pem)
}

async fn token(
    State(state): State<Arc<TokenState>>,
    method: Method,
    form: Result<Form<HashMap<String, String>>, FormRejection>,
) -> (StatusCode, Json<Value>) {
    let invalid = (
        StatusCode::BAD_REQUEST,
        Json(json!({"error": "invalid_grant"})),
    );
    let Ok(Form(form)) = form else {
        return invalid;
    };
    let grant_type = form.get("grant_type").map(String::as_str);
    if method != Method::POST || grant_type != Some("urn:ietf:params:oauth:grant-type:jwt-bearer") {
        return invalid;
    }
    let Some(assertion) = form.get("assertion") else {
        return invalid;
    };
    let mut validation = Validation::new(Algorithm::RS256);
    validation.leeway = 0;
    validation.set_audience(&[&state.url]);
    validation.set_required_spec_claims(&["exp", "aud"]);
    let Ok(data) = jsonwebtoken::decode::<Value>(assertion, &state.public_key, &validation) else {
        return invalid;
    };
    let access_token = lock(&state.issue)
        .clone()
        .unwrap_or_else(|| format!("ya29.test-{}", hex::encode(rand::random::<[u8; 24]>())));
    lock(&state.accepted).push((data.claims, access_token.clone()));
    (
        StatusCode::OK,
        Json(json!({
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": 3600,
        })),
    )
}

impl TokenEndpoint {
    /// Starts on 127.0.0.1:0 with a fresh key pair; answers POST /token.
    pub async fn start() -> TokenEndpoint {
        let (private_key_pem, public_key_pem) = tokio::task::spawn_blocking(rsa_key_pair)
            .await
            .unwrap_or_else(|e| panic!("RSA key generation failed: {e}"));
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("the token endpoint cannot listen: {e}"));
        let port = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("the token endpoint has no address: {e}"))
            .port();
        let url = format!("http://127.0.0.1:{port}/token");
        let accepted = Arc::new(Mutex::new(Vec::new()));
        let issue = Arc::new(Mutex::new(None));
        let state = Arc::new(TokenState {
            issue: issue.clone(),
            url: url.clone(),
            public_key: DecodingKey::from_rsa_pem(public_key_pem.as_bytes())
                .unwrap_or_else(|e| panic!("cannot read the RSA public key: {e}")),
            accepted: accepted.clone(),
        });
        let invalid = || async {
            (
                StatusCode::BAD_REQUEST,
                Json(json!({"error": "invalid_grant"})),
            )
        };
        let app = Router::new()
            .route("/token", axum::routing::any(token))
            .fallback(invalid)
            .with_state(state);
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        TokenEndpoint {
            url,
            private_key_pem,
            accepted,
            issue,
            task,
        }
    }

    /// `http://127.0.0.1:PORT/token`; also the `aud` assertions must carry.
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// From now on, issue this access token (so an SMTP sink can expect it).
    pub fn issue(&self, token: &str) {
        *lock(&self.issue) = Some(token.to_owned());
    }

    /// The service account's private key as PKCS#8 PEM.
    pub fn private_key_pem(&self) -> String {
        self.private_key_pem.clone()
    }

    /// The claims of every assertion accepted, with the token issued for it.
    pub fn accepted(&self) -> Vec<(Value, String)> {
        lock(&self.accepted).clone()
    }
}

// -------------------------------------------------------------- self-tests

use lettre::{
    AsyncSmtpTransport, AsyncTransport as _, Message, Tokio1Executor,
    message::{MultiPart, SinglePart, header::ContentTransferEncoding, header::ContentType},
    transport::smtp::{
        authentication::{Credentials, Mechanism},
        client::{Certificate, Tls, TlsParameters},
    },
};

use crate::harness::TestResult;

const WAIT: Duration = Duration::from_secs(5);
/// Longer than a quoted-printable line (76), with an `&` that HTML escapes.
const LONG_LINK: &str = "https://usher.example.com/signup?token=eyJhbGciOiJIUzI1NiJ9.\
     eyJpbnZpdGVySWQiOiIwMTk1ZjAwMC0wMDAwLTcwMDAtODAwMC0wMDAwMDAwMDAwMDAifQ.c2lnbmF0dXJl\
     &inviterId=0195f000-0000-7000-8000-000000000000";

fn trusting(sink: &SmtpSink) -> Result<TlsParameters, Box<dyn std::error::Error>> {
    Ok(TlsParameters::builder("localhost".into())
        .add_root_certificate(Certificate::from_pem(sink.certificate_pem().as_bytes())?)
        .build_rustls()?)
}

fn mailer(sink: &SmtpSink, tls: Tls) -> lettre::transport::smtp::AsyncSmtpTransportBuilder {
    AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("localhost")
        .port(sink.port())
        .tls(tls)
        .timeout(Some(WAIT))
}

/// An invitation like the server's: text and HTML, the HTML in
/// quoted-printable, a non-ASCII subject.
fn invitation(
    html_encoding: ContentTransferEncoding,
) -> Result<Message, Box<dyn std::error::Error>> {
    let html = format!(
        "<p>Grüße! <a href=\"{}\">Accept the invitation</a></p>",
        LONG_LINK.replace('&', "&amp;")
    );
    Ok(Message::builder()
        .from("Usher <usher@example.com>".parse()?)
        .to("new.member@example.com".parse()?)
        .subject("Einladung zu Usher – bitte bestätigen")
        .multipart(
            MultiPart::alternative()
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_PLAIN)
                        .body(format!("Accept the invitation: {LONG_LINK}\n")),
                )
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_HTML)
                        .header(html_encoding)
                        .body(html),
                ),
        )?)
}

#[tokio::test]
async fn plain_smtp_with_auth_plain_delivers_a_message_whose_long_link_survives_quoted_printable()
-> TestResult {
    let sink = SmtpSink::start(Security::Plain, Some(("mailer", "s3cret"))).await;
    let transport = mailer(&sink, Tls::None)
        .credentials(Credentials::new("mailer".into(), "s3cret".into()))
        .build();
    transport
        .send(invitation(ContentTransferEncoding::QuotedPrintable)?)
        .await?;

    let message = sink.next_message(WAIT).await;
    assert!(!message.tls);
    assert_eq!(message.auth.as_deref(), Some("PLAIN mailer"));
    assert_eq!(message.from, "usher@example.com");
    assert_eq!(message.to, ["new.member@example.com"]);
    assert!(
        message.raw.contains("=\r\n"),
        "expected soft line breaks: {}",
        message.raw
    );
    assert_eq!(
        message.header("Subject").as_deref(),
        Some("Einladung zu Usher – bitte bestätigen")
    );
    assert!(
        message
            .header("From")
            .is_some_and(|f| f.contains("usher@example.com"))
    );
    assert!(message.html().contains("Grüße!"));
    assert!(
        message
            .text()
            .starts_with("Accept the invitation: https://")
    );
    assert_eq!(message.link("/signup?token=").as_deref(), Some(LONG_LINK));
    let html_only = Delivered {
        raw: message.raw.replace("text/plain", "text/x-ignored"),
        ..message.clone()
    };
    assert_eq!(html_only.link("/signup?token=").as_deref(), Some(LONG_LINK));
    assert_eq!(sink.delivered().len(), 1);
    Ok(())
}

#[tokio::test]
async fn starttls_offers_auth_only_after_the_upgrade_and_records_auth_login() -> TestResult {
    let sink = SmtpSink::start(Security::StartTls, Some(("mailer", "s3cret"))).await;

    // Before the upgrade: STARTTLS offered, AUTH not, and no mail without it.
    let tcp = TcpStream::connect(("127.0.0.1", sink.port())).await?;
    let mut client = BufReader::new(tcp);
    let mut said = String::new();
    client.read_line(&mut said).await?;
    assert!(said.starts_with("220 "), "{said}");
    client.write_all(b"EHLO test\r\n").await?;
    let mut ehlo = String::new();
    loop {
        let mut line = String::new();
        client.read_line(&mut line).await?;
        ehlo.push_str(&line);
        if !line.starts_with("250-") {
            break;
        }
    }
    assert!(
        ehlo.contains("250-STARTTLS") || ehlo.contains("250 STARTTLS"),
        "{ehlo}"
    );
    assert!(!ehlo.contains("AUTH"), "{ehlo}");
    client.write_all(b"MAIL FROM:<a@example.com>\r\n").await?;
    said.clear();
    client.read_line(&mut said).await?;
    assert!(said.starts_with("530 "), "{said}");
    drop(client);

    let transport = mailer(&sink, Tls::Required(trusting(&sink)?))
        .credentials(Credentials::new("mailer".into(), "s3cret".into()))
        .authentication(vec![Mechanism::Login])
        .build();
    transport
        .send(invitation(ContentTransferEncoding::Base64)?)
        .await?;
    let message = sink.next_message(WAIT).await;
    assert!(message.tls);
    assert_eq!(message.auth.as_deref(), Some("LOGIN mailer"));
    assert!(message.html().contains("Grüße!"));
    assert_eq!(message.link("inviterId=").as_deref(), Some(LONG_LINK));
    Ok(())
}

#[tokio::test]
async fn implicit_tls_delivers_with_auth_plain_and_refuses_a_wrong_password() -> TestResult {
    let sink = SmtpSink::start(Security::ImplicitTls, Some(("mailer", "s3cret"))).await;
    let wrong = mailer(&sink, Tls::Wrapper(trusting(&sink)?))
        .credentials(Credentials::new("mailer".into(), "guess".into()))
        .build();
    let error = wrong
        .send(invitation(ContentTransferEncoding::QuotedPrintable)?)
        .await
        .err()
        .ok_or("a wrong password was accepted")?;
    assert!(error.to_string().contains("535"), "{error}");

    let transport = mailer(&sink, Tls::Wrapper(trusting(&sink)?))
        .credentials(Credentials::new("mailer".into(), "s3cret".into()))
        .build();
    transport
        .send(invitation(ContentTransferEncoding::QuotedPrintable)?)
        .await?;
    let message = sink.next_message(WAIT).await;
    assert!(message.tls);
    assert_eq!(message.auth.as_deref(), Some("PLAIN mailer"));
    assert_eq!(message.link("/signup?token=").as_deref(), Some(LONG_LINK));
    assert_eq!(sink.delivered().len(), 1);
    Ok(())
}

#[tokio::test]
async fn xoauth2_logs_in_with_a_token_from_the_jwt_bearer_endpoint() -> TestResult {
    let endpoint = TokenEndpoint::start().await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let claims = json!({
        "iss": "usher@project.iam.gserviceaccount.com",
        "sub": "owner@example.com",
        "scope": "https://mail.google.com/",
        "aud": endpoint.url(),
        "iat": now,
        "exp": now + 3600,
    });
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(endpoint.private_key_pem().as_bytes())?;
    let assertion =
        jsonwebtoken::encode(&jsonwebtoken::Header::new(Algorithm::RS256), &claims, &key)?;

    // reqwest has rustls without a provider here: give it one explicitly.
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(default_provider()))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    let http = reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .build()?;
    let exchange = |assertion: String| {
        http.post(endpoint.url()).form(&[
            (
                "grant_type",
                "urn:ietf:params:oauth:grant-type:jwt-bearer".to_owned(),
            ),
            ("assertion", assertion),
        ])
    };

    let expired = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(Algorithm::RS256),
        &json!({"aud": endpoint.url(), "exp": now - 10}),
        &key,
    )?;
    let refused = exchange(expired).send().await?;
    assert_eq!(refused.status(), reqwest::StatusCode::BAD_REQUEST);
    assert_eq!(
        refused.json::<Value>().await?,
        json!({"error": "invalid_grant"})
    );
    let elsewhere = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(Algorithm::RS256),
        &json!({"aud": "https://oauth2.googleapis.com/token", "exp": now + 60}),
        &key,
    )?;
    let refused = exchange(elsewhere).send().await?;
    assert_eq!(refused.status(), reqwest::StatusCode::BAD_REQUEST);

    let answer: Value = exchange(assertion)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    assert_eq!(answer["token_type"], "Bearer");
    assert_eq!(answer["expires_in"], 3600);
    let token = answer["access_token"]
        .as_str()
        .ok_or("no access_token")?
        .to_owned();
    let accepted = endpoint.accepted();
    assert_eq!(accepted.len(), 1);
    assert_eq!(accepted[0].0["sub"], "owner@example.com");
    assert_eq!(accepted[0].1, token);

    let sink = SmtpSink::start(Security::StartTls, None).await;
    sink.accept_xoauth2("owner@example.com", &token);
    let transport = mailer(&sink, Tls::Required(trusting(&sink)?))
        .credentials(Credentials::new("owner@example.com".into(), token))
        .authentication(vec![Mechanism::Xoauth2])
        .build();
    transport
        .send(invitation(ContentTransferEncoding::QuotedPrintable)?)
        .await?;
    let message = sink.next_message(WAIT).await;
    assert!(message.tls);
    assert_eq!(message.auth.as_deref(), Some("XOAUTH2 owner@example.com"));
    Ok(())
}

#[tokio::test]
async fn refused_recipients_make_the_send_fail_with_relay_access_denied() -> TestResult {
    let sink = SmtpSink::start(Security::Plain, None).await;
    let transport = mailer(&sink, Tls::None).build();

    sink.refuse_recipients(true);
    let error = transport
        .send(invitation(ContentTransferEncoding::QuotedPrintable)?)
        .await
        .err()
        .ok_or("the refused recipient was accepted")?;
    assert!(error.to_string().contains("Relay access denied"), "{error}");
    assert!(sink.delivered().is_empty());

    sink.refuse_recipients(false);
    transport
        .send(invitation(ContentTransferEncoding::QuotedPrintable)?)
        .await?;
    let message = sink.next_message(WAIT).await;
    assert_eq!(message.auth, None);
    assert!(!message.tls);
    Ok(())
}

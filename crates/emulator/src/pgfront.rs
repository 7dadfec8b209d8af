//! The emulated Lakebase's Postgres front: the address clients reach as "the Lakebase host".
//!
//! Lakebase accepts any unexpired OAuth token it issued as the password of the token's own role,
//! over TLS only, and checks the token only at login (`shared/UPSTREAM.md` §5). Postgres cannot do
//! that by itself (a role has one password), so this front does the login and Postgres does the
//! rest:
//!
//! 1. It answers `SSLRequest` with `S` and terminates TLS with a self-signed certificate
//!    (`GSSENCRequest` gets `N`, as from a server without GSSAPI). A startup message sent in clear
//!    is refused: Lakebase accepts TLS connections only.
//! 2. It asks for a cleartext password (safe inside TLS, and what Lakebase asks for) and checks it
//!    against the tokens the emulator minted: known, JWT-shaped (so not a PAT), not revoked, not
//!    expired, and issued to the principal whose name is the startup `user`. Every refusal sends
//!    Postgres' own `28P01 password authentication failed for user "…"`; the reason is logged
//!    (without the token) for the developer.
//! 3. It logs in to the backend Postgres as that role with a password only the emulator knows
//!    (`lakebase` derives it and keeps the role ready), answering whatever the backend asks: trust,
//!    cleartext, MD5 or SCRAM-SHA-256. A backend with trust auth therefore lets nothing through
//!    that the front refused.
//! 4. From the backend's `AuthenticationOk` on, it pipes bytes both ways without reading them, so
//!    a session outlives its token, as on Lakebase.
//!
//! Routing: a credential minted for an Autoscaling endpoint opens its branch's own database on
//! the backend when the client asks for `databricks_postgres` (see `lakebase::branch_database`);
//! any other credential, and any other database name, goes to the database of that name.
//!
//! Cancel requests are forwarded to the backend unchanged: the key the client holds is the
//! backend's, relayed in `BackendKeyData`. Only protocol 3.0 is spoken at login; a client asking
//! for a newer minor version or `_pq_` options gets `NegotiateProtocolVersion`, as from a server
//! that knows only 3.0.
//!
//! What this module leaves to others: roles, databases and the backend password are `lakebase`'s;
//! tokens are `auth`'s, read here through [`Emulator::database_login`].

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use postgres_protocol::authentication::md5_hash;
use postgres_protocol::authentication::sasl::{ChannelBinding, SCRAM_SHA_256, ScramSha256};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::{TlsAcceptor, TlsConnector};

use crate::auth::LoginRefusal;
use crate::lakebase::{BackendLogin, DATABASE, LakebaseAdmin};
use crate::state::Emulator;

const SSL_REQUEST: u32 = 80_877_103;
const GSSENC_REQUEST: u32 = 80_877_104;
const CANCEL_REQUEST: u32 = 80_877_102;
/// Protocol 3.0, the only version spoken at login.
const PROTOCOL_3_0: u32 = 0x0003_0000;
/// Postgres' own limit on a startup packet (`MAX_STARTUP_PACKET_LENGTH`).
const MAX_STARTUP_BYTES: usize = 10_000;
/// Largest message read during login: a password or an authentication request. Tokens are about
/// 1 KiB; SCRAM messages are smaller.
const MAX_LOGIN_MESSAGE_BYTES: usize = 64 * 1024;
/// How long a client (and the backend) may take to log in, as Postgres' `authentication_timeout`.
const LOGIN_TIMEOUT: Duration = Duration::from_secs(60);

/// SQLSTATEs of the refusals.
const INVALID_PASSWORD: &str = "28P01";
const INVALID_AUTHORIZATION: &str = "28000";
const PROTOCOL_VIOLATION: &str = "08P01";
const CONNECTION_FAILURE: &str = "08006";

/// What a client sees when it starts in clear: Lakebase serves TLS connections only. The text
/// is the one Neon's proxy (which Lakebase Autoscaling descends from) sends; UNCONFIRMED for
/// Lakebase itself (see `docs/emulator.md`).
const INSECURE: &str = "connection is insecure (try using `sslmode=require`)";

/// A byte stream to a client or to the backend, in clear or in TLS.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}
type Stream = Box<dyn Io>;

/// The TLS halves of the front: the server certificate clients see, and the client side of the
/// link to the backend.
#[derive(Clone)]
pub(crate) struct FrontTls {
    acceptor: TlsAcceptor,
    connector: TlsConnector,
    /// The server certificate, PEM, for clients that verify (`sslmode=verify-full`, Node's
    /// default): published in `GET /_emulator/info`.
    pub(crate) certificate_pem: String,
}

impl FrontTls {
    /// A fresh self-signed certificate for `localhost` and the loopback addresses (and `host`),
    /// which `sslmode=require` accepts without verifying, as it does Lakebase's.
    pub(crate) fn new(host: &str) -> Result<Self, String> {
        let mut names = vec![
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
            "::1".to_owned(),
        ];
        if !names.iter().any(|n| n == host) {
            names.push(host.to_owned());
        }
        let generated = rcgen::generate_simple_self_signed(names).map_err(|e| e.to_string())?;
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
            generated.signing_key.serialize_der(),
        ));
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let server = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_no_client_auth()
            .with_single_cert(vec![generated.cert.der().clone()], key)
            .map_err(|e| e.to_string())?;
        let client = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyBackendCertificate(provider)))
            .with_no_client_auth();
        Ok(Self {
            acceptor: TlsAcceptor::from(Arc::new(server)),
            connector: TlsConnector::from(Arc::new(client)),
            certificate_pem: generated.cert.pem(),
        })
    }
}

/// Accepts connections until `stopped` fires; sessions end with the loop.
pub(crate) async fn serve(
    listener: TcpListener,
    emulator: Emulator,
    tls: FrontTls,
    mut stopped: watch::Receiver<()>,
) {
    let mut sessions = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                let _ = stream.set_nodelay(true);
                sessions.spawn(session(stream, emulator.clone(), tls.clone()));
            }
            _ = stopped.changed() => break,
            Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
        }
    }
}

async fn session(stream: TcpStream, emulator: Emulator, tls: FrontTls) {
    let Some(lakebase) = emulator.lakebase.as_ref() else {
        return;
    };
    let login = tokio::time::timeout(LOGIN_TIMEOUT, login(stream, &emulator, lakebase, &tls));
    let (mut client, mut backend) = match login.await {
        Ok(Ok(Some(pair))) => pair,
        Ok(Ok(None)) => return,
        Ok(Err(error)) => {
            tracing::debug!(event = "lakebase.front_session_failed", error = %error);
            return;
        }
        Err(_) => {
            tracing::info!(event = "lakebase.login_timeout");
            return;
        }
    };
    // Ends when either side closes; errors are disconnects, which need no report.
    let _ = tokio::io::copy_bidirectional(&mut client, &mut backend).await;
}

/// The first packet of a connection.
enum Startup {
    Ssl,
    GssEnc,
    /// The whole packet, forwarded as it came.
    Cancel(Vec<u8>),
    Start {
        version: u32,
        params: Vec<(String, String)>,
    },
}

/// Runs the login. `Ok(None)`: the client was refused (and told why) or went away.
async fn login(
    mut tcp: TcpStream,
    emulator: &Emulator,
    lakebase: &LakebaseAdmin,
    tls: &FrontTls,
) -> io::Result<Option<(Stream, Stream)>> {
    let (mut client, secure, startup): (Stream, bool, Startup) = loop {
        match read_startup(&mut tcp).await? {
            Startup::GssEnc => tcp.write_all(b"N").await?,
            Startup::Ssl => {
                tcp.write_all(b"S").await?;
                let mut stream = tls.acceptor.accept(tcp).await?;
                let startup = read_startup(&mut stream).await?;
                break (Box::new(stream), true, startup);
            }
            other => break (Box::new(tcp), false, other),
        }
    };
    let (version, params) = match startup {
        Startup::Cancel(packet) => {
            forward_cancel(lakebase, &packet).await;
            return Ok(None);
        }
        Startup::Ssl | Startup::GssEnc => {
            refuse(
                &mut client,
                PROTOCOL_VIOLATION,
                "unexpected encryption request",
            )
            .await;
            return Ok(None);
        }
        Startup::Start { version, params } => (version, params),
    };
    if !secure {
        tracing::info!(event = "lakebase.login_refused", reason = "no TLS");
        refuse(&mut client, INVALID_AUTHORIZATION, INSECURE).await;
        return Ok(None);
    }
    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let Some(user) = param("user").filter(|u| !u.is_empty()) else {
        refuse(
            &mut client,
            INVALID_AUTHORIZATION,
            "no PostgreSQL user name specified in startup packet",
        )
        .await;
        return Ok(None);
    };
    let database = param("database")
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| user.clone());
    negotiate_version(&mut client, version, &params).await?;

    // AuthenticationCleartextPassword, then the client's PasswordMessage.
    client.write_all(&[b'R', 0, 0, 0, 8, 0, 0, 0, 3]).await?;
    let Some((tag, body)) = read_message(&mut client).await? else {
        // libpq hangs up here when it has no password, to ask the user and reconnect.
        return Ok(None);
    };
    if tag != b'p' {
        refuse(
            &mut client,
            PROTOCOL_VIOLATION,
            "expected a password message",
        )
        .await;
        return Ok(None);
    }
    let password = cstr(&body).unwrap_or_default();
    let branch = match emulator.database_login(&user, &password) {
        Ok(branch) => branch,
        Err(reason) => {
            tracing::info!(event = "lakebase.login_refused", role = %user, reason = reason.as_str());
            let message = format!("password authentication failed for user \"{user}\"");
            refuse(&mut client, INVALID_PASSWORD, &message).await;
            return Ok(None);
        }
    };
    let target = match (&branch, database.as_str()) {
        (Some(branch), DATABASE) => crate::lakebase::branch_database(branch),
        _ => database.clone(),
    };
    let backend_login = match lakebase.prepare(&user, &target).await {
        Ok(login) => login,
        Err(error) => {
            tracing::warn!(event = "lakebase.prepare_failed", role = %user, error = %error);
            refuse(&mut client, CONNECTION_FAILURE, &error.to_string()).await;
            return Ok(None);
        }
    };
    let forwarded: Vec<(String, String)> = params
        .into_iter()
        .filter(|(k, _)| k != "user" && k != "database" && !k.starts_with("_pq_."))
        .collect();
    match connect_backend(lakebase, tls, &backend_login, &target, &forwarded).await {
        Ok(Backend::Ready(backend)) => {
            // AuthenticationOk: from here on the backend speaks to the client directly.
            client.write_all(&[b'R', 0, 0, 0, 8, 0, 0, 0, 0]).await?;
            tracing::debug!(event = "lakebase.login", role = %user, database = %target);
            Ok(Some((client, backend)))
        }
        Ok(Backend::Refused(error_response)) => {
            client.write_all(&error_response).await?;
            Ok(None)
        }
        Err(error) => {
            tracing::warn!(event = "lakebase.backend_failed", role = %user, error = %error);
            let message = format!("cannot reach the Lakebase backend: {error}");
            refuse(&mut client, CONNECTION_FAILURE, &message).await;
            Ok(None)
        }
    }
}

/// Tells a client that asked for protocol 3.x (x > 0) or `_pq_` options that this server speaks
/// 3.0 without them, as Postgres does.
async fn negotiate_version(
    client: &mut Stream,
    version: u32,
    params: &[(String, String)],
) -> io::Result<()> {
    let options: Vec<&str> = params
        .iter()
        .map(|(k, _)| k.as_str())
        .filter(|k| k.starts_with("_pq_."))
        .collect();
    if version == PROTOCOL_3_0 && options.is_empty() {
        return Ok(());
    }
    let mut body = Vec::new();
    body.extend_from_slice(&PROTOCOL_3_0.to_be_bytes());
    body.extend_from_slice(&u32::try_from(options.len()).unwrap_or(0).to_be_bytes());
    for option in options {
        body.extend_from_slice(option.as_bytes());
        body.push(0);
    }
    client.write_all(&message(b'v', &body)).await
}

/// What the backend said to the login.
enum Backend {
    /// Logged in; the backend's `AuthenticationOk` was consumed and the rest is unread.
    Ready(Stream),
    /// The backend's `ErrorResponse`, whole, for the client.
    Refused(Vec<u8>),
}

async fn connect_backend(
    lakebase: &LakebaseAdmin,
    tls: &FrontTls,
    login: &BackendLogin,
    database: &str,
    params: &[(String, String)],
) -> io::Result<Backend> {
    let (host, port) = lakebase.backend_address();
    let mut tcp = TcpStream::connect((host, port)).await?;
    let _ = tcp.set_nodelay(true);
    // sslmode=prefer: TLS when the backend offers it (a private cluster requires it), else clear.
    let mut request = Vec::with_capacity(8);
    request.extend_from_slice(&8u32.to_be_bytes());
    request.extend_from_slice(&SSL_REQUEST.to_be_bytes());
    tcp.write_all(&request).await?;
    let mut answer = [0u8; 1];
    tcp.read_exact(&mut answer).await?;
    let mut backend: Stream = if answer[0] == b'S' {
        let name = ServerName::try_from(host.to_owned())
            .unwrap_or_else(|_| ServerName::try_from("localhost").expect("a valid DNS name"));
        Box::new(tls.connector.connect(name, tcp).await?)
    } else {
        Box::new(tcp)
    };
    let mut body = Vec::new();
    body.extend_from_slice(&PROTOCOL_3_0.to_be_bytes());
    let mut put = |k: &str, v: &str| {
        body.extend_from_slice(k.as_bytes());
        body.push(0);
        body.extend_from_slice(v.as_bytes());
        body.push(0);
    };
    put("user", &login.role);
    put("database", database);
    for (k, v) in params {
        put(k, v);
    }
    body.push(0);
    let mut startup = Vec::with_capacity(body.len() + 4);
    startup.extend_from_slice(&length_of(body.len())?.to_be_bytes());
    startup.extend_from_slice(&body);
    backend.write_all(&startup).await?;

    let password = login.password.as_bytes();
    let mut scram: Option<ScramSha256> = None;
    loop {
        let Some((tag, body)) = read_message(&mut backend).await? else {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the backend closed the connection during login",
            ));
        };
        match tag {
            b'E' => return Ok(Backend::Refused(message(b'E', &body))),
            // Notices and a version negotiation (never expected for 3.0) carry nothing to act on.
            b'N' | b'v' => {}
            b'R' => {
                let code = body
                    .get(..4)
                    .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
                    .ok_or_else(|| protocol("short authentication request"))?;
                let data = &body[4..];
                match code {
                    0 => return Ok(Backend::Ready(backend)),
                    3 => {
                        let mut reply = password.to_vec();
                        reply.push(0);
                        backend.write_all(&message(b'p', &reply)).await?;
                    }
                    5 => {
                        let salt: [u8; 4] = data
                            .get(..4)
                            .and_then(|s| s.try_into().ok())
                            .ok_or_else(|| protocol("short MD5 salt"))?;
                        let mut reply =
                            md5_hash(login.role.as_bytes(), password, salt).into_bytes();
                        reply.push(0);
                        backend.write_all(&message(b'p', &reply)).await?;
                    }
                    10 => {
                        let offered = data
                            .split(|b| *b == 0)
                            .any(|m| m == SCRAM_SHA_256.as_bytes());
                        if !offered {
                            return Err(protocol("the backend offers no SASL mechanism we speak"));
                        }
                        let exchange = ScramSha256::new(password, ChannelBinding::unsupported());
                        let mut reply = Vec::new();
                        reply.extend_from_slice(SCRAM_SHA_256.as_bytes());
                        reply.push(0);
                        let first = exchange.message();
                        let first_length = u32::try_from(first.len())
                            .map_err(|_| protocol("SASL message too long"))?;
                        reply.extend_from_slice(&first_length.to_be_bytes());
                        reply.extend_from_slice(first);
                        backend.write_all(&message(b'p', &reply)).await?;
                        scram = Some(exchange);
                    }
                    11 => {
                        let exchange = scram
                            .as_mut()
                            .ok_or_else(|| protocol("SASL continue before SASL start"))?;
                        exchange.update(data)?;
                        backend
                            .write_all(&message(b'p', exchange.message()))
                            .await?;
                    }
                    12 => {
                        scram
                            .as_mut()
                            .ok_or_else(|| protocol("SASL final before SASL start"))?
                            .finish(data)?;
                    }
                    other => {
                        return Err(protocol(&format!(
                            "the backend asks for authentication method {other}, which the front does not speak"
                        )));
                    }
                }
            }
            other => {
                return Err(protocol(&format!(
                    "unexpected message {:?} from the backend during login",
                    char::from(other)
                )));
            }
        }
    }
}

/// Forwards a cancel request to the backend; the backend answers nothing, and neither do we.
async fn forward_cancel(lakebase: &LakebaseAdmin, packet: &[u8]) {
    let (host, port) = lakebase.backend_address();
    if let Ok(mut backend) = TcpStream::connect((host, port)).await {
        let _ = backend.write_all(packet).await;
        let _ = backend.shutdown().await;
    }
}

async fn read_startup(stream: &mut (impl AsyncRead + Unpin)) -> io::Result<Startup> {
    let length = stream.read_u32().await? as usize;
    if !(8..=MAX_STARTUP_BYTES).contains(&length) {
        return Err(protocol("invalid startup packet length"));
    }
    let mut body = vec![0u8; length - 4];
    stream.read_exact(&mut body).await?;
    let code = u32::from_be_bytes([body[0], body[1], body[2], body[3]]);
    match code {
        SSL_REQUEST => Ok(Startup::Ssl),
        GSSENC_REQUEST => Ok(Startup::GssEnc),
        CANCEL_REQUEST => {
            let mut packet = Vec::with_capacity(length);
            packet.extend_from_slice(&u32::try_from(length).unwrap_or(0).to_be_bytes());
            packet.extend_from_slice(&body);
            Ok(Startup::Cancel(packet))
        }
        version if version >> 16 == 3 => {
            let mut params = Vec::new();
            let mut fields = body[4..].split(|b| *b == 0);
            while let Some(key) = fields.next().filter(|k| !k.is_empty()) {
                let value = fields
                    .next()
                    .ok_or_else(|| protocol("truncated startup packet"))?;
                params.push((
                    String::from_utf8_lossy(key).into_owned(),
                    String::from_utf8_lossy(value).into_owned(),
                ));
            }
            Ok(Startup::Start { version, params })
        }
        _ => Err(protocol("unsupported frontend protocol")),
    }
}

/// Reads one tagged message; `None` at a clean end of stream.
async fn read_message(stream: &mut Stream) -> io::Result<Option<(u8, Vec<u8>)>> {
    let mut tag = [0u8; 1];
    match stream.read_exact(&mut tag).await {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let length = stream.read_u32().await? as usize;
    if !(4..=MAX_LOGIN_MESSAGE_BYTES).contains(&length) {
        return Err(protocol("invalid message length during login"));
    }
    let mut body = vec![0u8; length - 4];
    stream.read_exact(&mut body).await?;
    Ok(Some((tag[0], body)))
}

/// A tagged message: tag, length (which counts itself), body.
fn message(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 5);
    out.push(tag);
    // Bodies here are bounded by MAX_LOGIN_MESSAGE_BYTES or built from short strings.
    out.extend_from_slice(
        &u32::try_from(body.len() + 4)
            .unwrap_or(u32::MAX)
            .to_be_bytes(),
    );
    out.extend_from_slice(body);
    out
}

fn length_of(body: usize) -> io::Result<u32> {
    u32::try_from(body + 4).map_err(|_| protocol("message too long"))
}

/// The text up to the first NUL.
fn cstr(body: &[u8]) -> Option<String> {
    let end = body.iter().position(|b| *b == 0)?;
    String::from_utf8(body[..end].to_vec()).ok()
}

/// Sends a FATAL `ErrorResponse`; the caller then closes the connection.
async fn refuse(client: &mut Stream, code: &str, text: &str) {
    let mut body = Vec::new();
    for (field, value) in [(b'S', "FATAL"), (b'V', "FATAL"), (b'C', code), (b'M', text)] {
        body.push(field);
        body.extend_from_slice(value.as_bytes());
        body.push(0);
    }
    body.push(0);
    let _ = client.write_all(&message(b'E', &body)).await;
    let _ = client.flush().await;
}

fn protocol(text: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, text.to_owned())
}

impl LoginRefusal {
    fn as_str(self) -> &'static str {
        match self {
            Self::Unknown => "unknown or revoked token",
            Self::NotOAuth => "a personal access token, not an OAuth token",
            Self::Expired => "expired token",
            Self::OtherRole => "token issued to another principal",
        }
    }
}

/// Accepts whatever certificate the backend shows: the backend is the developer's own local
/// Postgres (a private cluster with a self-signed certificate, or the admin URL's server), which
/// the admin connection already reaches with `sslmode` of the URL.
#[derive(Debug)]
struct AnyBackendCertificate(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyBackendCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The address a front listens on when none is given.
pub(crate) fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

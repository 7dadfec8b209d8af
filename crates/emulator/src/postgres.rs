//! Private Postgres clusters, started from the machine's own PostgreSQL binaries, for the emulated
//! Lakebase of `dbapp dev --lakebase` and for tests.
//!
//! A [`PrivateCluster`] is configured the way Lakebase is reached: TCP on 127.0.0.1 only, TLS
//! required (a self-signed certificate generated here), and SCRAM-SHA-256 password
//! authentication for everyone, the local socket included — nothing is trusted. Its superuser
//! password is random and is handed to `initdb` in a file, never on a command line, so that the
//! emulator's admin connection ([`PrivateCluster::admin_url`]) is the only way in until the
//! emulator creates roles whose passwords are minted tokens (see `lakebase`).
//!
//! The cluster lives in a fresh temporary directory, removed when the cluster is dropped, or in a
//! directory the caller names, which is initialised once and reused on later starts (the superuser
//! password is kept beside the data, readable by its owner only). Layout of that directory:
//! `data/` (the data directory, which also holds the Unix socket, the certificate and
//! `dbapp.conf`), `superuser-password` and `postgres.log`.
//!
//! `initdb` and `postgres` refuse to run as root. When this process is root (as CI and the dev
//! containers are), the binaries run as the `postgres` system user through `runuser`, and the
//! cluster directory is given to that user; it must then be reachable by it, which rules out a
//! directory under `/root`.
//!
//! What this module leaves to others: it knows nothing of roles and tokens (`lakebase` does), and
//! it does not create application databases (callers connect with [`PrivateCluster::admin_url`]).

use std::fmt;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

use rand::distr::{Alphanumeric, SampleString};
use sqlx::postgres::{PgConnectOptions, PgSslMode};

/// Name of the superuser `initdb` creates.
const SUPERUSER: &str = "postgres";
/// The system user that runs the binaries when this process is root.
const SYSTEM_USER: &str = "postgres";
/// How often a start is retried when the free port was taken between choosing and binding it.
const PORT_ATTEMPTS: usize = 5;
/// The `include` line that makes `postgresql.conf` read the settings written at every start.
const INCLUDE_LINE: &str = "include_if_exists = 'dbapp.conf'";

/// How to start a [`PrivateCluster`].
#[derive(Debug, Clone, Default)]
pub struct ClusterOptions {
    /// Where the cluster lives. `None`: a fresh temporary directory, removed on drop. `Some`: a
    /// directory that is initialised on first use and reused afterwards.
    pub dir: Option<PathBuf>,
    /// The directory holding `initdb` and `pg_ctl`. `None`: `pg_config --bindir`, else the
    /// highest version under `/usr/lib/postgresql/*/bin`.
    pub bin_dir: Option<PathBuf>,
}

/// The superuser's password: printed by `Debug` as a placeholder, read with [`Self::expose`].
#[derive(Clone, PartialEq, Eq)]
pub struct SuperuserPassword(String);

impl SuperuserPassword {
    /// The password itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SuperuserPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SuperuserPassword(<redacted>)")
    }
}

/// Why a private cluster could not be started.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// No PostgreSQL server binaries were found.
    #[error(
        "PostgreSQL server binaries (initdb, pg_ctl) not found: {0}. Install the PostgreSQL \
         server (Debian: `apt-get install postgresql`) or name the directory in `bin_dir`"
    )]
    BinariesNotFound(String),
    /// This process is root and there is no system user to run Postgres as.
    #[error(
        "running as root, and there is no `{SYSTEM_USER}` system user to run Postgres as \
         (initdb and postgres refuse to run as root): install the PostgreSQL server package, \
         which creates it, or run as an unprivileged user"
    )]
    NoSystemUser,
    /// A file or directory operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done, naming the path.
        what: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A Postgres program (or the step around it) failed.
    #[error("{step} failed: {detail}")]
    Failed {
        /// `initdb`, `pg_ctl start`, …
        step: &'static str,
        /// The program's own explanation (its stderr or the server log).
        detail: String,
    },
}

fn io_error(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ClusterError {
    let what = what.into();
    move |source| ClusterError::Io { what, source }
}

/// A Postgres cluster of this process: TLS and SCRAM only, stopped when dropped.
#[derive(Debug)]
pub struct PrivateCluster {
    bin_dir: PathBuf,
    home: PathBuf,
    data_dir: PathBuf,
    port: u16,
    password: SuperuserPassword,
    run_as: Option<SystemUser>,
    /// False once the server has been stopped, so that `Drop` does not stop it twice.
    running: bool,
    /// Declared last: fields drop after `Drop::drop` has stopped the server, so the directory is
    /// removed only once nothing writes to it.
    _temp: Option<tempfile::TempDir>,
}

impl PrivateCluster {
    /// Initialises (when needed) and starts a cluster, returning once it accepts connections.
    ///
    /// # Errors
    /// [`ClusterError::BinariesNotFound`] when no PostgreSQL server is installed,
    /// [`ClusterError::NoSystemUser`] when running as root without a `postgres` user,
    /// [`ClusterError::Failed`] with the program's own message when `initdb` or the server fails,
    /// and [`ClusterError::Io`] for file-system failures.
    #[tracing::instrument(skip_all)]
    pub async fn start(options: ClusterOptions) -> Result<Self, ClusterError> {
        let bin_dir = match options.bin_dir {
            Some(dir) => dir,
            None => find_bin_dir().await?,
        };
        for program in ["initdb", "pg_ctl"] {
            if !bin_dir.join(program).is_file() {
                return Err(ClusterError::BinariesNotFound(format!(
                    "{} does not exist",
                    bin_dir.join(program).display()
                )));
            }
        }
        let run_as = if running_as_root() {
            Some(SystemUser::lookup(SYSTEM_USER)?)
        } else {
            None
        };
        let (temp, home) = match options.dir {
            Some(dir) => {
                std::fs::create_dir_all(&dir)
                    .map_err(io_error(format!("cannot create {}", dir.display())))?;
                (None, dir)
            }
            None => {
                let temp = tempfile::Builder::new()
                    .prefix("dbapp-pg-")
                    .tempdir()
                    .map_err(io_error("cannot create a temporary directory"))?;
                let path = temp.path().to_path_buf();
                (Some(temp), path)
            }
        };
        // Absolute, because the programs run with the cluster directory as their working
        // directory and would resolve a relative path against it.
        let home = std::path::absolute(&home)
            .map_err(io_error(format!("cannot resolve {}", home.display())))?;
        std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o700))
            .map_err(io_error(format!("cannot restrict {}", home.display())))?;
        if let Some(user) = &run_as {
            user.give(&home)?;
        }
        let mut cluster = Self {
            bin_dir,
            data_dir: home.join("data"),
            home,
            port: 0,
            password: SuperuserPassword(String::new()),
            run_as,
            running: false,
            _temp: temp,
        };
        if cluster.run_as.is_some() {
            cluster.check_reachable().await?;
        }
        cluster.password = if cluster.data_dir.join("PG_VERSION").is_file() {
            cluster.read_password()?
        } else {
            cluster.initdb().await?
        };
        cluster.configure()?;
        cluster.start_server().await?;
        tracing::info!(
            event = "postgres.cluster_started",
            port = cluster.port,
            data_dir = %cluster.data_dir.display()
        );
        Ok(cluster)
    }

    /// A superuser URL with `sslmode=require`, e.g. for the emulator's `postgres_admin_url`. It
    /// contains the superuser password: do not log it.
    pub fn admin_url(&self) -> String {
        format!(
            "postgres://{SUPERUSER}:{}@{}:{}/postgres?sslmode=require",
            self.password.expose(),
            self.host(),
            self.port
        )
    }

    /// Connect options for the superuser on database `postgres`, TLS required.
    pub fn admin_connect_options(&self) -> PgConnectOptions {
        PgConnectOptions::new()
            .host(self.host())
            .port(self.port)
            .username(SUPERUSER)
            .password(self.password.expose())
            .database("postgres")
            .ssl_mode(PgSslMode::Require)
    }

    /// The address the server listens on.
    pub fn host(&self) -> &str {
        "127.0.0.1"
    }

    /// The TCP port the server listens on (a free one chosen at start).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The data directory (`PGDATA`).
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The superuser's name.
    pub fn superuser(&self) -> &str {
        SUPERUSER
    }

    /// The superuser's password.
    pub fn superuser_password(&self) -> &SuperuserPassword {
        &self.password
    }

    /// Stops the server (`pg_ctl stop -m fast`: open sessions are disconnected) and waits for it.
    ///
    /// # Errors
    /// [`ClusterError::Failed`] with `pg_ctl`'s message.
    #[tracing::instrument(skip_all)]
    pub async fn stop(mut self) -> Result<(), ClusterError> {
        self.running = false;
        let output = tokio::process::Command::from(self.stop_command())
            .output()
            .await
            .map_err(io_error("cannot run pg_ctl stop"))?;
        check("pg_ctl stop", &output)
    }

    fn stop_command(&self) -> std::process::Command {
        let mut command = self.command("pg_ctl");
        command
            .arg("stop")
            .arg("-D")
            .arg(&self.data_dir)
            .args(["-m", "fast", "-w", "-t", "60"]);
        command
    }

    /// A command that runs one of the Postgres programs, as the system user when we are root.
    fn command(&self, program: &str) -> std::process::Command {
        let binary = self.bin_dir.join(program);
        let mut command = match &self.run_as {
            Some(user) => {
                let mut command = std::process::Command::new(runuser());
                command.arg("-u").arg(&user.name).arg("--").arg(binary);
                command
            }
            None => std::process::Command::new(binary),
        };
        // The programs change into their working directory, which must be one they can reach.
        command
            .current_dir(&self.home)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    }

    /// Fails clearly when the system user cannot reach the cluster directory, instead of letting
    /// `initdb` fail with a bare "permission denied".
    async fn check_reachable(&self) -> Result<(), ClusterError> {
        let Some(user) = &self.run_as else {
            return Ok(());
        };
        let mut command = std::process::Command::new(runuser());
        command
            .args(["-u", &user.name, "--", "test", "-w"])
            .arg(&self.home)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let status = tokio::process::Command::from(command)
            .status()
            .await
            .map_err(io_error("cannot run runuser"))?;
        if status.success() {
            Ok(())
        } else {
            Err(ClusterError::Failed {
                step: "preparing the cluster directory",
                detail: format!(
                    "the `{}` system user cannot write to {}: every parent directory must be \
                     traversable by it (Postgres refuses to run as root), so choose a directory \
                     outside /root",
                    user.name,
                    self.home.display()
                ),
            })
        }
    }

    fn password_file(&self) -> PathBuf {
        self.home.join("superuser-password")
    }

    fn read_password(&self) -> Result<SuperuserPassword, ClusterError> {
        let path = self.password_file();
        let password = std::fs::read_to_string(&path).map_err(io_error(format!(
            "{} holds a Postgres cluster that dbapp did not create (cannot read {})",
            self.data_dir.display(),
            path.display()
        )))?;
        Ok(SuperuserPassword(password.trim().to_owned()))
    }

    /// Runs `initdb` with a random superuser password, handed over in a file.
    async fn initdb(&self) -> Result<SuperuserPassword, ClusterError> {
        // Alphanumeric, so that it needs no escaping in a URL or a configuration file.
        let password = Alphanumeric.sample_string(&mut rand::rng(), 32);
        let pwfile = self.password_file();
        self.write_private(&pwfile, password.as_bytes())?;
        let mut command = self.command("initdb");
        command
            .arg("-D")
            .arg(&self.data_dir)
            .arg(format!("--username={SUPERUSER}"))
            .arg(format!("--pwfile={}", pwfile.display()))
            .args([
                "--auth=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C",
                // A throwaway or development cluster: durability of the catalog files at
                // creation is not worth the seconds fsync costs.
                "--no-sync",
            ]);
        let output = tokio::process::Command::from(command)
            .output()
            .await
            .map_err(io_error("cannot run initdb"))?;
        check("initdb", &output)?;
        Ok(SuperuserPassword(password))
    }

    /// Writes what every start needs: client authentication, the certificate, the settings.
    fn configure(&self) -> Result<(), ClusterError> {
        self.write_private(&self.data_dir.join("pg_hba.conf"), PG_HBA.as_bytes())?;
        let cert = self.data_dir.join("server.crt");
        let key = self.data_dir.join("server.key");
        if !cert.is_file() || !key.is_file() {
            let generated = rcgen::generate_simple_self_signed(vec![
                "localhost".to_owned(),
                "127.0.0.1".to_owned(),
                "::1".to_owned(),
            ])
            .map_err(|e| ClusterError::Failed {
                step: "generating the TLS certificate",
                detail: e.to_string(),
            })?;
            self.write_private(&cert, generated.cert.pem().as_bytes())?;
            self.write_private(&key, generated.signing_key.serialize_pem().as_bytes())?;
        }
        let conf = self.data_dir.join("postgresql.conf");
        let text = std::fs::read_to_string(&conf)
            .map_err(io_error(format!("cannot read {}", conf.display())))?;
        if !text.lines().any(|l| l.trim() == INCLUDE_LINE) {
            let mut file = std::fs::OpenOptions::new()
                .append(true)
                .open(&conf)
                .map_err(io_error(format!("cannot open {}", conf.display())))?;
            writeln!(
                file,
                "\n# Settings written by dbapp at every start.\n{INCLUDE_LINE}"
            )
            .map_err(io_error(format!("cannot write {}", conf.display())))?;
        }
        Ok(())
    }

    /// Starts the server on a free port, trying another port if that one was taken meanwhile.
    async fn start_server(&mut self) -> Result<(), ClusterError> {
        let log = self.home.join("postgres.log");
        let mut last_error = None;
        for _ in 0..PORT_ATTEMPTS {
            let port = free_port()?;
            self.write_private(
                &self.data_dir.join("dbapp.conf"),
                settings(&self.data_dir, port).as_bytes(),
            )?;
            let log_start = std::fs::metadata(&log).map_or(0, |m| m.len());
            let mut command = self.command("pg_ctl");
            command
                .arg("start")
                .arg("-D")
                .arg(&self.data_dir)
                .arg("-l")
                .arg(&log)
                // -w waits until the server reports itself ready in postmaster.pid: the
                // readiness signal, so no polling or sleeping is needed here.
                .args(["-w", "-t", "60"]);
            let output = tokio::process::Command::from(command)
                .output()
                .await
                .map_err(io_error("cannot run pg_ctl start"))?;
            if output.status.success() {
                self.port = port;
                self.running = true;
                return Ok(());
            }
            let server_log = read_from(&log, log_start);
            let port_taken = server_log.contains("could not bind")
                || server_log.contains("Address already in use");
            last_error = Some(ClusterError::Failed {
                step: "pg_ctl start",
                detail: format!(
                    "{}\nserver log ({}):\n{}",
                    String::from_utf8_lossy(&output.stderr).trim(),
                    log.display(),
                    tail(&server_log, 4000)
                ),
            });
            if !port_taken {
                break;
            }
        }
        Err(last_error.unwrap_or(ClusterError::Failed {
            step: "pg_ctl start",
            detail: "no attempt was made".into(),
        }))
    }

    /// Writes a file only its owner may read, owned by the user that runs the server.
    fn write_private(&self, path: &Path, contents: &[u8]) -> Result<(), ClusterError> {
        let what = || format!("cannot write {}", path.display());
        // Replaced rather than truncated, so that the mode of a fresh file is the one set here.
        match std::fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_error(what())(e)),
        }
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(io_error(what()))?;
        file.write_all(contents).map_err(io_error(what()))?;
        if let Some(user) = &self.run_as {
            user.give(path)?;
        }
        Ok(())
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        if self.running {
            // Blocking, because Drop cannot await; a fast shutdown takes a fraction of a second.
            // A failure leaves nothing to act on here: the server may already be gone.
            let _ = self.stop_command().output();
        }
    }
}

/// Client authentication: SCRAM over TLS from loopback, SCRAM on the socket, nothing else.
const PG_HBA: &str = "\
# Written by dbapp: TLS and SCRAM-SHA-256 only; nothing is trusted.
# TYPE   DATABASE  USER  ADDRESS       METHOD
local    all       all                 scram-sha-256
hostssl  all       all   127.0.0.1/32  scram-sha-256
hostssl  all       all   ::1/128       scram-sha-256
";

/// The settings written to `dbapp.conf` at every start (the port changes from start to start).
fn settings(data_dir: &Path, port: u16) -> String {
    let socket_dir = data_dir.display().to_string().replace('\'', "''");
    format!(
        "# Written by dbapp at every start; changes are overwritten.\n\
         listen_addresses = '127.0.0.1'\n\
         port = {port}\n\
         unix_socket_directories = '{socket_dir}'\n\
         ssl = on\n\
         ssl_cert_file = 'server.crt'\n\
         ssl_key_file = 'server.key'\n\
         password_encryption = 'scram-sha-256'\n"
    )
}

/// The system user the binaries run as when this process is root.
#[derive(Debug, Clone)]
struct SystemUser {
    name: String,
    uid: u32,
    gid: u32,
}

impl SystemUser {
    fn lookup(name: &str) -> Result<Self, ClusterError> {
        let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
        passwd
            .lines()
            .find_map(|line| parse_passwd_line(line, name))
            .ok_or(ClusterError::NoSystemUser)
    }

    /// Makes `path` this user's.
    fn give(&self, path: &Path) -> Result<(), ClusterError> {
        std::os::unix::fs::chown(path, Some(self.uid), Some(self.gid)).map_err(io_error(format!(
            "cannot give {} to the {} user",
            path.display(),
            self.name
        )))
    }
}

fn parse_passwd_line(line: &str, name: &str) -> Option<SystemUser> {
    let mut fields = line.split(':');
    if fields.next()? != name {
        return None;
    }
    let _password = fields.next()?;
    let uid = fields.next()?.parse().ok()?;
    let gid = fields.next()?.parse().ok()?;
    Some(SystemUser {
        name: name.to_owned(),
        uid,
        gid,
    })
}

/// Whether this process runs with effective uid 0; `/proc/self` belongs to the effective user.
fn running_as_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

fn runuser() -> &'static str {
    ["/usr/sbin/runuser", "/sbin/runuser"]
        .into_iter()
        .find(|p| Path::new(p).is_file())
        .unwrap_or("runuser")
}

/// Finds the directory of `initdb`: `pg_config --bindir`, else the newest Debian-style install.
async fn find_bin_dir() -> Result<PathBuf, ClusterError> {
    let pg_config = tokio::process::Command::new("pg_config")
        .arg("--bindir")
        .stdin(Stdio::null())
        .output()
        .await;
    if let Ok(output) = pg_config {
        let dir = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
        // pg_config comes with the client library and may name a version whose server is not
        // installed, so its answer counts only when initdb is there.
        if output.status.success() && dir.join("initdb").is_file() {
            return Ok(dir);
        }
    }
    let root = Path::new("/usr/lib/postgresql");
    let versions: Vec<String> = std::fs::read_dir(root)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| e.path().join("bin/initdb").is_file())
                .filter_map(|e| e.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default();
    highest_version(&versions)
        .map(|v| root.join(v).join("bin"))
        .ok_or_else(|| {
            ClusterError::BinariesNotFound(
                "`pg_config --bindir` names no directory with initdb, and there is no \
                 /usr/lib/postgresql/*/bin/initdb"
                    .into(),
            )
        })
}

/// The highest of version directory names such as `9.6`, `15` and `16`, compared numerically.
fn highest_version(names: &[String]) -> Option<&str> {
    let key = |name: &str| -> Option<Vec<u32>> {
        name.split('.').map(|part| part.parse().ok()).collect()
    };
    names
        .iter()
        .filter_map(|n| key(n).map(|k| (k, n.as_str())))
        .max()
        .map(|(_, n)| n)
}

fn free_port() -> Result<u16, ClusterError> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0))
        .map_err(io_error("cannot find a free port on 127.0.0.1"))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(io_error("cannot find a free port on 127.0.0.1"))
}

fn check(step: &'static str, output: &Output) -> Result<(), ClusterError> {
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let detail = if stderr.trim().is_empty() {
        stdout.trim()
    } else {
        stderr.trim()
    };
    Err(ClusterError::Failed {
        step,
        detail: format!("{} ({})", tail(detail, 4000), output.status),
    })
}

/// The part of a log file written after `offset` (empty when it cannot be read).
fn read_from(path: &Path, offset: u64) -> String {
    let bytes = std::fs::read(path).unwrap_or_default();
    let start = usize::try_from(offset).unwrap_or(0).min(bytes.len());
    String::from_utf8_lossy(&bytes[start..]).into_owned()
}

/// The last `max` bytes of `text`, cut at a character boundary.
fn tail(text: &str, max: usize) -> &str {
    let mut start = text.len().saturating_sub(max);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn highest_version_compares_numerically() {
        // Arrange
        let names = ["9.6", "15", "16", "13", "notaversion"].map(String::from);

        // Act
        let highest = highest_version(&names);

        // Assert
        assert_eq!(highest, Some("16"));
        assert_eq!(highest_version(&[]), None);
    }

    #[test]
    fn passwd_lines_give_uid_and_gid_of_the_named_user_only() {
        // Arrange
        let line = "postgres:x:101:104:PostgreSQL administrator,,,:/var/lib/postgresql:/bin/bash";

        // Act
        let user = parse_passwd_line(line, "postgres");

        // Assert
        let user = user.expect("parsed");
        assert_eq!((user.uid, user.gid), (101, 104));
        assert!(parse_passwd_line(line, "postgre").is_none());
        assert!(parse_passwd_line("postgres:x:abc:1::/:/bin/sh", "postgres").is_none());
    }

    #[test]
    fn client_authentication_trusts_nothing_and_requires_tls_over_tcp() {
        // Arrange
        let rules: Vec<&str> = PG_HBA
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
            .collect();

        // Act
        let methods: Vec<&str> = rules
            .iter()
            .filter_map(|l| l.split_whitespace().last())
            .collect();
        let types: Vec<&str> = rules
            .iter()
            .filter_map(|l| l.split_whitespace().next())
            .collect();

        // Assert
        assert!(methods.iter().all(|m| *m == "scram-sha-256"), "{methods:?}");
        assert_eq!(types, ["local", "hostssl", "hostssl"]);
    }

    #[test]
    fn the_password_is_not_in_debug_output() {
        // Arrange
        let password = SuperuserPassword("s3cretValue".into());

        // Act
        let shown = format!("{password:?}");

        // Assert
        assert!(!shown.contains("s3cretValue"), "{shown}");
        assert_eq!(password.expose(), "s3cretValue");
    }

    #[test]
    fn tail_cuts_at_a_character_boundary() {
        // Arrange
        let text = "ééé";

        // Act
        let cut = tail(text, 3);

        // Assert
        assert_eq!(cut, "é");
    }
}

//! TLS to PostgreSQL against a server this test starts itself: `initdb` and
//! `pg_ctl` in a temporary directory, on a free port, `ssl = on`, a server
//! certificate for `localhost` signed by a CA made here with `openssl`, and
//! a `pg_hba.conf` that accepts TLS connections only. The shared server on
//! 5432 is never touched.
//!
//! Without `initdb` on the PATH the test prints `SKIPPED: ...` and passes,
//! unless `COUNTERSIGN_REQUIRE_POSTGRES=1`, which makes it fail. PostgreSQL
//! refuses to run as root: when the test runs as root, the server runs as
//! the `postgres` OS user (`runuser -u postgres --`), its directory chowned
//! to that user.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail loudly"
)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use countersign_store::{PostgresStore, postgres_tls};

fn find(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .chain([PathBuf::from("/usr/local/bin")])
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// A command run as the server's owner.
fn as_owner(program: &Path) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn run(mut c: Command, what: &str) {
    let out = c.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn openssl(dir: &Path, args: &[&str]) {
    let mut c = Command::new("openssl");
    c.current_dir(dir).args(args);
    run(c, &format!("openssl {}", args.join(" ")));
}

/// Makes a CA (`NAME.crt`/`NAME.key`) in `dir`.
fn make_ca(dir: &Path, name: &str) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.crt"),
            "-days",
            "2",
            "-subj",
            &format!("/CN={name}"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
}

/// A PostgreSQL server of the test's own, stopped on drop.
struct Server {
    _dir: tempfile::TempDir,
    root: PathBuf,
    pg_ctl: PathBuf,
    port: u16,
}

impl Server {
    fn start(initdb: &Path) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        make_ca(&root, "ca");
        make_ca(&root, "other-ca");
        std::fs::write(
            root.join("server.ext"),
            "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        openssl(
            &root,
            &[
                "req",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
                "-subj",
                "/CN=localhost",
            ],
        );
        openssl(
            &root,
            &[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                "server.crt",
                "-days",
                "2",
                "-extfile",
                "server.ext",
            ],
        );
        let data = root.join("data");
        if is_root() {
            let mut c = Command::new("chown");
            c.arg("-R").arg("postgres:").arg(&root);
            run(c, "chown");
        }
        let mut c = as_owner(initdb);
        c.arg("-D")
            .arg(&data)
            .args(["-A", "trust", "-U", "postgres", "--no-sync"]);
        run(c, "initdb");
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let conf = format!(
            "\nport = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\n\
             ssl = on\nssl_cert_file = '{}'\nssl_key_file = '{}'\nfsync = off\n",
            root.display(),
            root.join("server.crt").display(),
            root.join("server.key").display(),
        );
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(data.join("postgresql.conf"))
            .unwrap();
        std::io::Write::write_all(&mut f, conf.as_bytes()).unwrap();
        // TLS connections only: a plain one finds no pg_hba line.
        std::fs::write(
            data.join("pg_hba.conf"),
            "hostssl all all 127.0.0.1/32 trust\n",
        )
        .unwrap();
        let pg_ctl = initdb.with_file_name("pg_ctl");
        let mut c = as_owner(&pg_ctl);
        c.arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(root.join("server.log"))
            .args(["-w", "-t", "30", "start"]);
        run(c, "pg_ctl start");
        Self {
            _dir: dir,
            root,
            pg_ctl,
            port,
        }
    }

    fn url(&self, host: &str, params: &str) -> String {
        format!("postgres://postgres@{host}:{}/postgres?{params}", self.port)
    }

    fn cert(&self, name: &str) -> String {
        self.root.join(name).display().to_string()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let mut c = as_owner(&self.pg_ctl);
        c.arg("-D")
            .arg(self.root.join("data"))
            .args(["-m", "immediate", "stop"]);
        let _ = c.output();
    }
}

/// Connects with the store's own URL handling; says whether the session
/// is encrypted.
async fn session_is_tls(url: &str) -> Result<bool, String> {
    let (config, tls) = postgres_tls::prepare(url).map_err(|e| e.to_string())?;
    let (client, connection) = tokio::time::timeout(Duration::from_secs(10), config.connect(tls))
        .await
        .map_err(|_| "timed out".to_owned())?
        .map_err(|e| countersign_store::StoreError::from(e).to_string())?;
    tokio::spawn(connection);
    let row = client
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .map_err(|e| e.to_string())?;
    Ok(row.get(0))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sslmode_and_sslrootcert_mean_what_libpq_says() {
    let Some(initdb) = find("initdb") else {
        assert!(
            std::env::var("COUNTERSIGN_REQUIRE_POSTGRES").as_deref() != Ok("1"),
            "initdb is not on the PATH and COUNTERSIGN_REQUIRE_POSTGRES=1"
        );
        eprintln!("SKIPPED: initdb is not on the PATH; the TLS test needs a PostgreSQL of its own");
        return;
    };
    let server = Server::start(&initdb);
    let ca = server.cert("ca.crt");
    let other = server.cert("other-ca.crt");

    // verify-full with the right CA and the certificate's host name: the
    // whole store opens (and migrates) over TLS.
    let full = server.url(
        "localhost",
        &format!("sslmode=verify-full&sslrootcert={ca}"),
    );
    assert_eq!(session_is_tls(&full).await, Ok(true));
    PostgresStore::connect(&full, countersign_store::LogKey::from_bytes([7; 32]))
        .await
        .expect("store over verify-full");

    // A CA that did not sign the server's certificate.
    let e = session_is_tls(&server.url(
        "localhost",
        &format!("sslmode=verify-full&sslrootcert={other}"),
    ))
    .await
    .unwrap_err();
    assert!(
        e.contains("certificate") && e.contains("verify-full"),
        "{e}"
    );
    let e = PostgresStore::connect(
        &server.url(
            "localhost",
            &format!("sslmode=verify-ca&sslrootcert={other}"),
        ),
        countersign_store::LogKey::from_bytes([7; 32]),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(e.contains("certificate"), "{e}");

    // The right CA, a host the certificate does not name: verify-full
    // refuses, verify-ca (no host check) connects.
    let e = session_is_tls(&server.url(
        "127.0.0.1",
        &format!("sslmode=verify-full&sslrootcert={ca}"),
    ))
    .await
    .unwrap_err();
    assert!(e.contains("certificate") && e.contains("name"), "{e}");
    assert_eq!(
        session_is_tls(&server.url("127.0.0.1", &format!("sslmode=verify-ca&sslrootcert={ca}")))
            .await,
        Ok(true)
    );
    // require + sslrootcert is verify-ca, as in libpq.
    assert!(
        session_is_tls(&server.url("127.0.0.1", &format!("sslmode=require&sslrootcert={other}")))
            .await
            .is_err()
    );

    // require without a CA encrypts without checking; so does prefer.
    assert_eq!(
        session_is_tls(&server.url("127.0.0.1", "sslmode=require")).await,
        Ok(true)
    );
    assert_eq!(
        session_is_tls(&server.url("127.0.0.1", "sslmode=prefer")).await,
        Ok(true)
    );
    assert_eq!(session_is_tls(&server.url("127.0.0.1", "")).await, Ok(true));

    // disable against a server that takes TLS connections only.
    let e = session_is_tls(&server.url("127.0.0.1", "sslmode=disable"))
        .await
        .unwrap_err();
    assert!(e.contains("pg_hba.conf"), "{e}");
    let e = PostgresStore::connect(
        &server.url("127.0.0.1", "sslmode=disable"),
        countersign_store::LogKey::from_bytes([7; 32]),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(e.contains("pg_hba.conf"), "{e}");

    // A verifying mode without a CA file says what to add.
    let e = session_is_tls(&server.url(
        "localhost",
        "sslmode=verify-full&sslrootcert=/nonexistent.pem",
    ))
    .await
    .unwrap_err();
    assert!(e.contains("sslrootcert"), "{e}");
}

//! A real directory for the LDAP tests: Debian's OpenLDAP `slapd`, started
//! per test on a loopback port from a generated `slapd.conf` (mdb backend,
//! in a temporary folder), seeded with `slapadd` before it starts, with a
//! self-signed certificate for StartTLS. Changes during a test go through
//! `ldapmodify` and `ldapdelete` (ldap-utils), as an administrator would
//! make them. `scripts/test` installs both packages.
//!
//! The server is set up to accept unauthenticated binds (`allow
//! bind_anon_dn`: a DN with an empty password binds, anonymously), as
//! Active Directory does, so that a test of "an empty password is refused"
//! fails if Usher ever sends one.

use std::{
    io::Write as _,
    path::Path,
    process::{Child, Command, Stdio},
    time::Duration,
};

pub const SUFFIX: &str = "dc=example,dc=org";
pub const PEOPLE: &str = "ou=people,dc=example,dc=org";
pub const ADMIN_DN: &str = "cn=admin,dc=example,dc=org";
pub const ADMIN_PASSWORD: &str = "Directory-admin-1";
pub const ANN_PASSWORD: &str = "Ann-directory-1";
pub const BOB_PASSWORD: &str = "Bob-directory-1";
pub const CARL_PASSWORD: &str = "Carl-directory-1";

const SLAPD: &str = "/usr/sbin/slapd";
const SLAPADD: &str = "/usr/sbin/slapadd";

/// Ann and Bob are staff; Carl is a contractor (left out by the user
/// filter the tests use); Dora has no email.
const SEED: &str = "\
dn: dc=example,dc=org
objectClass: dcObject
objectClass: organization
o: Example
dc: example

dn: ou=people,dc=example,dc=org
objectClass: organizationalUnit
ou: people

dn: uid=ann,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
uid: ann
cn: Ann Lee
givenName: Ann
sn: Lee
mail: Ann@Example.org
employeeType: staff
userPassword: Ann-directory-1

dn: uid=bob,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
uid: bob
cn: Bob Stone
givenName: Bob
sn: Stone
mail: bob@example.org
employeeType: staff
userPassword: Bob-directory-1

dn: uid=carl,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
uid: carl
cn: Carl Hay
givenName: Carl
sn: Hay
mail: carl@example.org
employeeType: contractor
userPassword: Carl-directory-1
";

pub struct Slapd {
    /// The configuration, certificate and database; removed on drop.
    _folder: tempfile::TempDir,
    child: Child,
    pub port: u16,
}

impl Slapd {
    /// A directory seeded with Ann, Bob and Carl, listening on 127.0.0.1.
    pub async fn start() -> Self {
        for tool in [SLAPD, SLAPADD, "/usr/bin/ldapmodify"] {
            assert!(
                Path::new(tool).exists(),
                "{tool} is missing: the LDAP tests need Debian's slapd and ldap-utils \
                 (scripts/test installs them: apt-get install slapd ldap-utils)"
            );
        }
        let folder = tempfile::tempdir().unwrap_or_else(|e| panic!("temp folder: {e}"));
        let dir = folder.path();
        std::fs::create_dir(dir.join("db")).unwrap_or_else(|e| panic!("db folder: {e}"));
        let certified = rcgen::generate_simple_self_signed(vec![
            "127.0.0.1".to_owned(),
            "localhost".to_owned(),
        ])
        .unwrap_or_else(|e| panic!("certificate: {e}"));
        write(&dir.join("cert.pem"), &certified.cert.pem());
        write(&dir.join("key.pem"), &certified.signing_key.serialize_pem());
        let config = format!(
            "include /etc/ldap/schema/core.schema\n\
             include /etc/ldap/schema/cosine.schema\n\
             include /etc/ldap/schema/inetorgperson.schema\n\
             include /etc/ldap/schema/nis.schema\n\
             modulepath /usr/lib/ldap\n\
             moduleload back_mdb\n\
             pidfile {dir}/slapd.pid\n\
             allow bind_anon_dn\n\
             TLSCertificateFile {dir}/cert.pem\n\
             TLSCertificateKeyFile {dir}/key.pem\n\
             database mdb\n\
             maxsize 10485760\n\
             suffix \"{SUFFIX}\"\n\
             rootdn \"{ADMIN_DN}\"\n\
             rootpw {ADMIN_PASSWORD}\n\
             directory {dir}/db\n",
            dir = dir.display()
        );
        write(&dir.join("slapd.conf"), &config);
        write(&dir.join("seed.ldif"), SEED);
        let seeded = Command::new(SLAPADD)
            .arg("-f")
            .arg(dir.join("slapd.conf"))
            .arg("-l")
            .arg(dir.join("seed.ldif"))
            .output()
            .unwrap_or_else(|e| panic!("slapadd: {e}"));
        assert!(
            seeded.status.success(),
            "slapadd failed: {}",
            String::from_utf8_lossy(&seeded.stderr)
        );
        // A free port, then slapd on it; another process may take it in
        // between, so a start that does not answer is tried again.
        for _ in 0..5 {
            let port = free_port();
            let mut child = Command::new(SLAPD)
                .arg("-f")
                .arg(dir.join("slapd.conf"))
                .arg("-h")
                .arg(format!("ldap://127.0.0.1:{port}/"))
                .arg("-d")
                .arg("0")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("slapd: {e}"));
            for _ in 0..100 {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                if tokio::net::TcpStream::connect(("127.0.0.1", port))
                    .await
                    .is_ok()
                {
                    return Self {
                        _folder: folder,
                        child,
                        port,
                    };
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("slapd did not start");
    }

    pub fn url(&self) -> String {
        format!("ldap://127.0.0.1:{}", self.port)
    }

    /// Runs `ldapmodify` (`-a` adds) with `ldif` as the directory's admin.
    pub fn modify(&self, ldif: &str) {
        self.tool("/usr/bin/ldapmodify", &[], ldif);
    }

    pub fn add(&self, ldif: &str) {
        self.tool("/usr/bin/ldapmodify", &["-a"], ldif);
    }

    pub fn delete(&self, dn: &str) {
        self.tool("/usr/bin/ldapdelete", &[dn], "");
    }

    fn tool(&self, tool: &str, args: &[&str], input: &str) {
        let mut child = Command::new(tool)
            .args([
                "-x",
                "-H",
                &self.url(),
                "-D",
                ADMIN_DN,
                "-w",
                ADMIN_PASSWORD,
            ])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{tool}: {e}"));
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(input.as_bytes())
                .unwrap_or_else(|e| panic!("{tool}: {e}"));
        }
        let out = child
            .wait_with_output()
            .unwrap_or_else(|e| panic!("{tool}: {e}"));
        assert!(
            out.status.success(),
            "{tool} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free port: {e}"))
}

//! The `usher` binary as an operator meets it.

use std::{
    io::{BufRead as _, BufReader},
    process::{Command, Stdio},
    time::Duration,
};

use crate::harness::*;

fn usher() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_usher"));
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    command
}

#[test]
fn version_and_help_answer() -> TestResult {
    let version = usher().arg("--version").output()?;
    assert!(version.status.success());
    assert!(String::from_utf8(version.stdout)?.starts_with("usher "));
    let help = String::from_utf8(usher().arg("--help").output()?.stdout)?;
    for command in ["start", "user-management:reset"] {
        assert!(help.contains(command), "{help}");
    }
    Ok(())
}

#[test]
fn a_bad_setting_stops_start_up_with_one_line_that_names_it() -> TestResult {
    let folder = tempfile::tempdir()?;
    for (name, value) in [
        ("DB_TYPE", "mysql"),
        ("N8N_PORT", "70000"),
        ("N8N_SECURE_COOKIE", "perhaps"),
    ] {
        let output = usher()
            .arg("start")
            .env("N8N_USER_FOLDER", folder.path())
            .env(name, value)
            .output()?;
        assert!(!output.status.success());
        let stderr = String::from_utf8(output.stderr)?;
        let last = stderr.lines().last().unwrap_or_default();
        assert!(last.starts_with(&format!("usher: {name}: ")), "{stderr}");
    }
    Ok(())
}

#[test]
fn an_unreachable_database_stops_start_up_naming_the_setting() -> TestResult {
    let folder = tempfile::tempdir()?;
    let output = usher()
        .arg("start")
        .env("N8N_USER_FOLDER", folder.path())
        .env("DB_TYPE", "postgresdb")
        .env("DB_POSTGRESDB_HOST", "127.0.0.1")
        .env("DB_POSTGRESDB_PORT", "1")
        .output()?;
    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr)?;
    assert!(
        stderr
            .lines()
            .last()
            .unwrap_or_default()
            .starts_with("usher: DB_POSTGRESDB_HOST: "),
        "{stderr}"
    );
    Ok(())
}

#[test]
fn start_serves_keeps_its_key_and_stops_cleanly_on_sigterm() -> TestResult {
    let folder = tempfile::tempdir()?;
    let mut child = usher()
        .arg("start")
        .env("N8N_USER_FOLDER", folder.path())
        .env("N8N_PORT", "0")
        .env("N8N_LISTEN_ADDRESS", "127.0.0.1")
        .stderr(Stdio::piped())
        .spawn()?;
    let stderr = child.stderr.take().ok_or("no stderr")?;
    let mut lines = BufReader::new(stderr).lines();
    let address = loop {
        let line = lines.next().ok_or("usher exited before listening")??;
        if let Some(rest) = line.split("listening on ").nth(1) {
            break rest.split(';').next().unwrap_or_default().to_owned();
        }
    };
    let health = std::net::TcpStream::connect(&address).map(|mut stream| {
        use std::io::{Read as _, Write as _};
        let _ = stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        answer
    })?;
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    let key = std::fs::read_to_string(folder.path().join(".usher/encryption-key"))?;
    assert!(key.len() >= 40);
    assert!(folder.path().join(".usher/database.sqlite").exists());

    let status = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()?;
    assert!(status.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let exit = loop {
        if let Some(exit) = child.try_wait()? {
            break exit;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "usher did not stop after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(exit.success(), "{exit:?}");
    Ok(())
}

#[test]
fn user_management_reset_needs_confirmation_without_a_terminal() -> TestResult {
    let folder = tempfile::tempdir()?;
    let refused = usher()
        .arg("user-management:reset")
        .env("N8N_USER_FOLDER", folder.path())
        .stdin(Stdio::null())
        .output()?;
    assert!(!refused.status.success());
    assert!(String::from_utf8(refused.stderr)?.contains("--yes"));
    let done = usher()
        .args(["user-management:reset", "--yes"])
        .env("N8N_USER_FOLDER", folder.path())
        .output()?;
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    assert!(String::from_utf8(done.stdout)?.contains("User management is reset"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_test_sends_a_message_or_prints_the_servers_own_error() -> TestResult {
    use crate::mail_sink::{Security, SmtpSink};
    let sink = SmtpSink::start(Security::Plain, Some((SMTP_USER, SMTP_PASSWORD))).await;
    let folder = tempfile::tempdir()?;
    let port = sink.port().to_string();
    let run = {
        let folder = folder.path().to_owned();
        move || {
            usher()
                .args(["smtp:test", "--to", "ops@example.com"])
                .env("N8N_USER_FOLDER", &folder)
                .env("N8N_SMTP_HOST", format!("127.0.0.1:{port}"))
                .env("N8N_SMTP_SSL", "false")
                .env("N8N_SMTP_STARTTLS", "false")
                .env("N8N_SMTP_USER", SMTP_USER)
                .env("N8N_SMTP_PASSWORD", SMTP_PASSWORD)
                .env("N8N_SMTP_SENDER", "Usher <usher@example.com>")
                .output()
        }
    };
    // The older documents' spellings: host:port and N8N_SMTP_PASSWORD.
    let sent = tokio::task::spawn_blocking(run.clone()).await??;
    assert!(
        sent.status.success(),
        "{}",
        String::from_utf8_lossy(&sent.stderr)
    );
    assert!(String::from_utf8(sent.stdout)?.contains("Sent a test message to ops@example.com"));
    let message = sink.next_message(Duration::from_secs(10)).await;
    assert_eq!(message.to, vec!["ops@example.com".to_owned()]);
    assert_eq!(
        message.header("Subject").as_deref(),
        Some("Usher test message")
    );

    sink.refuse_recipients(true);
    let refused = tokio::task::spawn_blocking(run).await??;
    assert!(!refused.status.success());
    let stderr = String::from_utf8(refused.stderr)?;
    assert!(stderr.contains("Relay access denied"), "{stderr}");
    Ok(())
}

//! The `usher` command line. `main.rs` only calls [`run`].

use std::{
    io::{BufRead as _, IsTerminal as _, Write as _},
    process::ExitCode,
    time::Duration,
};

use clap::{Parser, Subcommand};
use tokio::net::TcpListener;

use crate::{
    Internals, Settings, StartError,
    settings::{Env, unknown_variables},
};

#[derive(Parser)]
#[command(
    name = "usher",
    version,
    about = "Usher: self-hosted user management (n8n-compatible settings and API)."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the pages, /rest and /api/v1 (settings come from the environment).
    Start,
    /// Return to the first-run state: every user but the owner is deleted, the
    /// owner account is emptied, every session ends.
    #[command(name = "user-management:reset")]
    UserManagementReset {
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
    /// Print a one-time password reset link for a user (works without email).
    #[command(name = "user:reset-password")]
    UserResetPassword {
        /// The user's email.
        #[arg(long)]
        email: String,
    },
    /// Turn two-factor authentication off for a user who lost their device.
    #[command(name = "mfa:disable")]
    MfaDisable {
        /// The user's email.
        #[arg(long)]
        email: String,
    },
    /// Make a new OpenID Connect signing key; the previous public key stays
    /// published until the ID tokens it signed have expired.
    #[command(name = "oidc:rotate-keys")]
    OidcRotateKeys,
    /// Send a test email with the SMTP settings and print what the server said.
    #[command(name = "smtp:test")]
    SmtpTest {
        /// Where to send it.
        #[arg(long)]
        to: String,
    },
}

pub fn run() -> ExitCode {
    let cli = Cli::parse();
    if let Err(error) = init_tracing() {
        eprintln!("usher: {error}");
        return ExitCode::FAILURE;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("usher: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Start => start().await,
            Command::UserManagementReset { yes } => reset(yes).await,
            Command::SmtpTest { to } => smtp_test(&to).await,
            Command::UserResetPassword { email } => reset_password_link(&email).await,
            Command::MfaDisable { email } => mfa_disable(&email).await,
            Command::OidcRotateKeys => oidc_rotate_keys().await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("usher: {error}");
            ExitCode::FAILURE
        }
    }
}

/// N8N_LOG_LEVEL: n8n's levels (`error`, `warn`, `info`, `debug`, `silent`)
/// or a tracing filter such as `info,usher_domain=debug`.
fn init_tracing() -> Result<(), StartError> {
    let level = Env::process().get("N8N_LOG_LEVEL")?.unwrap_or_default();
    let directives = match level.trim() {
        "" => "info,sqlx=warn".to_owned(),
        "silent" => "off".to_owned(),
        other => other.to_owned(),
    };
    let filter = tracing_subscriber::EnvFilter::try_new(&directives).map_err(|e| {
        StartError::Other(format!(
            "N8N_LOG_LEVEL: {level:?} is not a log level (use error, warn, info, debug or silent): {e}"
        ))
    })?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
    Ok(())
}

fn settings() -> Result<Settings, StartError> {
    for name in unknown_variables(std::env::vars().map(|(name, _)| name)) {
        tracing::warn!(
            "{name} is set but Usher does not read it: is it misspelt? See docs/configuration.md."
        );
    }
    Ok(Settings::from_env(&Env::process())?)
}

async fn start() -> Result<(), StartError> {
    let settings = settings()?;
    let listen = settings.listen;
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|e| StartError::Other(format!("N8N_PORT: cannot listen on {listen}: {e}")))?;
    let listen = listener.local_addr().unwrap_or(listen);
    let state = crate::build(settings, Internals::default()).await?;
    tracing::info!(
        database = %state.settings().db,
        "Usher is listening on {listen}; open {} in a browser",
        state.settings().base_url
    );
    let purge = tokio::spawn(purge_expired(state.clone()));
    let directory = tokio::spawn(sync_directory(state.clone()));
    crate::serve(listener, state, shutdown_signal())
        .await
        .map_err(|e| StartError::Other(format!("server: {e}")))?;
    purge.abort();
    directory.abort();
    tracing::info!("Usher stopped");
    Ok(())
}

/// Removes expired sessions and rate-limit windows every ten minutes.
async fn purge_expired(state: crate::AppState) {
    let mut tick = tokio::time::interval(Duration::from_secs(600));
    loop {
        tick.tick().await;
        if let Err(error) = state.usher().purge_expired().await {
            tracing::warn!(%error, "could not purge expired rows");
        }
    }
}

/// Looks every minute whether the LDAP synchronisation is due; the one
/// instance that takes the lease runs it (see `service::ldap`).
async fn sync_directory(state: crate::AppState) {
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    loop {
        tick.tick().await;
        match state.usher().sync_ldap_when_due().await {
            Ok(Some(run)) => tracing::info!(
                status = %run.status,
                scanned = run.scanned,
                created = run.created,
                updated = run.updated,
                disabled = run.disabled,
                "LDAP synchronisation"
            ),
            Ok(None) => {}
            Err(error) => tracing::warn!(%error, "LDAP synchronisation failed"),
        }
    }
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down: no new connections, finishing requests in flight");
}

async fn reset(yes: bool) -> Result<(), StartError> {
    let settings = settings()?;
    if !yes
        && !confirm(
            "This deletes every user but the owner, empties the owner account and ends every session.",
        )?
    {
        return Err(StartError::Other(
            "reset cancelled; nothing was changed".into(),
        ));
    }
    let state = crate::build(settings, Internals::default()).await?;
    state
        .usher()
        .reset_user_management()
        .await
        .map_err(|e| StartError::Other(e.to_string()))?;
    state.close().await;
    println!(
        "User management is reset. The next visit shows the owner set-up page; workflows and credentials are kept."
    );
    Ok(())
}

async fn reset_password_link(email: &str) -> Result<(), StartError> {
    let state = crate::build(settings()?, Internals::default()).await?;
    let link = state.usher().operator_reset_link(email).await;
    state.close().await;
    let link = link.map_err(|e| StartError::Other(e.to_string()))?;
    println!("Open this link to choose a new password (it works once, for 20 minutes):\n{link}");
    Ok(())
}

async fn mfa_disable(email: &str) -> Result<(), StartError> {
    let state = crate::build(settings()?, Internals::default()).await?;
    let done = state.usher().operator_disable_mfa(email).await;
    state.close().await;
    done.map_err(|e| StartError::Other(e.to_string()))?;
    println!(
        "Two-factor authentication is off for {email}. They sign in with their password and can set it up again."
    );
    Ok(())
}

async fn oidc_rotate_keys() -> Result<(), StartError> {
    let state = crate::build(settings()?, Internals::default()).await?;
    let done = state
        .usher()
        .rotate_signing_keys(&usher_domain::model::Origin::command_line())
        .await;
    state.close().await;
    let kid = done.map_err(|e| StartError::Other(e.to_string()))?;
    println!(
        "New signing key {kid}. The previous public key stays in the JWKS until the ID tokens it signed have expired."
    );
    Ok(())
}

async fn smtp_test(to: &str) -> Result<(), StartError> {
    let to = usher_domain::model::Email::parse(to)
        .map_err(|e| StartError::Other(format!("--to: {e}")))?;
    let settings = settings()?;
    let smtp = settings.mail.smtp.clone().ok_or_else(|| {
        StartError::Other("email is not set up: set N8N_SMTP_HOST (and N8N_EMAIL_MODE=smtp)".into())
    })?;
    let state = crate::build(settings, Internals::default()).await?;
    let mailer = state
        .smtp()
        .ok_or_else(|| StartError::Other("email is not set up".into()))?;
    let result = mailer.send_test(&to).await;
    state.close().await;
    match result {
        Ok(()) => {
            println!(
                "Sent a test message to {to} through {}:{}.",
                smtp.host, smtp.port
            );
            Ok(())
        }
        Err(error) => Err(StartError::Other(format!(
            "the test message was not sent: {error}"
        ))),
    }
}

fn confirm(warning: &str) -> Result<bool, StartError> {
    if !std::io::stdin().is_terminal() {
        return Err(StartError::Other(format!(
            "{warning} Run it again with --yes to confirm."
        )));
    }
    print!("{warning}\nType yes to go on: ");
    let _ = std::io::stdout().flush();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|e| StartError::Other(format!("cannot read the answer: {e}")))?;
    Ok(answer.trim().eq_ignore_ascii_case("yes"))
}

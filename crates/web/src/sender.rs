//! Delivering one-time sign-in codes. The sender is the only place a code
//! exists in clear after it is made; nothing else logs or stores it.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::Utc;

use crate::SenderConfig;

#[derive(Debug, thiserror::Error)]
#[error("cannot send the sign-in code: {0}")]
pub struct SendError(pub String);

/// Sends a one-time code to a normalised identifier (`email:…`, `phone:…`).
#[async_trait]
pub trait CodeSender: Send + Sync {
    /// A short name for logs and `kith serve`'s banner (`log`, `file:DIR`).
    fn describe(&self) -> String;
    async fn send(&self, identifier: &str, code: &str, valid_minutes: u64)
    -> Result<(), SendError>;
}

/// Prints codes to the server's standard output: the demo's sender, so a
/// person trying kith can sign in without a mail server. Never use it where
/// the server's output is collected into logs others can read.
pub struct LogSender;

#[async_trait]
impl CodeSender for LogSender {
    fn describe(&self) -> String {
        "log (codes are printed on the server's output: for demos only)".into()
    }
    async fn send(
        &self,
        identifier: &str,
        code: &str,
        valid_minutes: u64,
    ) -> Result<(), SendError> {
        let (_, to) = identifier.split_once(':').unwrap_or(("", identifier));
        println!("[sign-in code] to {to}: {code} (valid {valid_minutes} min)");
        Ok(())
    }
}

/// Appends each message as one JSON line to `DIR/messages.jsonl`.
pub struct FileSender {
    dir: PathBuf,
    lock: tokio::sync::Mutex<()>,
}

impl FileSender {
    pub fn new(dir: PathBuf) -> Self {
        FileSender {
            dir,
            lock: tokio::sync::Mutex::new(()),
        }
    }
    pub fn path(&self) -> PathBuf {
        self.dir.join("messages.jsonl")
    }
}

#[async_trait]
impl CodeSender for FileSender {
    fn describe(&self) -> String {
        format!("file ({})", self.path().display())
    }
    async fn send(
        &self,
        identifier: &str,
        code: &str,
        valid_minutes: u64,
    ) -> Result<(), SendError> {
        let _guard = self.lock.lock().await;
        let line = serde_json::json!({
            "at": Utc::now(),
            "to": identifier,
            "code": code,
            "valid_minutes": valid_minutes,
        });
        let path = self.path();
        let dir = self.dir.clone();
        tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            std::fs::create_dir_all(&dir)?;
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)?;
            writeln!(f, "{line}")?;
            f.sync_data()
        })
        .await
        .map_err(|e| SendError(e.to_string()))?
        .map_err(|e| SendError(format!("{}: {e}", self.path().display())))
    }
}

/// E-mails each code through an SMTP relay (STARTTLS required unless
/// configured off). Phone numbers cannot be reached by e-mail: a code for one
/// is not sent, and the customer is told the same as for anyone else.
pub struct SmtpSender {
    host: String,
    port: u16,
    from: String,
    credentials: Option<(String, String)>,
    starttls: bool,
}

impl SmtpSender {
    pub fn new(
        host: impl Into<String>,
        port: u16,
        from: impl Into<String>,
        credentials: Option<(String, String)>,
        starttls: bool,
    ) -> Self {
        SmtpSender {
            host: host.into(),
            port,
            from: from.into(),
            credentials,
            starttls,
        }
    }

    /// A transport for one message: nothing connects until it sends, and a
    /// code is sent rarely enough that a pool would only hold idle sockets.
    fn transport(&self) -> Result<lettre::AsyncSmtpTransport<lettre::Tokio1Executor>, SendError> {
        use lettre::transport::smtp::authentication::Credentials;
        use lettre::transport::smtp::client::{Tls, TlsParameters};
        let tls = if self.starttls {
            let params = TlsParameters::new(self.host.clone())
                .map_err(|e| SendError(format!("TLS for SMTP relay {}: {e}", self.host)))?;
            Tls::Required(params)
        } else {
            Tls::None
        };
        let mut b =
            lettre::AsyncSmtpTransport::<lettre::Tokio1Executor>::builder_dangerous(&self.host)
                .port(self.port)
                .tls(tls)
                .timeout(Some(std::time::Duration::from_secs(20)));
        if let Some((user, password)) = &self.credentials {
            b = b.credentials(Credentials::new(user.clone(), password.clone()));
        }
        Ok(b.build())
    }
}

#[async_trait]
impl CodeSender for SmtpSender {
    fn describe(&self) -> String {
        format!(
            "smtp ({}:{}, {})",
            self.host,
            self.port,
            if self.starttls {
                "STARTTLS"
            } else {
                "no TLS: a local relay only"
            }
        )
    }

    async fn send(
        &self,
        identifier: &str,
        code: &str,
        valid_minutes: u64,
    ) -> Result<(), SendError> {
        use lettre::AsyncTransport;
        use lettre::message::{Mailbox, Message, header::ContentType};
        let masked = kith_hub::mask_identifier(identifier);
        let Some(address) = identifier.strip_prefix("email:") else {
            tracing::warn!(
                "no sign-in code sent to {masked}: the SMTP sender reaches e-mail addresses only"
            );
            return Ok(());
        };
        let to: Mailbox = address
            .parse()
            .map_err(|e| SendError(format!("{masked} is not an address SMTP takes: {e}")))?;
        let from: Mailbox = self
            .from
            .parse()
            .map_err(|e| SendError(format!("server.sender.from {:?}: {e}", self.from)))?;
        let message = Message::builder()
            .from(from)
            .to(to)
            .subject("Your sign-in code")
            .header(ContentType::TEXT_PLAIN)
            .body(format!(
                "Your sign-in code is {code}\r\n\r\n\
                 It works once, for {valid_minutes} minute{}. If you did not ask for it, \
                 ignore this message: nobody can sign in without the code.\r\n",
                if valid_minutes == 1 { "" } else { "s" }
            ))
            .map_err(|e| SendError(format!("building the message to {masked}: {e}")))?;
        // The relay's answer names neither the code nor the address in full.
        self.transport()?.send(message).await.map_err(|e| {
            SendError(format!(
                "SMTP relay {}:{} did not take the message to {masked}: {e}",
                self.host, self.port
            ))
        })?;
        Ok(())
    }
}

/// The sender a configuration asks for; relative paths are resolved against
/// `base`. SMTP credentials are read from the environment variables the
/// configuration names (`ServerSettings::problems` checks they are set).
pub fn build_sender(config: &SenderConfig, base: &std::path::Path) -> Arc<dyn CodeSender> {
    match config {
        SenderConfig::Log => Arc::new(LogSender),
        SenderConfig::File { dir } => Arc::new(FileSender::new(base.join(dir))),
        SenderConfig::Smtp {
            host,
            port,
            from,
            username_env,
            password_env,
            starttls,
        } => {
            let var = |v: &Option<String>| v.as_ref().and_then(|v| std::env::var(v).ok());
            let credentials = var(username_env).zip(var(password_env));
            Arc::new(SmtpSender::new(
                host.clone(),
                *port,
                from.clone(),
                credentials,
                *starttls,
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpListener;
    use std::sync::mpsc;

    /// A minimal SMTP receiver on loopback for one connection: answers the
    /// commands a client sends and hands back everything it was told.
    /// `refuse_rcpt` makes it refuse the recipient, as a relay may.
    fn receiver(refuse_rcpt: bool) -> (u16, mpsc::Receiver<Vec<String>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let Ok((stream, _)) = listener.accept() else {
                return;
            };
            let mut w = stream.try_clone().unwrap();
            let mut r = BufReader::new(stream);
            let mut said = Vec::new();
            let reply = |w: &mut std::net::TcpStream, s: &str| {
                w.write_all(s.as_bytes()).unwrap();
                w.flush().unwrap();
            };
            reply(&mut w, "220 localhost test SMTP\r\n");
            let mut in_data = false;
            loop {
                let mut line = String::new();
                if r.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                said.push(line.trim_end().to_string());
                if in_data {
                    if line == ".\r\n" {
                        in_data = false;
                        reply(&mut w, "250 2.0.0 queued\r\n");
                    }
                    continue;
                }
                let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
                match verb.as_str() {
                    "EHLO" | "HELO" => reply(&mut w, "250 localhost\r\n"),
                    "MAIL" | "RSET" | "NOOP" => reply(&mut w, "250 2.0.0 ok\r\n"),
                    "RCPT" if refuse_rcpt => reply(&mut w, "550 5.1.1 no such user\r\n"),
                    "RCPT" => reply(&mut w, "250 2.1.5 ok\r\n"),
                    "DATA" => {
                        in_data = true;
                        reply(&mut w, "354 go ahead\r\n");
                    }
                    "QUIT" => {
                        reply(&mut w, "221 bye\r\n");
                        break;
                    }
                    _ => reply(&mut w, "502 5.5.2 not implemented\r\n"),
                }
            }
            let _ = tx.send(said);
        });
        (port, rx)
    }

    #[tokio::test]
    async fn smtp_delivers_the_code_to_the_address() {
        let (port, rx) = receiver(false);
        let s = SmtpSender::new(
            "127.0.0.1",
            port,
            "Fernleaf <no-reply@fernleaf.test>",
            None,
            false,
        );
        assert!(s.describe().contains(&format!("127.0.0.1:{port}")));
        s.send("email:ann.lee@example.com", "493817", 10)
            .await
            .unwrap();
        let said = rx.recv_timeout(std::time::Duration::from_secs(10)).unwrap();
        let all = said.join("\n");
        assert!(all.contains("MAIL FROM:<no-reply@fernleaf.test>"), "{all}");
        assert!(all.contains("RCPT TO:<ann.lee@example.com>"), "{all}");
        assert!(all.contains("Subject: Your sign-in code"), "{all}");
        assert!(all.contains("Your sign-in code is 493817"), "{all}");
        assert!(all.contains("for 10 minutes"), "{all}");
    }

    #[tokio::test]
    async fn a_refusing_relay_is_an_error_without_the_code() {
        let (port, _rx) = receiver(true);
        let s = SmtpSender::new("127.0.0.1", port, "no-reply@fernleaf.test", None, false);
        let e = s
            .send("email:ann.lee@example.com", "493817", 10)
            .await
            .unwrap_err();
        let text = e.to_string();
        assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");
        assert!(text.contains("a***@example.com"), "{text}");
        assert!(
            !text.contains("493817") && !text.contains("ann.lee"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn phone_numbers_are_not_sent_to_by_e_mail() {
        let (port, rx) = receiver(false);
        let s = SmtpSender::new("127.0.0.1", port, "no-reply@fernleaf.test", None, false);
        s.send("phone:+447700900123", "493817", 10).await.unwrap();
        assert!(
            rx.recv_timeout(std::time::Duration::from_millis(300))
                .is_err(),
            "nothing reached the relay"
        );
    }
}

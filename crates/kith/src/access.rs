//! `kith keys …` and `kith users …`: who may reach kith's API and console.

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use kith_store::{ApiScope, AuditEntry, HubStore, NewStaffUser, StaffRole};
use kith_web::auth::{keys, password};

#[derive(Debug, Subcommand)]
pub enum KeysAction {
    /// Make a new API key and print it (it is shown only this once).
    Create {
        /// read (parties, views, search…), contribute (read + add contributions and review decisions) or ingest (events only).
        #[arg(long, value_parser = parse_scope)]
        scope: ApiScope,
        /// What the key is for, to tell keys apart later.
        #[arg(long, default_value = "")]
        label: String,
    },
    /// List keys: id, scope, prefix, label, created, last used, revoked.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key by id; it fails on its next request.
    Revoke { id: i64 },
}

#[derive(Debug, Subcommand)]
pub enum UsersAction {
    /// Add a member of staff and print a generated password (or take it from an environment variable).
    Add {
        email: String,
        #[arg(long)]
        name: String,
        /// agent (read, review, answer requests) or admin (also keys, users, configuration).
        #[arg(long, value_parser = parse_role, default_value = "agent")]
        role: StaffRole,
        /// Read the password from this environment variable instead of generating one.
        #[arg(long)]
        password_env: Option<String>,
    },
    /// List staff.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Set a new password (generated, or from --password-env) and end the user's sessions.
    Password {
        email: String,
        #[arg(long)]
        password_env: Option<String>,
    },
    /// Disable a member of staff (their sessions end at once).
    Disable { email: String },
    /// Enable a disabled member of staff again.
    Enable { email: String },
}

fn parse_scope(s: &str) -> Result<ApiScope, String> {
    ApiScope::parse(s)
        .ok_or_else(|| format!("{s:?} is not a scope: use read, contribute or ingest"))
}

fn parse_role(s: &str) -> Result<StaffRole, String> {
    StaffRole::parse(s).ok_or_else(|| format!("{s:?} is not a role: use agent or admin"))
}

async fn audit(store: &dyn HubStore, action: &str, detail: String) -> Result<()> {
    store
        .audit(&AuditEntry {
            at: chrono::Utc::now(),
            actor: "cli".into(),
            action: action.into(),
            party: None,
            detail,
        })
        .await?;
    Ok(())
}

pub async fn keys(store: &dyn HubStore, action: KeysAction) -> Result<()> {
    match action {
        KeysAction::Create { scope, label } => {
            let (key, stored) = keys::create(store, scope, &label).await?;
            audit(
                store,
                "key.create",
                format!("key {} ({})", stored.id, scope.as_str()),
            )
            .await?;
            eprintln!(
                "API key {} with scope {} made; it is shown only now, keep it secret:",
                stored.id,
                scope.as_str()
            );
            println!("{key}");
        }
        KeysAction::List { json } => {
            let all = store.api_keys().await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&all)?);
            } else if all.is_empty() {
                println!("No API keys. Make one with `kith keys create --scope read`.");
            } else {
                println!(
                    "{:>4}  {:<10}  {:<14}  {:<17}  {:<17}  {:<17}  label",
                    "id", "scope", "prefix", "created", "last used", "revoked"
                );
                let t = |t: Option<chrono::DateTime<chrono::Utc>>| {
                    t.map(|t| t.format("%Y-%m-%d %H:%M").to_string())
                        .unwrap_or_else(|| "—".into())
                };
                for k in all {
                    println!(
                        "{:>4}  {:<10}  {:<14}  {:<17}  {:<17}  {:<17}  {}",
                        k.id,
                        k.scope.as_str(),
                        format!("{}…", k.prefix),
                        t(Some(k.created_at)),
                        t(k.last_used_at),
                        t(k.revoked_at),
                        k.label
                    );
                }
            }
        }
        KeysAction::Revoke { id } => {
            if !store.revoke_api_key(id, chrono::Utc::now()).await? {
                bail!("there is no unrevoked API key with id {id} (see `kith keys list`)");
            }
            audit(store, "key.revoke", format!("key {id}")).await?;
            println!("API key {id} revoked.");
        }
    }
    Ok(())
}

fn new_password(env: Option<&str>) -> Result<(String, bool)> {
    match env {
        Some(var) => {
            let p = std::env::var(var)
                .with_context(|| format!("environment variable {var} is not set"))?;
            Ok((p, false))
        }
        None => Ok((password::generate(), true)),
    }
}

pub async fn users(store: &dyn HubStore, action: UsersAction) -> Result<()> {
    match action {
        UsersAction::Add {
            email,
            name,
            role,
            password_env,
        } => {
            let (pw, generated) = new_password(password_env.as_deref())?;
            let hash = password::hash(&pw).map_err(anyhow::Error::msg)?;
            let email = email.trim().to_lowercase();
            if !email.contains('@') {
                bail!("{email:?} is not an e-mail address");
            }
            let id = store
                .create_staff_user(&NewStaffUser {
                    email: email.clone(),
                    name,
                    role,
                    password_hash: hash,
                    created_at: chrono::Utc::now(),
                })
                .await?;
            audit(store, "user.add", format!("{email} ({})", role.as_str())).await?;
            println!("Added {email} as {} (user {id}).", role.as_str());
            if generated {
                println!("Password (shown only now): {pw}");
            }
        }
        UsersAction::List { json } => {
            let all = store.staff_users().await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&all)?);
            } else {
                for u in all {
                    println!(
                        "{:>4}  {:<6}  {:<32}  {}{}",
                        u.id,
                        u.role.as_str(),
                        u.email,
                        u.name,
                        if u.disabled_at.is_some() {
                            "  (disabled)"
                        } else {
                            ""
                        }
                    );
                }
            }
        }
        UsersAction::Password {
            email,
            password_env,
        } => {
            let user = find(store, &email).await?;
            let (pw, generated) = new_password(password_env.as_deref())?;
            store
                .set_staff_password(user.id, &password::hash(&pw).map_err(anyhow::Error::msg)?)
                .await?;
            store
                .delete_sessions_of(&kith_store::SessionSubject::Staff { user: user.id })
                .await?;
            audit(store, "user.password", user.email.clone()).await?;
            println!("New password set for {}; their sessions ended.", user.email);
            if generated {
                println!("Password (shown only now): {pw}");
            }
        }
        UsersAction::Disable { email } => {
            let user = find(store, &email).await?;
            store
                .set_staff_disabled(user.id, Some(chrono::Utc::now()))
                .await?;
            audit(store, "user.disable", user.email.clone()).await?;
            println!("{} disabled; their sessions ended.", user.email);
        }
        UsersAction::Enable { email } => {
            let user = find(store, &email).await?;
            store.set_staff_disabled(user.id, None).await?;
            audit(store, "user.enable", user.email.clone()).await?;
            println!("{} enabled.", user.email);
        }
    }
    Ok(())
}

async fn find(store: &dyn HubStore, email: &str) -> Result<kith_store::StaffUser> {
    store.staff_user_by_email(email).await?.with_context(|| {
        format!("there is no member of staff with e-mail {email} (see `kith users list`)")
    })
}

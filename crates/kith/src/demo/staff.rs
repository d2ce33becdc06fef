//! The demo's staff: one agent and one admin, with fresh passwords each run.

use anyhow::Result;
use kith_store::{HubStore, NewStaffUser, SessionSubject, StaffRole};
use kith_web::auth::password;

pub const AGENT: &str = "sam@fernleaf.example";
pub const ADMIN: &str = "alex@fernleaf.example";

/// Makes (or resets) the demo's staff accounts; returns (e-mail, role, password).
pub async fn ensure(store: &dyn HubStore) -> Result<Vec<(String, &'static str, String)>> {
    let mut out = Vec::new();
    for (email, name, role) in [
        (AGENT, "Sam Patel", StaffRole::Agent),
        (ADMIN, "Alex Morgan", StaffRole::Admin),
    ] {
        let pw = password::generate();
        let hash = password::hash(&pw).map_err(anyhow::Error::msg)?;
        match store.staff_user_by_email(email).await? {
            Some(u) => {
                store.set_staff_password(u.id, &hash).await?;
                store
                    .delete_sessions_of(&SessionSubject::Staff { user: u.id })
                    .await?;
            }
            None => {
                store
                    .create_staff_user(&NewStaffUser {
                        email: email.into(),
                        name: name.into(),
                        role,
                        password_hash: hash,
                        created_at: chrono::Utc::now(),
                    })
                    .await?;
            }
        }
        out.push((email.to_string(), role.as_str(), pw));
    }
    Ok(out)
}

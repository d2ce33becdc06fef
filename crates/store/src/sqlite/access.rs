//! Who may reach what: API keys, staff users, sessions, one-time sign-in
//! codes and erasure requests. The trait methods in `mod.rs` call these.

use kith_model::{PartyId, Timestamp};
use sqlx::sqlite::SqliteRow;

use super::SqliteStore;
use super::codec::{from_json, opt_ts, parse_opt_ts, parse_ts, to_json, ts};
use super::sql::{get, resolve};
use crate::error::QueryContext;
use crate::{
    ApiKey, ApiScope, ErasureRequest, Error, LoginCode, NewApiKey, NewLoginCode, NewStaffUser,
    Result, Session, SessionSubject, StaffRole, StaffUser,
};

const CUSTOMER: &str = "customer";
const STAFF: &str = "staff";

/// Whether a failed statement broke a UNIQUE or PRIMARY KEY constraint.
fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

/// A counter kept as a SQLite integer, read back as the model's `u32`.
fn to_u32(v: i64, what: &'static str) -> Result<u32> {
    u32::try_from(v).map_err(|_| Error::Corrupt {
        what,
        detail: format!("count {v} out of range"),
    })
}

/// How a session's subject is kept: `(subject_type, subject, identifier)`.
fn subject_row(subject: &SessionSubject) -> (&'static str, String, Option<&str>) {
    match subject {
        SessionSubject::Customer { party, identifier } => (
            CUSTOMER,
            party.as_str().to_string(),
            Some(identifier.as_str()),
        ),
        SessionSubject::Staff { user } => (STAFF, user.to_string(), None),
    }
}

// --- row decoding ------------------------------------------------------------

const API_KEY_COLUMNS: &str = "id, label, scope, prefix, created_at, revoked_at, last_used_at";

fn api_key_row(row: &SqliteRow) -> Result<ApiKey> {
    const W: &str = "api_keys";
    let scope: String = get(row, "scope", W)?;
    Ok(ApiKey {
        id: get(row, "id", W)?,
        label: get(row, "label", W)?,
        scope: ApiScope::parse(&scope).ok_or_else(|| Error::Corrupt {
            what: W,
            detail: format!("scope {scope:?}"),
        })?,
        prefix: get(row, "prefix", W)?,
        created_at: parse_ts(&get::<String>(row, "created_at", W)?, W)?,
        revoked_at: parse_opt_ts(get(row, "revoked_at", W)?, W)?,
        last_used_at: parse_opt_ts(get(row, "last_used_at", W)?, W)?,
    })
}

const STAFF_COLUMNS: &str = "id, email, name, role, password_hash, created_at, disabled_at";

fn staff_row(row: &SqliteRow) -> Result<StaffUser> {
    const W: &str = "staff_users";
    let role: String = get(row, "role", W)?;
    Ok(StaffUser {
        id: get(row, "id", W)?,
        email: get(row, "email", W)?,
        name: get(row, "name", W)?,
        role: StaffRole::parse(&role).ok_or_else(|| Error::Corrupt {
            what: W,
            detail: format!("role {role:?}"),
        })?,
        password_hash: get(row, "password_hash", W)?,
        created_at: parse_ts(&get::<String>(row, "created_at", W)?, W)?,
        disabled_at: parse_opt_ts(get(row, "disabled_at", W)?, W)?,
    })
}

fn session_row(row: &SqliteRow) -> Result<Session> {
    const W: &str = "sessions";
    let kind: String = get(row, "subject_type", W)?;
    let subject: String = get(row, "subject", W)?;
    let subject = match kind.as_str() {
        CUSTOMER => SessionSubject::Customer {
            party: PartyId::from_stored(subject),
            identifier: get::<Option<String>>(row, "identifier", W)?.ok_or_else(|| {
                Error::Corrupt {
                    what: W,
                    detail: "a customer session without an identifier".into(),
                }
            })?,
        },
        STAFF => SessionSubject::Staff {
            user: subject.parse().map_err(|_| Error::Corrupt {
                what: W,
                detail: format!("staff user id {subject:?}"),
            })?,
        },
        other => {
            return Err(Error::Corrupt {
                what: W,
                detail: format!("subject type {other:?}"),
            });
        }
    };
    Ok(Session {
        token_hash: get(row, "token_hash", W)?,
        subject,
        csrf: get(row, "csrf", W)?,
        created_at: parse_ts(&get::<String>(row, "created_at", W)?, W)?,
        expires_at: parse_ts(&get::<String>(row, "expires_at", W)?, W)?,
        last_seen_at: parse_ts(&get::<String>(row, "last_seen_at", W)?, W)?,
        user_agent: get(row, "user_agent", W)?,
    })
}

fn login_code_row(row: &SqliteRow) -> Result<LoginCode> {
    const W: &str = "login_codes";
    Ok(LoginCode {
        id: get(row, "id", W)?,
        identifier: get(row, "identifier", W)?,
        party: PartyId::from_stored(get::<String>(row, "party", W)?),
        code_hash: get(row, "code_hash", W)?,
        salt: get(row, "salt", W)?,
        created_at: parse_ts(&get::<String>(row, "created_at", W)?, W)?,
        expires_at: parse_ts(&get::<String>(row, "expires_at", W)?, W)?,
        attempts: to_u32(get(row, "attempts", W)?, W)?,
        used_at: parse_opt_ts(get(row, "used_at", W)?, W)?,
    })
}

fn erasure_row(row: &SqliteRow) -> Result<ErasureRequest> {
    const W: &str = "erasure_requests";
    Ok(ErasureRequest {
        id: get(row, "id", W)?,
        party: PartyId::from_stored(get::<String>(row, "party", W)?),
        requested_by: get(row, "requested_by", W)?,
        requested_at: parse_ts(&get::<String>(row, "requested_at", W)?, W)?,
        receipts: from_json(&get::<String>(row, "receipts", W)?, W)?,
    })
}

// --- API keys ----------------------------------------------------------------

pub(super) async fn create_api_key(s: &SqliteStore, key: &NewApiKey) -> Result<i64> {
    let done = sqlx::query(
        "INSERT INTO api_keys (label, scope, prefix, hash, created_at) VALUES (?, ?, ?, ?, ?)",
    )
    .bind(key.label.as_str())
    .bind(key.scope.as_str())
    .bind(key.prefix.as_str())
    .bind(key.hash.as_str())
    .bind(ts(key.created_at))
    .execute(&s.pool)
    .await;
    match done {
        Err(e) if is_unique_violation(&e) => Err(Error::Conflict(format!(
            "an API key with the hash of {} already exists",
            key.prefix
        ))),
        done => Ok(done.ctx("create API key")?.last_insert_rowid()),
    }
}

pub(super) async fn api_key_by_hash(s: &SqliteStore, hash: &str) -> Result<Option<ApiKey>> {
    let row = super::sql::query(format!(
        "SELECT {API_KEY_COLUMNS} FROM api_keys WHERE hash = ?"
    ))
    .bind(hash)
    .fetch_optional(&s.pool)
    .await
    .ctx("read API key")?;
    row.as_ref().map(api_key_row).transpose()
}

pub(super) async fn api_keys(s: &SqliteStore) -> Result<Vec<ApiKey>> {
    let rows = super::sql::query(format!(
        "SELECT {API_KEY_COLUMNS} FROM api_keys ORDER BY id"
    ))
    .fetch_all(&s.pool)
    .await
    .ctx("read API keys")?;
    rows.iter().map(api_key_row).collect()
}

pub(super) async fn touch_api_key(s: &SqliteStore, id: i64, at: Timestamp) -> Result<()> {
    // Never moves backwards: concurrent requests may finish out of order.
    sqlx::query(
        "UPDATE api_keys SET last_used_at = ?1 \
         WHERE id = ?2 AND (last_used_at IS NULL OR last_used_at < ?1)",
    )
    .bind(ts(at))
    .bind(id)
    .execute(&s.pool)
    .await
    .ctx("touch API key")?;
    Ok(())
}

pub(super) async fn revoke_api_key(s: &SqliteStore, id: i64, at: Timestamp) -> Result<bool> {
    let done =
        sqlx::query("UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL")
            .bind(ts(at))
            .bind(id)
            .execute(&s.pool)
            .await
            .ctx("revoke API key")?;
    Ok(done.rows_affected() == 1)
}

// --- staff -------------------------------------------------------------------

pub(super) async fn create_staff_user(s: &SqliteStore, user: &NewStaffUser) -> Result<i64> {
    let email = user.email.to_lowercase();
    let conflict = || Error::Conflict(format!("staff user {email} already exists"));
    let mut tx = s.write().await?;
    let taken: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM staff_users WHERE email = ?)")
            .bind(email.as_str())
            .fetch_one(&mut *tx)
            .await
            .ctx("look up staff user")?;
    if taken {
        return Err(conflict());
    }
    let done = sqlx::query(
        "INSERT INTO staff_users (email, name, role, password_hash, created_at) \
         VALUES (?, ?, ?, ?, ?)",
    )
    .bind(email.as_str())
    .bind(user.name.as_str())
    .bind(user.role.as_str())
    .bind(user.password_hash.as_str())
    .bind(ts(user.created_at))
    .execute(&mut *tx)
    .await;
    let id = match done {
        Err(e) if is_unique_violation(&e) => return Err(conflict()),
        done => done.ctx("create staff user")?.last_insert_rowid(),
    };
    tx.commit().await.ctx("commit staff user")?;
    Ok(id)
}

pub(super) async fn staff_user(s: &SqliteStore, id: i64) -> Result<Option<StaffUser>> {
    let row = super::sql::query(format!(
        "SELECT {STAFF_COLUMNS} FROM staff_users WHERE id = ?"
    ))
    .bind(id)
    .fetch_optional(&s.pool)
    .await
    .ctx("read staff user")?;
    row.as_ref().map(staff_row).transpose()
}

pub(super) async fn staff_user_by_email(s: &SqliteStore, email: &str) -> Result<Option<StaffUser>> {
    let row = super::sql::query(format!(
        "SELECT {STAFF_COLUMNS} FROM staff_users WHERE email = ?"
    ))
    .bind(email.to_lowercase())
    .fetch_optional(&s.pool)
    .await
    .ctx("read staff user")?;
    row.as_ref().map(staff_row).transpose()
}

pub(super) async fn staff_users(s: &SqliteStore) -> Result<Vec<StaffUser>> {
    let rows = super::sql::query(format!(
        "SELECT {STAFF_COLUMNS} FROM staff_users ORDER BY id"
    ))
    .fetch_all(&s.pool)
    .await
    .ctx("read staff users")?;
    rows.iter().map(staff_row).collect()
}

fn no_staff_user(id: i64) -> Error {
    Error::Invalid(format!("there is no staff user {id}"))
}

pub(super) async fn set_staff_password(
    s: &SqliteStore,
    id: i64,
    password_hash: &str,
) -> Result<()> {
    let done = sqlx::query("UPDATE staff_users SET password_hash = ? WHERE id = ?")
        .bind(password_hash)
        .bind(id)
        .execute(&s.pool)
        .await
        .ctx("set staff password")?;
    if done.rows_affected() == 0 {
        return Err(no_staff_user(id));
    }
    Ok(())
}

pub(super) async fn set_staff_disabled(
    s: &SqliteStore,
    id: i64,
    at: Option<Timestamp>,
) -> Result<()> {
    let mut tx = s.write().await?;
    let done = sqlx::query("UPDATE staff_users SET disabled_at = ? WHERE id = ?")
        .bind(opt_ts(at))
        .bind(id)
        .execute(&mut *tx)
        .await
        .ctx("set staff disabled")?;
    if done.rows_affected() == 0 {
        return Err(no_staff_user(id));
    }
    if at.is_some() {
        sqlx::query("DELETE FROM sessions WHERE subject_type = ? AND subject = ?")
            .bind(STAFF)
            .bind(id.to_string())
            .execute(&mut *tx)
            .await
            .ctx("end staff sessions")?;
    }
    tx.commit().await.ctx("commit staff disabled")
}

// --- sessions ----------------------------------------------------------------

pub(super) async fn create_session(s: &SqliteStore, session: &Session) -> Result<()> {
    let (kind, subject, identifier) = subject_row(&session.subject);
    let done = sqlx::query(
        "INSERT INTO sessions (token_hash, subject_type, subject, identifier, csrf, created_at, \
         expires_at, last_seen_at, user_agent) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(session.token_hash.as_str())
    .bind(kind)
    .bind(subject)
    .bind(identifier)
    .bind(session.csrf.as_str())
    .bind(ts(session.created_at))
    .bind(ts(session.expires_at))
    .bind(ts(session.last_seen_at))
    .bind(session.user_agent.as_str())
    .execute(&s.pool)
    .await;
    match done {
        Err(e) if is_unique_violation(&e) => Err(Error::Conflict(
            "a session with this token already exists".into(),
        )),
        done => done.ctx("create session").map(|_| ()),
    }
}

pub(super) async fn session(s: &SqliteStore, token_hash: &str) -> Result<Option<Session>> {
    let row = sqlx::query(
        "SELECT token_hash, subject_type, subject, identifier, csrf, created_at, expires_at, \
         last_seen_at, user_agent FROM sessions WHERE token_hash = ?",
    )
    .bind(token_hash)
    .fetch_optional(&s.pool)
    .await
    .ctx("read session")?;
    row.as_ref().map(session_row).transpose()
}

pub(super) async fn touch_session(
    s: &SqliteStore,
    token_hash: &str,
    at: Timestamp,
    expires_at: Timestamp,
) -> Result<()> {
    sqlx::query("UPDATE sessions SET last_seen_at = ?, expires_at = ? WHERE token_hash = ?")
        .bind(ts(at))
        .bind(ts(expires_at))
        .bind(token_hash)
        .execute(&s.pool)
        .await
        .ctx("touch session")?;
    Ok(())
}

pub(super) async fn delete_session(s: &SqliteStore, token_hash: &str) -> Result<()> {
    sqlx::query("DELETE FROM sessions WHERE token_hash = ?")
        .bind(token_hash)
        .execute(&s.pool)
        .await
        .ctx("delete session")?;
    Ok(())
}

pub(super) async fn delete_sessions_of(s: &SqliteStore, subject: &SessionSubject) -> Result<u64> {
    let mut tx = s.write().await?;
    let done = match subject {
        SessionSubject::Customer { party, .. } => {
            // Every identifier the customer signed in with, and sessions begun
            // under ids since merged into the party, are the same customer's.
            let id = resolve(&mut tx, party.as_str()).await?;
            sqlx::query(with_aliases!(
                "DELETE FROM sessions WHERE subject_type = ?2 \
                 AND subject IN (SELECT id FROM aliases)"
            ))
            .bind(&id)
            .bind(CUSTOMER)
            .execute(&mut *tx)
            .await
        }
        SessionSubject::Staff { user } => {
            sqlx::query("DELETE FROM sessions WHERE subject_type = ? AND subject = ?")
                .bind(STAFF)
                .bind(user.to_string())
                .execute(&mut *tx)
                .await
        }
    }
    .ctx("delete sessions")?;
    tx.commit().await.ctx("commit sessions deleted")?;
    Ok(done.rows_affected())
}

pub(super) async fn purge_sessions(s: &SqliteStore, before: Timestamp) -> Result<u64> {
    let done = sqlx::query("DELETE FROM sessions WHERE expires_at < ?")
        .bind(ts(before))
        .execute(&s.pool)
        .await
        .ctx("purge sessions")?;
    Ok(done.rows_affected())
}

// --- one-time sign-in codes --------------------------------------------------

pub(super) async fn create_login_code(s: &SqliteStore, code: &NewLoginCode) -> Result<i64> {
    let done = sqlx::query(
        "INSERT INTO login_codes (identifier, party, code_hash, salt, created_at, expires_at) \
         VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(code.identifier.as_str())
    .bind(code.party.as_str())
    .bind(code.code_hash.as_str())
    .bind(code.salt.as_str())
    .bind(ts(code.created_at))
    .bind(ts(code.expires_at))
    .execute(&s.pool)
    .await
    .ctx("create sign-in code")?;
    Ok(done.last_insert_rowid())
}

pub(super) async fn login_codes_issued_since(
    s: &SqliteStore,
    identifier: &str,
    since: Timestamp,
) -> Result<u32> {
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM login_codes WHERE identifier = ? AND created_at >= ?",
    )
    .bind(identifier)
    .bind(ts(since))
    .fetch_one(&s.pool)
    .await
    .ctx("count sign-in codes")?;
    to_u32(n, "login_codes")
}

pub(super) async fn active_login_code(
    s: &SqliteStore,
    identifier: &str,
    now: Timestamp,
) -> Result<Option<LoginCode>> {
    let row = sqlx::query(
        "SELECT id, identifier, party, code_hash, salt, created_at, expires_at, attempts, used_at \
         FROM login_codes WHERE identifier = ? AND used_at IS NULL AND expires_at > ? \
         ORDER BY created_at DESC, id DESC LIMIT 1",
    )
    .bind(identifier)
    .bind(ts(now))
    .fetch_optional(&s.pool)
    .await
    .ctx("read sign-in code")?;
    row.as_ref().map(login_code_row).transpose()
}

pub(super) async fn count_login_attempt(s: &SqliteStore, id: i64) -> Result<u32> {
    let attempts: Option<i64> = sqlx::query_scalar(
        "UPDATE login_codes SET attempts = attempts + 1 WHERE id = ? RETURNING attempts",
    )
    .bind(id)
    .fetch_optional(&s.pool)
    .await
    .ctx("count sign-in attempt")?;
    let attempts =
        attempts.ok_or_else(|| Error::Invalid(format!("there is no sign-in code {id}")))?;
    to_u32(attempts, "login_codes")
}

pub(super) async fn use_login_code(s: &SqliteStore, id: i64, at: Timestamp) -> Result<bool> {
    // One conditional statement: of two requests racing with the same code,
    // only one changes the row.
    let done = sqlx::query("UPDATE login_codes SET used_at = ? WHERE id = ? AND used_at IS NULL")
        .bind(ts(at))
        .bind(id)
        .execute(&s.pool)
        .await
        .ctx("use sign-in code")?;
    Ok(done.rows_affected() == 1)
}

// --- erasure -----------------------------------------------------------------

pub(super) async fn add_erasure_request(s: &SqliteStore, request: &ErasureRequest) -> Result<i64> {
    let mut tx = s.write().await?;
    let done = sqlx::query(
        "INSERT INTO erasure_requests (party, requested_by, requested_at, receipts) \
         VALUES (?, ?, ?, ?)",
    )
    .bind(request.party.as_str())
    .bind(request.requested_by.as_str())
    .bind(ts(request.requested_at))
    .bind(to_json(&request.receipts))
    .execute(&mut *tx)
    .await
    .ctx("add erasure request")?;
    let id = done.last_insert_rowid();
    let change = crate::NewChange::erasure_requested(id, request);
    super::changes::append(&mut tx, &[change]).await?;
    tx.commit().await.ctx("commit erasure request")?;
    Ok(id)
}

pub(super) async fn erasure_requests(
    s: &SqliteStore,
    party: Option<&PartyId>,
) -> Result<Vec<ErasureRequest>> {
    let mut tx = s.read().await?;
    let rows = match party {
        None => {
            sqlx::query(
                "SELECT id, party, requested_by, requested_at, receipts FROM erasure_requests \
                 ORDER BY requested_at DESC, id DESC",
            )
            .fetch_all(&mut *tx)
            .await
        }
        Some(party) => {
            // Requests about ids merged into this party are about this party too.
            let id = resolve(&mut tx, party.as_str()).await?;
            sqlx::query(with_aliases!(
                "SELECT id, party, requested_by, requested_at, receipts FROM erasure_requests \
                 WHERE party IN (SELECT id FROM aliases) \
                 ORDER BY requested_at DESC, id DESC"
            ))
            .bind(&id)
            .fetch_all(&mut *tx)
            .await
        }
    }
    .ctx("read erasure requests")?;
    tx.commit().await.ctx("end read")?;
    rows.iter().map(erasure_row).collect()
}

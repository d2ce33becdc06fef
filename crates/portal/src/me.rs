//! `/me`: the customer's own picture, with where every value came from,
//! a way to correct each profile value, and their consents and preferences.

use askama::Template;
use axum::extract::{Query, State};
use axum::response::Html;
use kith_hub::Audience;
use kith_web::auth::session::Customer;
use kith_web::layout::{Chrome, when};
use kith_web::{AppState, PageResult};
use serde::Deserialize;

use crate::picture::{self, FREQUENCIES, Picture};
use crate::{Section, chrome, fact_kinds, notice};

#[derive(Template)]
#[template(path = "me.html")]
struct MePage {
    chrome: Chrome,
    csrf: String,
    p: Picture,
    frequencies: &'static [(&'static str, &'static str)],
    generated: String,
    max_value: usize,
}

impl MePage {
    fn frequency_is(&self, value: &str) -> bool {
        self.p.frequency.as_ref().is_some_and(|(v, _)| v == value)
    }
}

/// `?done=` after a change; any other parameter is ignored (there is no
/// parameter that chooses whose data is shown).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Done {
    #[serde(default)]
    pub done: Option<String>,
}

pub(crate) async fn page(
    State(state): State<AppState>,
    customer: Customer,
    Query(q): Query<Done>,
) -> PageResult<Html<String>> {
    let view = state
        .hub
        .view_as(&customer.party, Audience::Customer)
        .await?;
    let p = picture::build(&view, &fact_kinds(&state));
    let page = MePage {
        chrome: chrome(
            &customer,
            "Your information",
            Section::Me,
            notice(q.done.as_deref()),
        ),
        csrf: customer.csrf.clone(),
        p,
        frequencies: &FREQUENCIES,
        generated: when(&view.generated_at),
        max_value: crate::changes::MAX_VALUE,
    };
    Ok(Html(page.render()?))
}

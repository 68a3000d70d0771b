//! The console's pages, by what they show: receivers (the list, one receiver with its guide,
//! health and delivery log, and the forms that change them), deliveries (one delivery as it came
//! in and what it did), and sync (repositories, changesets with their timelines, the sync
//! request queue). Each handler calls the admin API and renders its answer.

pub mod deliveries;
pub mod receivers;
pub mod sync;

use std::collections::HashMap;

use crate::admin::proto::{self, receiver_service_server::ReceiverService};
use crate::console::ConsoleState;
use crate::console::api::call;
use crate::console::html::PageError;

/// Receiver `id`, as GetReceiver answers (NOT_FOUND becomes the 404 page).
pub async fn get_receiver(state: &ConsoleState, id: &str) -> Result<proto::Receiver, PageError> {
    Ok(state
        .api
        .receivers
        .get_receiver(call(proto::GetReceiverRequest { id: id.to_owned() }))
        .await?
        .into_inner())
}

/// The proto value of the state named `raw` among `states` (a listing's filter, as its form
/// names them), or a 400 that says which names there are; `what` names the kind of state.
pub fn state_named<S: Copy + Into<i32>>(
    states: &[(&str, S)],
    raw: &str,
    what: &str,
) -> Result<i32, PageError> {
    if let Some((_, state)) = states.iter().find(|(name, _)| *name == raw) {
        return Ok((*state).into());
    }
    let names: Vec<&str> = states.iter().map(|(name, _)| *name).collect();
    let (last, rest) = names.split_last().expect("a listing has states");
    Err(PageError::bad_request(format!(
        "state {raw:?} is not a {what}: use {} or {last}",
        rest.join(", ")
    )))
}

/// A listing's optional state filter: none when `raw` is empty, else the state it names.
pub fn state_filter<S: Copy + Into<i32>>(
    states: &[(&str, S)],
    raw: &str,
    what: &str,
) -> Result<Vec<i32>, PageError> {
    match raw {
        "" => Ok(Vec::new()),
        raw => Ok(vec![state_named(states, raw, what)?]),
    }
}

/// The parameters of a query string or of a urlencoded form: never refused, whatever was sent
/// (a page says what is wrong with a value it needs, in words).
#[derive(Debug, Default)]
pub struct Params(HashMap<String, Vec<String>>);

impl Params {
    pub fn parse(raw: &[u8]) -> Self {
        let mut all: HashMap<String, Vec<String>> = HashMap::new();
        for (name, value) in form_urlencoded::parse(raw) {
            all.entry(name.into_owned())
                .or_default()
                .push(value.into_owned());
        }
        Self(all)
    }

    pub fn query(raw: Option<String>) -> Self {
        Self::parse(raw.unwrap_or_default().as_bytes())
    }

    /// The first value of `name`, trimmed; empty when absent.
    pub fn get(&self, name: &str) -> &str {
        self.0
            .get(name)
            .and_then(|v| v.first())
            .map(|v| v.trim())
            .unwrap_or_default()
    }

    /// Every value of `name`.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .get(name)
            .map(|v| v.iter().map(|s| s.trim()).collect())
            .unwrap_or_default()
    }

    /// Whether a checkbox `name` was ticked.
    pub fn ticked(&self, name: &str) -> bool {
        !self.get(name).is_empty()
    }
}

//! Paging for the list subcommands: one page (`--page-size`, `--page-token`), or every page
//! followed in turn (`--all`), printed as one list in either output.

use std::future::Future;

use clap::Args;
use serde_json::Value;
use tonic::Status;

use super::Output;
use super::failure::Failure;
use super::render::Table;

/// The paging flags every list subcommand takes.
#[derive(Debug, Clone, Args, PartialEq, Eq)]
pub struct Paging {
    /// Entries per page (the server's default is 50, at most 500).
    #[arg(long)]
    pub page_size: Option<i32>,

    /// Start at this page: the next_page_token a previous listing printed.
    #[arg(long, conflicts_with = "all")]
    pub page_token: Option<String>,

    /// Follow every page and print them as one list.
    #[arg(long)]
    pub all: bool,
}

/// One page of a listing (with `--all`, every page joined).
pub struct Page<T> {
    pub items: Vec<T>,
    /// Empty on the last page.
    pub next_page_token: String,
    /// How many entries match on every page, when the RPC says.
    pub total_size: Option<i32>,
}

impl Paging {
    /// Calls `fetch(page_size, page_token)` for the page asked for, then for every next page
    /// with `--all`.
    pub async fn fetch<T, F, Fut>(&self, mut fetch: F) -> Result<Page<T>, Failure>
    where
        F: FnMut(i32, String) -> Fut,
        Fut: Future<Output = Result<Page<T>, Status>>,
    {
        let size = self.page_size.unwrap_or(0);
        let mut page = fetch(size, self.page_token.clone().unwrap_or_default()).await?;
        while self.all && !page.next_page_token.is_empty() {
            let next = fetch(size, std::mem::take(&mut page.next_page_token)).await?;
            page.items.extend(next.items);
            page.next_page_token = next.next_page_token;
            page.total_size = next.total_size.or(page.total_size);
        }
        Ok(page)
    }
}

impl<T> Page<T> {
    /// Prints the page: as the list response's JSON (`field` holds the entries, then
    /// `nextPageToken` and `totalSize` when the RPC has it), or as a table built by `table`,
    /// with how to get the next page on stderr.
    pub fn print(
        &self,
        output: Output,
        field: &str,
        json: impl Fn(&T) -> Value,
        table: impl FnOnce(&[T]) -> Table,
    ) {
        match output {
            Output::Json => {
                let mut object = serde_json::Map::new();
                object.insert(
                    field.to_owned(),
                    Value::Array(self.items.iter().map(json).collect()),
                );
                object.insert(
                    "nextPageToken".to_owned(),
                    Value::String(self.next_page_token.clone()),
                );
                if let Some(total) = self.total_size {
                    object.insert("totalSize".to_owned(), Value::from(total));
                }
                super::render::print_json(&Value::Object(object));
            }
            Output::Table => {
                table(&self.items).print();
                if !self.next_page_token.is_empty() {
                    let of = self
                        .total_size
                        .map(|total| format!(" of {total}"))
                        .unwrap_or_default();
                    eprintln!(
                        "{}{of} shown; the next page: --page-token {} (or --all for every page)",
                        self.items.len(),
                        self.next_page_token
                    );
                }
            }
        }
    }
}

//! Why a change is refused: the reason the server sends the peer (an
//! automerge-repo `error` message), naming the field and the limit where
//! there is one.

use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("this notebook belongs to another volunteer; only its owner may change it")]
    NotYourNotebook,
    #[error("you may not keep a notebook in territory {territory}")]
    TerritoryNotAllowed { territory: Uuid },
    #[error(
        "your roles keep no notebook in any territory: you may read documents, not change them"
    )]
    NoNotebookAnywhere,
    #[error("a new notebook must name you as its owner (`ownerId` must be your account id)")]
    OwnerMismatch,
    #[error("the notebook's `{field}` cannot be changed")]
    HeaderChanged { field: &'static str },
    #[error("a document must be a field notebook with a valid header: {0}")]
    NotANotebook(String),
    #[error("`{key}` is not part of a field notebook")]
    NotPartOfANotebook { key: String },
    #[error("these changes depend on changes the server has never received, and a new notebook must be sent from its beginning")]
    UnknownHistory,
    #[error("more than {limit} changes are waiting for changes the server has never received; send those first")]
    TooManyWaiting { limit: usize },
    #[error("`{field}` of {collection}/{record} is a coordinator's decision and cannot be set from a notebook")]
    CoordinatorField {
        collection: &'static str,
        record: String,
        field: String,
    },
    #[error("`{field}` of {collection}/{record} must be your own account id: a notebook holds its owner's records and hours only")]
    NotTheOwner {
        collection: &'static str,
        record: String,
        field: &'static str,
    },
    #[error("`{location}` is {got} characters long; the limit is {limit}")]
    TooLong {
        location: String,
        limit: u64,
        got: usize,
    },
    #[error("`{location}` holds {got} items; the limit is {limit}")]
    TooManyItems {
        location: String,
        limit: usize,
        got: usize,
    },
    #[error("{collection}/{record} has {got} fields; the limit is {limit}")]
    TooManyFields {
        collection: &'static str,
        record: String,
        limit: usize,
        got: usize,
    },
    #[error("the notebook would hold {got} records; the limit is {limit} per notebook")]
    TooManyRecords { limit: usize, got: usize },
    #[error("{got} changes at once; the limit is {limit} per message")]
    TooManyChanges { limit: usize, got: usize },
    #[error("a change of {got} operations; the limit is {limit} per change")]
    ChangeTooLarge { limit: usize, got: usize },
    #[error("`{location}` holds the character {character}, which stored text may not hold (control characters other than tab and line breaks)")]
    ForbiddenCharacter {
        location: String,
        /// As `U+0000`.
        character: String,
    },
    #[error("`{location}` holds {what}, which are not part of a notebook")]
    Unsupported {
        location: String,
        what: &'static str,
    },
    #[error("`{location}` must be a map ({what})")]
    NotAMap {
        location: String,
        what: &'static str,
    },
    #[error("this is a review document: it holds coordinators' decisions, which only the review API writes")]
    ReviewDocument,
    #[error("this is the territory's species list: only its coordinators change it, by importing a list over the API")]
    SpeciesListDocument,
    #[error("this notebook was retired when its owner was erased: it takes no change")]
    RetiredDocument,
    #[error(
        "these changes cannot be applied to the document (they refer to objects it does not have)"
    )]
    Unapplicable,
}

impl Refusal {
    /// A short stable name for the kind of refusal, the same whatever the
    /// record or field: what the server's metrics count refusals by.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::NotYourNotebook => "not_your_notebook",
            Refusal::TerritoryNotAllowed { .. } => "territory_not_allowed",
            Refusal::NoNotebookAnywhere => "no_notebook_anywhere",
            Refusal::OwnerMismatch => "owner_mismatch",
            Refusal::HeaderChanged { .. } => "header_changed",
            Refusal::NotANotebook(_) => "not_a_notebook",
            Refusal::NotPartOfANotebook { .. } => "not_part_of_a_notebook",
            Refusal::UnknownHistory => "unknown_history",
            Refusal::TooManyWaiting { .. } => "too_many_waiting",
            Refusal::CoordinatorField { .. } => "coordinator_field",
            Refusal::NotTheOwner { .. } => "not_the_owner",
            Refusal::TooLong { .. } => "too_long",
            Refusal::TooManyItems { .. } => "too_many_items",
            Refusal::TooManyFields { .. } => "too_many_fields",
            Refusal::TooManyRecords { .. } => "too_many_records",
            Refusal::TooManyChanges { .. } => "too_many_changes",
            Refusal::ChangeTooLarge { .. } => "change_too_large",
            Refusal::ForbiddenCharacter { .. } => "forbidden_character",
            Refusal::Unsupported { .. } => "unsupported",
            Refusal::NotAMap { .. } => "not_a_map",
            Refusal::ReviewDocument => "review_document",
            Refusal::SpeciesListDocument => "species_list_document",
            Refusal::RetiredDocument => "retired_document",
            Refusal::Unapplicable => "unapplicable",
        }
    }
}

//! The size rules of a record's fields: how many characters a text may hold
//! and how many items a list, wherever it sits in a field. The judge holds
//! every value a peer's change writes to them ([`check_size`]); the server
//! holds its own writes of a field, a coordinator's conflict resolution, to
//! the same rules ([`check_field_json`]), so the server never writes a value
//! a phone could not have written, and says why in the judge's words.

use schemas::{
    limits::{max_chars_of, max_item_chars_of, max_items_of, EXTRA_FIELD_MAX_CHARS},
    RecordKind,
};
use serde_json::Value as Json;
use uuid::Uuid;

use super::refusal::Refusal;
use crate::documents::Collection;

/// A list the schema does not bound (one a client added of its own).
pub const EXTRA_LIST_MAX_ITEMS: usize = 100;

/// Where a value sits in a record's field, as far as the size rules look at it.
#[derive(Debug, Clone, Copy)]
pub(super) enum Place<'a> {
    /// The field's own value: the schema's `maxLength` of the field, its
    /// `maxItems` for a list.
    Field { kind: RecordKind, field: &'a str },
    /// An item of the field's list: the `maxLength` of the list's items.
    ListItem { kind: RecordKind, field: &'a str },
    /// What the schema does not describe (below a list's items, inside a map,
    /// anything outside a known collection): [`EXTRA_FIELD_MAX_CHARS`] and
    /// [`EXTRA_LIST_MAX_ITEMS`].
    Undescribed,
}

/// A value's size, as the rules count it.
#[derive(Debug, Clone, Copy)]
pub(super) enum Size {
    /// Characters of a text (bytes of a binary value).
    Chars(usize),
    /// Items of a list.
    Items(usize),
}

/// The one size rule, for phones' changes and the server's own writes: a
/// value of `size` at `place` within its limit, else a refusal naming
/// `location` and the limit.
pub(super) fn check_size(place: Place<'_>, size: Size, location: &str) -> Result<(), Refusal> {
    match size {
        Size::Chars(got) => {
            let limit = match place {
                Place::Field { kind, field } => max_chars_of(kind, field),
                Place::ListItem { kind, field } => max_item_chars_of(kind, field),
                Place::Undescribed => EXTRA_FIELD_MAX_CHARS,
            };
            check_chars(location, got, limit)
        }
        Size::Items(got) => {
            let limit = match place {
                Place::Field { kind, field } => {
                    max_items_of(kind, field).map_or(EXTRA_LIST_MAX_ITEMS, |limit| limit as usize)
                }
                Place::ListItem { .. } | Place::Undescribed => EXTRA_LIST_MAX_ITEMS,
            };
            if got > limit {
                return Err(Refusal::TooManyItems {
                    location: location.to_string(),
                    limit,
                    got,
                });
            }
            Ok(())
        }
    }
}

/// `got` characters at `location` within `limit` (a header's keys have
/// limits of their own).
pub(super) fn check_chars(location: &str, got: usize, limit: u64) -> Result<(), Refusal> {
    if got as u64 > limit {
        return Err(Refusal::TooLong {
            location: location.to_string(),
            limit,
            got,
        });
    }
    Ok(())
}

/// Holds `value`, written by the server into `field` of record `record` (of
/// `kind`), to the limits a phone's write of it is held to: the schema's
/// `maxLength` of the field, `maxItems` and items' `maxLength` of a list,
/// [`EXTRA_FIELD_MAX_CHARS`] and [`EXTRA_LIST_MAX_ITEMS`] for what the schema
/// does not bound, nested values included. A value nested in a map is
/// located by its key below the field (`sightings/<record>.field/key`).
pub fn check_field_json(
    kind: RecordKind,
    record: Uuid,
    field: &str,
    value: &Json,
) -> Result<(), Refusal> {
    let location = format!("{}/{record}.{field}", Collection::of_kind(kind).key());
    match value {
        Json::String(text) => check_size(
            Place::Field { kind, field },
            Size::Chars(text.chars().count()),
            &location,
        ),
        Json::Array(items) => {
            check_size(
                Place::Field { kind, field },
                Size::Items(items.len()),
                &location,
            )?;
            items.iter().try_for_each(|item| match item {
                Json::String(text) => check_size(
                    Place::ListItem { kind, field },
                    Size::Chars(text.chars().count()),
                    &location,
                ),
                other => check_undescribed_json(other, &location),
            })
        }
        other => check_undescribed_json(other, &location),
    }
}

/// Below a field's own value and its list's items, what the schema does not
/// describe: the bounds for what clients add.
fn check_undescribed_json(value: &Json, location: &str) -> Result<(), Refusal> {
    match value {
        Json::String(text) => check_size(
            Place::Undescribed,
            Size::Chars(text.chars().count()),
            location,
        ),
        Json::Array(items) => {
            check_size(Place::Undescribed, Size::Items(items.len()), location)?;
            items
                .iter()
                .try_for_each(|item| check_undescribed_json(item, location))
        }
        Json::Object(fields) => fields
            .iter()
            .try_for_each(|(key, item)| check_undescribed_json(item, &format!("{location}/{key}"))),
        _ => Ok(()),
    }
}

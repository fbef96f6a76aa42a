//! Every value a set of changes writes, wherever it lands in the document.
//!
//! Judging a notebook by its merged state misses what automerge keeps out of
//! sight: the value of a concurrent branch that lost the merge, a value a later
//! change deleted, a record created under a key another record won. Each of
//! these is one deletion or one merge away from surfacing, so the server judges
//! the operations themselves: every put, every object made, every text edited,
//! located by its path from the document's root.

use std::collections::HashMap;

use automerge::{legacy, Automerge, Change, ObjId, ObjType, Prop, ReadDoc, ScalarValue};

/// One step of a path from the document's root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    /// A map key.
    Key(String),
    /// An element of a list or a text, whatever its position.
    Element,
}

/// What an operation leaves at its path.
#[derive(Debug, Clone, PartialEq)]
pub enum Written {
    Scalar(ScalarValue),
    /// A new map, list or text.
    Object(ObjType),
    /// A text mark (formatting), which no notebook field has.
    Mark,
    /// A deletion or an increment: nothing new to judge by value.
    Other,
}

/// A value written by one operation, or a text as the changes leave it.
#[derive(Debug, Clone, PartialEq)]
pub struct WrittenValue {
    /// From the root down to the written key or element.
    pub path: Vec<Segment>,
    pub value: Written,
    /// Whether the operation replaces values its writer saw there (it has
    /// predecessors): false for a key written for the first time.
    pub overwrites: bool,
}

/// A list or text object the changes touched, with its path, so its size can
/// be judged as the changes leave it.
#[derive(Debug, Clone, PartialEq)]
pub struct TouchedObject {
    pub path: Vec<Segment>,
    pub obj: ObjId,
    pub kind: ObjType,
    /// For a text: the characters the changes insert into it, deleted ones
    /// included, so that text inserted then deleted is bounded too.
    pub inserted_chars: usize,
    /// For a text: something other than a character the changes put in it
    /// (a number, bytes, a mark), which a field of a notebook never holds.
    pub foreign: Option<&'static str>,
    /// For a text: a character the changes insert that stored text may not
    /// hold (`schemas::text`), deleted ones included.
    pub forbidden_char: Option<char>,
}

/// What `changes` (all applied in `after`) write: every operation's value, and
/// every list, text and map they touched. Objects are located in `after`,
/// whose history holds them even where the merge hides them.
pub fn written_by(
    after: &Automerge,
    changes: &[Change],
) -> Result<(Vec<WrittenValue>, Vec<TouchedObject>), String> {
    let mut paths: HashMap<String, (Vec<Segment>, ObjId, ObjType)> = HashMap::new();
    let mut values = Vec::new();
    let mut touched: HashMap<ObjId, TouchedObject> = HashMap::new();
    for change in changes {
        let start_op = change.start_op().get();
        let actor = change.actor_id().to_hex_string();
        for (index, op) in change.decode().operations.into_iter().enumerate() {
            let (parent_path, parent, parent_kind) = locate(after, op.obj.to_string(), &mut paths)?;
            let object = touched
                .entry(parent.clone())
                .or_insert_with(|| TouchedObject {
                    path: parent_path.clone(),
                    obj: parent,
                    kind: parent_kind,
                    inserted_chars: 0,
                    foreign: None,
                    forbidden_char: None,
                });
            if parent_kind == ObjType::Text {
                // A text is judged by what is inserted and by its content.
                match &op.action {
                    legacy::OpType::Put(ScalarValue::Str(text)) => {
                        object.inserted_chars += text.chars().count();
                        object.forbidden_char = object
                            .forbidden_char
                            .or_else(|| schemas::text::forbidden_char(text));
                    }
                    legacy::OpType::Put(_) | legacy::OpType::Make(_) => {
                        object.foreign = Some("values other than characters")
                    }
                    legacy::OpType::MarkBegin(_) | legacy::OpType::MarkEnd(_) => {
                        object.foreign = Some("marks")
                    }
                    legacy::OpType::Delete | legacy::OpType::Increment(_) => {}
                }
                continue;
            }
            let mut path = parent_path;
            path.push(match &op.key {
                legacy::Key::Map(name) => Segment::Key(name.to_string()),
                legacy::Key::Seq(_) => Segment::Element,
            });
            let value = match &op.action {
                legacy::OpType::Put(scalar) => Written::Scalar(scalar.clone()),
                legacy::OpType::Make(_) => {
                    // The new object, so that an empty one is judged too. Its
                    // path is where this operation puts it: known without
                    // asking the document for its parents, which costs a walk
                    // of the operation set per object (docs/PERFORMANCE.md).
                    let id = format!("{}@{actor}", start_op + index as u64);
                    let (obj, kind) = after.import(&id).map_err(|error| {
                        format!("an operation makes an object the document lacks {id}: {error}")
                    })?;
                    paths.insert(id, (path.clone(), obj.clone(), kind));
                    touched.entry(obj.clone()).or_insert_with(|| TouchedObject {
                        path: path.clone(),
                        obj,
                        kind,
                        inserted_chars: 0,
                        foreign: None,
                        forbidden_char: None,
                    });
                    Written::Object(kind)
                }
                legacy::OpType::MarkBegin(_) | legacy::OpType::MarkEnd(_) => Written::Mark,
                legacy::OpType::Delete | legacy::OpType::Increment(_) => Written::Other,
            };
            values.push(WrittenValue {
                path,
                value,
                overwrites: !op.pred.is_empty(),
            });
        }
    }
    Ok((values, touched.into_values().collect()))
}

/// The path, id and type of the object an operation writes into.
fn locate(
    after: &Automerge,
    text: String,
    paths: &mut HashMap<String, (Vec<Segment>, ObjId, ObjType)>,
) -> Result<(Vec<Segment>, ObjId, ObjType), String> {
    if let Some(found) = paths.get(&text) {
        return Ok(found.clone());
    }
    let (id, kind) = after
        .import(&text)
        .map_err(|error| format!("an operation writes into an unknown object {text}: {error}"))?;
    let path = after
        .parents(&id)
        .map_err(|error| format!("object {text} cannot be located: {error}"))?
        .path()
        .into_iter()
        .map(|(_, prop)| match prop {
            Prop::Map(key) => Segment::Key(key),
            Prop::Seq(_) => Segment::Element,
        })
        .collect::<Vec<_>>();
    let found = (path, id, kind);
    paths.insert(text, found.clone());
    Ok(found)
}

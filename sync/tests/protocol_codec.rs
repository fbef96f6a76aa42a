//! The automerge-repo message codec (`sync::protocol::message`): round trips,
//! frames recorded from the real JavaScript client, and each malformed input
//! refused with its own error.

use std::{collections::BTreeMap, path::PathBuf};

use fieldnotes_sync::protocol::{
    decode, encode, DecodeError, DocumentId, HeadsAt, IncomingSync, Limits, Message, PeerMetadata,
    SyncDataLimits,
};
use minicbor::Encoder;

fn doc() -> DocumentId {
    DocumentId::from_bytes(*b"0123456789abcdef")
}

fn every_kind() -> Vec<Message> {
    let metadata = Some(PeerMetadata {
        storage_id: Some("3760df37-a4c6-4f66-9ecd-732039a9385d".into()),
        is_ephemeral: Some(false),
    });
    vec![
        Message::Join {
            sender_id: "device-1".into(),
            supported_protocol_versions: vec!["1".into()],
            metadata: metadata.clone(),
        },
        Message::Peer {
            sender_id: "server".into(),
            target_id: "device-1".into(),
            selected_protocol_version: "1".into(),
            metadata,
        },
        Message::Leave {
            sender_id: "device-1".into(),
        },
        Message::Request {
            sender_id: "device-1".into(),
            target_id: "server".into(),
            document_id: doc(),
            data: vec![0x42, 0, 1],
        },
        Message::Sync {
            sender_id: "server".into(),
            target_id: "device-1".into(),
            document_id: doc(),
            data: vec![0x42, 7],
        },
        Message::DocUnavailable {
            sender_id: "server".into(),
            target_id: "device-1".into(),
            document_id: doc(),
        },
        Message::Ephemeral {
            sender_id: "device-1".into(),
            target_id: "server".into(),
            count: 3,
            session_id: "s".into(),
            document_id: doc(),
            data: vec![0xa0],
        },
        Message::Error {
            message: "refused".into(),
            sender_id: Some("server".into()),
            target_id: None,
        },
        Message::RemoteSubscriptionChange {
            sender_id: "device-1".into(),
            target_id: "server".into(),
            add: vec!["storage-a".into()],
            remove: vec![],
        },
        Message::RemoteHeadsChanged {
            sender_id: "server".into(),
            target_id: "device-1".into(),
            document_id: doc(),
            new_heads: BTreeMap::from([(
                "storage-a".into(),
                HeadsAt {
                    heads: vec!["2kAk7bQXa".into()],
                    timestamp: 1_764_633_600_000,
                },
            )]),
        },
    ]
}

#[test]
fn every_message_type_round_trips() {
    for message in every_kind() {
        assert_eq!(
            decode(&encode(&message), &Limits::default()),
            Ok(message.clone()),
            "{}",
            message.kind()
        );
    }
}

/// Writes one value of a hand-made map.
type WriteValue<'a> = &'a dyn Fn(&mut Encoder<&mut Vec<u8>>);

/// A CBOR map written field by field, for inputs the encoder would never make.
fn map(fields: &[(&str, WriteValue<'_>)]) -> Vec<u8> {
    let mut bytes = Vec::new();
    let mut encoder = Encoder::new(&mut bytes);
    encoder.map(fields.len() as u64).unwrap();
    for (key, value) in fields {
        encoder.str(key).unwrap();
        value(&mut encoder);
    }
    bytes
}

fn text(value: &'static str) -> impl Fn(&mut Encoder<&mut Vec<u8>>) {
    move |e| {
        e.str(value).unwrap();
    }
}

#[test]
fn each_malformed_input_is_refused_with_its_own_error() {
    let limits = Limits::default();
    let sync = encode(&every_kind()[4]);
    assert_eq!(
        decode(&sync[..sync.len() - 3], &limits),
        Err(DecodeError::Truncated)
    );
    assert_eq!(
        decode(&[0x83, 1, 2, 3], &limits),
        Err(DecodeError::NotAMap("a list".into()))
    );
    assert_eq!(
        decode(&[0xbf, 0xff], &limits),
        Err(DecodeError::IndefiniteMap)
    );
    assert_eq!(
        decode(&[0xa1, 0x01, 0x02], &limits),
        Err(DecodeError::KeyNotText)
    );
    let mut trailing = sync.clone();
    trailing.push(0);
    assert_eq!(decode(&trailing, &limits), Err(DecodeError::TrailingBytes));
    assert_eq!(
        decode(&map(&[("senderId", &text("a"))]), &limits),
        Err(DecodeError::MissingType)
    );
    assert_eq!(
        decode(&map(&[("type", &text("gossip"))]), &limits),
        Err(DecodeError::UnknownType("gossip".into()))
    );
    assert_eq!(
        decode(
            &map(&[("type", &text("sync")), ("type", &text("sync"))]),
            &limits
        ),
        Err(DecodeError::DuplicateKey("type".into()))
    );
    assert_eq!(
        decode(
            &map(&[
                ("type", &text("sync")),
                ("senderId", &text("a")),
                ("targetId", &text("b")),
                ("data", &|e| {
                    e.bytes(&[1]).unwrap();
                })
            ]),
            &limits
        ),
        Err(DecodeError::MissingField {
            kind: "sync",
            field: "documentId"
        })
    );
    assert_eq!(
        decode(
            &map(&[
                ("type", &text("sync")),
                ("senderId", &text("a")),
                ("targetId", &text("b")),
                ("documentId", &text("not-base58-0OIl")),
                ("data", &|e| {
                    e.bytes(&[1]).unwrap();
                })
            ]),
            &limits
        ),
        Err(DecodeError::BadDocumentId {
            kind: "sync",
            reason: "not base58check: provided string contained invalid character '-' at byte 3"
                .into()
        })
    );
    let doc_text = doc().to_string();
    let doc_id = doc_text.as_str();
    assert_eq!(
        decode(
            &map(&[
                ("type", &text("sync")),
                ("senderId", &text("a")),
                ("targetId", &text("b")),
                ("documentId", &move |e: &mut Encoder<&mut Vec<u8>>| {
                    e.str(doc_id).unwrap();
                }),
                ("data", &text("should be bytes"))
            ]),
            &limits
        ),
        Err(DecodeError::WrongType {
            kind: "sync",
            field: "data",
            expected: "a byte string"
        })
    );
    assert_eq!(
        decode(
            &map(&[
                ("type", &text("ephemeral")),
                ("senderId", &text("a")),
                ("targetId", &text("b")),
                ("count", &|e| {
                    e.i64(-1).unwrap();
                }),
            ]),
            &limits
        ),
        Err(DecodeError::WrongType {
            kind: "ephemeral",
            field: "count",
            expected: "an unsigned integer"
        })
    );
}

#[test]
fn oversize_inputs_are_refused_naming_the_limit() {
    let limits = Limits {
        max_message_bytes: 64,
        ..Limits::default()
    };
    let big = encode(&Message::Sync {
        sender_id: "a".into(),
        target_id: "b".into(),
        document_id: doc(),
        data: vec![0; 100],
    });
    assert_eq!(
        decode(&big, &limits),
        Err(DecodeError::TooLarge {
            limit: 64,
            got: big.len()
        })
    );
    let long_id = encode(&Message::Leave {
        sender_id: "x".repeat(300),
    });
    assert_eq!(
        decode(&long_id, &Limits::default()),
        Err(DecodeError::OverLimit {
            kind: "leave",
            field: "senderId",
            limit: 256,
            unit: "characters"
        })
    );
    let many = encode(&Message::RemoteSubscriptionChange {
        sender_id: "a".into(),
        target_id: "b".into(),
        add: (0..2000).map(|i| i.to_string()).collect(),
        remove: vec![],
    });
    assert_eq!(
        decode(&many, &Limits::default()),
        Err(DecodeError::OverLimit {
            kind: "remote-subscription-change",
            field: "add",
            limit: 1024,
            unit: "items"
        })
    );
    assert_eq!(
        DecodeError::OverLimit {
            kind: "remote-subscription-change",
            field: "add",
            limit: 1024,
            unit: "items"
        }
        .to_string(),
        "`add` of a `remote-subscription-change` message is over the limit of 1024 items"
    );
}

/// Frames recorded from the JavaScript automerge-repo (see the README beside
/// them): each decodes, and encodes back to a message that decodes the same.
#[test]
fn frames_recorded_from_the_javascript_client_decode_and_round_trip() {
    let mut kinds = std::collections::BTreeSet::new();
    for (file, kind, bytes) in recorded_frames() {
        let file = file.as_str();
        let message = decode(&bytes, &Limits::default())
            .unwrap_or_else(|error| panic!("{file} does not decode: {error}"));
        assert_eq!(message.kind(), kind, "{file}");
        if let Message::Sync { data, .. } | Message::Request { data, .. } = &message {
            let limits = SyncDataLimits {
                max_chunks: 100,
                max_inflated_bytes: fieldnotes_sync::documents::wire::DEFAULT_MAX_INFLATED_BYTES,
            };
            // The JS client's changes, compressed or not, pass the inflation count.
            IncomingSync::decode(data, limits)
                .and_then(|incoming| incoming.changes())
                .unwrap_or_else(|error| panic!("{file}: its sync data does not decode: {error}"));
        }
        assert_eq!(
            decode(&encode(&message), &Limits::default()).as_ref(),
            Ok(&message),
            "{file}"
        );
        kinds.insert(message.kind());
    }
    for expected in [
        "join",
        "peer",
        "request",
        "sync",
        "doc-unavailable",
        "ephemeral",
        "error",
    ] {
        assert!(kinds.contains(expected), "no recorded `{expected}` frame");
    }
}

/// The recorded frames: (file, type, bytes).
fn recorded_frames() -> Vec<(String, String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/frames");
    let index: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("frames.json")).unwrap()).unwrap();
    index
        .as_array()
        .unwrap()
        .iter()
        .map(|frame| {
            let file = frame["file"].as_str().unwrap().to_string();
            let bytes = std::fs::read(dir.join(&file)).unwrap();
            (file, frame["type"].as_str().unwrap().to_string(), bytes)
        })
        .collect()
}

/// Bounded mutation fuzzing on bytes alone: truncations, bit flips and
/// insertions in real and encoded frames never panic, and what still decodes
/// re-encodes to itself.
#[test]
fn mutated_frames_never_panic() {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let originals = every_kind()
        .into_iter()
        .map(|message| encode(&message))
        .chain(recorded_frames().into_iter().map(|(_, _, bytes)| bytes));
    for original in originals {
        for _ in 0..1_000 {
            let mut bytes = original.clone();
            match next() % 3 {
                0 => bytes.truncate((next() as usize) % bytes.len()),
                1 => {
                    let at = (next() as usize) % bytes.len();
                    bytes[at] ^= 1 << (next() % 8);
                }
                _ => {
                    let at = (next() as usize) % (bytes.len() + 1);
                    bytes.insert(at, next() as u8);
                }
            }
            if let Ok(decoded) = decode(&bytes, &Limits::default()) {
                assert_eq!(decode(&encode(&decoded), &Limits::default()), Ok(decoded));
            }
        }
    }
}

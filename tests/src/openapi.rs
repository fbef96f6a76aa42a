//! The server's OpenAPI document (`GET /api/openapi.json`), read as JSON, and
//! checking an answer against it: its status must be one the operation
//! documents, and a JSON body must match the schema documented for that
//! status — with no field the schema does not name.

use serde_json::{json, Value};

/// The routes anyone may call, without a credential.
pub const PUBLIC: &[(&str, &str)] = &[
    ("GET", "/health"),
    ("GET", "/ready"),
    ("POST", "/api/auth/login"),
    ("POST", "/api/auth/password-reset"),
    ("POST", "/api/enrol"),
    ("GET", "/api/openapi.json"),
];

/// The methods an OpenAPI path item may hold, as its keys spell them.
const METHODS: &[&str] = &[
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

pub struct Spec {
    pub document: Value,
}

impl Spec {
    /// The document the server crate builds, as the route serves it.
    pub fn built() -> Spec {
        Spec {
            document: serde_json::from_str(server::http::openapi::openapi_json())
                .expect("the OpenAPI document is JSON"),
        }
    }

    /// Every (METHOD, path) the document describes, with its operation.
    pub fn operations(&self) -> Vec<(String, &str, &Value)> {
        let mut operations = Vec::new();
        let paths = self.document["paths"].as_object().expect("paths");
        for (path, item) in paths {
            for method in METHODS {
                if let Some(operation) = item.get(*method) {
                    operations.push((method.to_uppercase(), path.as_str(), operation));
                }
            }
        }
        operations
    }

    pub fn operation(&self, method: &str, path: &str) -> Option<&Value> {
        self.document["paths"]
            .get(path)?
            .get(method.to_lowercase().as_str())
    }

    /// The schema a `$ref` names, e.g. `#/components/schemas/ApiError`.
    pub fn resolve<'a>(&'a self, reference: &str) -> Option<&'a Value> {
        self.document.pointer(reference.strip_prefix('#')?)
    }

    /// Checks an answer to `method path` (the path as routed, `{id}` and
    /// all): `status` is documented, and `body`, unless Null (no body, or
    /// not JSON), matches the JSON schema documented for it.
    pub fn check_answer(
        &self,
        method: &str,
        path: &str,
        status: u16,
        body: &Value,
    ) -> Result<(), String> {
        let operation = self
            .operation(method, path)
            .ok_or_else(|| format!("{method} {path} is not in the OpenAPI document"))?;
        let response = operation["responses"]
            .get(status.to_string().as_str())
            .ok_or_else(|| format!("{method} {path} answered {status}, which is not documented"))?;
        if body.is_null() {
            return Ok(());
        }
        let schema = response
            .pointer("/content/application~1json/schema")
            .ok_or_else(|| {
                format!("{method} {path} answered {status} with JSON, but documents no JSON body")
            })?;
        self.check_value(schema, body)
            .map_err(|errors| format!("{method} {path} answered {status} with {body}: {errors}"))
    }

    /// Validates `value` against `schema` (which may `$ref` the document's
    /// components), strictly: an object may hold only the properties its
    /// schema lists.
    pub fn check_value(&self, schema: &Value, value: &Value) -> Result<(), String> {
        let mut components = self.document["components"].clone();
        forbid_unlisted_properties(&mut components);
        let mut schema = schema.clone();
        forbid_unlisted_properties(&mut schema);
        let root = json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "allOf": [schema],
            "components": components,
        });
        let validator = jsonschema::options()
            .should_validate_formats(true)
            .build(&root)
            .map_err(|error| format!("the documented schema does not compile: {error}"))?;
        let errors: Vec<String> = validator
            .iter_errors(value)
            .map(|error| format!("{} at {}", error, error.instance_path()))
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("; "))
        }
    }
}

/// Adds `additionalProperties: false` to every object schema that lists its
/// `properties` and says nothing of others: the answers a client is told to
/// expect are checked to hold nothing else (the document itself leaves
/// clients free to meet new fields).
fn forbid_unlisted_properties(schema: &mut Value) {
    match schema {
        Value::Object(map) => {
            if map.contains_key("properties") && !map.contains_key("additionalProperties") {
                map.insert("additionalProperties".to_string(), Value::Bool(false));
            }
            map.values_mut().for_each(forbid_unlisted_properties);
        }
        Value::Array(items) => items.iter_mut().for_each(forbid_unlisted_properties),
        _ => {}
    }
}

/// The `$ref`s anywhere in `value`.
pub fn references(value: &Value) -> Vec<String> {
    let mut found = Vec::new();
    collect_references(value, &mut found);
    found
}

fn collect_references(value: &Value, found: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(reference)) = map.get("$ref") {
                found.push(reference.clone());
            }
            map.values().for_each(|v| collect_references(v, found));
        }
        Value::Array(items) => items.iter().for_each(|v| collect_references(v, found)),
        _ => {}
    }
}

/// The `{name}`s of a path template.
pub fn path_parameters(path: &str) -> Vec<&str> {
    path.split('/')
        .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
        .collect()
}

/// The names of an operation's parameters that are `in` there.
pub fn parameters_in<'a>(operation: &'a Value, location: &str) -> Vec<&'a str> {
    operation["parameters"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter(|parameter| parameter["in"] == location)
        .filter_map(|parameter| parameter["name"].as_str())
        .collect()
}

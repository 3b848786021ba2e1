//! Avro's JSON encoding of a datum (as the Avro specification defines it, and as
//! Java's `JsonDecoder` and `kafka-avro-console-producer` read it) turned into an
//! Avro value for a schema: what `herald produce --value-format avro` reads.
//!
//! The rules: `null`, booleans, numbers and strings as themselves (`"NaN"`,
//! `"Infinity"` and `"-Infinity"` allowed for float and double); `bytes` and `fixed`
//! as strings whose characters U+0000..U+00FF are the bytes; records and maps as
//! objects; arrays as arrays; enums as the symbol; a union value as `null` or as
//! `{"<branch type name>": value}`. A record field that is absent takes its
//! default.

use std::collections::HashMap;

use apache_avro::Schema;
use apache_avro::schema::{Name, ResolvedSchema};
use apache_avro::types::Value;
use serde_json::Value as Json;

/// Converts `json`, a datum in Avro's JSON encoding, to a value of `schema`
/// (resolved against it, so logical types such as dates become their Avro values).
/// The error says what did not fit, and where.
pub(crate) fn value_from_json(schema: &Schema, json: &Json) -> Result<Value, String> {
    let resolved = ResolvedSchema::try_from(schema).map_err(|e| format!("schema: {e}"))?;
    let names: HashMap<String, &Schema> =
        resolved.get_names().iter().map(|(n, s)| (n.fullname(None), *s)).collect();
    let value = convert(json, schema, &names, "$")?;
    value.resolve(schema).map_err(|e| format!("does not match the schema: {e}"))
}

type Names<'a> = HashMap<String, &'a Schema>;

fn convert(json: &Json, schema: &Schema, names: &Names<'_>, at: &str) -> Result<Value, String> {
    let wrong = |what: &str| Err(format!("{at}: expected {what}, found {}", kind(json)));
    match schema {
        Schema::Ref { name } => match names.get(&name.fullname(None)) {
            Some(s) => convert(json, s, names, at),
            None => Err(format!("{at}: unknown type {}", name.fullname(None))),
        },
        Schema::Null => match json {
            Json::Null => Ok(Value::Null),
            _ => wrong("null"),
        },
        Schema::Boolean => match json {
            Json::Bool(b) => Ok(Value::Boolean(*b)),
            _ => wrong("a boolean"),
        },
        Schema::Int | Schema::Date | Schema::TimeMillis => match json.as_i64().map(i32::try_from) {
            Some(Ok(i)) => Ok(Value::Int(i)),
            _ => wrong("an int (32-bit integer)"),
        },
        Schema::Long
        | Schema::TimeMicros
        | Schema::TimestampMillis
        | Schema::TimestampMicros
        | Schema::TimestampNanos
        | Schema::LocalTimestampMillis
        | Schema::LocalTimestampMicros
        | Schema::LocalTimestampNanos => match json.as_i64() {
            Some(i) => Ok(Value::Long(i)),
            None => wrong("a long (64-bit integer)"),
        },
        Schema::Float => match float(json) {
            Some(f) => Ok(Value::Float(f as f32)),
            None => wrong("a float"),
        },
        Schema::Double => match float(json) {
            Some(f) => Ok(Value::Double(f)),
            None => wrong("a double"),
        },
        Schema::String | Schema::Uuid => match json {
            Json::String(s) => Ok(Value::String(s.clone())),
            _ => wrong("a string"),
        },
        Schema::Bytes | Schema::BigDecimal => Ok(Value::Bytes(latin1(json, at)?)),
        Schema::Fixed(f) => {
            let bytes = latin1(json, at)?;
            if bytes.len() != f.size {
                return Err(format!(
                    "{at}: fixed {} has {} bytes, not {}",
                    f.name.fullname(None),
                    f.size,
                    bytes.len()
                ));
            }
            Ok(Value::Fixed(f.size, bytes))
        }
        Schema::Decimal(d) => convert(json, &d.inner, names, at),
        Schema::Duration => {
            let bytes = latin1(json, at)?;
            if bytes.len() != 12 {
                return Err(format!("{at}: a duration is 12 bytes, not {}", bytes.len()));
            }
            Ok(Value::Fixed(12, bytes))
        }
        Schema::Enum(e) => match json {
            Json::String(s) => match e.symbols.iter().position(|x| x == s) {
                Some(i) => Ok(Value::Enum(u32::try_from(i).unwrap_or(u32::MAX), s.clone())),
                None => Err(format!("{at}: {s:?} is not a symbol of enum {}", e.name.fullname(None))),
            },
            _ => wrong("an enum symbol (a string)"),
        },
        Schema::Array(a) => match json {
            Json::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, item)| convert(item, &a.items, names, &format!("{at}[{i}]")))
                .collect::<Result<_, _>>()
                .map(Value::Array),
            _ => wrong("an array"),
        },
        Schema::Map(m) => match json {
            Json::Object(entries) => entries
                .iter()
                .map(|(k, v)| Ok((k.clone(), convert(v, &m.types, names, &format!("{at}.{k}"))?)))
                .collect::<Result<_, String>>()
                .map(Value::Map),
            _ => wrong("an object (a map)"),
        },
        Schema::Record(r) => {
            let Json::Object(fields) = json else {
                return wrong(&format!("an object (record {})", r.name.fullname(None)));
            };
            if let Some(extra) = fields.keys().find(|k| !r.lookup.contains_key(*k)) {
                return Err(format!("{at}: record {} has no field {extra:?}", r.name.fullname(None)));
            }
            let mut out = Vec::with_capacity(r.fields.len());
            for f in &r.fields {
                let path = format!("{at}.{}", f.name);
                let v = match (fields.get(&f.name), &f.default) {
                    (Some(v), _) => convert(v, &f.schema, names, &path)?,
                    (None, Some(default)) => default_value(default, &f.schema, names, &path)?,
                    (None, None) => return Err(format!("{path}: missing, and the field has no default")),
                };
                out.push((f.name.clone(), v));
            }
            Ok(Value::Record(out))
        }
        Schema::Union(u) => {
            if json.is_null() {
                return match u.variants().iter().position(|s| matches!(s, Schema::Null)) {
                    Some(i) => Ok(Value::Union(index(i), Box::new(Value::Null))),
                    None => Err(format!("{at}: null, but the union has no null branch")),
                };
            }
            let Json::Object(o) = json else {
                return wrong("a union value: null or {\"<type>\": value}");
            };
            let Some((branch, inner)) = o.iter().next().filter(|_| o.len() == 1) else {
                return wrong("a union value: null or {\"<type>\": value}");
            };
            match u.variants().iter().position(|s| branch_names(s).iter().any(|n| n == branch)) {
                Some(i) => {
                    let v = convert(inner, &u.variants()[i], names, &format!("{at}.{branch}"))?;
                    Ok(Value::Union(index(i), Box::new(v)))
                }
                None => {
                    let known: Vec<String> =
                        u.variants().iter().filter_map(|s| branch_names(s).pop()).collect();
                    Err(format!("{at}: the union has no branch {branch:?} (it has {})", known.join(", ")))
                }
            }
        }
    }
}

/// A field's default: JSON as the field's schema says, except that a union's
/// default is for its first branch and is not wrapped in `{"<type>": …}`.
fn default_value(default: &Json, schema: &Schema, names: &Names<'_>, at: &str) -> Result<Value, String> {
    match schema {
        Schema::Union(u) => match u.variants().first() {
            Some(first) => Ok(Value::Union(0, Box::new(convert(default, first, names, at)?))),
            None => Err(format!("{at}: empty union")),
        },
        _ => convert(default, schema, names, at),
    }
}

fn index(i: usize) -> u32 {
    u32::try_from(i).unwrap_or(u32::MAX)
}

/// The names a union branch goes by in JSON: its type name, or for named types the
/// full name (and, leniently, the short name), the full name last.
fn branch_names(schema: &Schema) -> Vec<String> {
    let named = |n: &Name| vec![n.name.clone(), n.fullname(None)];
    match schema {
        Schema::Null => vec!["null".into()],
        Schema::Boolean => vec!["boolean".into()],
        Schema::Int | Schema::Date | Schema::TimeMillis => vec!["int".into()],
        Schema::Long
        | Schema::TimeMicros
        | Schema::TimestampMillis
        | Schema::TimestampMicros
        | Schema::TimestampNanos
        | Schema::LocalTimestampMillis
        | Schema::LocalTimestampMicros
        | Schema::LocalTimestampNanos => vec!["long".into()],
        Schema::Float => vec!["float".into()],
        Schema::Double => vec!["double".into()],
        Schema::Bytes | Schema::BigDecimal => vec!["bytes".into()],
        Schema::String | Schema::Uuid => vec!["string".into()],
        Schema::Array(_) => vec!["array".into()],
        Schema::Map(_) => vec!["map".into()],
        Schema::Union(_) | Schema::Duration => vec![],
        Schema::Decimal(d) => branch_names(&d.inner),
        Schema::Record(r) => named(&r.name),
        Schema::Enum(e) => named(&e.name),
        Schema::Fixed(f) => named(&f.name),
        Schema::Ref { name } => named(name),
    }
}

fn float(json: &Json) -> Option<f64> {
    match json {
        Json::Number(n) => n.as_f64(),
        Json::String(s) => match s.as_str() {
            "NaN" => Some(f64::NAN),
            "Infinity" => Some(f64::INFINITY),
            "-Infinity" => Some(f64::NEG_INFINITY),
            _ => None,
        },
        _ => None,
    }
}

/// Avro JSON's bytes: a string whose every character is U+0000..U+00FF.
fn latin1(json: &Json, at: &str) -> Result<Vec<u8>, String> {
    let Json::String(s) = json else {
        return Err(format!(
            "{at}: expected bytes (a string of characters U+0000..U+00FF), found {}",
            kind(json)
        ));
    };
    s.chars()
        .map(|c| {
            u8::try_from(u32::from(c)).map_err(|_| format!("{at}: {c:?} is not a byte (U+0000..U+00FF)"))
        })
        .collect()
}

fn kind(json: &Json) -> &'static str {
    match json {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const SCHEMA: &str = r#"{
      "type": "record", "name": "Position", "namespace": "fleet",
      "fields": [
        {"name": "truck", "type": "string"},
        {"name": "lat", "type": "double"},
        {"name": "speed", "type": ["null", "float"], "default": null},
        {"name": "kind", "type": {"type": "enum", "name": "Kind", "symbols": ["GPS", "CELL"]}, "default": "GPS"},
        {"name": "raw", "type": "bytes", "default": ""},
        {"name": "tags", "type": {"type": "map", "values": "long"}, "default": {}},
        {"name": "day", "type": {"type": "int", "logicalType": "date"}, "default": 0},
        {"name": "next", "type": ["null", "Position"], "default": null}
      ]}"#;

    fn schema() -> Schema {
        Schema::parse_str(SCHEMA).unwrap()
    }

    #[test]
    fn reads_avro_json_with_defaults_unions_and_recursion() {
        let v = value_from_json(
            &schema(),
            &json!({"truck": "t1", "lat": 52.5, "speed": {"float": 80.5}, "raw": "\u{0}\u{ff}", "tags": {"a": 1},
                    "next": {"fleet.Position": {"truck": "t2", "lat": "NaN"}}}),
        )
        .unwrap();
        let Value::Record(fields) = v else { panic!() };
        assert_eq!(fields[0], ("truck".into(), Value::String("t1".into())));
        assert_eq!(fields[2], ("speed".into(), Value::Union(1, Box::new(Value::Float(80.5)))));
        assert_eq!(fields[3], ("kind".into(), Value::Enum(0, "GPS".into())));
        assert_eq!(fields[4], ("raw".into(), Value::Bytes(vec![0, 255])));
        assert_eq!(fields[6], ("day".into(), Value::Date(0)));
        let Value::Union(1, next) = &fields[7].1 else { panic!("{:?}", fields[7]) };
        let Value::Record(inner) = &**next else { panic!() };
        assert!(matches!(inner[1].1, Value::Double(d) if d.is_nan()));
        let bytes = apache_avro::to_avro_datum(&schema(), Value::Record(fields.clone())).unwrap();
        assert!(!bytes.is_empty());
    }

    #[test]
    fn explains_what_does_not_fit() {
        let cases = [
            (json!({"lat": 1.0}), "$.truck: missing"),
            (json!({"truck": 1, "lat": 1.0}), "$.truck: expected a string, found a number"),
            (json!({"truck": "t", "lat": 1.0, "speed": 3.0}), "$.speed: expected a union value"),
            (json!({"truck": "t", "lat": 1.0, "speed": {"int": 3}}), "no branch \"int\""),
            (json!({"truck": "t", "lat": 1.0, "kind": "SAT"}), "\"SAT\" is not a symbol of enum fleet.Kind"),
            (json!({"truck": "t", "lat": 1.0, "raw": "€"}), "is not a byte"),
            (json!({"truck": "t", "lat": 1.0, "color": "red"}), "has no field \"color\""),
            (json!({"truck": "t", "lat": 1.0, "day": 1e12}), "$.day: expected an int"),
            (json!([1]), "expected an object (record fleet.Position)"),
        ];
        for (input, expected) in cases {
            let e = value_from_json(&schema(), &input).unwrap_err();
            assert!(e.contains(expected), "{input}: {e}");
        }
    }
}

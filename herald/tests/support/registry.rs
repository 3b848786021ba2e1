//! The Schema Registry the serializer tests use: a real one when
//! `HERALD_TEST_SCHEMA_REGISTRY` names its URL, otherwise a small in-process fake
//! that answers the Confluent REST API as its documentation describes (same ids
//! for the same schema across subjects, versions per subject, the documented error
//! codes 40401, 40403 and 42201), on 127.0.0.1.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// The registry under test: `HERALD_TEST_SCHEMA_REGISTRY`, or the fake (started
/// once per test binary on a runtime of its own).
pub fn registry_url() -> String {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| match std::env::var("HERALD_TEST_SCHEMA_REGISTRY") {
        Ok(u) if !u.trim().is_empty() => u.trim().to_owned(),
        _ => {
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("fake registry runtime");
                rt.block_on(async move {
                    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind fake registry");
                    tx.send(format!("http://{}", listener.local_addr().expect("address")))
                        .expect("hand over url");
                    serve(listener).await;
                });
            });
            rx.recv().expect("fake registry started")
        }
    })
    .clone()
}

/// Whether the tests run against a real registry.
pub fn real_registry() -> bool {
    std::env::var("HERALD_TEST_SCHEMA_REGISTRY").is_ok_and(|u| !u.trim().is_empty())
}

#[derive(Default)]
struct State {
    /// Schemas by id - 1: (schemaType, schema, references).
    schemas: Vec<(String, String, Value)>,
    /// Each subject's versions, as schema ids.
    subjects: HashMap<String, Vec<i32>>,
}

async fn serve(listener: TcpListener) {
    let state = Arc::new(Mutex::new(State::default()));
    while let Ok((mut sock, _)) = listener.accept().await {
        let state = state.clone();
        tokio::spawn(async move {
            let mut buf = Vec::new();
            loop {
                let Some(head_end) = buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4) else {
                    let mut chunk = [0u8; 8192];
                    match sock.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                    continue;
                };
                let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
                let mut lines = head.split("\r\n");
                let mut first = lines.next().unwrap_or_default().split(' ');
                let method = first.next().unwrap_or_default().to_owned();
                let path = first.next().unwrap_or_default().to_owned();
                let headers: HashMap<String, String> = lines
                    .filter_map(|l| {
                        l.split_once(':').map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
                    })
                    .collect();
                let len: usize = headers.get("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
                while buf.len() < head_end + len {
                    let mut chunk = [0u8; 8192];
                    match sock.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let body: Vec<u8> = buf[head_end..head_end + len].to_vec();
                buf.drain(..head_end + len);
                let (status, reply) = handle(&state, &method, &path, &headers, &body);
                let text = reply.to_string();
                let out = format!(
                    "HTTP/1.1 {status} R\r\ncontent-type: application/vnd.schemaregistry.v1+json\r\ncontent-length: {}\r\n\r\n{text}",
                    text.len()
                );
                if sock.write_all(out.as_bytes()).await.is_err() {
                    return;
                }
            }
        });
    }
}

fn error(status: u16, code: i32, message: String) -> (u16, Value) {
    (status, json!({ "error_code": code, "message": message }))
}

fn decode(segment: &str) -> String {
    let b = segment.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&segment[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn handle(
    state: &Mutex<State>,
    method: &str,
    path: &str,
    headers: &HashMap<String, String>,
    body: &[u8],
) -> (u16, Value) {
    let mut st = state.lock().expect("state");
    let segs: Vec<String> = path.trim_start_matches('/').split('/').map(decode).collect();
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    if method == "POST"
        && headers.get("content-type").map(String::as_str) != Some("application/vnd.schemaregistry.v1+json")
    {
        return error(415, 415, "HTTP 415 Unsupported Media Type".into());
    }
    let schema_of = |body: &[u8]| -> Result<(String, String, Value), (u16, Value)> {
        let req: Value =
            serde_json::from_slice(body).map_err(|e| error(400, 400, format!("bad JSON: {e}")))?;
        let text = req["schema"].as_str().ok_or_else(|| error(422, 42201, "Empty schema".into()))?.to_owned();
        let ty = req["schemaType"].as_str().unwrap_or("AVRO").to_owned();
        if ty == "AVRO" && serde_json::from_str::<Value>(&text).is_err() {
            return Err(error(422, 42201, format!("Invalid schema {text}")));
        }
        Ok((ty, text, req.get("references").cloned().unwrap_or(json!([]))))
    };
    let with_type = |mut v: Value, ty: &str| {
        if ty != "AVRO" {
            v["schemaType"] = json!(ty);
        }
        v
    };
    match (method, segs.as_slice()) {
        ("POST", ["subjects", subject, "versions"]) => {
            let schema = match schema_of(body) {
                Ok(s) => s,
                Err(e) => return e,
            };
            let id = match st.schemas.iter().position(|s| *s == schema) {
                Some(i) => i as i32 + 1,
                None => {
                    st.schemas.push(schema);
                    st.schemas.len() as i32
                }
            };
            let versions = st.subjects.entry((*subject).to_owned()).or_default();
            if !versions.contains(&id) {
                versions.push(id);
            }
            (200, json!({ "id": id }))
        }
        ("POST", ["subjects", subject]) => {
            let schema = match schema_of(body) {
                Ok(s) => s,
                Err(e) => return e,
            };
            let Some(versions) = st.subjects.get(*subject) else {
                return error(404, 40401, format!("Subject '{subject}' not found."));
            };
            match versions.iter().position(|id| st.schemas[*id as usize - 1] == schema) {
                Some(v) => {
                    let id = versions[v];
                    let reply = json!({ "subject": subject, "id": id, "version": v + 1, "schema": schema.1 });
                    (200, with_type(reply, &schema.0))
                }
                None => error(404, 40403, "Schema not found".into()),
            }
        }
        ("GET", ["subjects", subject, "versions", "latest"]) => match st.subjects.get(*subject) {
            Some(versions) if !versions.is_empty() => {
                let id = versions[versions.len() - 1];
                let (ty, text, _) = &st.schemas[id as usize - 1];
                let reply =
                    json!({ "subject": subject, "id": id, "version": versions.len(), "schema": text });
                (200, with_type(reply, ty))
            }
            _ => error(404, 40401, format!("Subject '{subject}' not found.")),
        },
        ("GET", ["schemas", "ids", id]) => {
            match id.parse::<usize>().ok().and_then(|i| st.schemas.get(i.wrapping_sub(1))) {
                Some((ty, text, refs)) => (200, with_type(json!({ "schema": text, "references": refs }), ty)),
                None => error(404, 40403, format!("Schema {id} not found")),
            }
        }
        _ => error(404, 404, format!("HTTP 404 Not Found: {method} {path}")),
    }
}

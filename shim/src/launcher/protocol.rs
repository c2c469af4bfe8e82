//! The launcher protocol: what the server ([`super`]) and the launcher's
//! request children ([`super::child`]) send each other, one type per
//! direction, shared by both sides.
//!
//! ```text
//!  server ── launcher socket (SEQPACKET, fd 3 of the launcher) ──────▶ launcher
//!            one datagram per request: a Request as JSON
//!            SCM_RIGHTS: the reply socket, then (create, exec) stdio 0, 1, 2
//!
//!  server ◀── the request's own reply socket (SEQPACKET) ─────────────── request child
//!            one datagram:  u32 LE n | n bytes: a Reply as JSON | data
//!            data: raw bytes after the JSON (Stats: the metrics Any's
//!            value), empty for every other answer
//!            SCM_RIGHTS (create, exec): the new process's pidfd
//! ```
//!
//! A [`Reply`] is `{"ok": Answer}` or `{"error": {"kind", "msg"}}`: the
//! failure keeps its [`Kind`], which the server maps to a ttrpc code. An
//! Update's LinuxResources document (the task API's Any) is checked to be
//! JSON by the server and embedded verbatim in [`Op::Update`]; the request
//! child decodes it once, into oci-spec's LinuxResources
//! ([`resources_from_any`]). Decoding it in the server instead costs the
//! resident server ~110 KB of text (oci-spec's serde code) and ~0.1 MiB
//! of RSS per shim, measured with berth-shim-bench.

use std::path::PathBuf;

use oci_spec::runtime::LinuxResources;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;

use super::{Failure, Kind};

/// One request to the launcher: operation `op` on container `id` under
/// berth's state root `root`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    pub root: PathBuf,
    pub id: String,
    pub op: Op,
}

/// The operation of a [`Request`], with its own fields.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Op {
    /// berth create of `bundle` (stdio fds attached, or a terminal through
    /// the console socket). Answer: [`Answer::Created`] and init's pidfd.
    Create {
        bundle: PathBuf,
        #[serde(default)]
        console: Option<PathBuf>,
    },
    /// berth exec --detach of the process.json at `process` (stdio fds
    /// attached). Answer: [`Answer::Spawned`] and the process's pidfd.
    Exec {
        process: PathBuf,
        #[serde(default)]
        console: Option<PathBuf>,
    },
    Start,
    Pause,
    Resume,
    /// Merge `resources`, a LinuxResources JSON document ([`update`]),
    /// into the container's (as `berth update -r`).
    Update {
        resources: Box<RawValue>,
    },
    /// Answer: [`Answer::Stats`].
    Stats,
    /// Remove berth's state and cgroups of a dead container.
    Destroy,
    /// After a create whose child was lost: kill and remove what it made.
    Delete,
}

/// What a request child answers when its request succeeded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Answer {
    /// Create: init's pid and the container's cgroups.
    Created { pid: i32, cgroups: Cgroups },
    /// Exec: the new process's pid.
    Spawned { pid: i32 },
    /// Stats: a containerd metrics Any (as containerd's runc shim encodes
    /// it). `value` travels as raw bytes after the JSON.
    Stats {
        type_url: String,
        #[serde(skip)]
        value: Vec<u8>,
    },
    /// Start, pause, resume, update, destroy, delete.
    Done,
}

/// The cgroups of a created container, as the server needs them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cgroups {
    /// Every hierarchy's directory (Pids, Kill with all).
    pub procs_dirs: Vec<PathBuf>,
    /// The directory whose OOM events the server watches (v1's memory
    /// hierarchy, or the v2 cgroup).
    pub memory_dir: Option<PathBuf>,
    pub v2: bool,
}

/// The reply's JSON: an answer, or a failure with its kind.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
enum Reply {
    Ok(Answer),
    Error { kind: Kind, msg: String },
}

/// [`Reply`] for encoding, borrowing.
#[derive(Serialize)]
#[serde(rename_all = "snake_case")]
enum ReplyRef<'a> {
    Ok(&'a Answer),
    Error { kind: Kind, msg: &'a str },
}

impl Serialize for Kind {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// A kind this side does not know is [`Kind::Other`].
impl<'de> Deserialize<'de> for Kind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Kind, D::Error> {
        Ok(Kind::from_name(&String::deserialize(d)?))
    }
}

/// The longest message quoted from serde (it can echo a value).
const QUOTE: usize = 512;

fn clip(mut s: String) -> String {
    if s.len() > QUOTE {
        let mut end = QUOTE;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push('…');
    }
    s
}

/// `what: PATH: error`, or `what: invalid JSON: error`, from
/// serde_path_to_error.
fn json_error(
    what: &str,
    prefix: &str,
    e: serde_path_to_error::Error<serde_json::Error>,
) -> String {
    let inner = e.inner();
    if inner.is_syntax() || inner.is_eof() {
        return clip(format!("{what}: invalid JSON: {inner}"));
    }
    match e.path().to_string().as_str() {
        "." => clip(format!("{what}: {inner}")),
        path => clip(format!("{what}: {prefix}{path}: {inner}")),
    }
}

/// Encode a request (one datagram).
pub fn encode_request(r: &Request) -> Result<Vec<u8>, Failure> {
    serde_json::to_vec(r).map_err(|e| Failure::new(Kind::Invalid, format!("launcher request: {e}")))
}

/// Decode a request (no effect; public for the fuzz target, fuzz/). The
/// error names the JSON path: `launcher request: op.update.resources...`.
pub fn parse_request(b: &[u8]) -> Result<Request, String> {
    let de = &mut serde_json::Deserializer::from_slice(b);
    let r = serde_path_to_error::deserialize(&mut *de)
        .map_err(|e| json_error("launcher request", "", e))?;
    de.end()
        .map_err(|e| clip(format!("launcher request: invalid JSON: {e}")))?;
    Ok(r)
}

/// The operation of an Update request whose Any's value is `value`: a
/// LinuxResources JSON document (as containerd's runc shim reads it),
/// checked to be JSON only. Not JSON: [`Kind::Invalid`].
pub fn update(value: &[u8]) -> Result<Op, Failure> {
    let bad = |e: &dyn std::fmt::Display| {
        let msg = clip(format!("update: resources: invalid JSON: {e}"));
        Failure::new(Kind::Invalid, msg)
    };
    let text = std::str::from_utf8(value).map_err(|e| bad(&e))?;
    let resources = RawValue::from_string(text.to_string()).map_err(|e| bad(&e))?;
    Ok(Op::Update { resources })
}

/// An Update request's resources, decoded (once, in the request child). A
/// bad document is [`Kind::Invalid`], its message naming the field.
pub fn resources_from_any(value: &[u8]) -> Result<LinuxResources, Failure> {
    let what = "update: resources";
    let bad = |m: String| Failure::new(Kind::Invalid, m);
    let de = &mut serde_json::Deserializer::from_slice(value);
    let r = serde_path_to_error::deserialize(&mut *de)
        .map_err(|e| bad(json_error(what, "linux.resources.", e)))?;
    de.end()
        .map_err(|e| bad(clip(format!("{what}: invalid JSON: {e}"))))?;
    Ok(r)
}

/// Encode a request child's reply (one datagram; see the module header).
pub fn encode_reply(r: &Result<Answer, Failure>) -> Vec<u8> {
    let encoded = match r {
        Ok(a) => {
            let data = match a {
                Answer::Stats { value, .. } => value.as_slice(),
                _ => &[],
            };
            serde_json::to_vec(&ReplyRef::Ok(a)).map(|json| (json, data))
        }
        Err(f) => {
            let e = ReplyRef::Error {
                kind: f.kind,
                msg: &f.msg,
            };
            serde_json::to_vec(&e).map(|json| (json, &[][..]))
        }
    };
    let (json, data) = encoded.unwrap_or_else(|e| {
        // (An answer with a path that is not UTF-8.)
        let msg = format!("launcher reply: {e}");
        let e = ReplyRef::Error {
            kind: Kind::Other,
            msg: &msg,
        };
        (serde_json::to_vec(&e).unwrap_or_default(), &[][..])
    });
    let mut out = Vec::with_capacity(4 + json.len() + data.len());
    out.extend_from_slice(&(json.len() as u32).to_le_bytes());
    out.extend_from_slice(&json);
    out.extend_from_slice(data);
    out
}

/// Decode a request child's reply: its answer, or its failure with the
/// kind it was sent with. The server's one decoder; public for the fuzz
/// target (fuzz/).
pub fn parse_reply(buf: &[u8]) -> Result<Answer, Failure> {
    let bad = |m: String| Failure::new(Kind::Other, format!("launcher reply: {m}"));
    let (len, rest) = buf.split_first_chunk::<4>().ok_or_else(|| {
        bad(format!(
            "{} bytes, shorter than its length field",
            buf.len()
        ))
    })?;
    let n = u32::from_le_bytes(*len) as usize;
    if n > rest.len() {
        return Err(bad(format!("a {n}-byte header in {} bytes", rest.len())));
    }
    let (json, data) = rest.split_at(n);
    let reply: Reply = serde_json::from_slice(json).map_err(|e| bad(clip(e.to_string())))?;
    match reply {
        Reply::Ok(Answer::Stats { type_url, .. }) => Ok(Answer::Stats {
            type_url,
            value: data.to_vec(),
        }),
        _ if !data.is_empty() => Err(bad(format!("{} bytes after the header", data.len()))),
        Reply::Ok(a) => Ok(a),
        Reply::Error { kind, msg } => Err(Failure::new(kind, msg)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn req(op: Op) -> Request {
        Request {
            root: "/run/containerd-berth/ns".into(),
            id: "c1".into(),
            op,
        }
    }

    /// Requests compare by their encoding (RawValue has no PartialEq).
    fn same(a: &Request, b: &Request) -> bool {
        encode_request(a).unwrap() == encode_request(b).unwrap()
    }

    const RESOURCES: &str = r#"{"memory":{"limit":33554432,"swap":-1},"pids":{"limit":77},"cpu":{"shares":512,"cpus":"0-1"},"unified":{"memory.high":"max"},"devices":[{"allow":false,"access":"rwm"}]}"#;

    #[test]
    fn every_request_round_trips() {
        let ops = [
            Op::Create {
                bundle: "/b".into(),
                console: Some("/tmp/console.sock".into()),
            },
            Op::Create {
                bundle: "/b".into(),
                console: None,
            },
            Op::Exec {
                process: "/b/p.json".into(),
                console: None,
            },
            Op::Start,
            Op::Pause,
            Op::Resume,
            update(RESOURCES.as_bytes()).unwrap(),
            Op::Stats,
            Op::Destroy,
            Op::Delete,
        ];
        for op in ops {
            let r = req(op);
            let bytes = encode_request(&r).unwrap();
            let back = parse_request(&bytes).unwrap();
            assert!(same(&back, &r), "{}", String::from_utf8_lossy(&bytes));
        }
    }

    #[test]
    fn the_wire_form_is_plain_json() {
        let b = encode_request(&req(Op::Start)).unwrap();
        assert_eq!(
            std::str::from_utf8(&b).unwrap(),
            r#"{"root":"/run/containerd-berth/ns","id":"c1","op":"start"}"#
        );
        let r =
            parse_request(br#"{"root":"/r","id":"c","op":{"create":{"bundle":"/b"}}}"#).unwrap();
        assert!(matches!(r.op, Op::Create { bundle, console: None } if bundle == Path::new("/b")));
        // An update's resources are embedded as they came, then decoded once.
        let b = encode_request(&req(update(RESOURCES.as_bytes()).unwrap())).unwrap();
        let text = std::str::from_utf8(&b).unwrap();
        let tail = format!(r#""op":{{"update":{{"resources":{RESOURCES}}}}}}}"#);
        assert!(text.ends_with(&tail), "{text}");
        let Op::Update { resources } = parse_request(&b).unwrap().op else {
            panic!("not an update")
        };
        let r = resources_from_any(resources.get().as_bytes()).unwrap();
        assert_eq!(r.pids().as_ref().map(|p| p.limit()), Some(77));
    }

    #[test]
    fn bad_requests_are_refused_naming_what_is_wrong() {
        let err = |b: &str| parse_request(b.as_bytes()).unwrap_err();
        let e = err(r#"{"root":"/r","id":"c","op":{"create":{}}}"#);
        assert!(
            e.starts_with("launcher request: op.create: missing field `bundle`"),
            "{e}"
        );
        let e = err(r#"{"root":"/r","id":"c","op":"nope"}"#);
        assert!(
            e.starts_with("launcher request: op: unknown variant `nope`"),
            "{e}"
        );
        let e = err(r#"{"id":"c","op":"start"}"#);
        assert!(
            e.starts_with("launcher request: missing field `root`"),
            "{e}"
        );
        let e = err(r#"{"root":"/r","id":"c","op":{"update":{"resources":}}}"#);
        assert!(e.starts_with("launcher request: invalid JSON: "), "{e}");
        let e = err(r#"{"root":"/r","id":"c","op":"start","extra":1}"#);
        assert!(e.contains("unknown field `extra`"), "{e}");
        assert!(err("[").starts_with("launcher request: invalid JSON: "));
        assert!(err(r#"{"root":"/r","id":"c","op":"start"} x"#)
            .starts_with("launcher request: invalid JSON: "));
    }

    #[test]
    fn resources_decode_once_or_name_the_field() {
        for bad in [&b"{\"memory\":"[..], b"\xff", b""] {
            let f = update(bad).unwrap_err();
            assert_eq!(f.kind, Kind::Invalid);
            assert!(
                f.msg.starts_with("update: resources: invalid JSON: "),
                "{}",
                f.msg
            );
        }
        let r = resources_from_any(br#"{"memory":{"limit":1048576},"pids":{"limit":5}}"#).unwrap();
        assert_eq!(r.memory().as_ref().and_then(|m| m.limit()), Some(1048576));
        assert_eq!(r.pids().as_ref().map(|p| p.limit()), Some(5));
        let f = resources_from_any(br#"{"memory":{"limit":"lots"}}"#).unwrap_err();
        assert_eq!(f.kind, Kind::Invalid);
        assert!(
            f.msg.starts_with(
                "update: resources: linux.resources.memory.limit: invalid type: string \"lots\""
            ),
            "{}",
            f.msg
        );
        let f = resources_from_any(b"{\"memory\":").unwrap_err();
        assert_eq!(f.kind, Kind::Invalid);
        assert!(
            f.msg.starts_with("update: resources: invalid JSON: "),
            "{}",
            f.msg
        );
        let f = resources_from_any(&[b'"'; 5000]).unwrap_err();
        assert!(f.msg.len() < QUOTE + 8, "clipped: {}", f.msg.len());
    }

    #[test]
    fn answers_round_trip_and_stats_travel_raw() {
        let answers = [
            Answer::Created {
                pid: 42,
                cgroups: Cgroups {
                    procs_dirs: vec!["/sys/fs/cgroup/memory/berth/c1".into()],
                    memory_dir: Some("/sys/fs/cgroup/memory/berth/c1".into()),
                    v2: false,
                },
            },
            Answer::Spawned { pid: 7 },
            Answer::Done,
        ];
        for a in answers {
            let frame = encode_reply(&Ok(a.clone()));
            assert_eq!(parse_reply(&frame).unwrap(), a);
        }
        // Every byte value, as is: not hex, not escaped inside JSON.
        let value: Vec<u8> = (0..=255u8).chain([0, 0xff]).collect();
        let a = Answer::Stats {
            type_url: "io.containerd.cgroups.v1.Metrics".into(),
            value: value.clone(),
        };
        let frame = encode_reply(&Ok(a.clone()));
        assert!(frame.ends_with(&value));
        let header = u32::from_le_bytes(frame[..4].try_into().unwrap()) as usize;
        assert_eq!(frame.len(), 4 + header + value.len());
        assert_eq!(parse_reply(&frame).unwrap(), a);
    }

    #[test]
    fn failures_keep_their_kind() {
        for kind in [
            Kind::NotFound,
            Kind::Exists,
            Kind::WrongState,
            Kind::Invalid,
            Kind::Unsupported,
            Kind::Other,
            Kind::Lost,
        ] {
            let frame = encode_reply(&Err(Failure::new(kind, "it failed")));
            let f = parse_reply(&frame).unwrap_err();
            assert_eq!((f.kind, f.msg.as_str()), (kind, "it failed"));
        }
        // A kind this server does not know yet: Other, with its message.
        let json = br#"{"error":{"kind":"something_new","msg":"m"}}"#;
        let mut frame = (json.len() as u32).to_le_bytes().to_vec();
        frame.extend_from_slice(json);
        let f = parse_reply(&frame).unwrap_err();
        assert_eq!((f.kind, f.msg.as_str()), (Kind::Other, "m"));
    }

    #[test]
    fn bad_replies_are_failures() {
        let msg = |b: &[u8]| parse_reply(b).unwrap_err().msg;
        assert!(msg(b"").starts_with("launcher reply: 0 bytes"));
        assert!(msg(&[9, 0, 0, 0, b'{']).starts_with("launcher reply: a 9-byte header"));
        let mut frame = encode_reply(&Ok(Answer::Done));
        frame.push(1);
        assert_eq!(msg(&frame), "launcher reply: 1 bytes after the header");
        let json = br#"{"ok":"started"}"#;
        let mut frame = (json.len() as u32).to_le_bytes().to_vec();
        frame.extend_from_slice(json);
        assert!(msg(&frame).starts_with("launcher reply: unknown variant `started`"));
    }
}

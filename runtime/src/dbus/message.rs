//! D-Bus messages: the fixed header, the header fields berth uses, the
//! body; encoding (little-endian, fields in the order of their codes) and
//! decoding of whole frames.

use super::wire::{Reader, Value, WireError, Writer, MAX_MESSAGE};

/// The message types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Call = 1,
    Return = 2,
    Error = 3,
    Signal = 4,
}

/// Header flag: the caller does not want a reply.
pub const NO_REPLY_EXPECTED: u8 = 0x1;

/// A message, with the header fields berth reads or writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub kind: Kind,
    pub flags: u8,
    pub serial: u32,
    pub path: Option<String>,
    pub interface: Option<String>,
    pub member: Option<String>,
    pub error_name: Option<String>,
    pub reply_serial: Option<u32>,
    pub destination: Option<String>,
    pub sender: Option<String>,
    pub body: Vec<Value>,
}

impl Message {
    /// A method call (its serial is set when it is sent).
    pub fn call(dest: &str, path: &str, iface: &str, member: &str, body: Vec<Value>) -> Message {
        Message {
            kind: Kind::Call,
            flags: 0,
            serial: 0,
            path: Some(path.into()),
            interface: Some(iface.into()),
            member: Some(member.into()),
            error_name: None,
            reply_serial: None,
            destination: Some(dest.into()),
            sender: None,
            body,
        }
    }

    /// A reply to `call` (Return, or Error with `error_name`).
    pub fn reply_to(call: &Message, error_name: Option<&str>, body: Vec<Value>) -> Message {
        Message {
            kind: if error_name.is_some() {
                Kind::Error
            } else {
                Kind::Return
            },
            flags: NO_REPLY_EXPECTED,
            serial: 0,
            path: None,
            interface: None,
            member: None,
            error_name: error_name.map(str::to_string),
            reply_serial: Some(call.serial),
            destination: call.sender.clone(),
            sender: None,
            body,
        }
    }

    /// The body's signature.
    pub fn signature(&self) -> String {
        self.body.iter().map(Value::signature).collect()
    }

    /// The message as bytes on the wire.
    pub fn encode(&self) -> Vec<u8> {
        let mut body = Writer::default();
        for v in &self.body {
            body.value(v);
        }
        let field = |code: u8, v: Value| Value::Struct(vec![Value::Byte(code), Value::variant(v)]);
        let mut fields = Vec::new();
        let strs = [
            (1, &self.path),
            (2, &self.interface),
            (3, &self.member),
            (4, &self.error_name),
        ];
        for (code, v) in strs {
            if let Some(s) = v {
                fields.push(field(
                    code,
                    if code == 1 {
                        Value::Path(s.clone())
                    } else {
                        Value::Str(s.clone())
                    },
                ));
            }
        }
        if let Some(r) = self.reply_serial {
            fields.push(field(5, Value::U32(r)));
        }
        if let Some(d) = &self.destination {
            fields.push(field(6, Value::Str(d.clone())));
        }
        if let Some(s) = &self.sender {
            fields.push(field(7, Value::Str(s.clone())));
        }
        let sig = self.signature();
        if !sig.is_empty() {
            fields.push(field(8, Value::Sig(sig)));
        }
        let mut w = Writer::default();
        w.buf
            .extend_from_slice(&[b'l', self.kind as u8, self.flags, 1]);
        w.buf
            .extend_from_slice(&(body.buf.len() as u32).to_le_bytes());
        w.buf.extend_from_slice(&self.serial.to_le_bytes());
        w.value(&Value::Array("(yv)".into(), fields));
        while w.buf.len() % 8 != 0 {
            w.buf.push(0);
        }
        w.buf.extend_from_slice(&body.buf);
        w.buf
    }

    /// The first string of the body (an error's message), or "".
    pub fn first_str(&self) -> &str {
        self.body.first().and_then(Value::as_str).unwrap_or("")
    }
}

/// The length of the frame that starts with these 16 bytes.
pub fn frame_len(head: &[u8; 16]) -> Result<usize, WireError> {
    let big = match head[0] {
        b'l' => false,
        b'B' => true,
        b => return Err(WireError(format!("byte order mark {b:#04x}"))),
    };
    if head[3] != 1 {
        return Err(WireError(format!("protocol version {}", head[3])));
    }
    let word = |i: usize| {
        let b: [u8; 4] = head[i..i + 4].try_into().expect("4 bytes");
        (if big {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        }) as usize
    };
    let fields = word(12);
    let total = (16 + fields).div_ceil(8) * 8 + word(4);
    if fields > MAX_MESSAGE || total > MAX_MESSAGE {
        return Err(WireError(format!(
            "message of {total} bytes (limit {MAX_MESSAGE})"
        )));
    }
    Ok(total)
}

/// Decodes one whole frame (as long as [`frame_len`] says).
pub fn decode(frame: &[u8]) -> Result<Message, WireError> {
    let head: &[u8; 16] = frame
        .get(..16)
        .and_then(|h| h.try_into().ok())
        .ok_or_else(|| WireError("short header".into()))?;
    if frame_len(head)? != frame.len() {
        return Err(WireError("frame length does not match its header".into()));
    }
    let big = frame[0] == b'B';
    let kind = match frame[1] {
        1 => Kind::Call,
        2 => Kind::Return,
        3 => Kind::Error,
        4 => Kind::Signal,
        t => return Err(WireError(format!("message type {t}"))),
    };
    let mut r = Reader::new(frame, 8, big);
    let serial = r.u32()?;
    let body_len = u32::from_le_bytes(frame[4..8].try_into().expect("4 bytes"));
    let body_len = if big { body_len.swap_bytes() } else { body_len } as usize;
    let Value::Array(_, fields) = r.value("a(yv)", 0)? else {
        unreachable!("a(yv) reads an Array")
    };
    let mut m = Message {
        kind,
        flags: frame[2],
        serial,
        path: None,
        interface: None,
        member: None,
        error_name: None,
        reply_serial: None,
        destination: None,
        sender: None,
        body: Vec::new(),
    };
    let mut sig = String::new();
    for f in fields {
        let Value::Struct(mut pair) = f else {
            unreachable!("(yv) reads a Struct")
        };
        let (Some(Value::Variant(v)), Some(Value::Byte(code))) = (pair.pop(), pair.pop()) else {
            unreachable!("(yv) reads a byte and a variant")
        };
        match (code, *v) {
            (1, Value::Path(s)) => m.path = Some(s),
            (2, Value::Str(s)) => m.interface = Some(s),
            (3, Value::Str(s)) => m.member = Some(s),
            (4, Value::Str(s)) => m.error_name = Some(s),
            (5, Value::U32(n)) => m.reply_serial = Some(n),
            (6, Value::Str(s)) => m.destination = Some(s),
            (7, Value::Str(s)) => m.sender = Some(s),
            (8, Value::Sig(s)) => sig = s,
            (1..=8, v) => {
                return Err(WireError(format!(
                    "header field {code} has type {}",
                    v.signature()
                )))
            }
            _ => {} // unknown fields are ignored (the specification says so); 9 is UNIX_FDS
        }
    }
    let body_start = frame.len() - body_len;
    let mut r = Reader::new(&frame[body_start..], 0, big);
    // Padding between the header fields and the body.
    if frame[r_pos_end(frame, body_start)..body_start]
        .iter()
        .any(|&b| b != 0)
    {
        return Err(WireError("non-zero padding before the body".into()));
    }
    m.body = r.values(&sig)?;
    if r.pos != body_len {
        return Err(WireError(format!(
            "body has {} bytes, its signature {sig:?} reads {}",
            body_len, r.pos
        )));
    }
    if kind == Kind::Error && m.error_name.is_none()
        || matches!(kind, Kind::Return | Kind::Error) && m.reply_serial.is_none()
    {
        return Err(WireError(
            "reply without REPLY_SERIAL or error without ERROR_NAME".into(),
        ));
    }
    Ok(m)
}

/// Where the header fields end (the body starts at the next multiple of 8).
fn r_pos_end(frame: &[u8], body_start: usize) -> usize {
    let fields = u32::from_le_bytes(frame[12..16].try_into().expect("4 bytes")) as usize;
    let fields = if frame[0] == b'B' {
        (fields as u32).swap_bytes() as usize
    } else {
        fields
    };
    (16 + fields).min(body_start)
}

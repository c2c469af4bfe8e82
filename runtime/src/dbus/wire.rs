//! The D-Bus wire format (the specification's "Message Protocol"), as much
//! of it as the systemd driver needs: the basic types but doubles and fds,
//! arrays, structs, dict entries and variants; messages of the four types
//! with their header fields. berth writes little-endian and reads both
//! byte orders. Reading is defensive: every length is checked against
//! what is there, nesting is bounded, and anything else is a [`WireError`]
//! (a malformed message from the bus never panics or loops).

use std::fmt;

/// The largest message berth reads. The specification allows 128 MiB;
/// systemd's replies to berth's calls are a few hundred bytes.
pub const MAX_MESSAGE: usize = 4 << 20;
/// Nesting bound (the specification: 32 arrays and 32 structs).
const MAX_DEPTH: usize = 64;

/// A malformed message, or a value berth cannot read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireError(pub String);

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn bad<T>(what: impl Into<String>) -> Result<T, WireError> {
    Err(WireError(what.into()))
}

/// A D-Bus value. Arrays carry their element signature, so an empty one
/// still has a type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Byte(u8),
    Bool(bool),
    I16(i16),
    U16(u16),
    I32(i32),
    U32(u32),
    I64(i64),
    U64(u64),
    Str(String),
    Path(String),
    Sig(String),
    Array(String, Vec<Value>),
    Struct(Vec<Value>),
    Variant(Box<Value>),
}

impl Value {
    pub fn str(s: &str) -> Value {
        Value::Str(s.to_string())
    }

    pub fn variant(v: Value) -> Value {
        Value::Variant(Box::new(v))
    }

    /// The value's signature.
    pub fn signature(&self) -> String {
        match self {
            Value::Byte(_) => "y".into(),
            Value::Bool(_) => "b".into(),
            Value::I16(_) => "n".into(),
            Value::U16(_) => "q".into(),
            Value::I32(_) => "i".into(),
            Value::U32(_) => "u".into(),
            Value::I64(_) => "x".into(),
            Value::U64(_) => "t".into(),
            Value::Str(_) => "s".into(),
            Value::Path(_) => "o".into(),
            Value::Sig(_) => "g".into(),
            Value::Array(elem, _) => format!("a{elem}"),
            Value::Struct(fields) => {
                let inner: String = fields.iter().map(Value::signature).collect();
                format!("({inner})")
            }
            Value::Variant(_) => "v".into(),
        }
    }

    /// The string of a `s`, `o` or `g` value.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) | Value::Path(s) | Value::Sig(s) => Some(s),
            _ => None,
        }
    }
}

/// Alignment of the type whose signature starts with `c`.
fn alignment(c: u8) -> usize {
    match c {
        b'n' | b'q' => 2,
        b'b' | b'i' | b'u' | b'h' | b's' | b'o' | b'a' => 4,
        b'x' | b't' | b'd' | b'(' | b'{' => 8,
        _ => 1,
    }
}

/// Writes values little-endian; offsets are from the start of the buffer,
/// which is where the header or the body (8-aligned in the message) starts.
#[derive(Default)]
pub struct Writer {
    pub buf: Vec<u8>,
}

impl Writer {
    fn pad(&mut self, align: usize) {
        while !self.buf.len().is_multiple_of(align) {
            self.buf.push(0);
        }
    }

    fn u32(&mut self, v: u32) {
        self.pad(4);
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    fn string(&mut self, s: &str) {
        self.u32(s.len() as u32);
        self.buf.extend_from_slice(s.as_bytes());
        self.buf.push(0);
    }

    pub fn value(&mut self, v: &Value) {
        match v {
            Value::Byte(b) => self.buf.push(*b),
            Value::Bool(b) => self.u32(u32::from(*b)),
            Value::I16(n) => self.fixed(2, &n.to_le_bytes()),
            Value::U16(n) => self.fixed(2, &n.to_le_bytes()),
            Value::I32(n) => self.fixed(4, &n.to_le_bytes()),
            Value::U32(n) => self.u32(*n),
            Value::I64(n) => self.fixed(8, &n.to_le_bytes()),
            Value::U64(n) => self.fixed(8, &n.to_le_bytes()),
            Value::Str(s) | Value::Path(s) => self.string(s),
            Value::Sig(s) => {
                self.buf.push(s.len() as u8);
                self.buf.extend_from_slice(s.as_bytes());
                self.buf.push(0);
            }
            Value::Array(elem, items) => {
                self.u32(0);
                let len_at = self.buf.len() - 4;
                // The padding before the first element is not counted.
                self.pad(alignment(elem.as_bytes().first().copied().unwrap_or(b'y')));
                let start = self.buf.len();
                for item in items {
                    self.value(item);
                }
                let len = (self.buf.len() - start) as u32;
                self.buf[len_at..len_at + 4].copy_from_slice(&len.to_le_bytes());
            }
            Value::Struct(fields) => {
                self.pad(8);
                for f in fields {
                    self.value(f);
                }
            }
            Value::Variant(inner) => {
                self.value(&Value::Sig(inner.signature()));
                self.value(inner);
            }
        }
    }

    fn fixed(&mut self, align: usize, bytes: &[u8]) {
        self.pad(align);
        self.buf.extend_from_slice(bytes);
    }
}

/// Splits the first complete type off a signature: `a(sv)s` -> (`a(sv)`, `s`).
pub fn split_type(sig: &str) -> Result<(&str, &str), WireError> {
    // Type codes are ASCII: anything else is no signature (and would put
    // the split inside a character).
    if !sig.is_ascii() {
        return bad(format!("signature {sig:?}: not ASCII"));
    }
    let b = sig.as_bytes();
    let mut i = 0;
    while i < b.len() && b[i] == b'a' {
        i += 1;
    }
    let Some(&c) = b.get(i) else {
        return bad(format!("signature {sig:?} ends inside an array type"));
    };
    let end = match c {
        b'(' | b'{' => {
            let mut depth = 0usize;
            let mut j = i;
            loop {
                match b.get(j) {
                    Some(b'(' | b'{') => depth += 1,
                    Some(b')' | b'}') => {
                        depth -= 1;
                        if depth == 0 {
                            break j + 1;
                        }
                    }
                    Some(_) => {}
                    None => return bad(format!("signature {sig:?}: unbalanced parenthesis")),
                }
                j += 1;
            }
        }
        b')' | b'}' => return bad(format!("signature {sig:?}: unexpected {:?}", c as char)),
        _ => i + 1,
    };
    Ok(sig.split_at(end))
}

/// Reads values from a message in either byte order.
pub struct Reader<'a> {
    buf: &'a [u8],
    pub pos: usize,
    big: bool,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8], pos: usize, big: bool) -> Self {
        Reader { buf, pos, big }
    }

    fn align(&mut self, a: usize) -> Result<(), WireError> {
        let next = self.pos.div_ceil(a) * a;
        if next > self.buf.len() {
            return bad("padding runs past the end of the message");
        }
        if self.buf[self.pos..next].iter().any(|&b| b != 0) {
            return bad(format!("non-zero padding at offset {}", self.pos));
        }
        self.pos = next;
        Ok(())
    }

    fn take<const N: usize>(&mut self) -> Result<[u8; N], WireError> {
        self.align(N)?;
        let Some(s) = self.buf.get(self.pos..self.pos + N) else {
            return bad(format!("a {N}-byte value runs past the end of the message"));
        };
        self.pos += N;
        let mut out: [u8; N] = s.try_into().expect("slice of N bytes");
        if self.big {
            out.reverse();
        }
        Ok(out)
    }

    pub fn u32(&mut self) -> Result<u32, WireError> {
        Ok(u32::from_le_bytes(self.take::<4>()?))
    }

    fn bytes_nul(&mut self, len: usize) -> Result<String, WireError> {
        let Some(s) = self
            .buf
            .get(self.pos..self.pos.saturating_add(len).saturating_add(1))
        else {
            return bad("a string runs past the end of the message");
        };
        if s[len] != 0 || s[..len].contains(&0) {
            return bad(format!(
                "string at offset {} is not NUL-terminated or has a NUL",
                self.pos
            ));
        }
        let text = std::str::from_utf8(&s[..len])
            .map_err(|_| WireError(format!("string at offset {} is not UTF-8", self.pos)))?;
        self.pos += len + 1;
        Ok(text.to_string())
    }

    /// Reads one value of the single complete type `sig`.
    pub fn value(&mut self, sig: &str, depth: usize) -> Result<Value, WireError> {
        if depth > MAX_DEPTH {
            return bad("values nested too deeply");
        }
        let c = *sig
            .as_bytes()
            .first()
            .ok_or_else(|| WireError("empty signature".into()))?;
        Ok(match c {
            b'y' => {
                let b = *self
                    .buf
                    .get(self.pos)
                    .ok_or_else(|| WireError("a byte past the end of the message".into()))?;
                self.pos += 1;
                Value::Byte(b)
            }
            b'b' => match self.u32()? {
                0 => Value::Bool(false),
                1 => Value::Bool(true),
                n => return bad(format!("boolean with value {n}")),
            },
            b'n' => Value::I16(i16::from_le_bytes(self.take::<2>()?)),
            b'q' => Value::U16(u16::from_le_bytes(self.take::<2>()?)),
            b'i' => Value::I32(i32::from_le_bytes(self.take::<4>()?)),
            b'u' | b'h' => Value::U32(self.u32()?),
            b'x' => Value::I64(i64::from_le_bytes(self.take::<8>()?)),
            b't' => Value::U64(u64::from_le_bytes(self.take::<8>()?)),
            b's' | b'o' => {
                let len = self.u32()? as usize;
                let s = self.bytes_nul(len)?;
                if c == b's' {
                    Value::Str(s)
                } else {
                    Value::Path(s)
                }
            }
            b'g' => {
                let len =
                    *self.buf.get(self.pos).ok_or_else(|| {
                        WireError("a signature past the end of the message".into())
                    })? as usize;
                self.pos += 1;
                Value::Sig(self.bytes_nul(len)?)
            }
            b'a' => self.array(&sig[1..], depth)?,
            b'(' | b'{' => {
                self.align(8)?;
                let mut inner = &sig[1..sig.len() - 1];
                if inner.is_empty() {
                    return bad("empty struct in a signature");
                }
                let mut fields = Vec::new();
                while !inner.is_empty() {
                    let (one, rest) = split_type(inner)?;
                    fields.push(self.value(one, depth + 1)?);
                    inner = rest;
                }
                Value::Struct(fields)
            }
            b'v' => {
                let Value::Sig(s) = self.value("g", depth)? else {
                    unreachable!("g reads a Sig")
                };
                let (one, rest) = split_type(&s)?;
                if !rest.is_empty() || one.is_empty() {
                    return bad(format!("variant signature {s:?} is not a single type"));
                }
                Value::Variant(Box::new(self.value(one, depth + 1)?))
            }
            other => return bad(format!("type {:?} is not supported", other as char)),
        })
    }

    fn array(&mut self, elem: &str, depth: usize) -> Result<Value, WireError> {
        let len = self.u32()? as usize;
        if len > 64 << 20 {
            return bad(format!("array of {len} bytes"));
        }
        self.align(alignment(elem.as_bytes()[0]))?;
        let end = self.pos.checked_add(len).filter(|&e| e <= self.buf.len());
        let Some(end) = end else {
            return bad("an array runs past the end of the message");
        };
        let mut items = Vec::new();
        while self.pos < end {
            items.push(self.value(elem, depth + 1)?);
        }
        if self.pos != end {
            return bad("an array's elements overrun its length");
        }
        Ok(Value::Array(elem.to_string(), items))
    }

    /// Reads the values of a whole signature (a message body).
    pub fn values(&mut self, mut sig: &str) -> Result<Vec<Value>, WireError> {
        let mut out = Vec::new();
        while !sig.is_empty() {
            let (one, rest) = split_type(sig)?;
            out.push(self.value(one, 0)?);
            sig = rest;
        }
        Ok(out)
    }
}

//! A small synchronous rtnetlink client over a raw NETLINK_ROUTE socket:
//! just the requests `linux.netDevices` needs (look up and list links, list
//! a link's addresses, move a link to another network namespace under a
//! new name, add an address, set a link up). One request at a time; every
//! change asks for an acknowledgement, so an error comes back as the errno
//! of that request.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use nix::sched::{setns, CloneFlags};

// linux/netlink.h, linux/rtnetlink.h, linux/if_link.h, linux/if_addr.h
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;
const NLM_F_DUMP: u16 = 0x300;
const RTM_NEWLINK: u16 = 16;
const RTM_GETLINK: u16 = 18;
const RTM_NEWADDR: u16 = 20;
const RTM_GETADDR: u16 = 22;
const IFLA_IFNAME: u16 = 3;
const IFLA_NET_NS_FD: u16 = 28;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFA_LABEL: u16 = 3;
const IFA_BROADCAST: u16 = 4;
const IFA_ANYCAST: u16 = 5;
const IFA_MULTICAST: u16 = 7;
const IFA_FLAGS: u16 = 8;
const IFA_RT_PRIORITY: u16 = 9;
const IFA_PROTO: u16 = 11;
pub const IFA_F_PERMANENT: u32 = 0x80;
/// Address flags that describe configuration (not state such as
/// tentative or deprecated) and can be given back to RTM_NEWADDR:
/// NODAD, HOMEADDRESS, MANAGETEMPADDR, NOPREFIXROUTE, MCAUTOJOIN.
const IFA_F_CONFIG: u32 = 0x02 | 0x10 | 0x100 | 0x200 | 0x400;
pub const RT_SCOPE_UNIVERSE: u8 = 0;
const IFF_UP: u32 = libc::IFF_UP as u32;
const HDR: usize = 16;

/// A network link: index, name, flags (IFF_*).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub index: i32,
    pub name: String,
    pub flags: u32,
}

impl Link {
    pub fn is_up(&self) -> bool {
        self.flags & IFF_UP != 0
    }
}

/// An address of a link, as RTM_GETADDR reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Addr {
    pub family: u8,
    pub prefixlen: u8,
    pub scope: u8,
    /// ifa_flags, or IFA_FLAGS when present (it has the high bits).
    pub flags: u32,
    pub label: Option<String>,
    /// The attributes that are copied as they are (address, local,
    /// broadcast, anycast, multicast, route priority, protocol).
    attrs: Vec<(u16, Vec<u8>)>,
}

impl Addr {
    /// Permanent (IFA_F_PERMANENT) and of global scope (RT_SCOPE_UNIVERSE):
    /// the addresses the spec asks to keep.
    pub fn is_permanent_global(&self) -> bool {
        self.flags & IFA_F_PERMANENT != 0 && self.scope == RT_SCOPE_UNIVERSE
    }

    /// `10.0.0.1/24` or `fd00::1/64` (the local address when there is one).
    pub fn display(&self) -> String {
        let a = self
            .attrs
            .iter()
            .find(|(t, _)| *t == IFA_LOCAL)
            .or_else(|| self.attrs.iter().find(|(t, _)| *t == IFA_ADDRESS));
        let ip = match a.map(|(_, v)| v.as_slice()) {
            Some(v) if v.len() == 4 => std::net::Ipv4Addr::new(v[0], v[1], v[2], v[3]).to_string(),
            Some(v) if v.len() == 16 => {
                std::net::Ipv6Addr::from(<[u8; 16]>::try_from(v).expect("16 bytes")).to_string()
            }
            _ => "?".to_string(),
        };
        format!("{ip}/{}", self.prefixlen)
    }
}

/// A NETLINK_ROUTE socket, bound to the network namespace it was opened in.
pub struct Rtnl {
    fd: OwnedFd,
    seq: u32,
}

impl Rtnl {
    /// A socket in the calling thread's network namespace.
    pub fn open() -> io::Result<Rtnl> {
        // SAFETY: socket takes integer arguments and returns a new fd or -1, checked below.
        let fd = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_ROUTE,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd is the non-negative fd socket just returned; nothing else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: sockaddr_nl is plain integers; all-zero is a valid value (pid 0: the kernel picks).
        let mut sa: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        sa.nl_family = libc::AF_NETLINK as u16;
        // SAFETY: `sa` is a live sockaddr_nl and the length passed is its size; bind only reads it.
        let r = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&sa as *const libc::sockaddr_nl).cast(),
                std::mem::size_of::<libc::sockaddr_nl>() as u32,
            )
        };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Rtnl { fd, seq: 0 })
    }

    /// A socket in the network namespace `ns`: the calling thread enters
    /// it for the socket(2) call and goes back to `home`. A netlink socket
    /// stays in the namespace it was created in.
    pub fn open_in(ns: BorrowedFd, home: BorrowedFd) -> io::Result<Rtnl> {
        setns(ns, CloneFlags::CLONE_NEWNET)?;
        let r = Rtnl::open();
        if let Err(e) = setns(home, CloneFlags::CLONE_NEWNET) {
            // Staying in the container's namespace would be worse than dying.
            eprintln!("berth: error: cannot return to the host network namespace: {e}");
            std::process::abort();
        }
        r
    }

    /// The link named `name`; `Ok(None)` when there is none.
    pub fn link_by_name(&mut self, name: &str) -> io::Result<Option<Link>> {
        let mut m = Msg::new(RTM_GETLINK, 0);
        m.ifinfo(0, 0, 0);
        m.attr_str(IFLA_IFNAME, name);
        match self.transact(m, false) {
            Ok(replies) => Ok(replies.iter().find_map(|p| parse_link(p))),
            Err(e) if e.raw_os_error() == Some(libc::ENODEV) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Every link of the namespace.
    pub fn links(&mut self) -> io::Result<Vec<Link>> {
        let mut m = Msg::new(RTM_GETLINK, NLM_F_DUMP);
        m.ifinfo(0, 0, 0);
        Ok(self
            .transact(m, true)?
            .iter()
            .filter_map(|p| parse_link(p))
            .collect())
    }

    /// The addresses (every family) of link `index`.
    pub fn addrs(&mut self, index: i32) -> io::Result<Vec<Addr>> {
        let mut m = Msg::new(RTM_GETADDR, NLM_F_DUMP);
        m.ifaddr(libc::AF_UNSPEC as u8, 0, 0, 0, 0);
        let replies = self.transact(m, true)?;
        Ok(replies
            .iter()
            .filter_map(|p| parse_addr(p, index))
            .collect())
    }

    /// Move link `index` into the network namespace `ns`, named `name`
    /// there (in the same request, so the name is checked in the target
    /// namespace: EEXIST when it is taken there; a `%d` in it is filled in
    /// by the kernel).
    pub fn move_link(&mut self, index: i32, name: &str, ns: BorrowedFd) -> io::Result<()> {
        let mut m = Msg::new(RTM_NEWLINK, 0);
        m.ifinfo(index, 0, 0);
        m.attr_str(IFLA_IFNAME, name);
        m.attr(IFLA_NET_NS_FD, &(ns.as_raw_fd() as u32).to_ne_bytes());
        self.transact(m, false).map(drop)
    }

    /// Set link `index` up (or down).
    pub fn set_up(&mut self, index: i32, up: bool) -> io::Result<()> {
        let mut m = Msg::new(RTM_NEWLINK, 0);
        m.ifinfo(index, if up { IFF_UP } else { 0 }, IFF_UP);
        self.transact(m, false).map(drop)
    }

    /// Add `a` to link `index`, its label (if any) following the link's
    /// new name `link_name`; an address that is already there is fine.
    pub fn add_addr(
        &mut self,
        index: i32,
        a: &Addr,
        old_name: &str,
        link_name: &str,
    ) -> io::Result<()> {
        let flags = a.flags & IFA_F_CONFIG;
        let mut m = Msg::new(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL);
        m.ifaddr(
            a.family,
            a.prefixlen,
            (flags & 0xff) as u8,
            a.scope,
            index as u32,
        );
        for (t, v) in &a.attrs {
            m.attr(*t, v);
        }
        if flags > 0xff {
            m.attr(IFA_FLAGS, &flags.to_ne_bytes());
        }
        // An alias label ("eth0:1") must start with the link's name.
        if let Some(suffix) = a.label.as_deref().and_then(|l| l.strip_prefix(old_name)) {
            if !suffix.is_empty() && link_name.len() + suffix.len() < 16 {
                m.attr_str(IFA_LABEL, &format!("{link_name}{suffix}"));
            }
        }
        match self.transact(m, false) {
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => Ok(()),
            r => r.map(drop),
        }
    }

    /// Send one request and collect the payloads of its replies: up to
    /// NLMSG_DONE for a dump, up to the acknowledgement otherwise. An
    /// NLMSG_ERROR with a non-zero code is that errno.
    fn transact(&mut self, mut m: Msg, dump: bool) -> io::Result<Vec<Vec<u8>>> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        if !dump {
            m.add_flags(NLM_F_ACK);
        }
        let buf = m.finish(seq);
        // SAFETY: `buf` is valid for buf.len() bytes and send only reads them.
        let n = unsafe { libc::send(self.fd.as_raw_fd(), buf.as_ptr().cast(), buf.len(), 0) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut out = Vec::new();
        let mut rbuf = vec![0u8; 64 * 1024];
        loop {
            // SAFETY: `rbuf` is valid for rbuf.len() bytes and recv writes at most that many.
            let n = unsafe {
                libc::recv(
                    self.fd.as_fd().as_raw_fd(),
                    rbuf.as_mut_ptr().cast(),
                    rbuf.len(),
                    0,
                )
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            if let Some(end) = parse_reply(&rbuf[..n as usize], seq, &mut out)? {
                end?;
                return Ok(out);
            }
        }
    }
}

/// Parse one datagram of replies to request `seq` (messages of other
/// sequence numbers are skipped), appending the payloads of data messages
/// to `out`. Returns `Ok(None)` when more datagrams follow, `Ok(Some(r))`
/// at the end of the reply: NLMSG_DONE or a zero NLMSG_ERROR (`Ok(())`),
/// or the errno of a non-zero NLMSG_ERROR (`Err`). A malformed datagram
/// is an `InvalidData` error. Public for the fuzz target (fuzz/).
pub fn parse_reply(
    mut rest: &[u8],
    seq: u32,
    out: &mut Vec<Vec<u8>>,
) -> io::Result<Option<io::Result<()>>> {
    while rest.len() >= HDR {
        let len = u32::from_ne_bytes(rest[0..4].try_into().unwrap()) as usize;
        if len < HDR || len > rest.len() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "truncated netlink message",
            ));
        }
        let typ = u16::from_ne_bytes(rest[4..6].try_into().unwrap());
        let mseq = u32::from_ne_bytes(rest[8..12].try_into().unwrap());
        let payload = &rest[HDR..len];
        rest = &rest[align(len).min(rest.len())..];
        if mseq != seq {
            continue;
        }
        match typ {
            NLMSG_ERROR => {
                let code = payload
                    .get(0..4)
                    .map(|b| i32::from_ne_bytes(b.try_into().unwrap()))
                    .unwrap_or(-libc::EIO);
                if code != 0 {
                    // A negative errno; anything else (i32::MIN has no
                    // negation) is not one.
                    let errno = code.checked_neg().filter(|e| *e > 0).unwrap_or(libc::EIO);
                    return Ok(Some(Err(io::Error::from_raw_os_error(errno))));
                }
                return Ok(Some(Ok(())));
            }
            NLMSG_DONE => return Ok(Some(Ok(()))),
            _ => out.push(payload.to_vec()),
        }
    }
    Ok(None)
}

fn align(n: usize) -> usize {
    (n + 3) & !3
}

/// A request being built: header, fixed part, attributes.
struct Msg {
    buf: Vec<u8>,
}

impl Msg {
    fn new(typ: u16, flags: u16) -> Msg {
        let mut buf = vec![0u8; HDR];
        buf[4..6].copy_from_slice(&typ.to_ne_bytes());
        buf[6..8].copy_from_slice(&(flags | NLM_F_REQUEST).to_ne_bytes());
        Msg { buf }
    }

    fn add_flags(&mut self, f: u16) {
        let old = u16::from_ne_bytes(self.buf[6..8].try_into().unwrap());
        self.buf[6..8].copy_from_slice(&(old | f).to_ne_bytes());
    }

    /// struct ifinfomsg.
    fn ifinfo(&mut self, index: i32, flags: u32, change: u32) {
        self.buf
            .extend_from_slice(&[libc::AF_UNSPEC as u8, 0, 0, 0]);
        self.buf.extend_from_slice(&index.to_ne_bytes());
        self.buf.extend_from_slice(&flags.to_ne_bytes());
        self.buf.extend_from_slice(&change.to_ne_bytes());
    }

    /// struct ifaddrmsg.
    fn ifaddr(&mut self, family: u8, prefixlen: u8, flags: u8, scope: u8, index: u32) {
        self.buf
            .extend_from_slice(&[family, prefixlen, flags, scope]);
        self.buf.extend_from_slice(&index.to_ne_bytes());
    }

    fn attr(&mut self, typ: u16, data: &[u8]) {
        let len = 4 + data.len();
        self.buf.extend_from_slice(&(len as u16).to_ne_bytes());
        self.buf.extend_from_slice(&typ.to_ne_bytes());
        self.buf.extend_from_slice(data);
        self.buf.resize(align(self.buf.len()), 0);
    }

    fn attr_str(&mut self, typ: u16, s: &str) {
        let mut v = s.as_bytes().to_vec();
        v.push(0);
        self.attr(typ, &v);
    }

    fn finish(mut self, seq: u32) -> Vec<u8> {
        let len = self.buf.len() as u32;
        self.buf[0..4].copy_from_slice(&len.to_ne_bytes());
        self.buf[8..12].copy_from_slice(&seq.to_ne_bytes());
        self.buf
    }
}

/// The attributes (type, data) of `b`.
fn attrs(mut b: &[u8]) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    while b.len() >= 4 {
        let len = u16::from_ne_bytes([b[0], b[1]]) as usize;
        let typ = u16::from_ne_bytes([b[2], b[3]]) & 0x3fff;
        if len < 4 || len > b.len() {
            break;
        }
        out.push((typ, &b[4..len]));
        b = &b[align(len).min(b.len())..];
    }
    out
}

fn c_string(v: &[u8]) -> String {
    let end = v.iter().position(|&c| c == 0).unwrap_or(v.len());
    String::from_utf8_lossy(&v[..end]).into_owned()
}

/// An RTM_NEWLINK payload (ifinfomsg and attributes); None without a name.
pub fn parse_link(p: &[u8]) -> Option<Link> {
    if p.len() < 16 {
        return None;
    }
    let index = i32::from_ne_bytes(p[4..8].try_into().unwrap());
    let flags = u32::from_ne_bytes(p[8..12].try_into().unwrap());
    let name = attrs(&p[16..])
        .into_iter()
        .find(|(t, _)| *t == IFLA_IFNAME)
        .map(|(_, v)| c_string(v))?;
    Some(Link { index, name, flags })
}

/// An RTM_NEWADDR payload, if it belongs to link `index`.
pub fn parse_addr(p: &[u8], index: i32) -> Option<Addr> {
    if p.len() < 8 || u32::from_ne_bytes(p[4..8].try_into().unwrap()) != index as u32 {
        return None;
    }
    let mut a = Addr {
        family: p[0],
        prefixlen: p[1],
        flags: p[2] as u32,
        scope: p[3],
        label: None,
        attrs: Vec::new(),
    };
    for (t, v) in attrs(&p[8..]) {
        match t {
            IFA_FLAGS if v.len() == 4 => a.flags = u32::from_ne_bytes(v.try_into().unwrap()),
            IFA_LABEL => a.label = Some(c_string(v)),
            IFA_ADDRESS | IFA_LOCAL | IFA_BROADCAST | IFA_ANYCAST | IFA_MULTICAST
            | IFA_RT_PRIORITY | IFA_PROTO => a.attrs.push((t, v.to_vec())),
            _ => {}
        }
    }
    Some(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_layout() {
        let mut m = Msg::new(RTM_GETLINK, 0);
        m.ifinfo(7, 0, 0);
        m.attr_str(IFLA_IFNAME, "eth0");
        let b = m.finish(9);
        // 16 header + 16 ifinfomsg + 4 attr header + "eth0\0" padded to 8.
        assert_eq!(b.len(), 16 + 16 + 4 + 8);
        assert_eq!(
            u32::from_ne_bytes(b[0..4].try_into().unwrap()) as usize,
            b.len()
        );
        assert_eq!(u32::from_ne_bytes(b[8..12].try_into().unwrap()), 9);
        assert_eq!(i32::from_ne_bytes(b[20..24].try_into().unwrap()), 7);
        assert_eq!(attrs(&b[32..]), vec![(IFLA_IFNAME, &b"eth0\0"[..])]);
    }

    #[test]
    fn parses_an_address() {
        let mut m = Msg::new(RTM_NEWADDR, 0);
        m.ifaddr(
            libc::AF_INET as u8,
            24,
            IFA_F_PERMANENT as u8,
            RT_SCOPE_UNIVERSE,
            5,
        );
        m.attr(IFA_LOCAL, &[10, 1, 2, 3]);
        m.attr_str(IFA_LABEL, "eth0:1");
        let b = m.finish(1);
        let a = parse_addr(&b[HDR..], 5).unwrap();
        assert!(a.is_permanent_global());
        assert_eq!(a.display(), "10.1.2.3/24");
        assert_eq!(a.label.as_deref(), Some("eth0:1"));
        assert!(parse_addr(&b[HDR..], 6).is_none());
    }

    /// NLMSG_ERROR for request `seq` with error code `code`.
    fn error_reply(seq: u32, code: i32) -> Vec<u8> {
        let mut m = Msg::new(NLMSG_ERROR, 0);
        m.buf.extend_from_slice(&code.to_ne_bytes());
        m.finish(seq)
    }

    #[test]
    fn reply_errors() {
        let mut out = Vec::new();
        let r = parse_reply(&error_reply(3, -libc::ENODEV), 3, &mut out)
            .unwrap()
            .unwrap();
        assert_eq!(r.unwrap_err().raw_os_error(), Some(libc::ENODEV));
        assert!(parse_reply(&error_reply(3, 0), 3, &mut out)
            .unwrap()
            .unwrap()
            .is_ok());
        // Another request's reply is skipped: more to come.
        assert!(parse_reply(&error_reply(2, -1), 3, &mut out)
            .unwrap()
            .is_none());
        assert!(out.is_empty());
        // Found by fuzz/ (netlink_reply): i32::MIN and positive codes are
        // no errno (negating i32::MIN overflowed, a panic in debug builds).
        for code in [i32::MIN, 5] {
            let r = parse_reply(&error_reply(3, code), 3, &mut out)
                .unwrap()
                .unwrap();
            assert_eq!(r.unwrap_err().raw_os_error(), Some(libc::EIO));
        }
        // A length past the datagram.
        let mut b = error_reply(3, 0);
        b[0] = 200;
        assert_eq!(
            parse_reply(&b, 3, &mut out).unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
    }

    #[test]
    fn loopback_is_listed() {
        // Only reads this process's own network namespace.
        let mut r = Rtnl::open().unwrap();
        let lo = r.link_by_name("lo").unwrap().expect("lo exists");
        assert!(r.links().unwrap().contains(&lo));
        assert!(r.link_by_name("berth-no-such").unwrap().is_none());
    }
}

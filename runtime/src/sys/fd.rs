//! File descriptors: passing them over unix sockets (SCM_RIGHTS, and the
//! sender's pid from SCM_CREDENTIALS) and marking a range close-on-exec.
//! This is the one implementation of fd passing: the console master, the
//! seccomp listener, the sync socket's credentials and the shim's launcher
//! all go through it.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use super::cvt;

/// The most fds one [`send_with_fds`] carries (its control buffer is on the stack).
pub const MAX_SEND_FDS: usize = 12;

/// What one [`recv_with_fds`] brought.
pub struct Received {
    /// The datagram's length. With `MSG_TRUNC` in the flags this is its real
    /// length, which may exceed the buffer.
    pub len: usize,
    /// The fds that came with it (SCM_RIGHTS), close-on-exec.
    pub fds: Vec<OwnedFd>,
    /// The sender's pid, translated into our pid namespace, when the socket
    /// has SO_PASSCRED (SCM_CREDENTIALS).
    pub pid: Option<libc::pid_t>,
}

/// Send `data` with `fds` attached (SCM_RIGHTS; none attached when empty)
/// on a unix socket. EINTR is retried; SIGPIPE is never raised.
pub fn send_with_fds(sock: RawFd, data: &[u8], fds: &[RawFd]) -> io::Result<usize> {
    if fds.len() > MAX_SEND_FDS {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    let mut iov = libc::iovec {
        iov_base: data.as_ptr() as *mut _,
        iov_len: data.len(),
    };
    let mut cbuf = [0u64; 8];
    // SAFETY: msghdr is plain data; all-zero (null pointers, zero lengths) is a valid value.
    let mut hdr: libc::msghdr = unsafe { std::mem::zeroed() };
    hdr.msg_iov = &mut iov;
    hdr.msg_iovlen = 1;
    if !fds.is_empty() {
        let bytes = std::mem::size_of_val(fds) as u32;
        hdr.msg_control = cbuf.as_mut_ptr().cast();
        // SAFETY: CMSG_SPACE only computes a size; at most 12 fds give 16 + 48 = 64
        // bytes, exactly the size of cbuf.
        hdr.msg_controllen = unsafe { libc::CMSG_SPACE(bytes) } as usize;
        // SAFETY: msg_control points to cbuf (8-byte aligned, as cmsghdr needs) and
        // msg_controllen covers one header plus `bytes` of data, so CMSG_FIRSTHDR is
        // non-null and CMSG_DATA has room for every fd; the data may be unaligned
        // for RawFd, hence copy_nonoverlapping of bytes.
        unsafe {
            let c = libc::CMSG_FIRSTHDR(&hdr);
            (*c).cmsg_level = libc::SOL_SOCKET;
            (*c).cmsg_type = libc::SCM_RIGHTS;
            (*c).cmsg_len = libc::CMSG_LEN(bytes) as usize;
            std::ptr::copy_nonoverlapping(
                fds.as_ptr().cast::<u8>(),
                libc::CMSG_DATA(c),
                bytes as usize,
            );
        }
    }
    loop {
        // SAFETY: hdr points to iov (which points into `data`) and to cbuf, all alive
        // for the call; sendmsg only reads them.
        match cvt(unsafe { libc::sendmsg(sock, &hdr, libc::MSG_NOSIGNAL) }) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            r => return r.map(|n| n as usize),
        }
    }
}

/// Send `data` with `fd` attached (SCM_RIGHTS) on a unix socket.
pub fn send_with_fd(sock: RawFd, data: &[u8], fd: RawFd) -> io::Result<usize> {
    send_with_fds(sock, data, &[fd])
}

/// Receive one message into `buf`, with the fds (close-on-exec) and the
/// sender's pid that came with it. `flags` are added to MSG_CMSG_CLOEXEC
/// (e.g. MSG_TRUNC). EINTR is retried; `len` 0 means the peer closed its
/// end (on a stream or seqpacket socket). Fds beyond what the control buffer
/// holds are closed by the kernel (MSG_CTRUNC).
pub fn recv_with_fds(sock: RawFd, buf: &mut [u8], flags: i32) -> io::Result<Received> {
    let mut cbuf = [0u64; 16];
    loop {
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        // SAFETY: msghdr is plain data; all-zero (null pointers, zero lengths) is a valid value.
        let mut hdr: libc::msghdr = unsafe { std::mem::zeroed() };
        hdr.msg_iov = &mut iov;
        hdr.msg_iovlen = 1;
        hdr.msg_control = cbuf.as_mut_ptr().cast();
        hdr.msg_controllen = std::mem::size_of_val(&cbuf);
        // SAFETY: iov covers `buf` and msg_control covers cbuf, both writable and alive
        // for the call; the kernel writes at most their lengths.
        let n = match cvt(unsafe { libc::recvmsg(sock, &mut hdr, libc::MSG_CMSG_CLOEXEC | flags) })
        {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            r => r? as usize,
        };
        let mut got = Received {
            len: n,
            fds: Vec::new(),
            pid: None,
        };
        // SAFETY: the kernel filled hdr.msg_control with msg_controllen bytes of
        // well-formed cmsghdrs inside cbuf; CMSG_FIRSTHDR/CMSG_NXTHDR stay within them
        // and return null at the end. Each SCM_RIGHTS fd is new to this process and
        // owned by nobody else, so OwnedFd may take it; the data is read unaligned.
        unsafe {
            let mut c = libc::CMSG_FIRSTHDR(&hdr);
            while !c.is_null() {
                let data = libc::CMSG_DATA(c);
                let len = (*c).cmsg_len - (data as usize - c as usize);
                match ((*c).cmsg_level, (*c).cmsg_type) {
                    (libc::SOL_SOCKET, libc::SCM_RIGHTS) => {
                        for i in 0..len / std::mem::size_of::<RawFd>() {
                            let fd = std::ptr::read_unaligned((data as *const RawFd).add(i));
                            got.fds.push(OwnedFd::from_raw_fd(fd));
                        }
                    }
                    (libc::SOL_SOCKET, libc::SCM_CREDENTIALS) => {
                        got.pid = Some(std::ptr::read_unaligned(data as *const libc::ucred).pid);
                    }
                    _ => {}
                }
                c = libc::CMSG_NXTHDR(&hdr, c);
            }
        }
        return Ok(got);
    }
}

/// Receive one message sent with [`send_with_fd`] and return its first fd
/// (the payload, up to 4 KiB, is discarded; extra fds are closed). Other
/// control messages (such as SCM_CREDENTIALS on a SO_PASSCRED socket) are
/// skipped.
pub fn recv_fd(sock: RawFd) -> io::Result<OwnedFd> {
    let mut buf = [0u8; 4096];
    let got = recv_with_fds(sock, &mut buf, 0)?;
    if got.len == 0 && got.fds.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the peer closed the socket",
        ));
    }
    got.fds
        .into_iter()
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no fd in the message"))
}

/// Mark every fd from `first` up CLOEXEC (close_range with
/// CLOSE_RANGE_CLOEXEC), so nothing of berth's leaks through execve.
pub fn cloexec_from(first: u32) -> io::Result<()> {
    const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
    // SAFETY: close_range with CLOSE_RANGE_CLOEXEC closes nothing: it only marks fds
    // close-on-exec, so no Rust owner of an fd in the range is affected.
    cvt(unsafe { libc::syscall(libc::SYS_close_range, first, u32::MAX, CLOSE_RANGE_CLOEXEC) })
        .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

    fn pair() -> (OwnedFd, OwnedFd) {
        use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
        socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .unwrap()
    }

    fn same_file(a: BorrowedFd, b: BorrowedFd) -> bool {
        let (x, y) = (
            super::super::fstat(a).unwrap(),
            super::super::fstat(b).unwrap(),
        );
        (x.st_dev, x.st_ino) == (y.st_dev, y.st_ino)
    }

    #[test]
    fn fds_and_payload_cross_a_socket() {
        let (a, b) = pair();
        let (p, q) = pair();
        let f = std::fs::File::open("/proc/self/exe").unwrap();
        assert_eq!(
            send_with_fds(a.as_raw_fd(), b"two", &[p.as_raw_fd(), f.as_raw_fd()]).unwrap(),
            3
        );
        let mut buf = [0u8; 16];
        let got = recv_with_fds(b.as_raw_fd(), &mut buf, 0).unwrap();
        assert_eq!(&buf[..got.len], b"two");
        assert_eq!(got.fds.len(), 2);
        assert!(
            same_file(got.fds[0].as_fd(), p.as_fd()) && same_file(got.fds[1].as_fd(), f.as_fd())
        );
        let fl = nix::fcntl::fcntl(&got.fds[1], nix::fcntl::FcntlArg::F_GETFD).unwrap();
        assert_ne!(fl & libc::FD_CLOEXEC, 0, "received fds are close-on-exec");
        drop(q);
    }

    #[test]
    fn no_fds_and_the_sender_pid() {
        let (a, b) = pair();
        nix::sys::socket::setsockopt(&b, nix::sys::socket::sockopt::PassCred, &true).unwrap();
        send_with_fds(a.as_raw_fd(), b"x", &[]).unwrap();
        let mut buf = [0u8; 4];
        let got = recv_with_fds(b.as_raw_fd(), &mut buf, 0).unwrap();
        assert!(got.fds.is_empty());
        assert_eq!(got.pid, Some(std::process::id() as i32));
        assert!(send_with_fds(a.as_raw_fd(), b"x", &[0; MAX_SEND_FDS + 1]).is_err());
    }

    #[test]
    fn recv_fd_names_eof_and_a_missing_fd() {
        let (a, b) = pair();
        send_with_fds(a.as_raw_fd(), b"x", &[]).unwrap();
        assert_eq!(
            recv_fd(b.as_raw_fd()).unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
        drop(a);
        assert_eq!(
            recv_fd(b.as_raw_fd()).unwrap_err().kind(),
            io::ErrorKind::UnexpectedEof
        );
    }
}

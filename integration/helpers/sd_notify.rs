//! `sd-notify MSG...`: send each MSG as one datagram to $NOTIFY_SOCKET, as
//! sd_notify(3) does (the container's side of the notify tests). Built
//! static by build.rs: the test rootfs holds only busybox.

use std::os::unix::net::UnixDatagram;

fn main() {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        eprintln!("sd-notify: NOTIFY_SOCKET is not set");
        std::process::exit(2);
    };
    let sock = UnixDatagram::unbound().unwrap_or_else(|e| {
        eprintln!("sd-notify: socket: {e}");
        std::process::exit(1)
    });
    for msg in std::env::args().skip(1) {
        let msg = msg.replace("\\n", "\n");
        if let Err(e) = sock.send_to(msg.as_bytes(), &path) {
            eprintln!("sd-notify: send to {}: {e}", path.to_string_lossy());
            std::process::exit(1);
        }
    }
}

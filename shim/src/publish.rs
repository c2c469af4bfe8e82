//! Publishing task events to containerd, in order, from one thread: over
//! ttrpc to `TTRPC_ADDRESS` (containerd's events service, as the Go shims
//! do), or else by running `<publish-binary> --address A publish --topic T
//! --namespace N` with the event on stdin.
//!
//! The service and the OOM watcher queue events through [`Publish`], which
//! [`Publisher`] implements (the service's tests record them instead).

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::mpsc::{channel, Sender};
use std::sync::Arc;

use containerd_shim_protos::api::{Envelope, ForwardRequest};
use containerd_shim_protos::shim::events_ttrpc::EventsClient;
use protobuf::well_known_types::any::Any;
use protobuf::well_known_types::timestamp::Timestamp;
use protobuf::Message;

/// Where events go, in the order they are sent.
pub trait Publish: Send + Sync {
    /// Queue `event` under `topic`.
    fn send(&self, topic: &str, event: Any);
}

impl dyn Publish {
    /// Queue an event; events go out in the order they are queued.
    /// `type_name` is the event's protobuf name (containerd resolves events
    /// by it); naming it here avoids building protobuf's reflection tables,
    /// which cost the shim resident memory.
    pub fn publish<M: Message>(&self, topic: &str, type_name: &str, event: &M) {
        let mut any = Any::new();
        any.type_url = type_name.to_string();
        any.value = event.write_to_bytes().unwrap_or_default();
        self.send(topic, any);
    }
}

impl<P: Publish + ?Sized> Publish for Arc<P> {
    fn send(&self, topic: &str, event: Any) {
        (**self).send(topic, event)
    }
}

#[derive(Clone)]
pub struct Publisher {
    tx: Sender<(String, Any)>,
}

impl Publisher {
    pub fn start(namespace: String, address: String, publish_binary: String) -> Publisher {
        let (tx, rx) = channel::<(String, Any)>();
        let ttrpc_addr = std::env::var("TTRPC_ADDRESS")
            .ok()
            .filter(|a| !a.is_empty());
        std::thread::Builder::new()
            .name("publish".into())
            .stack_size(256 << 10)
            .spawn(move || {
                let mut client: Option<EventsClient> = None;
                for (topic, event) in rx {
                    let r = match &ttrpc_addr {
                        Some(a) => forward(&mut client, a, &namespace, &topic, event),
                        None => exec_publish(&publish_binary, &address, &namespace, &topic, &event),
                    };
                    if let Err(e) = r {
                        log::warn!("publish {topic}: {e}");
                    }
                }
            })
            .expect("spawn the publisher thread");
        Publisher { tx }
    }
}

impl Publish for Publisher {
    fn send(&self, topic: &str, event: Any) {
        let _ = self.tx.send((topic.to_string(), event));
    }
}

fn forward(
    client: &mut Option<EventsClient>,
    addr: &str,
    ns: &str,
    topic: &str,
    event: Any,
) -> Result<(), String> {
    let mut env = Envelope::new();
    env.timestamp = protobuf::MessageField::some(Timestamp::now());
    env.namespace = ns.to_string();
    env.topic = topic.to_string();
    env.event = protobuf::MessageField::some(event);
    let mut req = ForwardRequest::new();
    req.envelope = protobuf::MessageField::some(env);
    for attempt in 0..2 {
        if client.is_none() {
            let a = if addr.contains("://") {
                addr.to_string()
            } else {
                format!("unix://{addr}")
            };
            let c = ttrpc::Client::connect(&a).map_err(|e| format!("connect {a}: {e}"))?;
            *client = Some(EventsClient::new(c));
        }
        let ctx = ttrpc::context::with_timeout(5_000_000_000);
        match client.as_ref().unwrap().forward(ctx, &req) {
            Ok(_) => return Ok(()),
            Err(e) if attempt == 0 => {
                log::debug!("forward {topic}: {e}; reconnecting");
                *client = None;
            }
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(())
}

fn exec_publish(
    bin: &str,
    address: &str,
    ns: &str,
    topic: &str,
    event: &Any,
) -> Result<(), String> {
    if bin.is_empty() {
        return Err("neither TTRPC_ADDRESS nor -publish-binary given".into());
    }
    let mut child = Command::new(bin)
        .args([
            "--address",
            address,
            "publish",
            "--topic",
            topic,
            "--namespace",
            ns,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("run {bin}: {e}"))?;
    let bytes = event.write_to_bytes().map_err(|e| e.to_string())?;
    let w = child.stdin.take().map(|mut s| s.write_all(&bytes));
    // The next event goes out only once this one is delivered (as
    // containerd's own shims run the binary to completion): wait for the
    // publisher to exit, seen as EOF on its stdout (the reaper collects
    // the exit status itself), at most PUBLISH_WAIT.
    if let Some(out) = child.stdout.take() {
        wait_eof(&out, PUBLISH_WAIT);
    }
    w.unwrap_or(Ok(()))
        .map_err(|e| format!("write to {bin}: {e}"))
}

/// How long one run of the publish binary may take before the next event
/// is sent anyway.
const PUBLISH_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Read `r` until EOF or `limit` has passed.
fn wait_eof(r: &std::process::ChildStdout, limit: std::time::Duration) {
    use std::os::fd::AsRawFd;
    let deadline = std::time::Instant::now() + limit;
    let mut buf = [0u8; 512];
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            log::warn!("the publish binary did not finish within {limit:?}");
            return;
        }
        let mut p = libc::pollfd { fd: r.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd.
        // SAFETY: `p` is a live pollfd and nfds is 1.
        let n = unsafe { libc::poll(&mut p, 1, left.as_millis().min(i32::MAX as u128) as i32) };
        if n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
            continue;
        }
        if n <= 0 {
            continue;
        }
        // SAFETY: reading into a local buffer from an fd we own.
        // SAFETY: `buf` is a live buffer and read writes at most buf.len() bytes.
        let got = unsafe { libc::read(r.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if got == 0 || (got < 0 && std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted) {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use containerd_shim_protos::events::task::{TaskCreate, TaskDelete, TaskExit, TaskStart};
    use protobuf::MessageFull;

    /// The names the service publishes under are the messages' own.
    #[test]
    fn event_type_names() {
        assert_eq!(
            TaskCreate::descriptor().full_name(),
            "containerd.events.TaskCreate"
        );
        assert_eq!(
            TaskStart::descriptor().full_name(),
            "containerd.events.TaskStart"
        );
        assert_eq!(
            TaskExit::descriptor().full_name(),
            "containerd.events.TaskExit"
        );
        assert_eq!(
            TaskDelete::descriptor().full_name(),
            "containerd.events.TaskDelete"
        );
    }
}

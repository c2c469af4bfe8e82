//! containerd-shim-berth-v2-server: the task server that
//! `containerd-shim-berth-v2 start` spawns (listener on fd 3). See
//! [`berth_shim::server`].

#![deny(clippy::undocumented_unsafe_blocks)]

fn main() {
    let r = berth_shim::parse_flags().and_then(|f| {
        if f.action != "serve" {
            return Err(format!(
                "unknown action {:?}: this binary is started by `{} start`",
                f.action,
                berth_shim::MAIN_BIN
            ));
        }
        berth_shim::server::serve(&f)
    });
    if let Err(e) = r {
        eprintln!("{}: {e}", berth_shim::SERVER_BIN);
        std::process::exit(1);
    }
}

//! The fast path must agree with clap on every line it accepts, and leave
//! to clap what it does not know.

use clap::Parser;

use crate::cli::Cli;

fn fast(line: &str) -> Option<Cli> {
    super::parse(line.split_whitespace().map(Into::into))
}

fn clap(line: &str) -> Cli {
    let argv = std::iter::once("berth").chain(line.split_whitespace());
    Cli::try_parse_from(argv).unwrap_or_else(|e| panic!("clap rejects {line:?}: {e}"))
}

#[test]
fn accepted_lines_parse_as_clap_parses_them() {
    let lines = [
        "run -b bundle c1",
        "--root /tmp/r run -b bundle c1",
        "--root=/tmp/r --log /tmp/l --log-format json --debug run --bundle=/b --keep c1",
        "run c1 -d --bundle /b --pid-file /p --no-pivot --no-new-keyring --preserve-fds 2",
        "run --no-subreaper --detach --console-socket /s c1 --root /r",
        "--log-format=text create --bundle /b --pid-file=/p c1",
        "create c1 --preserve-fds=0 --console-socket=/s --log /l",
        "--root /r start c1",
        "start c1 --root /r --debug",
        "state c1",
        "--root /r kill c1",
        "kill c1 KILL",
        "kill --all c1 9",
        "kill c1 -a SIGTERM",
        "delete c1",
        "delete --force c1",
        "--root /r --log /l --log-format json delete -f c1",
    ];
    for line in lines {
        let f = fast(line).unwrap_or_else(|| panic!("fast path gave up on {line:?}"));
        assert_eq!(format!("{f:?}"), format!("{:?}", clap(line)), "{line}");
    }
}

#[test]
fn everything_else_goes_to_clap() {
    let lines = [
        "",
        "--help",
        "run --help",
        "-v",
        "--version",
        "list",
        "exec c1 true",
        "ps c1",
        "--criu /x run c1",
        "--rootless false run c1",
        "--systemd-cgroup run c1",
        "run",
        "run c1 c2",
        "run -b",
        "run -b -x c1",
        "run -bdir c1",
        "run -dk c1",
        "run --bundle= c1",
        "run --bogus c1",
        "run --keep --keep c1",
        "--root /a --root /b run c1",
        "--root /a run --root /b c1",
        "run --preserve-fds +3 c1",
        "run --preserve-fds -1 c1",
        "run --preserve-fds 99999999999 c1",
        "run --detach=true c1",
        "--log-format yaml run c1",
        "--debug=1 run c1",
        "start",
        "start c1 c2",
        "start -- c1",
        "delete -f -f c1",
        "delete -fx c1",
        "kill c1 KILL extra",
        "kill",
        "start -",
    ];
    for line in lines {
        assert!(fast(line).is_none(), "fast path took {line:?}");
    }
}

#[test]
fn non_utf8_goes_to_clap() {
    use std::os::unix::ffi::OsStringExt;
    let args = vec!["start".into(), std::ffi::OsString::from_vec(vec![0xff, 0xfe])];
    assert!(super::parse(args).is_none());
}

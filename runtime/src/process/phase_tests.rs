use super::*;
use crate::container::{OciState, Status};

/// A message of each kind, as the two sides send them.
fn msg(name: &str) -> Msg {
    match name {
        "RequestMaps" => Msg::RequestMaps,
        "Hello" => Msg::Hello,
        "RunHooks" => Msg::RunHooks,
        "Ready" => Msg::Ready,
        "Error" => Msg::Error(crate::error::InitError::new(crate::error::ErrorKind::Os, "boom")),
        "SeccompListener" => Msg::SeccompListener,
        "Spawned" => Msg::Spawned(7),
        "MoveNetDevices" => Msg::MoveNetDevices,
        "Start" => Msg::Start,
        "Detach" => Msg::Detach,
        "CgroupsReady" => Msg::CgroupsReady,
        "MapsWritten" => Msg::MapsWritten,
        "SeccompSent" => Msg::SeccompSent,
        "NetDevicesMoved" => Msg::NetDevicesMoved,
        "HooksDone" => Msg::HooksDone(OciState {
            oci_version: "1.3.0".into(),
            id: "c".into(),
            status: Status::Creating,
            pid: 1,
            bundle: "/b".into(),
            rootfs: None,
            created: None,
            owner: None,
            annotations: Default::default(),
        }),
        other => panic!("no message {other}"),
    }
}

const ALL: [&str; 15] = [
    "RequestMaps",
    "Hello",
    "RunHooks",
    "Ready",
    "Error",
    "SeccompListener",
    "Spawned",
    "MoveNetDevices",
    "Start",
    "Detach",
    "CgroupsReady",
    "MapsWritten",
    "SeccompSent",
    "NetDevicesMoved",
    "HooksDone",
];

/// One step of a script: init sends (`<`) or berth sends (`>`).
fn run(steps: &Steps, script: &[(char, &str)]) -> Result<Phase, Unexpected> {
    let mut p = Phase::Cloned;
    for (dir, name) in script {
        p = match dir {
            '<' => p.received(steps, &msg(name))?,
            '>' => p.sent(steps, &msg(name))?,
            _ => unreachable!(),
        };
    }
    Ok(p)
}

/// The whole expected script of a setup, in order.
fn script(s: &Steps) -> Vec<(char, &'static str)> {
    let mut v = Vec::new();
    let mut p = Phase::Cloned;
    while let Some(n) = p.next(s) {
        let (name, from) = n.entered_by();
        v.push((if from == From::Init { '<' } else { '>' }, name));
        p = n;
    }
    v
}

const EVERYTHING: Steps =
    Steps { cgroups_wait: true, maps: true, hello: true, net_devices: true, hooks: true, seccomp_listener: true };

#[test]
fn names_match_the_variants() {
    for n in ALL {
        assert_eq!(msg(n).name(), n);
    }
}

#[test]
fn a_plain_container_only_says_ready() {
    let s = Steps::default();
    assert_eq!(script(&s), [('<', "Ready")]);
    assert_eq!(run(&s, &[('<', "Ready")]), Ok(Phase::Ready));
    // Nothing the config does not call for is accepted.
    for n in ALL.iter().filter(|n| !matches!(**n, "Ready" | "Error")) {
        assert!(Phase::Cloned.received(&s, &msg(n)).is_err(), "{n} from init");
        assert!(Phase::Cloned.sent(&s, &msg(n)).is_err(), "{n} from berth");
    }
}

#[test]
fn every_step_in_the_drawn_order() {
    assert_eq!(
        script(&EVERYTHING),
        [
            ('>', "CgroupsReady"),
            ('<', "RequestMaps"),
            ('>', "MapsWritten"),
            ('<', "Hello"),
            ('<', "MoveNetDevices"),
            ('>', "NetDevicesMoved"),
            ('<', "RunHooks"),
            ('>', "HooksDone"),
            ('<', "SeccompListener"),
            ('>', "SeccompSent"),
            ('<', "Ready"),
        ]
    );
    assert_eq!(run(&EVERYTHING, &script(&EVERYTHING)), Ok(Phase::Ready));
}

/// In every phase of every combination of steps, exactly the next step's
/// message is accepted from its sender; errors from init always are.
#[test]
fn only_the_next_step_is_accepted_anywhere() {
    for bits in 0..64u32 {
        let s = Steps {
            cgroups_wait: bits & 1 != 0,
            maps: bits & 2 != 0,
            hello: bits & 4 != 0,
            net_devices: bits & 8 != 0,
            hooks: bits & 16 != 0,
            seccomp_listener: bits & 32 != 0,
        };
        let full = script(&s);
        let mut p = Phase::Cloned;
        for (i, (dir, next)) in full.iter().enumerate() {
            for n in ALL {
                let from_init = p.received(&s, &msg(n));
                let from_berth = p.sent(&s, &msg(n));
                let ok_init = n == "Error" || (*dir == '<' && n == *next);
                assert_eq!(from_init.is_ok(), ok_init, "{s:?} step {i} ({p:?}): {n} from init");
                assert_eq!(from_berth.is_ok(), *dir == '>' && n == *next, "{s:?} step {i} ({p:?}): {n} from berth");
                if n == "Error" {
                    assert_eq!(from_init, Ok(p), "an error leaves the phase");
                }
            }
            p = if *dir == '<' { p.received(&s, &msg(next)) } else { p.sent(&s, &msg(next)) }.unwrap();
        }
        assert_eq!(p, Phase::Ready);
        // After Ready, setup is over.
        for n in ["Ready", "RunHooks", "RequestMaps", "Hello"] {
            let e = p.received(&s, &msg(n)).unwrap_err();
            assert_eq!(e.expected, None);
            assert!(e.to_string().contains("(setup is over)"), "{e}");
        }
    }
}

#[test]
fn two_stage_with_a_user_namespace() {
    let s = Steps { maps: true, hello: true, ..Steps::default() };
    let ok = [('<', "RequestMaps"), ('>', "MapsWritten"), ('<', "Hello"), ('<', "Ready")];
    assert_eq!(run(&s, &ok), Ok(Phase::Ready));
    // Hello before the maps are written: init skipped a step.
    let e = run(&s, &[('<', "RequestMaps"), ('<', "Hello")]).unwrap_err();
    assert_eq!((e.msg, e.phase.as_str(), e.expected), ("Hello", "MapsRequested", Some("MapsWritten")));
    // Ready without Hello: the pid namespace's init was never recorded.
    let e = run(&s, &[('<', "RequestMaps"), ('>', "MapsWritten"), ('<', "Ready")]).unwrap_err();
    assert_eq!((e.msg, e.expected), ("Ready", Some("Hello")));
    // A second Hello.
    let e = run(&s, &[('<', "RequestMaps"), ('>', "MapsWritten"), ('<', "Hello"), ('<', "Hello")]).unwrap_err();
    assert_eq!(e.phase, "Adopted");
}

#[test]
fn two_stage_joining_a_user_namespace_says_hello_only() {
    let s = Steps { hello: true, ..Steps::default() };
    assert_eq!(run(&s, &[('<', "Hello"), ('<', "Ready")]), Ok(Phase::Ready));
    let e = run(&s, &[('<', "RequestMaps")]).unwrap_err();
    assert_eq!((e.msg, e.expected), ("RequestMaps", Some("Hello")));
}

#[test]
fn deferred_net_waits_for_the_cgroups() {
    let s = Steps { cgroups_wait: true, ..Steps::default() };
    // init may fail while berth makes the cgroups ...
    assert_eq!(run(&s, &[('<', "Error")]), Ok(Phase::Cloned));
    // ... but says nothing else before it has joined them.
    let e = run(&s, &[('<', "Ready")]).unwrap_err();
    assert_eq!((e.msg, e.phase.as_str(), e.expected), ("Ready", "Cloned", Some("CgroupsReady")));
    assert_eq!(run(&s, &[('>', "CgroupsReady"), ('<', "Ready")]), Ok(Phase::Ready));
    // Twice, or without a deferred network namespace: a bug in berth.
    let e = run(&s, &[('>', "CgroupsReady"), ('>', "CgroupsReady")]).unwrap_err();
    assert!(e.sender == "berth" && e.to_string().contains("berth was about to send CgroupsReady"), "{e}");
    assert!(run(&Steps::default(), &[('>', "CgroupsReady")]).is_err());
}

#[test]
fn net_devices_are_moved_on_request_only() {
    let s = Steps { net_devices: true, hooks: true, ..Steps::default() };
    let ok = [('<', "MoveNetDevices"), ('>', "NetDevicesMoved"), ('<', "RunHooks"), ('>', "HooksDone"), ('<', "Ready")];
    assert_eq!(run(&s, &ok), Ok(Phase::Ready));
    // Hooks before the devices are in: refused, naming both.
    let e = run(&s, &[('<', "RunHooks")]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "sync protocol: container init sent RunHooks out of order in phase Cloned (expected MoveNetDevices)"
    );
    // berth answers no request that was not made.
    assert!(run(&s, &[('>', "NetDevicesMoved")]).is_err());
    // Without linux.netDevices, init may not ask.
    assert!(run(&Steps::default(), &[('<', "MoveNetDevices")]).is_err());
}

#[test]
fn seccomp_listener_comes_after_the_hooks_and_before_ready() {
    let s = Steps { hooks: true, seccomp_listener: true, ..Steps::default() };
    let ok = [('<', "RunHooks"), ('>', "HooksDone"), ('<', "SeccompListener"), ('>', "SeccompSent"), ('<', "Ready")];
    assert_eq!(run(&s, &ok), Ok(Phase::Ready));
    let e = run(&s, &[('<', "RunHooks"), ('>', "HooksDone"), ('<', "Ready")]).unwrap_err();
    assert_eq!((e.msg, e.phase.as_str(), e.expected), ("Ready", "HooksRun", Some("SeccompListener")));
    // A listener the config did not ask for.
    let e = run(&Steps::default(), &[('<', "SeccompListener")]).unwrap_err();
    assert_eq!(e.expected, Some("Ready"));
    // A hook failure is allowed while the listener is being passed.
    assert_eq!(
        run(&s, &[('<', "RunHooks"), ('>', "HooksDone"), ('<', "SeccompListener"), ('<', "Error")]),
        Ok(Phase::ListenerReceived)
    );
}

#[test]
fn parent_messages_never_come_from_init() {
    for n in
        ["Start", "Detach", "CgroupsReady", "MapsWritten", "SeccompSent", "NetDevicesMoved", "HooksDone", "Spawned"]
    {
        let mut p = Phase::Cloned;
        while let Some(next) = p.next(&EVERYTHING) {
            assert!(p.received(&EVERYTHING, &msg(n)).is_err(), "{n} from init in {p:?}");
            p = next;
        }
    }
}

#[test]
fn join_phases() {
    let j = JoinPhase::Joining;
    assert_eq!(j.received(&msg("Spawned")), Ok(JoinPhase::Spawned));
    assert_eq!(j.received(&msg("Error")), Ok(JoinPhase::Joining));
    assert_eq!(JoinPhase::Spawned.received(&msg("Error")), Ok(JoinPhase::Spawned));
    // A second Spawned, or anything of init's protocol, is refused.
    let e = JoinPhase::Spawned.received(&msg("Spawned")).unwrap_err();
    assert_eq!(
        e.to_string(),
        "sync protocol: the exec process sent Spawned out of order in phase Spawned (setup is over)"
    );
    for n in ALL.iter().filter(|n| !matches!(**n, "Spawned" | "Error")) {
        let e = j.received(&msg(n)).unwrap_err();
        assert_eq!((e.msg, e.expected), (*n, Some("Spawned")));
    }
}

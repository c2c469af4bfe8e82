//! Process confinement applied by init: capabilities (and, with the
//! security work, seccomp).

pub mod caps;

//! Process confinement applied by init: capabilities and seccomp, and
//! the sealing of berth's binary before a container is created.

pub mod caps;
pub mod seal;
pub mod seccomp;

//! Process confinement applied by init: capabilities, seccomp, AppArmor
//! (`lsm`), and
//! the sealing of berth's binary before a container is created.

pub mod caps;
pub mod lsm;
pub mod seal;
pub mod seccomp;

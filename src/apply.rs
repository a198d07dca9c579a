//! Staging, check, atomic install and reload of a target file (to be written).

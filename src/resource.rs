//! conf.d JSON → validated resources (to be written: see the helper brief).

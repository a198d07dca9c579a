//! MiniJinja environment for resource templates (to be written: see the helper brief).

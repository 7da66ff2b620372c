//! The layout of a node home directory (`--home`): where every file lives.

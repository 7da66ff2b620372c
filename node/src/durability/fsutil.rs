//! Durable file writes: write to a temporary file, fsync it, rename over the target, fsync the directory.

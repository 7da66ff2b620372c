//! Prometheus metrics with CometBFT names, and the `/metrics` endpoint.

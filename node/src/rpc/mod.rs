//! The CometBFT-compatible JSON-RPC server (HTTP POST, URI form, websocket subscriptions).

//! HTTP/1.x request parsing, canned responses and the per-connection state machine.

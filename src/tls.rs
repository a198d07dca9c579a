//! rustls client configuration from CA, certificate and key files (to be written).
